"""Classify page: how well the document fits each label, for each model."""

from __future__ import annotations

import streamlit as st

import app_common as ui
from longformer_core.encoding import VIEWS

DEFAULT_LABELS = """guide: explains how to do something, step by step
news: reports recent events
story: fiction, an invented narrative
legal: laws, contracts, regulations or policies"""

settings = ui.page_setup("classify")
st.title("Classify the document")
document = ui.require_document()

st.markdown(
    f"Which box does **{ui.md(document.name)}** belong in? Type the boxes (labels) yourself, one per line, "
    "optionally followed by a colon and a short description. "
    "Each model says how well the document fits each label."
)
typed = ui.needs_typed_labels(settings)
if not typed:
    st.info(f"This model was trained with its own labels: {', '.join(ui.own_labels(settings))}.")

with st.form("classify"):
    labels_text = st.text_area(
        "Labels, one per line", DEFAULT_LABELS, height=140, disabled=not typed, key="labels"
    )
    submitted = st.form_submit_button("Classify", type="primary", key="classify_button")

if submitted:
    record = ui.attempt(lambda: ui.classify_document(document, settings, labels_text), doing="classifying")
    if record is not None:
        st.session_state["classify_last"] = (document.sha256, record)

last = st.session_state.get("classify_last")
if last is not None and last[0] == document.sha256:
    record = last[1]
    st.plotly_chart(ui.scores_chart(record.results), config={"displayModeBar": False})
    for view, column in zip(VIEWS, st.columns(len(VIEWS), border=True), strict=True):
        with column:
            ui.model_header(view)
            ui.render_classification(record.results[view], record.reading[view])
