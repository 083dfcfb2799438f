"""Ask page extras (issue 20): bundled samples with suggested questions, evidence for the answers, the page
view with the answer outlined, every strategy side by side, and the downloadable report."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from longformer_core.documents import Document
from longformer_core.documents.page_view import PdfPages, answer_page_spans
from longformer_core.documents.samples import Sample, load_samples
from longformer_core.qa.evidence import Explanation, explain
from longformer_core.qa.report import ReportEntry, build_report, evidence_strip_figure
from longformer_core.qa.strategy_effect import try_strategies
from longformer_core.reading.encoding import VIEWS
from ui.feedback import attempt
from ui.records import AskRecord
from ui.render import md
from ui.state import (
    DOCUMENT,
    EVIDENCE_STRIP,
    EVIDENCE_TABLE,
    EXPLAIN_BUTTON,
    PAGE_VIEW_PAGE,
    REPORT_DOWNLOAD,
    STRATEGIES_BUTTON,
    STRATEGY_TABLE,
    SUGGESTED_QUESTION,
    PdfFile,
    Provenance,
    SessionFigure,
    Settings,
    current_document,
    explanations,
    kept_pdf,
    session_figures,
    set_document,
    set_pending_question,
    strategy_tables,
    take_sample_link,
    widget_key,
)
from ui.tasks import reader_for


@st.cache_resource(show_spinner="Reading the sample documents...")
def cached_samples() -> dict[str, Sample]:
    """Every bundled sample, read once per server process (app.py calls this at start)."""
    return load_samples()


def sample_of(document: Document) -> Sample | None:
    """The bundled sample this document is, if any."""
    return next((s for s in cached_samples().values() if s.document.sha256 == document.sha256), None)


def apply_sample_link() -> None:
    """`?sample=NAME` in the URL opens the app on that sample (once per session, so a later choice sticks)."""
    name = st.query_params.get("sample")
    if not name or not take_sample_link(name):
        return
    sample = cached_samples().get(name)
    if sample is None:
        st.warning(f"There is no sample called '{md(name)}'. Samples: {', '.join(cached_samples())}.")
        return
    set_document(DOCUMENT, sample.document)


def pdf_file(document: Document) -> PdfFile | None:
    """The PDF a document was read from (a bundled sample, or an upload of this session with its password)."""
    if document.kind != "pdf":
        return None
    sample = sample_of(document)
    return PdfFile(sample.data) if sample is not None else kept_pdf(document)


def suggested_questions(document: Document) -> None:
    """Buttons for a sample's suggested questions; a click asks it (see `take_pending_question`)."""
    sample = sample_of(document)
    if sample is None or not sample.questions:
        return
    st.caption("Suggested questions (their answers are far beyond what a 512-token model reads):")
    columns = st.columns(len(sample.questions))
    for i, (column, q) in enumerate(zip(columns, sample.questions, strict=True)):
        if column.button(q.question, key=widget_key(SUGGESTED_QUESTION, i)):
            set_pending_question(q.question)


def answered_with(record: AskRecord, settings: Settings) -> bool:
    """Whether the record's answers came from the model and strategy in use (its evidence needs that model)."""
    return record.provenance == settings.provenance("qa", record.source.sha256, choice=record.question)


def evidence_section(record: AskRecord, settings: Settings) -> None:
    """'Why this answer?': evidence per view (a strip over the pages, the top 5 passages) and the page view."""
    st.subheader("Why this answer?")
    if not answered_with(record, settings):
        st.caption(
            "The model or the global-attention strategy changed since this question was answered: "
            "ask it again to see the evidence."
        )
        return
    st.caption("Which passages the models relied on for their answers (how to read this: docs/app.md).")
    stored = explanations()
    if record.provenance not in stored and st.button("Show the evidence", key=EXPLAIN_BUTTON):
        reader = reader_for(record.source, settings, "qa")
        results = {v: a.result for v, a in record.answers.items()}
        with st.spinner("Finding the evidence (one pass with gradients per model)..."):
            found = attempt(
                lambda: explain(reader, record.question, results, views=VIEWS), doing="explaining"
            )
        if found is not None:
            stored[record.provenance] = found
    shown = stored.get(record.provenance)
    if not shown:
        return
    fig = evidence_strip_figure(record.source.n_pages, shown)
    st.plotly_chart(fig, key=EVIDENCE_STRIP)
    tabs = st.tabs([v for v in reversed(VIEWS) if v in shown])
    for tab, view in zip(tabs, [v for v in reversed(VIEWS) if v in shown], strict=True):
        e = shown[view]
        with tab:
            st.markdown(f"Answer: **{md(e.answer.text[:200])}** (page {md(e.answer.page_label)})")
            rows = [
                {"rank": i + 1, "share": round(ev.score, 3), "page": ev.page_label, "passage": ev.text[:300]}
                for i, ev in enumerate(e.top(5))
            ]
            st.dataframe(rows, hide_index=True, key=widget_key(EVIDENCE_TABLE, view))
    page_view_section(record, shown.get("longformer") or next(iter(shown.values())))


