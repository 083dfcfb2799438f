"""One view's column on the Ask, Classify and Compare pages (answer, scores, similarity, what it read)."""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from longformer_core.choices import View
from longformer_core.classify import ClassifyResult
from longformer_core.documents import Document
from longformer_core.qa.answering import Answer
from longformer_core.reading.results import Located
from longformer_core.similarity import PassageMatrix, SimilarityResult
from ui.records import ViewAnswer
from ui.render import (
    VIEW_HELP,
    VIEW_TITLES,
    flat,
    highlight,
    list_html,
    md,
    page_text,
    rows_html,
    seen_bar,
    seen_caption,
    table_html,
)


def model_header(view: View) -> None:
    """The column title of a view with its one-line explanation."""
    st.subheader(VIEW_TITLES[view])
    st.caption(VIEW_HELP[view])


def render_answer(view: View, answer: ViewAnswer, document: Document) -> None:
    """One view's column on the Ask page: answer, confidence, page, highlight, what it read, time."""
    result = answer.result
    best = result.best
    if answer.preliminary:  # a caption, not an alert: nothing is wrong, the answer is just early
        st.caption(PRELIMINARY_CAPTION)
    if best is None and answer.preliminary:
        st.caption("No word of the question was found yet; waiting for this model's reading.")
    elif best is None:
        st.warning("No answer: this model found nothing to point to in the part it read.")
    else:
        if best.items:  # a list answer, shown as a list
            st.html(f'<div style="font-weight:600">{list_html(document, best.items)}</div>')
        else:
            st.html(f'<p style="font-weight:600;margin:0">{html.escape(flat(best.text))}</p>')
        if best.cell is not None and best.cell[0] < len(
            document.tables
        ):  # a cell: its table, the cell marked
            st.html(table_html(document, best.cell))
        left, right = st.columns(2)
        left.metric(
            "Confidence",
            f"{best.score:.0%}",
            help="How strongly the model preferred this passage over the others it read. "
            "It is not a promise that the answer is right, and says nothing about parts it did not read.",
        )
        right.metric(
            "Page", best.page_label, help=f"Found on {page_text(best.page, best.page_label)} of the file."
        )
        st.html(highlight(document, best.char_span, best.context))
        st.caption(source_line(best, document))
    where = page_text(best.page, best.page_label) if best else ""
    st.html(seen_bar(view, result.n_tokens, result.seen_tokens, answer.answer_token, where))
    st.caption(seen_caption(result.seen_tokens, result.n_tokens))
    for note in result.notes:
        st.caption(note)
    st.caption(_timing(result.seconds, answer.reading_seconds))
    if len(result.answers) > 1:
        with st.expander("Other candidates"):
            st.html(
                rows_html(
                    [
                        {"answer": flat(a.text, 200), "confidence": f"{a.score:.0%}", "page": a.page_label}
                        for a in result.answers[1:]
                    ]
                )
            )


PRELIMINARY_CAPTION = (
    "⏳ Preliminary answer: this model is still reading the document. "
    "The full answer replaces this one when it has read everything."
)


def source_line(answer: Answer, document: Document) -> str:
    """Where an answer came from, in words: its passage, page, and the signal that found the passage."""
    a, b = answer.passage
    if b <= a:
        return f"Found on {page_text(answer.page, answer.page_label)}."
    page = document.page_of(a)
    found = f", found by {answer.found_by}" if answer.found_by else ""
    return f"From this passage on {page_text(page, document.page_label_of(a))}{found}: “{md(flat(document.text[a:b], 300))}”"


def _timing(task_seconds: float, reading: float | None) -> str:
    if reading is None:
        return f"Took {task_seconds:.2f} s (this model reads the document again for every question)."
    return (
        f"Took {task_seconds:.2f} s. Reading the document took {reading:.1f} s, once; "
        "later questions reuse it."
    )


def render_classification(result: ClassifyResult, reader_seconds: float | None) -> None:
    """One view's column on the Classify page."""
    st.metric(
        "Best label",
        result.prediction,
        f"{result.score:.0%} probability",
        delta_color="off",
        delta_arrow="off",
        help="The label this model found most fitting, and how sure it is compared with the other labels.",
    )
    if result.method == "head":
        st.caption("Uses the labels this model was trained with.")
    for note in result.notes:
        st.caption(note)
    if result.evidence is not None:
        ev = result.evidence
        st.caption(f"Decided by the piece starting on {page_text(ev.page, ev.page_label)}.")
    st.caption(seen_caption(result.seen_tokens, result.n_tokens))
    st.caption(_timing(result.seconds, reader_seconds))


def render_similarity(result: SimilarityResult) -> None:
    """One view's column on the Compare page."""
    st.metric(
        "Similarity",
        f"{result.cosine:.2f}",
        help="1 means the two documents point the same way in meaning; around 0 means unrelated.",
    )
    other = result.other
    st.caption(f"First document: {seen_caption(result.seen_tokens, result.n_tokens)}")
    st.caption(f"Second document: {seen_caption(other['seen_tokens'], other['n_tokens'])}")


def best_pairs_table(matrix: PassageMatrix, k: int = 5) -> list[dict]:
    """The k most similar passage pairs the model read, as table rows (page and text of each side)."""
    return [
        {
            "similarity": round(score, 3),
            "first document": _passage_cell(matrix.passages_a[i]),
            "second document": _passage_cell(matrix.passages_b[j]),
        }
        for i, j, score in matrix.best_pairs(k)
        if not np.isnan(matrix.matrix[i, j])
    ]


def _passage_cell(passage: Located) -> str:
    return f"page {passage.page_label}: {flat(passage.text, 160)}"
