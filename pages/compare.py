"""Compare page: how similar two documents are for each model, and which passages resemble each other."""

from __future__ import annotations

import streamlit as st

import app_common as ui
from longformer_core.encoding import VIEWS
from longformer_core.similarity import POOLINGS

settings = ui.page_setup("similarity")
st.title("Compare two documents")
document = ui.require_document("Choose a first document on the Document page.")

st.markdown(
    f"How close in meaning is **{ui.md(document.name)}** to another document? Each model turns each "
    "document into a list of numbers (an *embedding*) and compares them: 1 means the same direction, "
    "around 0 unrelated."
)
with st.expander("Second document", expanded=ui.current_document(ui.SECOND) is None):
    second = ui.document_picker(ui.SECOND)
if second is None:
    st.info("Choose the second document above.")
    st.stop()
st.markdown(f"Second document: **{ui.md(second.name)}**")

pooling = st.radio(
    "How to turn the words' descriptions into one list of numbers",
    list(POOLINGS),
    format_func=lambda key: f"{key}: {POOLINGS[key]}",
    index=list(POOLINGS).index("mean"),
    key="pooling",
)
if st.button("Compare", type="primary", key="compare_button"):
    record = ui.attempt(lambda: ui.compare_documents(document, second, settings, pooling), doing="comparing")
    if record is not None:
        st.session_state["compare_last"] = record

record: ui.CompareRecord | None = st.session_state.get("compare_last")
if record is None:
    st.stop()

name_a, name_b = record.reader_a.document.name, record.reader_b.document.name
st.caption(f"{ui.md(name_a)} vs {ui.md(name_b)}, pooling: {record.pooling}")
for view, column in zip(VIEWS, st.columns(len(VIEWS), border=True), strict=True):
    with column:
        ui.model_header(view)
        ui.render_similarity(record.results[view])

st.subheader("Which passages resemble each other")
st.caption(
    "Each square compares a passage of the first document (rows) with a passage of the second (columns); "
    "brighter means more similar. Hover to see the pages and the text. "
    "Blank squares: the model never read that passage."
)
view = st.radio(
    "Model",
    VIEWS,
    format_func=ui.VIEW_TITLES.get,
    index=VIEWS.index("longformer"),
    horizontal=True,
    key="heatmap_view",
)
matrix = ui.attempt(lambda: ui.passages_of(record, view), doing="comparing passages")
if matrix is not None:
    st.plotly_chart(ui.heatmap(matrix, name_a, name_b))
    st.markdown("**The most similar passages**")
    st.dataframe(ui.best_pairs_table(matrix), hide_index=True)
