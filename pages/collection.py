"""Collection page: many documents at once: clusters, a map, neighbours and recommendations, per model."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_common as ui
from longformer_core.collection import (
    assign,
    cold_start,
    neighbours,
    overlap_at_k,
    recommend,
    representatives,
    similar_to,
)
from longformer_core.corpus import csv_columns, read_files
from longformer_core.similarity import POOLINGS

NONE = "(none)"
N_SHOWN = 5  # neighbours and recommendations listed

settings = ui.page_setup("similarity")
st.title("Explore a collection")
st.markdown(
    "Upload many documents at once (a CSV file with one article per row, or several PDF or text files). "
    "Each model turns every document into a list of numbers; documents with similar meaning end up close "
    "together. You get groups of similar documents (clusters), a map, the nearest neighbours of any "
    "document, and recommendations, for the Longformer and for the model that reads only the first 512 tokens."
)

source = st.radio(
    "What to explore", ["csv", "files"], horizontal=True, key="collection_source",
    format_func=lambda s: "A CSV file (one document per row)" if s == "csv" else "Several documents (PDF or text)",
)
load = None
if source == "csv":
    upload = st.file_uploader("CSV file", type=["csv"], key="collection_csv")
    if upload is not None:
        data = upload.getvalue()
        columns = ui.attempt(lambda: csv_columns(data), doing="reading the CSV header")
        if columns:
            text_column = st.selectbox("Column with the text", columns, index=ui.default_text_column(columns),
                                       key="collection_text_column")
            lowered = [c.lower() for c in columns]
            title_guess = lowered.index("title") + 1 if "title" in lowered else 0
            title_column = st.selectbox("Column with a title (optional)", [NONE, *columns], index=title_guess,
                                        key="collection_title_column")
            label_column = st.selectbox("Column with a known label (optional, e.g. a category)", [NONE, *columns],
                                        key="collection_label_column")
            load = lambda: ui.read_collection_csv(
                data, upload.name, text_column,
                None if title_column == NONE else title_column, None if label_column == NONE else label_column,
            )
else:
    uploads = st.file_uploader("Documents", type=["pdf", "txt", "md"], accept_multiple_files=True,
                               key="collection_files")
    if uploads:
        load = lambda: read_files([(u.name, u.getvalue()) for u in uploads])

if load is not None and st.button("Read and group the documents", type="primary", key="collection_embed"):
    corpus = ui.attempt(load, doing="reading the collection")
    if corpus is not None:
        state = ui.attempt(lambda: ui.embed_collection(corpus, settings), doing="reading the documents")
        if state is not None:
            st.session_state["collection"] = state

state: ui.CollectionState | None = st.session_state.get("collection")
if state is None:
    st.info("Upload a CSV file or some documents, then press the button.")
    st.stop()

corpus = state.corpus
for note in corpus.notes:
    st.warning(note)
if corpus.skipped:
    st.warning(corpus.skipped_summary())
n = len(corpus)
st.success(f"{n} documents from {ui.md(corpus.source)}, read by both models.")
if n < 4:
    st.info("Groups and neighbours need at least 4 documents: upload more.")
    st.stop()

left, right = st.columns(2)
view = left.radio("Model", ui.COLLECTION_VIEWS, format_func=ui.VIEW_TITLES.get, horizontal=True, key="collection_view")
pooling = right.radio("Summary of the words", list(POOLINGS), index=list(POOLINGS).index("mean"), horizontal=True,
                      key="collection_pooling", help="; ".join(f"{k}: {v}" for k, v in POOLINGS.items()))
other = "truncated" if view == "longformer" else "longformer"
k = st.slider("Number of groups (clusters)", 2, min(12, n - 1), min(5, n - 1), key="collection_k")
key = f"{corpus.hash}|{state.model_key}|{state.strategy}"
vectors = state.embeddings[(view, pooling)].vectors
other_vectors = state.embeddings[(other, pooling)].vectors
groups = state.groups
titles = state.titles

clusters = ui.attempt(lambda: ui.collection_clusters(key, view, pooling, k, state), doing="grouping the documents")
if clusters is None:
    st.stop()
st.metric("How well separated the groups are (silhouette)", f"{clusters.silhouette:.2f}",
          help="From -1 to 1: near 0 the groups overlap, higher means documents sit clearly in one group.")
coords = ui.collection_map(key, view, pooling, state)
st.plotly_chart(ui.collection_figure(coords, clusters.labels, titles, corpus.texts), key="collection_map_chart")

st.subheader("The groups")
terms = ui.collection_terms(key, view, pooling, k, state)
reps = representatives(vectors, clusters, 3)
for c in range(clusters.k):
    words = ", ".join(terms[c]) or "(no distinctive words)"
    with st.expander(f"Group {c + 1}: {clusters.sizes[c]} documents. Typical words: {words}", expanded=c == 0):
        st.markdown("Most typical documents:")
        for i in reps[c]:
            st.markdown(f"- {ui.md(ui.flat(titles[i], 120))}")

st.subheader("Nearest neighbours")
doc = st.selectbox("Document", range(n), format_func=lambda i: ui.flat(titles[i], 100), key="collection_doc")
a, b = st.columns(2, border=True)
with a:
    ui.model_header(view)
    st.dataframe(ui.neighbour_rows(state, neighbours(vectors, doc, N_SHOWN, groups)), hide_index=True)
with b:
    ui.model_header(other)
    st.dataframe(ui.neighbour_rows(state, neighbours(other_vectors, doc, N_SHOWN, groups)), hide_index=True)
overlap = overlap_at_k(vectors, other_vectors, min(N_SHOWN, n - 2), groups)
st.caption(f"The two models share {overlap[doc]:.0%} of this document's {min(N_SHOWN, n - 2)} nearest neighbours "
           f"(on average over the collection: {overlap.mean():.0%}).")
with st.expander("Where the two models disagree most"):
    worst = np.argsort(overlap, kind="stable")[:10]
    st.dataframe([{"document": ui.flat(titles[i], 90), "shared neighbours": f"{overlap[i]:.0%}",
                   "length (tokens)": int(state.embeddings[(view, pooling)].n_tokens[i])} for i in worst],
                 hide_index=True)

st.subheader("Recommendations")
new_tab, liked_tab, cold_tab = st.tabs(["A new article", "A reader's favourites", "A new reader"])
with new_tab:
    with st.form("collection_new"):
        pasted = st.text_area("Paste an article", key="collection_pasted", height=140)
        go = st.form_submit_button("Find its group and similar articles", key="collection_new_button")
    if go:
        query = ui.attempt(lambda: ui.embed_one_text(pasted, state, settings, view, pooling), doing="reading the article")
        if query is not None:
            group = assign(query, clusters)
            st.markdown(f"It belongs with **group {group + 1}** ({', '.join(terms[group][:5])}). Most similar:")
            st.dataframe(ui.neighbour_rows(state, similar_to(vectors, query, N_SHOWN)), hide_index=True)
with liked_tab:
    liked = st.multiselect("Articles the reader liked", range(n), format_func=lambda i: ui.flat(titles[i], 100),
                           key="collection_liked")
    if liked:
        st.dataframe(ui.neighbour_rows(state, recommend(vectors, liked, N_SHOWN, groups)), hide_index=True)
    else:
        st.caption("Pick one or more articles.")
with cold_tab:
    st.markdown("Without any history: one typical article from each group, biggest group first.")
    st.dataframe(ui.neighbour_rows(state, [(i, None) for i in cold_start(vectors, clusters)]), hide_index=True)
