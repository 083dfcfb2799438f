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
    "optionally followed by a colon and a short description, or use one of the classifiers trained on "
    "labelled news articles. Each model says how well the document fits each label."
)
OWN = "labels"
trained = ui.attempt(ui.trained_head_titles, doing="reading the trained classifiers") or {}
choice = st.radio(
    "Classify by",
    [OWN, *trained],
    format_func=lambda key: "Your labels (typed below)" if key == OWN else f"{trained[key]} (trained classifier)",
    horizontal=True,
    key="classify_by",
)
if choice != OWN:
    st.caption(
        "A small classifier trained on each model's summary of labelled articles (see docs/results.md for how "
        "well it does). It only knows its own labels."
    )
typed = ui.needs_typed_labels(settings)
if not typed and choice == OWN:
    st.info(f"This model was trained with its own labels: {', '.join(ui.own_labels(settings))}.")

with st.form("classify"):
    labels_text = st.text_area(
        "Labels, one per line", DEFAULT_LABELS, height=140, disabled=not typed or choice != OWN, key="labels"
    )
    submitted = st.form_submit_button("Classify", type="primary", key="classify_button")

if submitted:
    if choice == OWN:
        work = lambda: ui.classify_document(document, settings, labels_text)
    else:
        work = lambda: ui.classify_with_head(document, settings, choice)
    record = ui.attempt(work, doing="classifying")
    if record is not None:
        st.session_state["classify_last"] = (document.sha256, record)
        st.session_state["classify_last_by"] = choice

last = st.session_state.get("classify_last")
if last is not None and last[0] == document.sha256 and st.session_state.get("classify_last_by", OWN) == choice:
    record = last[1]
    st.plotly_chart(ui.scores_chart(record.results), config={"displayModeBar": False})
    views = [v for v in VIEWS if v in record.results]
    for view, column in zip(views, st.columns(len(views), border=True), strict=True):
        with column:
            ui.model_header(view)
            ui.render_classification(record.results[view], record.reading[view])
