"""A collection of documents as embeddings: clusters, a 2-D map, neighbours, recommendations, evaluation.

Everything works on L2-normalised document embeddings (corpus.py), one matrix per view and pooling,
so the truncated and the Longformer view can be compared document by document:
- `cluster`: k-means (cosine, via normalised vectors), silhouette, each cluster's top terms (TF-IDF)
  and representative documents (closest to the centre);
- `map_2d`: PCA to two dimensions;
- `neighbours`, `similar_to`, `recommend`, `cold_start`: nearest documents of a document, of a new text's
  embedding, of a few liked documents, and one representative per cluster for a user with no history;
- `overlap_at_k`: how many of a document's k nearest neighbours two views share;
- `evaluate_collection`: leave-one-out k-NN topic accuracy and k-means purity / NMI, by document length.
Exact duplicate texts are never each other's neighbours (they would make every score look better).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longformer_core.evaluation.corpus import LONG, SHORT, duplicate_groups, length_buckets

TOP_TERMS = 8
KNN_KS = (1, 5, 10)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def similarity_matrix(vectors: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """(n, n) cosine; -inf on the diagonal and between duplicates (same group), so they are never neighbours."""
    v = _unit(vectors)
    sims = v @ v.T
    if groups is None:
        np.fill_diagonal(sims, -np.inf)
    else:
        g = np.asarray(groups)
        sims[g[:, None] == g[None, :]] = -np.inf
    return sims


def top_k(sims: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of the k largest entries of each row, best first."""
    k = min(k, sims.shape[1])
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1)
    return np.take_along_axis(part, order, 1)


# --------------------------------------------------------------------------------------------------
# Clusters and map


@dataclass
class Clusters:
    k: int
    labels: np.ndarray  # (n,) cluster of each document
    centers: np.ndarray  # (k, hidden) unit vectors
    silhouette: float  # cosine silhouette over all documents (-1..1, higher = better separated)
    sizes: list[int]


def cluster(vectors: np.ndarray, k: int, seed: int = 0) -> Clusters:
    """k-means on unit vectors (so Euclidean k-means ranks like cosine).

    Raises:
        ValueError: k is not between 2 and the number of documents - 1.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    v = _unit(vectors)
    if not 2 <= k < len(v):
        raise ValueError(f"Choose between 2 and {len(v) - 1} clusters for {len(v)} documents.")
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(v)
    labels = km.labels_.astype(int)
    sil = float(silhouette_score(v, labels, metric="cosine")) if len(set(labels)) > 1 else 0.0
    return Clusters(k, labels, _unit(km.cluster_centers_), sil, np.bincount(labels, minlength=k).tolist())


def assign(vector: np.ndarray, clusters: Clusters) -> int:
    """The cluster whose centre is closest to a new embedding."""
    return int(np.argmax(clusters.centers @ _unit(vector)))


def representatives(vectors: np.ndarray, clusters: Clusters, n: int = 3) -> list[list[int]]:
    """For each cluster, its n documents closest to the centre."""
    v = _unit(vectors)
    out = []
    for c in range(clusters.k):
        members = np.flatnonzero(clusters.labels == c)
        order = np.argsort(-(v[members] @ clusters.centers[c]))
        out.append(members[order[:n]].tolist())
    return out


def top_terms(texts: Sequence[str], labels: np.ndarray, n: int = TOP_TERMS) -> list[list[str]]:
    """For each cluster, the words that set it apart: mean TF-IDF in the cluster minus in the whole collection."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = int(labels.max()) + 1 if len(labels) else 0
    try:
        tfidf = TfidfVectorizer(
            stop_words="english",
            sublinear_tf=True,
            max_features=20000,
            min_df=1,
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
        )
        x = tfidf.fit_transform(texts)
    except ValueError:  # only stop words or numbers
        return [[] for _ in range(k)]
    vocab = np.asarray(tfidf.get_feature_names_out())
    overall = np.asarray(x.mean(0)).ravel()
    out = []
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        if not len(rows):
            out.append([])
            continue
        score = np.asarray(x[rows].mean(0)).ravel() - overall
        out.append(vocab[np.argsort(-score)[:n]].tolist())
    return out


