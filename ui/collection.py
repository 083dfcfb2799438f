"""The Collection page: many documents embedded once, then clustered, mapped, searched and recommended.

The maths is in `longformer_core.corpus.collection`; this module holds the page's state and its sections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from longformer_core.choices import View
from longformer_core.corpus.collection import (
    Clusters,
    assign,
    cluster,
    cold_start,
    map_2d,
    neighbours,
    overlap_at_k,
    recommend,
    representatives,
    similar_to,
    top_terms,
)
from longformer_core.corpus.embed import (
    Corpus,
    Embeddings,
    csv_columns,
    default_cache,
    embed_and_load,
    read_csv_bytes,
    read_files,
)
from longformer_core.documents import text_document
from longformer_core.evaluation.corpus import duplicate_groups
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.similarity import POOLINGS, document_embedding
from ui.charts import collection_figure
from ui.columns import model_header
from ui.feedback import attempt, working
from ui.render import VIEW_TITLES, flat, md
from ui.state import (
    COLLECTION,
    COLLECTION_CSV,
    COLLECTION_DOC,
    COLLECTION_EMBED,
    COLLECTION_FILES,
    COLLECTION_K,
    COLLECTION_LABEL_COLUMN,
    COLLECTION_LIKED,
    COLLECTION_MAP_CHART,
    COLLECTION_NEW_BUTTON,
    COLLECTION_NEW_FORM,
    COLLECTION_PASTED,
    COLLECTION_POOLING,
    COLLECTION_SOURCE,
    COLLECTION_TEXT_COLUMN,
    COLLECTION_TITLE_COLUMN,
    COLLECTION_VIEW,
    Provenance,
    Settings,
    kept,
    store,
    stored,
)

NONE = "(none)"
N_SHOWN = 5  # neighbours and recommendations listed


COLLECTION_VIEWS: tuple[View, ...] = (
    "longformer",
    "truncated",
)  # the chunked view would add a pass per chunk for little


@dataclass
class CollectionState:
    """An embedded collection: the documents and their vectors for every view and pooling."""

    corpus: Corpus
    embeddings: dict[tuple[str, str], Embeddings]
    model_key: str
    strategy: str

    @property
    def titles(self) -> list[str]:
        given = self.corpus.titles or [""] * len(self.corpus)
        return [
            title or flat(text.strip().split("\n", 1)[0], 80) for title, text in zip(given, self.corpus.texts)
        ]

    @property
    def groups(self) -> np.ndarray:
        return duplicate_groups(self.corpus.texts)


def default_text_column(columns: Sequence[str]) -> int:
    """Index of the column most likely to hold the text (Content, text, body, ...)."""
    lowered = [c.lower() for c in columns]
    for name in ("content", "text", "body", "article", "document"):
        if name in lowered:
            return lowered.index(name)
    return 0


def read_collection_csv(
    data: bytes, name: str, text_column: str, title_column: str | None, label_column: str | None
) -> Corpus:
    return read_csv_bytes(data, text_column, title_column=title_column, label_column=label_column, name=name)


def embed_collection(corpus: Corpus, settings: Settings) -> CollectionState:
    """Embed every document with the Longformer and the truncated view (all poolings, one pass each),
    reusing whatever an earlier run left in the on-disk cache."""
    strategy = settings.strategy_for("similarity")
    with working(f"Reading {len(corpus)} documents...") as progress:
        embeddings = embed_and_load(
            settings.pair,
            corpus,
            default_cache(corpus),  # shared with `evaluate`
            COLLECTION_VIEWS,
            list(POOLINGS),
            strategy,
            progress=progress,
        )
    state = CollectionState(corpus, embeddings, settings.model_key, strategy)
    store(COLLECTION, provenance_of(corpus, settings), state)
    return state


@st.cache_data(max_entries=32, show_spinner="Grouping the documents...")
def collection_clusters(key: str, view: View, pooling: str, k: int, _state: CollectionState) -> Clusters:
    return cluster(_state.embeddings[(view, pooling)].vectors, k)


@st.cache_data(max_entries=32, show_spinner=False)
def collection_map(key: str, view: View, pooling: str, _state: CollectionState) -> np.ndarray:
    return map_2d(_state.embeddings[(view, pooling)].vectors)


@st.cache_data(max_entries=32, show_spinner=False)
def collection_terms(key: str, view: View, pooling: str, k: int, _state: CollectionState) -> list[list[str]]:
    clusters = collection_clusters(key, view, pooling, k, _state)
    return top_terms(_state.corpus.texts, clusters.labels)


def neighbour_rows(state: CollectionState, hits: Sequence[tuple[int, float | None]]) -> list[dict]:
    """Table rows for (document index, similarity or None) pairs."""
    labels = state.corpus.labels
    return [
        {
            "document": flat(state.titles[i], 90),
            **({"similarity": round(s, 3)} if s is not None else {}),
            **({"label": labels[i]} if labels else {}),
            "start": flat(state.corpus.texts[i], 140),
        }
        for i, s in hits
    ]


def embed_one_text(
    text: str, state: CollectionState, settings: Settings, view: View, pooling: str
) -> np.ndarray:
    """A pasted article's embedding, read the way the collection was (same view, pooling and strategy)."""
    if settings.model_key != state.model_key:  # the vectors would not be comparable
        raise ValueError("The model changed since the collection was read: read the collection again first.")
    document = text_document(text, "pasted article")
    reader = DocumentReader(settings.pair, document, strategy=state.strategy)
    return document_embedding(reader, view, pooling)