def page_view_section(record: AskRecord, explanation: Explanation) -> None:
    """The PDF page with the answer (red) and its top evidence passages (amber) outlined; page stepping."""
    pdf = pdf_file(record.source)
    if pdf is None:
        return
    st.subheader("On the page")
    pages = attempt(lambda: PdfPages(pdf.data, password=pdf.password), doing="opening the PDF")
    if pages is None:
        return
    default = explanation.answer.page
    page = st.number_input(
        "Page", min_value=1, max_value=pages.n_pages, value=default, step=1, key=PAGE_VIEW_PAGE
    )
    spans = answer_page_spans(explanation.answer.char_span, [ev.char_span for ev in explanation.top(5)])
    view = attempt(lambda: pages.render(record.source, int(page), spans), doing="drawing the page")
    if view is not None:
        outlined = sum(b.kind == "answer" for b in view.boxes)
        st.caption(
            f"Page {view.page} of {pages.n_pages}: the answer is outlined in red"
            f"{'' if outlined else ' (not on this page)'}, evidence passages in amber."
        )
        st.image(view.image, width="stretch")


def strategy_table_provenance(record: AskRecord, settings: Settings) -> Provenance:
    """What the "Try every strategy" table of the record's question is computed from: the document, the model
    in use and the question, and the keywords typed (the keyword strategy's row), not the sidebar's strategy."""
    return Provenance(
        (record.source.sha256,),
        settings.model_key,
        "every strategy",
        settings.keywords,
        choice=record.question,
    )


def strategy_section(record: AskRecord, settings: Settings) -> None:
    """'Try every strategy': the Longformer's answer under each global-attention strategy."""
    if not answered_with(record, settings):  # the evidence section says to ask again
        return
    st.subheader("What global attention changes")
    tables = strategy_tables()
    table = strategy_table_provenance(record, settings)
    if table not in tables and st.button("Try every strategy", key=STRATEGIES_BUTTON):
        with st.spinner("Answering with every strategy (each reads the document again)..."):
            rows = attempt(
                lambda: try_strategies(
                    settings.pair, record.source, record.question, keywords=settings.keywords
                ),
                doing="trying the strategies",
            )
        if rows is not None:
            tables[table] = rows
    rows = tables.get(table)
    if rows:
        st.dataframe(
            [
                {
                    "strategy": r.label,
                    "answer": r.error or r.answer[:200],
                    "page": r.page,
                    "confidence": f"{r.confidence:.0%}",
                    "seconds": round(r.seconds, 1),
                    "differs from default": "yes" if r.differs else "no",
                }
                for r in rows
            ],
            hide_index=True,
            key=STRATEGY_TABLE,
        )


def session_report(
    document: Document,
    history: list[AskRecord],
    figures: list[SessionFigure],
    evidence: Mapping[Provenance, dict[str, Explanation]],
) -> str | None:
    """The report's HTML: every question about `document` with its answers and evidence, then the figures
    drawn about it in the session (the Attention page's); None before any question about it.

    Args:
        document: the document the report is about.
        history: the session's questions (those about other documents are left out).
        figures: figures drawn in the session (`ui.state.session_figures(document)`).
        evidence: the evidence shown, {answers' provenance: {view: Explanation}} (`ui.state.explanations()`).
    Returns:
        one self-contained HTML document, or None.
    """
    records = [r for r in history if r.source.sha256 == document.sha256]
    if not records:
        return None
    entries = [
        ReportEntry(r.question, {v: a.result for v, a in r.answers.items()}, evidence.get(r.provenance, {}))
        for r in records
    ]
    return build_report(
        document,
        entries,
        figures=[(f.caption, f.figure) for f in figures if f.document == document.sha256],
        model_name=records[-1].model,
        strategy=records[-1].strategy,
    )


def report_button(history: list[AskRecord]) -> None:
    """'Download report': one HTML file with every question about the current document and its evidence,
    and the attention figures drawn about it in this session."""
    document = current_document()
    if document is None:
        return
    if not any(r.source.sha256 == document.sha256 for r in history):
        return  # no question about this document yet
    figures = session_figures(document)
    evidence = dict(explanations())
    st.download_button(
        "Download report (HTML)",
        # Built when clicked (on another thread, without the session: everything it reads is captured here).
        lambda: session_report(document, history, figures, evidence) or "",
        f"{document.name.rsplit('.', 1)[0]}-report.html",
        "text/html",
        key=REPORT_DOWNLOAD,
        help=f"Answers, evidence and {len(figures)} figure(s) from the Attention page; opens without a network."
        if figures
        else "Answers and evidence; visit the Attention page to add its figures. Opens without a network.",
    )