def map_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) PCA coordinates of the unit vectors."""
    from sklearn.decomposition import PCA

    v = _unit(vectors)
    if len(v) < 3:
        return np.zeros((len(v), 2), dtype=np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(v).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Neighbours and recommendations


def neighbours(
    vectors: np.ndarray, index: int, k: int = 5, groups: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """The k documents most similar to document `index` (never itself or its duplicates): (index, cosine)."""
    v = _unit(vectors)
    sims = v @ v[index]
    sims[index] = -np.inf
    if groups is not None:
        sims[np.asarray(groups) == groups[index]] = -np.inf
    return _best(sims, k)


def similar_to(
    vectors: np.ndarray, query: np.ndarray, k: int = 5, exclude: Sequence[int] = ()
) -> list[tuple[int, float]]:
    """The k documents most similar to a new embedding (e.g. a pasted article)."""
    sims = _unit(vectors) @ _unit(query)
    sims[list(exclude)] = -np.inf
    return _best(sims, k)


def recommend(
    vectors: np.ndarray, liked: Sequence[int], k: int = 5, groups: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """Documents like the ones a user liked: nearest to the mean of their embeddings, liked ones (and
    their duplicates) left out.

    Raises:
        ValueError: nothing liked.
    """
    if not len(liked):
        raise ValueError(
            "Pick at least one document the reader liked (or use the suggestions for new readers)."
        )
    v = _unit(vectors)
    profile = _unit(v[list(liked)].mean(0))
    exclude = set(liked)
    if groups is not None:
        liked_groups = {groups[i] for i in liked}
        exclude |= {i for i, g in enumerate(groups) if g in liked_groups}
    return similar_to(v, profile, k, sorted(exclude))


def cold_start(vectors: np.ndarray, clusters: Clusters) -> list[int]:
    """For a reader with no history: the most representative document of each cluster, biggest cluster first."""
    reps = representatives(vectors, clusters, 1)
    order = np.argsort(-np.asarray(clusters.sizes), kind="stable")
    return [reps[c][0] for c in order if reps[c]]


def _best(sims: np.ndarray, k: int) -> list[tuple[int, float]]:
    order = np.argsort(-sims)[:k]
    return [(int(j), float(sims[j])) for j in order if np.isfinite(sims[j])]


def overlap_at_k(a: np.ndarray, b: np.ndarray, k: int = 10, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) share of each document's k nearest neighbours that two embeddings (e.g. two views) agree on."""
    na = top_k(similarity_matrix(a, groups), k)
    nb = top_k(similarity_matrix(b, groups), k)
    return np.asarray([len(set(x) & set(y)) / k for x, y in zip(na.tolist(), nb.tolist())], dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Evaluation with known labels


def knn_predictions(vectors: np.ndarray, labels: Sequence[str], groups: np.ndarray, k: int) -> list[str]:
    """Leave-one-out k-NN: each document's label by majority of its k nearest others (duplicates excluded);
    ties go to the label whose members are closer in total."""
    sims = similarity_matrix(vectors, groups)
    nearest = top_k(sims, k)
    labels = list(labels)
    out = []
    for i, row in enumerate(nearest.tolist()):
        votes: Counter = Counter()
        weight: Counter = Counter()
        for j in row:
            votes[labels[j]] += 1
            weight[labels[j]] += float(sims[i, j])
        out.append(max(votes, key=lambda lab: (votes[lab], weight[lab])))
    return out


def purity(true: Sequence[str], pred: np.ndarray) -> float:
    """Share of documents whose cluster's majority label is their own."""
    true = np.asarray(true)
    total = 0
    for c in np.unique(pred):
        total += Counter(true[pred == c].tolist()).most_common(1)[0][1]
    return total / max(1, len(true))


def evaluate_collection(
    embeddings: dict[tuple[str, str], object],
    texts: Sequence[str],
    labels: Sequence[str],
    n_clusters: int | None = None,
    ks: Sequence[int] = KNN_KS,
    seed: int = 0,
    overlap_k: int = 10,
) -> dict:
    """k-NN topic accuracy (leave-one-out) and k-means purity / NMI for each (view, pooling), by length.

    Args:
        embeddings: {(view, pooling): corpus.Embeddings} of one corpus, rows in the same order.
        texts, labels: the documents and their true labels.
        n_clusters: k for k-means (default: the number of labels).
        ks: neighbours for the k-NN vote.
        seed: k-means seed.
        overlap_k: neighbours compared between the truncated and the Longformer view.
    Returns:
        {"rows", "labels", "duplicate_texts", "length": {...}, "results": {view: {pooling: {...}}},
         "overlap": {pooling: {"all", "<=512", ">512"}}}.
    """
    from sklearn.metrics import normalized_mutual_info_score

    groups = duplicate_groups(texts)
    y = np.asarray(labels)
    n_clusters = n_clusters or len(set(labels))
    first = next(iter(embeddings.values()))
    buckets = length_buckets(first.n_tokens)
    report: dict = {
        "rows": len(y),
        "labels": dict(Counter(labels)),
        "duplicate_texts": int(len(groups) - len(set(groups))),
        "length": {SHORT: int((buckets == SHORT).sum()), LONG: int((buckets == LONG).sum())},
        "k_means_k": n_clusters,
        "knn_ks": list(ks),
        "results": {},
        "overlap": {},
    }
    for (view, pooling), emb in embeddings.items():
        r: dict = {}
        for k in ks:
            pred = np.asarray(knn_predictions(emb.vectors, labels, groups, k))
            r[f"knn@{k}"] = {
                b: round(100 * float((pred[m] == y[m]).mean()), 1) if m.any() else None
                for b, m in _masks(buckets)
            }
        cl = cluster(emb.vectors, n_clusters, seed)
        r["kmeans"] = {"silhouette": round(cl.silhouette, 3)}
        for b, m in _masks(buckets):
            if m.sum() > 1:
                r["kmeans"][b] = {
                    "purity": round(100 * purity(y[m], cl.labels[m]), 1),
                    "nmi": round(100 * normalized_mutual_info_score(y[m], cl.labels[m]), 1),
                }
        report["results"].setdefault(view, {})[pooling] = r
    views = {v for v, _ in embeddings}
    if {"truncated", "longformer"} <= views:
        for pooling in sorted({p for _, p in embeddings}):
            if ("truncated", pooling) in embeddings and ("longformer", pooling) in embeddings:
                ov = overlap_at_k(
                    embeddings[("truncated", pooling)].vectors,
                    embeddings[("longformer", pooling)].vectors,
                    overlap_k,
                    groups,
                )
                report["overlap"][pooling] = {
                    f"mean_overlap@{overlap_k}": {
                        b: round(float(ov[m].mean()), 3) if m.any() else None for b, m in _masks(buckets)
                    }
                }
    return report


def _masks(buckets: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """("all", every document), ("<=512", short ones), (">512", long ones)."""
    return [("all", np.ones(len(buckets), dtype=bool)), (SHORT, buckets == SHORT), (LONG, buckets == LONG)]
