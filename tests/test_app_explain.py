"""Ask page extras (issue 20) driven with AppTest and the real embedded model: evidence, every strategy,
suggested questions on a sample, ?sample= links and the sample collection; the evidence and the strategy
table follow the model in use; the page view of a locked PDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from longformer_core.qa.strategy_effect import StrategyRow
from ui.explain import session_report
from ui.state import EXPLANATIONS, SESSION_FIGURES, session_figures

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


def _ask(at: AppTest, question: str) -> AppTest:
    at.text_input(key="question").input(question)
    at.button(key="ask_button").click().run()
    _healthy(at)
    return at


def _ask_on_upload(question: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=900).run()
    at.file_uploader(key="document_upload").set_value(("tower.txt", TEXT.encode(), "text/plain")).run()
    at.switch_page("pages/ask.py").run()
    return _ask(at, question)


def _has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


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


def test_evidence_and_strategy_table_follow_the_model(tiny_checkpoint, monkeypatch):
    """After a model switch the Ask page never shows the last model's evidence or strategy table for the same
    question: none until asked for, then the new model's.

    The strategy table is faked (its rows name the model that made them): the test is about what is shown.
    The evidence is the real pass of each model, cheap on this text.
    """

    def rows_naming_the_model(pair, document, question, keywords=()) -> list[StrategyRow]:
        return [StrategyRow("question", "Question tokens", f"read by {pair.name}", 1, 0.5, 0.1, False)]

    monkeypatch.setattr("ui.explain.try_strategies", rows_naming_the_model)
    question = "Who painted the tower?"
    at = _ask_on_upload(question)
    first = at.session_state["ask_history"][-1]
    at.button(key="explain_button").click().run()
    at.button(key="strategies_button").click().run()
    _healthy(at)
    assert len(_frames_with(at, "passage")) == 3
    (table,) = _frames_with(at, "differs from default")
    assert table["answer"][0] == f"read by {first.model}"

    at.text_input(key="model_id").input(str(tiny_checkpoint("longformer-qa"))).run()
    _healthy(at)  # the last answers are the embedded model's: their evidence is not offered under the new one
    assert not _frames_with(at, "passage") and not _frames_with(at, "differs from default")
    assert any("ask it again to see the evidence" in c.value for c in at.caption)

    _ask(at, question)  # the same question, the new model
    second = at.session_state["ask_history"][-1]
    assert second.model != first.model and second.provenance != first.provenance
    assert not _frames_with(at, "passage"), "the last model's evidence is shown for the new model's answers"
    assert not _frames_with(at, "differs from default"), "the last model's strategy table is shown"
    assert _has_button(at, "explain_button") and _has_button(at, "strategies_button")

    at.button(key="strategies_button").click().run()
    at.button(key="explain_button").click().run()
    _healthy(at)
    (table,) = _frames_with(at, "differs from default")
    assert table["answer"][0] == f"read by {second.model}"
    assert _frames_with(at, "passage")
    shown = at.session_state[EXPLANATIONS][second.provenance]
    for view, explanation in shown.items():  # the evidence of the answers on the page, not the first model's
        assert explanation.answer.char_span == second.answers[view].result.best.char_span
    assert set(at.session_state[EXPLANATIONS]) == {first.provenance, second.provenance}


def test_page_view_of_a_locked_pdf(make_pdf):
    """The page view opens a password-protected PDF with the password typed for the upload, on the answer's
    page, with the answer outlined."""
    pages = [
        "Harbour notes\nThe old ferry crosses the bay twice a day.\nTickets are sold at the kiosk on the pier.",
        "Weather\nFog is common in the autumn months.\nThe lighthouse is painted red and white.",
    ]
    at = AppTest.from_file(str(APP), default_timeout=900).run()
    at.file_uploader(key="document_upload").set_value(
        ("locked.pdf", make_pdf(pages, password="tide"), "application/pdf")
    ).run()
    at.text_input(key="document_password").input("tide").run()
    _healthy(at)
    at.switch_page("pages/ask.py").run()
    _ask(at, "What colour is the lighthouse?")
    answer = at.session_state["ask_history"][-1].answers["longformer"].result.best
    assert "red and white" in answer.text and answer.page == 2
    at.button(key="explain_button").click().run()
    _healthy(at)
    assert at.number_input(key="page_view_page").value == 2
    assert at.get("image"), "the rendered page is missing"
    assert any(c.value.startswith("Page 2 of 2: the answer is outlined in red,") for c in at.caption)
