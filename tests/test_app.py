"""The Streamlit app, driven with streamlit.testing.v1.AppTest (no browser).

The app runs the real embedded model: on the tiny documents of the UI tests it takes seconds. The test
about results (`test_longformer_finds_an_answer_the_truncated_model_never_saw`) reads the bundled
sample guide and is marked slow.
"""

from __future__ import annotations

import gc
import html
import json
import re
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from longformer_core.documents import load_path
from ui import render
from ui.charts import heatmap
from ui.columns import best_pairs_table
from ui.render import seen_bar
from ui.tasks import history_csv, history_json

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "app.py"
SAMPLE = REPO_ROOT / "assets" / "samples" / "field_guide_to_longformer.md"
PAGES = ("pages/document.py", "pages/ask.py", "pages/classify.py", "pages/compare.py")
FACT = "The reading room of the imaginary Harbor Library opens at 7:45 in the morning"

SMALL_PAGES = [
    "Harbour notes\nThe old ferry crosses the bay twice a day.\nTickets are sold at the kiosk on the pier.",
    "Weather\nFog is common in the autumn months.\nThe lighthouse is painted red and white.",
]


def start(timeout: float = 300) -> AppTest:
    """The app on its default page (the Document page), first run done."""
    return AppTest.from_file(str(APP), default_timeout=timeout).run()


def shown_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def assert_healthy(at: AppTest) -> None:
    """No uncaught exception and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not shown_errors(at), shown_errors(at)


def upload(at: AppTest, name: str, data: bytes, slot: str = "document") -> AppTest:
    mime = "application/pdf" if name.endswith(".pdf") else "text/plain"
    return at.file_uploader(key=f"{slot}_upload").set_value((name, data, mime)).run()


def sidebar_text(at: AppTest) -> str:
    """The sidebar's text, with the Markdown escapes of file names removed."""
    text = " ".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption])
    return text.replace("\\", "")


# --------------------------------------------------------------------------------------------------
# UI: pages, uploads, errors


def test_every_page_renders_without_a_document():
    at = start()
    assert_healthy(at)
    assert "None yet" in sidebar_text(at)
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert_healthy(at)
        assert at.info, f"{page} should say that a document is needed"
        assert at.selectbox(key="strategy"), f"{page} lost the sidebar"


def test_loaded_models_are_out_of_the_garbage_collectors_sight():
    """Streamlit may collect garbage after every script run; the ~440k objects of the libraries and models
    must not be walked each time (ui/session.py freezes them once they are loaded)."""
    from ui.session import cached_models

    cached_models.clear()  # loaded again by this app run, whatever earlier tests loaded
    gc.unfreeze()
    at = start()
    upload(at, "notes.txt", b"The ferry crosses the bay twice a day.")
    assert_healthy(at)
    assert gc.get_freeze_count() > 100_000


def test_sample_document_is_long_and_has_facts_deep_inside(embedded_pair):
    from longformer_core.reading.encoding import tokenize

    text = load_path(SAMPLE).text
    words_before_fact = len(text[: text.index(FACT)].split())
    assert len(text.split()) >= 4000
    assert words_before_fact > 3000
    assert len(tokenize(embedded_pair.longformer.tokenizer, text)) >= 6000
    assert text.count("7:45") == 1, "the fact must be unique so the test below can check the answer"


def test_sample_can_be_picked_and_measured():
    at = start()
    at.button(key="document_use_sample").click().run()
    assert_healthy(at)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Tokens"].replace(",", "")) >= 6000
    assert metrics["A 512-token model sees"] == "8%"
    assert "field_guide_to_longformer.md" in sidebar_text(at)
    assert at.get("plotly_chart"), "the coverage bar chart is missing"


