"""Evaluation on labelled corpora: linear heads on document embeddings (Hyperpartisan, BBC News).

`evaluate_dataset` embeds every row once per view (cached in parquet, see corpus.py), then trains a
logistic regression on each (view, pooling) with stratified, seeded k-fold cross-validation in which
duplicate texts always fall on the same side, and reports accuracy, macro-F1 and (for a binary task)
the F1 of the positive class, overall and split by length: documents that fit in the truncated view
(<= 512 tokens with [CLS]/[SEP]) and longer ones. Every view is scored on the same rows and folds, so
the comparison is paired; for the long documents it also counts where only one view was right.

`write_heads` fits the chosen (view, pooling) heads on all rows and saves them (heads.py);
`score_heads` applies saved heads to rows of the same format.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longformer_core.corpus.embed import (
    Corpus,
    Embeddings,
    default_cache,
    embed_and_load,
    model_fingerprint,
    read_csv,
)
from longformer_core.heads import C_GRID, Head, fit_linear, load_head
from longformer_core.model.registry import ModelPair
from longformer_core.reading.encoding import VIEWS
from longformer_core.settings import REPO_ROOT
from longformer_core.similarity import POOLINGS

SHORT_TOKENS = 510  # document tokens the truncated view reads (512 with [CLS] and [SEP])
SHORT, LONG = "<=512", ">512"


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one labelled CSV."""

    title: str  # the head's name in the app
    text_column: str
    label_column: str
    id_column: str | None = None
    title_column: str | None = None
    positive: str | None = None  # the positive class of a binary task
    display: dict[str, str] = field(default_factory=dict)  # label -> what users see
    paper: str = ""  # published reference numbers, for the report


DATASETS = {
    "hyperpartisan": DatasetSpec(
        title="Hyperpartisan news?",
        text_column="text",
        label_column="hyperpartisan",
        id_column="id",
        title_column="title",
        positive="true",
        display={"true": "hyperpartisan", "false": "not hyperpartisan"},
        paper="Longformer paper, positive-class F1 on the full test set: RoBERTa-base 87.4, Longformer-base 94.8 "
        "(fine-tuned end to end; here a linear head on frozen embeddings)",
    ),
    "bbc": DatasetSpec(title="News topic (BBC)", text_column="text", label_column="category"),
}


def load_dataset(name: str, path: str | Path, limit: int | None = None, seed: int = 0) -> Corpus:
    """The dataset's CSV as a Corpus with labels (lower-cased), optionally a seeded stratified subset.

    Raises:
        ValueError: unknown dataset; CorpusError: the file or a column is missing.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset '{name}': choose one of {', '.join(DATASETS)}.")
    spec = DATASETS[name]
    corpus = read_csv(path, spec.text_column, spec.id_column, spec.label_column, spec.title_column)
    corpus.labels = [label.lower() for label in corpus.labels or []]
    missing = [r for r, label in zip(corpus.rows, corpus.labels) if not label]
    if missing:
        raise ValueError(
            f"Rows {missing[:10]} have no value in column '{spec.label_column}': every row needs a label."
        )
    if limit is not None and limit < len(corpus):
        corpus = _subset(corpus, _stratified_pick(corpus.labels, limit, seed))
    return corpus


def _stratified_pick(labels: Sequence[str], limit: int, seed: int) -> list[int]:
    """About `limit` rows with every label in proportion (at least two each), in file order."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    picked: list[int] = []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels == label)
        n = max(2, round(limit * len(idx) / len(labels)))
        picked += rng.permutation(idx)[:n].tolist()
    return sorted(picked)


def _subset(corpus: Corpus, keep: Sequence[int]) -> Corpus:
    pick = lambda xs: None if xs is None else [xs[i] for i in keep]
    return Corpus(
        texts=pick(corpus.texts),
        ids=pick(corpus.ids),
        labels=pick(corpus.labels),
        titles=pick(corpus.titles),
        rows=pick(corpus.rows),
        skipped=corpus.skipped,
        notes=corpus.notes,
        source=corpus.source,
        columns=corpus.columns,
    )


