"""Ask page: one question, three models side by side, with the answer's page and what each model read."""

from __future__ import annotations

import streamlit as st

from longformer_core.documents import Document
from longformer_core.reading.encoding import VIEWS
from longformer_core.reading.priority import foreground
from ui.columns import model_header, render_answer
from ui.documents import require_document
from ui.explain import (
    apply_sample_link,
    evidence_section,
    report_button,
    strategy_section,
    suggested_questions,
)
from ui.feedback import attempt
from ui.records import AskRecord, ViewAnswer
from ui.render import md
from ui.session import page_setup
from ui.state import (
    ASK_BUTTON,
    ASK_FORM,
    CSV_DOWNLOAD,
    JSON_DOWNLOAD,
    QUESTION,
    Settings,
    ask_history,
    take_pending_question,
)
from ui.tasks import (
    answer_question,
    history_csv,
    history_json,
    history_rows,
    show_reading_progress,
    start_background_reading,
)


def answered_caption(number: int, record: AskRecord) -> str:
    """Which question the columns answer: numbered, so a repeated question is told apart from the last one."""
    return f"Question {number} of this session, about {md(record.source.name)}: {md(record.question)}"


@st.fragment
def questions_and_answers(document: Document, settings: Settings) -> None:
    """The form, the three columns and everything below them.

    A fragment: asking a question reruns and redraws only this part of the page, not the sidebar and the
    title. On two cores shared by the server and the browsers, the page's redraw took as long as the
    question itself (docs/results.md, "Books"). Choosing another document or model in the sidebar reruns
    the whole page, so `document` and `settings` are always the page's.
    """
    with foreground():  # as app.py does for a whole page: a rerun of this part is waited for too
        history = ask_history()
        with st.form(ASK_FORM):
            question = st.text_input(
                "Your question", key=QUESTION, placeholder="e.g. How long should incident records be kept?"
            )
            submitted = st.form_submit_button("Ask", type="primary", key=ASK_BUTTON)
        suggested_questions(document)
        pending = take_pending_question()
        if pending:
            question, submitted = pending, True
        answers(document, settings, question if submitted else None, history)
        if history and history[-1].source.sha256 == document.sha256:
            evidence_section(history[-1], settings)
            strategy_section(history[-1], settings)
        if history:
            history_section(history)


def answers(document: Document, settings: Settings, question: str | None, history: list[AskRecord]) -> None:
    """The three columns: the answers to `question` (asked now) or else to the last question about `document`."""
    status_area = st.container()  # progress and errors go above the three columns
    columns = st.columns(len(VIEWS), border=True)
    slots = {}
    for view, column in zip(VIEWS, columns, strict=True):
        with column:
            model_header(view)
            slots[view] = st.empty()  # a preliminary answer is replaced by the final one

    def show(view: str, answer: ViewAnswer, source: Document) -> None:
        with slots[view].container():
            render_answer(view, answer, source)

    if question is not None:
        # Each column fills in as soon as its model has answered.
        with status_area:
            record = attempt(
                lambda: answer_question(document, settings, question, lambda v, a: show(v, a, document)),
                doing="answering",
            )
        if record is not None:
            history.append(record)
            status_area.caption(answered_caption(len(history), record))
    elif history and history[-1].source.sha256 == document.sha256:
        last = history[-1]
        status_area.caption(answered_caption(len(history), last))
        for view, answer in last.answers.items():
            show(view, answer, last.source)
    elif history:  # the answers were about another document: its highlights would read as this one's
        status_area.caption(
            f"Your last question was about {md(history[-1].source.name)}; every question is in the table below."
        )


def history_section(history: list[AskRecord]) -> None:
    """The session's questions as a table, with downloads and the session report."""
    st.subheader("Questions asked in this session")
    st.dataframe(history_rows(history), hide_index=True)
    # The files are written when a button is clicked, not on every run of the page (a long history made
    # every question pay for them).
    asked = list(history)
    left, right = st.columns(2)
    left.download_button(
        "Download as CSV", lambda: history_csv(asked), "questions.csv", "text/csv", key=CSV_DOWNLOAD
    )
    right.download_button(
        "Download as JSON",
        lambda: history_json(asked),
        "questions.json",
        "application/json",
        key=JSON_DOWNLOAD,
    )
    report_button(asked)


apply_sample_link()  # before the sidebar, so ?sample=NAME shows up there at once
settings = page_setup("qa")
st.title("Ask a question")
document = require_document()
# Reading starts as soon as the page has a document; each column answers once its view is read.
try:
    reading = start_background_reading(document, settings)
except Exception:  # noqa: BLE001 - e.g. keywords missing: asking reports it, with the message to act on
    reading = None
if reading is not None:
    with st.sidebar:
        show_reading_progress(reading)

st.markdown(
    f"Asking about **{md(document.name)}**. The first question reads the whole document (this can take a "
    "while for long files); later questions reuse that reading and come back in about a second."
)
questions_and_answers(document, settings)
