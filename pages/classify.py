"""Classify page: how well the document fits each label, for each model."""

from __future__ import annotations

import streamlit as st

from longformer_core.reading.encoding import VIEWS
from ui.charts import scores_chart
from ui.columns import model_header, render_classification
from ui.documents import require_document
from ui.feedback import attempt
from ui.records import ClassifyRecord
from ui.render import md
from ui.session import page_setup
from ui.state import CLASSIFY_BUTTON, CLASSIFY_BY, CLASSIFY_FORM, CLASSIFY_LAST, LABELS, store, stored
from ui.tasks import (
    classify_document,
    classify_with_head,
    needs_typed_labels,
    own_labels,
    trained_head_titles,
)

DEFAULT_LABELS = """guide: explains how to do something, step by step
news: reports recent events
story: fiction, an invented narrative
legal: laws, contracts, regulations or policies"""

settings = page_setup("classify")
st.title("Classify the document")
document = require_document()

st.markdown(
    f"Which box does **{md(document.name)}** belong in? Type the boxes (labels) yourself, one per line, "
    "optionally followed by a colon and a short description, or use one of the classifiers trained on "
    "labelled news articles. Each model says how well the document fits each label."
)
OWN = "labels"
trained = attempt(trained_head_titles, doing="reading the trained classifiers") or {}
choice = st.radio(
    "Classify by",
    [OWN, *trained],
    format_func=lambda key: (
        "Your labels (typed below)" if key == OWN else f"{trained[key]} (trained classifier)"
    ),
    horizontal=True,
    key=CLASSIFY_BY,
)
if choice != OWN:
    st.caption(
        "A small classifier trained on each model's summary of labelled articles (see docs/results.md for how "
        "well it does). It only knows its own labels."
    )
typed = needs_typed_labels(settings)
if not typed and choice == OWN:
    st.info(f"This model was trained with its own labels: {', '.join(own_labels(settings))}.")

with st.form(CLASSIFY_FORM):
    labels_text = st.text_area(
        "Labels, one per line", DEFAULT_LABELS, height=140, disabled=not typed or choice != OWN, key=LABELS
    )
    submitted = st.form_submit_button("Classify", type="primary", key=CLASSIFY_BUTTON)

provenance = settings.provenance("classify", document.sha256, choice=choice)
if submitted:
    if choice == OWN:
        work = lambda: classify_document(document, settings, labels_text)
    else:
        work = lambda: classify_with_head(document, settings, choice)
    record = attempt(work, doing="classifying")
    if record is not None:
        store(CLASSIFY_LAST, provenance, record)

record: ClassifyRecord | None = stored(CLASSIFY_LAST, provenance)
if record is not None:
    st.plotly_chart(scores_chart(record.results), config={"displayModeBar": False})
    views = [v for v in VIEWS if v in record.results]
    for view, column in zip(views, st.columns(len(views), border=True), strict=True):
        with column:
            model_header(view)
            render_classification(record.results[view], record.reading[view])