def duplicate_groups(texts: Sequence[str]) -> np.ndarray:
    """A group id per document; exact duplicates (ignoring case and spacing) share one."""
    ids: dict[str, int] = {}
    out = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        key = hashlib.sha256(" ".join(text.lower().split()).encode("utf-8", "surrogatepass")).hexdigest()
        out[i] = ids.setdefault(key, len(ids))
    return out


def length_buckets(n_tokens: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(n_tokens) <= SHORT_TOKENS, SHORT, LONG)


def metrics(y_true: Sequence[str], y_pred: Sequence[str], positive: str | None = None) -> dict:
    """accuracy, macro_f1 (and positive_f1) in percent, with n."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = list(y_true), list(y_pred)
    out = {"n": len(y_true)}
    if not y_true:
        return out
    out["accuracy"] = round(100 * accuracy_score(y_true, y_pred), 1)
    out["macro_f1"] = round(100 * f1_score(y_true, y_pred, average="macro", zero_division=0), 1)
    if positive is not None:
        out["positive_f1"] = round(
            100 * f1_score(y_true, y_pred, pos_label=positive, average="binary", zero_division=0), 1
        )
    return out


def out_of_fold_predictions(
    x: np.ndarray, y: Sequence[str], groups: np.ndarray, folds: int, seed: int, c: float | None = None
) -> list[str]:
    """Each row predicted by a head trained on the other folds (stratified; a duplicate group never splits)."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y)
    pred = np.empty(len(y), dtype=object)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y, groups):
        coef, bias, classes, _ = fit_linear(x[train], y[train].tolist(), seed=seed, c=c)
        z = x[test] @ coef.T + bias
        pred[test] = np.asarray(classes)[z.argmax(1)]
    return pred.tolist()


def _scored(y: Sequence[str], pred: Sequence[str], buckets: np.ndarray, positive: str | None) -> dict:
    y, pred = np.asarray(y), np.asarray(pred)
    out = {"all": metrics(y, pred, positive)}
    for b in (SHORT, LONG):
        m = buckets == b
        out[b] = metrics(y[m], pred[m], positive)
    return out


def _paired(y, pred_a, pred_b, mask) -> dict:
    """Where two views disagree on correctness (long documents), with an exact McNemar p-value."""
    from scipy.stats import binomtest

    y, a, b = np.asarray(y)[mask], np.asarray(pred_a)[mask] == np.asarray(y)[mask], np.asarray(pred_b)[mask]
    b = b == y
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {
        "both": int((a & b).sum()),
        "only_longformer": only_a,
        "only_truncated": only_b,
        "neither": int((~a & ~b).sum()),
        "mcnemar_p": round(float(p), 4),
    }