def provenance_of(corpus: Corpus, settings: Settings) -> Provenance:
    """What a collection read now with these settings would be computed from."""
    return settings.provenance("similarity", corpus.hash)


def current_collection(settings: Settings) -> CollectionState | None:
    """The session's collection if it was read with the model and strategy in use; a stale one is dropped.

    A collection read by another model must not be compared with vectors of the model in use (a pasted
    article would be embedded by the new model and compared with the old model's vectors).
    """
    last = kept(COLLECTION)
    if last is None:
        return None
    state = stored(COLLECTION, provenance_of(last.value.corpus, settings))
    if state is None:
        st.info(
            "The model or the global-attention strategy changed since the collection was read: "
            "press the button to read it again."
        )
    return state


def choose_source() -> Callable[[], Corpus] | None:
    """The upload section: a CSV with its columns, or several files. Returns how to read them, or None."""
    labels = {
        "csv": "A CSV file (one document per row)",
        "files": "Several documents (PDF or text)",
        "sample": "The sample collection (20 short books of the King James Bible, public domain)",
    }
    source = st.radio(
        "What to explore",
        list(labels),
        horizontal=True,
        key=COLLECTION_SOURCE,
        format_func=labels.__getitem__,
    )
    if source == "sample":
        from longformer_core.documents.samples import sample_collection_path

        path = sample_collection_path()
        st.caption(
            "No data needed: four kinds of books (history, prophets, poetry, letters) to group and map. "
            "Source and licence: assets/samples/README.md."
        )
        return lambda: read_collection_csv(path.read_bytes(), path.name, "text", "title", "section")
    if source != "csv":
        uploads = st.file_uploader(
            "Documents", type=["pdf", "txt", "md"], accept_multiple_files=True, key=COLLECTION_FILES
        )
        return (lambda: read_files([(u.name, u.getvalue()) for u in uploads])) if uploads else None
    upload = st.file_uploader("CSV file", type=["csv"], key=COLLECTION_CSV)
    if upload is None:
        return None
    data = upload.getvalue()
    columns = attempt(lambda: csv_columns(data), doing="reading the CSV header")
    if not columns:
        return None
    text_column = st.selectbox(
        "Column with the text", columns, index=default_text_column(columns), key=COLLECTION_TEXT_COLUMN
    )
    lowered = [c.lower() for c in columns]
    title_guess = lowered.index("title") + 1 if "title" in lowered else 0
    title_column = st.selectbox(
        "Column with a title (optional)", [NONE, *columns], index=title_guess, key=COLLECTION_TITLE_COLUMN
    )
    label_column = st.selectbox(
        "Column with a known label (optional, e.g. a category)",
        [NONE, *columns],
        key=COLLECTION_LABEL_COLUMN,
    )
    return lambda: read_collection_csv(
        data,
        upload.name,
        text_column,
        None if title_column == NONE else title_column,
        None if label_column == NONE else label_column,
    )


def read_section(settings: Settings) -> None:
    """Choose the documents and read them (the result is kept in the session with its provenance)."""
    load = choose_source()
    if load is not None and st.button("Read and group the documents", type="primary", key=COLLECTION_EMBED):
        corpus = attempt(load, doing="reading the collection")
        if corpus is not None:
            attempt(lambda: embed_collection(corpus, settings), doing="reading the documents")


@dataclass
class Shown:
    """What the page shows now: one model's vectors, the other model's, and the clusters of the first."""

    state: CollectionState
    view: View
    other: View
    pooling: str
    vectors: np.ndarray
    other_vectors: np.ndarray
    clusters: Clusters
    terms: list[list[str]]