def test_uploaded_pdf_shows_pages_tokens_and_first_page(make_pdf):
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    assert_healthy(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pages"] == "2"
    assert "harbour.pdf" in sidebar_text(at) and "2 pages" in sidebar_text(at)
    first_page = " ".join(h.value for h in at.get("html"))
    assert "The old ferry crosses the bay" in first_page
    assert "lighthouse" not in first_page  # page two is not the first page


def test_locked_pdf_asks_for_the_password(make_pdf):
    locked = make_pdf(SMALL_PAGES, password="tide")
    at = start()
    upload(at, "locked.pdf", locked)
    assert len(shown_errors(at)) == 1 and "password" in shown_errors(at)[0].lower()
    at.text_input(key="document_password").input("wrong").run()
    assert len(shown_errors(at)) == 1 and not at.exception
    at.text_input(key="document_password").input("tide").run()
    assert_healthy(at)
    assert "locked.pdf" in sidebar_text(at)


def test_unloadable_model_shows_its_message_and_falls_back():
    at = start()
    at.text_input(key="model_id").input("/nonexistent/longformer-folder").run()
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "/nonexistent/longformer-folder" in errors[0]
    assert "Embedded" in sidebar_text(at)  # the built-in model is still in use


def test_keyword_strategy_needs_keywords(make_pdf):
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    at.switch_page("pages/ask.py").run()
    at.selectbox(key="strategy").select("keywords").run()
    at.text_input(key="question").input("When does the ferry cross the bay?")
    at.button(key="ask_button").click().run()
    assert not at.exception
    assert shown_errors(at) == ["Type at least one keyword for the keyword strategy."]
    at.text_input(key="keywords").input("ferry, lighthouse").run()
    at.text_input(key="question").input("When does the ferry cross the bay?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    assert at.session_state["ask_history"][-1].strategy == "keywords"


def test_ask_classify_and_compare_on_a_small_pdf(make_pdf):
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))

    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("What colour is the lighthouse?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    record = at.session_state["ask_history"][-1]
    assert set(record.answers) == {"truncated", "chunked", "longformer"}
    answer = record.answers["longformer"].result.best
    assert "red and white" in answer.text and answer.page == 2
    assert any("<mark>" in h.value and "red and white" in h.value for h in at.get("html"))
    assert sum('aria-label="read tokens' in h.value for h in at.get("html")) == 3  # what each model read
    # Each column's other candidates: a plain HTML table (an st.dataframe per column cost the browser more).
    assert any(len(a.result.answers) > 1 for a in record.answers.values())
    for view_answer in record.answers.values():
        for other in view_answer.result.answers[1:]:
            cell = f">{html.escape(render.flat(other.text, 200))}<"
            assert any("<table" in h.value and cell in h.value for h in at.get("html"))
    # A view still reading when the question came gave a first answer, which the final one replaced.
    assert not any("Preliminary answer" in c.value for c in at.caption)
    assert all(not a.preliminary for a in record.answers.values())
    for early in record.preliminary.values():
        assert early.preliminary and "first answer" in early.result.notes[0]
    downloads = {b.label for b in at.get("download_button")}
    assert downloads == {"Download as CSV", "Download as JSON", "Download report (HTML)"}

    at.switch_page("pages/classify.py").run()
    at.text_area(key="labels").input("weather: fog, rain and wind\nfinance: money and banks")
    at.button(key="classify_button").click().run()
    assert_healthy(at)
    assert at.get("plotly_chart"), "the scores chart is missing"
    assert len(at.metric) == 3

    at.switch_page("pages/compare.py").run()
    upload(
        at,
        "other.txt",
        b"The ferry leaves the pier at noon. Fog delays it in autumn.",
        slot="second_document",
    )
    at.button(key="compare_button").click().run()
    assert_healthy(at)
    assert [m.label for m in at.metric] == ["Similarity"] * 3
    assert at.get("plotly_chart"), "the heatmap is missing"
    at.radio(key="pooling").set_value("sum-last4")
    at.button(key="compare_button").click().run()
    assert_healthy(at)
    assert at.session_state["compare_last"].value.pooling == "sum-last4"


def test_ask_page_shows_only_the_current_documents_answers():
    """After a new upload the Ask page does not show the last document's highlights as if they were this one's;
    each answered question is numbered, so asking the same question again is told apart from the last one."""
    a = b"Semyon Aranovich was a chess player. He was born in Moscow in 1934 and played three hundred games. "
    b = b"The lighthouse on the hill is painted red and white. Its keeper, Marguerite Olsen, lives in Bergen. "
    at = start()
    upload(at, "chess.txt", a * 6)
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("Where was Semyon Aranovich born?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    assert any(c.value.startswith("Question 1 of this session, about chess") for c in at.caption)
    assert any("<mark>" in h.value and "Moscow" in h.value for h in at.get("html"))

    at.switch_page("app.py").run()
    upload(at, "lighthouse.txt", b * 6)
    at.switch_page("pages/ask.py").run()
    assert not any("<mark>" in h.value for h in at.get("html")), "the chess answers are still shown"
    assert any("last question was about chess" in c.value for c in at.caption)
    for number in (2, 3):  # the same question twice
        at.text_input(key="question").input("What colour is the lighthouse?")
        at.button(key="ask_button").click().run()
        assert_healthy(at)
        assert any(
            c.value.startswith(f"Question {number} of this session, about lighthouse") for c in at.caption
        )
        marks = [h.value for h in at.get("html") if "<mark>" in h.value]
        assert marks and not any("Moscow" in m for m in marks)


def test_checkpoints_with_task_heads(tiny_checkpoint, make_pdf):
    """Other checkpoints from the sidebar: a QA head extracts spans, a classification head brings its labels.

    Tiny random models: this is about the UI paths, not about the answers.
    """
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    at.switch_page("pages/ask.py").run()
    at.text_input(key="model_id").input(str(tiny_checkpoint("longformer-qa"))).run()
    at.text_input(key="question").input("What colour is the lighthouse?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    record = at.session_state["ask_history"][-1]
    assert {a.result.method for a in record.answers.values()} == {"span"}
    assert all(a.reading_seconds is None for a in record.answers.values())
    assert any("reads the document again for every question" in c.value for c in at.caption)

    at.switch_page("pages/classify.py").run()
    at.text_input(key="model_id").input(str(tiny_checkpoint("longformer-cls"))).run()
    assert any("class_0, class_1, class_2" in i.value for i in at.info)
    assert at.text_area(key="labels").disabled
    at.button(key="classify_button").click().run()
    assert_healthy(at)
    classified = at.session_state["classify_last"].value
    assert {r.method for r in classified.results.values()} == {"head"}
    assert set(classified.results["longformer"].scores) == {"class_0", "class_1", "class_2"}


def test_empty_question_is_refused_with_a_message(make_pdf):
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    at.switch_page("pages/ask.py").run()
    at.button(key="ask_button").click().run()
    assert not at.exception
    assert shown_errors(at) == ["Type a question first."]


def test_heatmap_leaves_unread_passages_blank_and_escapes_text():
    import numpy as np

    from longformer_core.reading.results import Located
    from longformer_core.similarity import PassageMatrix

    a = [Located("<b>first</b> passage", (0, 20), 1, "i"), Located("second", (21, 27), 2, "<ii>")]
    b = [Located("other & more", (0, 12), 1, "1")]
    matrix = PassageMatrix("truncated", "mean", a, b, np.array([[0.5], [np.nan]], dtype=np.float32), 0.0)
    figure = heatmap(matrix, "a<x>.pdf", "b.txt")
    heat = figure.data[0]
    assert heat.z[1][0] is None  # not read by this model: left blank
    assert "&lt;b&gt;first" in heat.text[0][0] and "<b>first" not in heat.text[0][0]
    assert "page &lt;ii&gt;" in heat.text[1][0] and "not read" in heat.text[1][0]
    assert best_pairs_table(matrix) == [
        {
            "similarity": 0.5,
            "first document": "page i: <b>first</b> passage",
            "second document": "page 1: other & more",
        }
    ]


def test_document_text_is_escaped_in_answers(make_pdf):
    at = start()
    upload(
        at, "tags.txt", b"Intro line here.\n\nThe secret tag is <script>alert(1)</script> and <b>bold</b>."
    )
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("What is the secret tag?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    shown = " ".join(h.value for h in at.get("html"))
    assert "<script>" not in shown and "<b>bold" not in shown  # never live markup
    assert "script&gt;" in shown and "&lt;/script&gt;" in shown  # shown as text (a highlight may split a tag)


# --------------------------------------------------------------------------------------------------
# Results: the real embedded model on the sample guide


def sample_as_pdf_pages(lines_per_page: int = 48) -> list[str]:
    """The sample guide wrapped at 90 characters and cut into PDF pages."""
    lines: list[str] = []
    for paragraph in load_path(SAMPLE).text.split("\n\n"):
        lines += textwrap.wrap(" ".join(paragraph.split()), 90) + [""]
    return ["\n".join(lines[i : i + lines_per_page]) for i in range(0, len(lines), lines_per_page)]


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.slow
def test_longformer_finds_an_answer_the_truncated_model_never_saw(make_pdf):
    pages = sample_as_pdf_pages()
    fact_pages = [i + 1 for i, page in enumerate(pages) if FACT in flat(page)]
    assert len(fact_pages) == 1, "the fact must sit on one page of the test PDF"
    at = start(timeout=1800)
    upload(at, "field_guide.pdf", make_pdf(pages))
    assert_healthy(at)

    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("When does the reading room of the Harbor Library open?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    record = at.session_state["ask_history"][-1]
    document = record.source

    longformer = record.answers["longformer"].result
    assert "7:45" in longformer.best.text and longformer.method == "retrieve-then-read"  # the shipped head
    assert "reading room" in flat(document.text[longformer.best.context[0] : longformer.best.context[1]])
    assert longformer.best.page == fact_pages[0]
    assert longformer.seen_chars[1] >= document.text.index("7:45")

    truncated = record.answers["truncated"].result
    assert truncated.seen_tokens[1] <= 512
    assert truncated.seen_chars[1] < document.text.index("7:45"), "the truncated model must not see the fact"
    assert "7:45" not in truncated.best.text

    shown = " ".join(h.value for h in at.get("html"))
    assert re.search(r"<mark>[^<]*7:45[^<]*</mark>", shown), "the answer is not highlighted"
    # Each answer says which passage it came from, on which page, and what found that passage.
    sources = [c.value for c in at.caption if c.value.startswith("From this passage on page")]
    assert any(f"page {fact_pages[0]}" in c and "found by" in c and "7:45" in c for c in sources), sources

    # A second question reuses every model's reading of the document.
    at.text_input(key="question").input("How many atlases are kept in the basement map vault?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    second = at.session_state["ask_history"][-1]
    assert all(a.result.encode_seconds == 0.0 for a in second.answers.values())
    assert "1,312" in second.answers["longformer"].result.best.text

    # The downloads: built by the helpers the two buttons use.
    history = at.session_state["ask_history"]
    rows = json.loads(history_json(history))
    assert [r["question"] for r in rows] == [record.question, second.question]
    assert rows[0]["results"]["longformer"]["answers"][0]["page"] == fact_pages[0]
    csv = history_csv(history).splitlines()
    assert csv[0].startswith("asked_at,document,question,model,answer") and len(csv) == 1 + 2 * 3


def test_a_columns_reading_bar_marks_what_it_read_and_where_its_answer_is():
    bar = seen_bar("chunked", 2000, (500, 1000), 1500, "page 3")
    assert "left:25.00%" in bar and "width:calc(50.00% - 25.00%)" in bar  # tokens 500 to 1,000 of 2,000
    assert 'title="answer at token 1,500 (page 3)"' in bar and "left:75.00%" in bar
    assert 'aria-label="read tokens 500 to 1,000 of 2,000"' in bar and "2,000 tokens" in bar
    assert "answer at" not in seen_bar("chunked", 2000, (0, 512), None, "")  # no answer, no diamond