def evaluate_dataset(
    pair: ModelPair,
    name: str,
    path: str | Path,
    cache: str | Path | None = None,
    views: Sequence[str] = VIEWS,
    poolings: Sequence[str] = tuple(POOLINGS),
    folds: int = 5,
    seed: int = 0,
    limit: int | None = None,
    strategy: str = "cls",
    progress: Callable[[float, str], None] | None = None,
    embedded_only: bool = False,
    c: float | None = None,
) -> tuple[dict, dict[tuple[str, str], Embeddings], Corpus]:
    """Cross-validated linear heads for every view and pooling on the same rows and folds.

    With `embedded_only`, nothing is embedded: the rows an earlier (perhaps interrupted) `embed` run
    already wrote to `cache` for every view and pooling are used, and the report says how many.

    Returns:
        (report, embeddings by (view, pooling), corpus). The report holds, per view and pooling,
        {"all", "<=512", ">512"} -> metrics, and "paired": Longformer vs truncated on long documents.
    """
    spec = DATASETS[name]
    corpus = load_dataset(name, path, limit, seed)
    cache = Path(cache) if cache else default_cache(corpus)
    rows_in_file = len(corpus)
    if embedded_only:
        embeddings, corpus = embedded_rows(pair, corpus, cache, views, poolings, strategy)
    else:
        embeddings = embed_and_load(pair, corpus, cache, views, poolings, strategy, progress=progress)
    y = corpus.labels
    groups = duplicate_groups(corpus.texts)
    any_emb = next(iter(embeddings.values()))
    buckets = length_buckets(any_emb.n_tokens)
    smallest = min(np.unique(y, return_counts=True)[1])
    folds = min(folds, int(smallest))
    report: dict = {
        "dataset": name,
        "rows": len(corpus),
        "rows_in_file": rows_in_file,
        "skipped_rows": len(corpus.skipped),
        "folds": folds,
        "seed": seed,
        "strategy": strategy,
        "model": model_fingerprint(pair),
        "cache": str(cache),
        "C": c if c is not None else f"inner 3-fold search over {list(C_GRID)}",
        "duplicate_texts": int(len(groups) - len(set(groups.tolist()))),
        "labels": {k: int(v) for k, v in zip(*np.unique(y, return_counts=True))},
        "length": {SHORT: int((buckets == SHORT).sum()), LONG: int((buckets == LONG).sum())},
        "paper": spec.paper,
        "results": {},
        "paired_long": {},
    }
    predictions = {}
    for view in views:
        report["results"][view] = {}
        for pooling in poolings:
            pred = out_of_fold_predictions(embeddings[(view, pooling)].vectors, y, groups, folds, seed, c)
            if progress:
                progress(1.0, f"cross-validated {view}/{pooling}")
            predictions[(view, pooling)] = pred
            report["results"][view][pooling] = _scored(y, pred, buckets, spec.positive)
    if "longformer" in views and "truncated" in views:
        for pooling in poolings:
            report["paired_long"][pooling] = _paired(
                y, predictions[("longformer", pooling)], predictions[("truncated", pooling)], buckets == LONG
            )
    return report, embeddings, corpus


def embedded_rows(
    pair: ModelPair,
    corpus: Corpus,
    cache: str | Path,
    views: Sequence[str],
    poolings: Sequence[str],
    strategy: str,
) -> tuple[dict[tuple[str, str], Embeddings], Corpus]:
    """The embeddings already in `cache` for this corpus and model, restricted to the documents that have
    every view and pooling, and the matching sub-corpus (rows in file order)."""
    from dataclasses import replace

    from longformer_core.corpus.embed import load_embeddings

    fingerprint = model_fingerprint(pair)
    loaded = {
        (v, p): load_embeddings(cache, v, p, corpus.hash, fingerprint, strategy)
        for v in views
        for p in poolings
    }
    common = sorted(set.intersection(*(set(e.doc.tolist()) for e in loaded.values())))
    if not common:
        raise ValueError(
            f"No document is embedded in {cache} with every view and pooling asked for: run `embed` "
            "(or evaluate without --embedded-only) first."
        )
    out = {}
    for key, e in loaded.items():
        pos = {d: j for j, d in enumerate(e.doc.tolist())}
        take = [pos[d] for d in common]
        out[key] = replace(
            e,
            vectors=e.vectors[take],
            doc=e.doc[take],
            doc_ids=[e.doc_ids[j] for j in take],
            n_tokens=e.n_tokens[take],
            labels=[e.labels[j] for j in take],
            titles=[e.titles[j] for j in take],
        )
    return out, _subset(corpus, common)


def best_pooling(report: dict, view: str) -> str:
    """The pooling with the best cross-validated macro-F1 for a view."""
    results = report["results"][view]
    return max(results, key=lambda p: results[p]["all"].get("macro_f1", 0))


def write_heads(
    report: dict,
    embeddings: dict[tuple[str, str], Embeddings],
    corpus: Corpus,
    out_dir: str | Path,
    command: str,
    seed: int = 0,
) -> list[Path]:
    """Fit one head per view (its best pooling by CV macro-F1) on all rows and save it to out_dir."""
    name = report["dataset"]
    spec = DATASETS[name]
    written = []
    for view, by_pooling in report["results"].items():
        pooling = best_pooling(report, view)
        fixed = report["C"] if isinstance(report["C"], float) else None
        coef, bias, classes, c = fit_linear(
            embeddings[(view, pooling)].vectors, corpus.labels, seed=seed, c=fixed
        )
        head = Head(
            task=name,
            title=spec.title,
            view=view,
            pooling=pooling,
            strategy=report["strategy"],
            model=report["model"],
            classes=classes,
            display=dict(spec.display),
            coef=coef,
            intercept=bias,
            meta={
                "rows": report["rows"],
                "C": c,
                "rebuild": command,
                "cv_folds": report["folds"],
                "cv_seed": report["seed"],
                "cv_scores": by_pooling[pooling],
            },
        )
        written.append(head.save(Path(out_dir) / f"{name}-{view}.npz"))
    return written