def groups_section(state: CollectionState) -> Shown | None:
    """Model, pooling and k; the silhouette, the map and each group's words and typical documents."""
    n = len(state.corpus)
    left, right = st.columns(2)
    view = left.radio(
        "Model", COLLECTION_VIEWS, format_func=VIEW_TITLES.get, horizontal=True, key=COLLECTION_VIEW
    )
    pooling = right.radio(
        "Summary of the words",
        list(POOLINGS),
        index=list(POOLINGS).index("mean"),
        horizontal=True,
        key=COLLECTION_POOLING,
        help="; ".join(f"{k}: {v}" for k, v in POOLINGS.items()),
    )
    other = "truncated" if view == "longformer" else "longformer"
    k = st.slider("Number of groups (clusters)", 2, min(12, n - 1), min(5, n - 1), key=COLLECTION_K)
    key = f"{state.corpus.hash}|{state.model_key}|{state.strategy}"
    clusters = attempt(
        lambda: collection_clusters(key, view, pooling, k, state), doing="grouping the documents"
    )
    if clusters is None:
        return None
    st.metric(
        "How well separated the groups are (silhouette)",
        f"{clusters.silhouette:.2f}",
        help="From -1 to 1: near 0 the groups overlap, higher means documents sit clearly in one group.",
    )
    coords = collection_map(key, view, pooling, state)
    st.plotly_chart(
        collection_figure(coords, clusters.labels, state.titles, state.corpus.texts),
        key=COLLECTION_MAP_CHART,
    )
    st.subheader("The groups")
    terms = collection_terms(key, view, pooling, k, state)
    vectors = state.embeddings[(view, pooling)].vectors
    reps = representatives(vectors, clusters, 3)
    for c in range(clusters.k):
        words = ", ".join(terms[c]) or "(no distinctive words)"
        with st.expander(
            f"Group {c + 1}: {clusters.sizes[c]} documents. Typical words: {words}", expanded=c == 0
        ):
            st.markdown("Most typical documents:")
            for i in reps[c]:
                st.markdown(f"- {md(flat(state.titles[i], 120))}")
    other_vectors = state.embeddings[(other, pooling)].vectors
    return Shown(state, view, other, pooling, vectors, other_vectors, clusters, terms)


def neighbours_section(shown: Shown) -> None:
    """A document's nearest neighbours for both models, their overlap, and where they disagree most."""
    state, titles, n = shown.state, shown.state.titles, len(shown.state.corpus)
    groups = state.groups
    doc = st.selectbox("Document", range(n), format_func=lambda i: flat(titles[i], 100), key=COLLECTION_DOC)
    a, b = st.columns(2, border=True)
    for column, view, vectors in ((a, shown.view, shown.vectors), (b, shown.other, shown.other_vectors)):
        with column:
            model_header(view)
            st.dataframe(neighbour_rows(state, neighbours(vectors, doc, N_SHOWN, groups)), hide_index=True)
    overlap = overlap_at_k(shown.vectors, shown.other_vectors, min(N_SHOWN, n - 2), groups)
    st.caption(
        f"The two models share {overlap[doc]:.0%} of this document's {min(N_SHOWN, n - 2)} nearest "
        f"neighbours (on average over the collection: {overlap.mean():.0%})."
    )
    with st.expander("Where the two models disagree most"):
        worst = np.argsort(overlap, kind="stable")[:10]
        n_tokens = state.embeddings[(shown.view, shown.pooling)].n_tokens
        st.dataframe(
            [
                {
                    "document": flat(titles[i], 90),
                    "shared neighbours": f"{overlap[i]:.0%}",
                    "length (tokens)": int(n_tokens[i]),
                }
                for i in worst
            ],
            hide_index=True,
        )


def recommendations_section(shown: Shown, settings: Settings) -> None:
    """A pasted new article, a reader's liked articles, and a new reader without history."""
    state, titles, vectors, n = shown.state, shown.state.titles, shown.vectors, len(shown.state.corpus)
    new_tab, liked_tab, cold_tab = st.tabs(["A new article", "A reader's favourites", "A new reader"])
    with new_tab:
        with st.form(COLLECTION_NEW_FORM):
            pasted = st.text_area("Paste an article", key=COLLECTION_PASTED, height=140)
            go = st.form_submit_button("Find its group and similar articles", key=COLLECTION_NEW_BUTTON)
        if go:
            query = attempt(
                lambda: embed_one_text(pasted, state, settings, shown.view, shown.pooling),
                doing="reading the article",
            )
            if query is not None:
                group = assign(query, shown.clusters)
                st.markdown(
                    f"It belongs with **group {group + 1}** ({', '.join(shown.terms[group][:5])}). "
                    "Most similar:"
                )
                st.dataframe(neighbour_rows(state, similar_to(vectors, query, N_SHOWN)), hide_index=True)
    with liked_tab:
        liked = st.multiselect(
            "Articles the reader liked",
            range(n),
            format_func=lambda i: flat(titles[i], 100),
            key=COLLECTION_LIKED,
        )
        if liked:
            st.dataframe(
                neighbour_rows(state, recommend(vectors, liked, N_SHOWN, state.groups)), hide_index=True
            )
        else:
            st.caption("Pick one or more articles.")
    with cold_tab:
        st.markdown("Without any history: one typical article from each group, biggest group first.")
        st.dataframe(
            neighbour_rows(state, [(i, None) for i in cold_start(vectors, shown.clusters)]), hide_index=True
        )


def show_collection(state: CollectionState, settings: Settings) -> None:
    """Everything below the upload: notes, groups, neighbours and recommendations."""
    corpus = state.corpus
    for note in corpus.notes:
        st.warning(note)
    if corpus.skipped:
        st.warning(corpus.skipped_summary())
    n = len(corpus)
    st.success(f"{n} documents from {md(corpus.source)}, read by both models.")
    if n < 4:
        st.info("Groups and neighbours need at least 4 documents: upload more.")
        return
    shown = groups_section(state)
    if shown is None:
        return
    st.subheader("Nearest neighbours")
    neighbours_section(shown)
    st.subheader("Recommendations")
    recommendations_section(shown, settings)
