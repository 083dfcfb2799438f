"""Ask page: one question, three models side by side, with the answer's page and what each model read."""

from __future__ import annotations

import streamlit as st

import app_common as ui
from longformer_core.documents import Document
from longformer_core.encoding import VIEWS

settings = ui.page_setup("qa")
st.title("Ask a question")
document = ui.require_document()

st.markdown(
    f"Asking about **{ui.md(document.name)}**. The first question reads the whole document (this can take a "
    "while for long files); later questions reuse that reading and come back in about a second."
)
history: list[ui.AskRecord] = st.session_state.setdefault("ask_history", [])

with st.form("ask"):
    question = st.text_input(
        "Your question", key="question", placeholder="e.g. How long should incident records be kept?"
    )
    submitted = st.form_submit_button("Ask", type="primary", key="ask_button")

status_area = st.container()  # progress and errors go above the three columns
columns = st.columns(len(VIEWS), border=True)
slots = {}
for view, column in zip(VIEWS, columns, strict=True):
    with column:
        ui.model_header(view)
        slots[view] = st.container()


def show(view: str, answer: ui.ViewAnswer, source: Document) -> None:
    with slots[view]:
        ui.render_answer(view, answer, source)


if submitted:
    # Each column fills in as soon as its model has answered.
    with status_area:
        record = ui.attempt(
            lambda: ui.answer_question(document, settings, question, lambda v, a: show(v, a, document)),
            doing="answering",
        )
    if record is not None:
        history.append(record)
elif history:
    last = history[-1]
    status_area.caption(f"Last question, about {ui.md(last.source.name)}: {ui.md(last.question)}")
    for view, answer in last.answers.items():
        show(view, answer, last.source)

if history:
    st.subheader("Questions asked in this session")
    st.dataframe(ui.history_rows(history), hide_index=True)
    left, right = st.columns(2)
    left.download_button("Download as CSV", ui.history_csv(history), "questions.csv", "text/csv", key="csv")
    right.download_button(
        "Download as JSON", ui.history_json(history), "questions.json", "application/json", key="json"
    )