def score_heads(
    pair: ModelPair,
    name: str,
    path: str | Path,
    head_paths: Sequence[str | Path],
    cache: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Apply saved heads to the rows of a file of the dataset's format and score them (by length).

    Raises:
        ValueError: a head was trained for another model or dataset.
    """
    spec = DATASETS[name]
    heads = [load_head(p) for p in head_paths]
    fingerprint = model_fingerprint(pair)
    for head, p in zip(heads, head_paths):
        if head.model != fingerprint:
            raise ValueError(
                f"The head '{p}' was trained on embeddings of another model ({head.model}; this one is "
                f"{fingerprint}). Rebuild it with: {head.meta.get('rebuild', 'the evaluate command')}"
            )
        if head.task != name:
            raise ValueError(f"The head '{p}' is for '{head.task}', not '{name}'.")
    corpus = load_dataset(name, path, limit, seed)
    cache = Path(cache) if cache else default_cache(corpus)
    strategies = {h.strategy for h in heads}
    report: dict = {"dataset": name, "rows": len(corpus), "heads": {}}
    for strategy in sorted(strategies):
        chosen = [h for h in heads if h.strategy == strategy]
        views = sorted({h.view for h in chosen}, key=VIEWS.index)
        poolings = sorted({h.pooling for h in chosen})
        embeddings = embed_and_load(pair, corpus, cache, views, poolings, strategy, progress=progress)
        for head, p in zip(heads, head_paths):
            if head.strategy != strategy:
                continue
            emb = embeddings[(head.view, head.pooling)]
            pred = head.predict(emb.vectors)
            report["heads"][str(p)] = {
                "view": head.view,
                "pooling": head.pooling,
                **_scored(corpus.labels, pred, length_buckets(emb.n_tokens), spec.positive),
            }
    return report


# Where embeddings are cached on one machine: no part of what a head is, and its path is machine-local.
_MACHINE_LOCAL_OPTIONS = frozenset({"--cache"})


def command_line(
    argv: Sequence[str] | None = None, cwd: str | Path | None = None, repo_root: str | Path = REPO_ROOT
) -> str:
    """The command that is running, as a user would type it in the repository root (recorded in head
    files): paths relative to the repository (the shared data as ../shared/data/...), machine-local
    options (--cache) left out, so that the command works on any checkout.

    Args:
        argv: the arguments after the program name; default sys.argv[1:].
        cwd: the directory relative arguments were given in; default the current one.
        repo_root: the repository root the command is written for.

    Returns:
        "python -m longformer_core ..." with shell quoting.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    base = Path(cwd or Path.cwd())
    root = Path(repo_root).resolve()
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        option, equals, value = arg.partition("=")
        if option in _MACHINE_LOCAL_OPTIONS:
            skip_value = not equals
            continue
        if arg.startswith("-"):
            kept.append(f"{option}={_repo_relative(value, base, root)}" if equals else arg)
        else:
            kept.append(_repo_relative(arg, base, root))
    return "python -m longformer_core " + " ".join(shlex.quote(a) for a in kept)


def _repo_relative(arg: str, base: Path, root: Path) -> str:
    """A path argument relative to `root` when it lies next to or inside the repository; else as given."""
    if not arg or not (Path(arg).is_absolute() or (base / arg).exists()):
        return arg  # not a path (a dataset name, a number)
    path = (base / arg).resolve()
    if not path.is_relative_to(root.parent):
        return arg
    return os.path.relpath(path, root)
