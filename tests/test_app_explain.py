"""Ask page extras (issue 20) driven with AppTest and the real embedded model: evidence, every strategy,
suggested questions on a sample, ?sample= links and the sample collection."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.explain import session_report
from ui.state import SESSION_FIGURES, session_figures

APP = Path(__file__).resolve().parent.parent / "app.py"
FILLER = (
    "The committee met again to review the quarterly schedule and the budget of the regional office. "
    "Members discussed staffing, travel plans and the maintenance of the old building on the hill. "
)
FACT = "The lighthouse keeper Marguerite Olsen painted the tower bright green in 1911."
TEXT = FILLER * 12 + FACT + " " + FILLER * 3


def _frames_with(at: AppTest, column: str) -> list:
    """The page's dataframes that have `column` (st.dataframe has no key AppTest can look up)."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def _healthy(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _ask_on_upload(question: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=900).run()
    at.file_uploader(key="document_upload").set_value(("tower.txt", TEXT.encode(), "text/plain")).run()
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input(question)
    at.button(key="ask_button").click().run()
    _healthy(at)
    return at


def test_evidence_section_shows_the_strip_and_top_passages():
    at = _ask_on_upload("Who painted the tower?")
    at.button(key="explain_button").click().run()
    _healthy(at)
    frames = _frames_with(at, "passage")  # one per model, the Longformer's tab first
    assert len(frames) == 3
    longformer = frames[0]
    assert 1 <= len(longformer) <= 5 and list(longformer.columns) == ["rank", "share", "page", "passage"]
    assert any(FACT in p for p in longformer["passage"][:3])  # the sentence that says it is top-3 evidence
    assert at.get("plotly_chart"), "the evidence strip is missing"
    assert any(b.label.startswith("Download report") for b in at.get("download_button"))


@pytest.mark.slow
def test_the_report_carries_the_attention_figures():
    """Figures drawn on the Attention page are kept for the document and the report built on the Ask page
    embeds them (with their captions) after the answers."""
    at = AppTest.from_file(str(APP), default_timeout=900).run()
    at.file_uploader(key="document_upload").set_value(("tower.txt", TEXT.encode(), "text/plain")).run()
    at.switch_page("pages/attention.py").run()
    _healthy(at)
    drawn = at.session_state[SESSION_FIGURES]
    assert {"attention_pattern", "attention_token", "attention_globals"} <= {name for _, name in drawn}
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("Who painted the tower?")
    at.button(key="ask_button").click().run()
    _healthy(at)
    (button,) = [b for b in at.get("download_button") if b.proto.label.startswith("Download report")]
    assert "3 figure(s) from the Attention page" in button.proto.help

    document = at.session_state["document"]
    figures = session_figures(document, {SESSION_FIGURES: drawn})
    html = session_report(document, at.session_state["ask_history"], figures, {})
    answers_at = html.index("Who painted the tower?")
    pattern_at = html.index("<h3>Attention: who can read whom (global attention:")
    assert answers_at < pattern_at and html.count("Plotly.newPlot(") == 3
    assert "Marguerite Olsen" in html


def test_every_strategy_table():
    at = _ask_on_upload("Who painted the tower?")
    at.button(key="strategies_button").click().run()
    _healthy(at)
    (table,) = _frames_with(at, "differs from default")
    assert len(table) == 8 and {
        "strategy",
        "answer",
        "page",
        "confidence",
        "seconds",
        "differs from default",
    } <= set(table.columns)
    assert table["differs from default"].iloc[0] == "no"  # the default (question words) comes first


@pytest.mark.slow
def test_sample_link_and_a_suggested_question():
    at = AppTest.from_file(str(APP), default_timeout=1800)
    at.query_params["sample"] = "book_of_esther_kjv"
    at.switch_page("pages/ask.py").run()
    _healthy(at)
    assert "book_of_esther_kjv.pdf" in " ".join(m.value for m in at.sidebar.markdown).replace("\\", "")
    at.button(key="suggested_0").click().run()  # "What did the king hold out to Esther?"
    _healthy(at)
    record = at.session_state["ask_history"][-1]
    assert "sceptre" in record.answers["longformer"].result.best.text.lower()
    at.button(key="explain_button").click().run()
    _healthy(at)
    answer_page = record.answers["longformer"].result.best.page
    assert (
        at.number_input(key="page_view_page").value == answer_page
    )  # the page view opens on the answer's page
    assert at.get("image"), "the rendered page is missing"


@pytest.mark.slow
def test_sample_collection_on_the_collection_page():
    at = AppTest.from_file(str(APP), default_timeout=1800).run()
    at.switch_page("pages/collection.py").run()
    at.radio(key="collection_source").set_value("sample").run()
    at.button(key="collection_embed").click().run()
    _healthy(at)
    assert at.get("plotly_chart"), "the collection map is missing"
