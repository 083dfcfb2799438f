"""Compare page: how similar two documents are for each model, and which passages resemble each other."""

from __future__ import annotations

import streamlit as st

from longformer_core.reading.encoding import VIEWS
from longformer_core.similarity import POOLINGS
from ui.charts import heatmap
from ui.columns import best_pairs_table, model_header, render_similarity
from ui.documents import document_picker, require_document
from ui.feedback import attempt
from ui.records import CompareRecord
from ui.render import VIEW_TITLES, md
from ui.session import page_setup
from ui.state import (
    COMPARE_BUTTON,
    COMPARE_LAST,
    HEATMAP_VIEW,
    POOLING,
    SECOND_DOCUMENT,
    current_document,
    store,
    stored,
)
from ui.tasks import compare_documents, passages_of

settings = page_setup("similarity")
st.title("Compare two documents")
document = require_document("Choose a first document on the Document page.")

st.markdown(
    f"How close in meaning is **{md(document.name)}** to another document? Each model turns each "
    "document into a list of numbers (an *embedding*) and compares them: 1 means the same direction, "
    "around 0 unrelated."
)
with st.expander("Second document", expanded=current_document(SECOND_DOCUMENT) is None):
    second = document_picker(SECOND_DOCUMENT)
if second is None:
    st.info("Choose the second document above.")
    st.stop()
st.markdown(f"Second document: **{md(second.name)}**")

pooling = st.radio(
    "How to turn the words' descriptions into one list of numbers",
    list(POOLINGS),
    format_func=lambda key: f"{key}: {POOLINGS[key]}",
    index=list(POOLINGS).index("mean"),
    key=POOLING,
)
provenance = settings.provenance("similarity", document.sha256, second.sha256)
if st.button("Compare", type="primary", key=COMPARE_BUTTON):
    record = attempt(lambda: compare_documents(document, second, settings, pooling), doing="comparing")
    if record is not None:
        store(COMPARE_LAST, provenance, record)

record: CompareRecord | None = stored(COMPARE_LAST, provenance)
if record is None:
    st.stop()

name_a, name_b = record.reader_a.document.name, record.reader_b.document.name
st.caption(f"{md(name_a)} vs {md(name_b)}, pooling: {record.pooling}")
for view, column in zip(VIEWS, st.columns(len(VIEWS), border=True), strict=True):
    with column:
        model_header(view)
        render_similarity(record.results[view])

st.subheader("Which passages resemble each other")
st.caption(
    "Each square compares a passage of the first document (rows) with a passage of the second (columns); "
    "brighter means more similar. Hover to see the pages and the text. "
    "Blank squares: the model never read that passage."
)
view = st.radio(
    "Model",
    VIEWS,
    format_func=VIEW_TITLES.get,
    index=VIEWS.index("longformer"),
    horizontal=True,
    key=HEATMAP_VIEW,
)
matrix = attempt(lambda: passages_of(record, view), doing="comparing passages")
if matrix is not None:
    st.plotly_chart(heatmap(matrix, name_a, name_b))
    st.markdown("**The most similar passages**")
    st.dataframe(best_pairs_table(matrix), hide_index=True)
