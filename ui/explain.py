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
from ui.state import DOCUMENT, SessionFigure, current_document, session_figures, set_document
from ui.tasks import reader_for

EXPLANATIONS = "explanations"  # {(sha256, question): {view: Explanation}}
STRATEGY_TABLES = "strategy_tables"  # {(sha256, question): list[StrategyRow]}
PDF_BYTES = "pdf_bytes"  # {sha256: bytes} of uploaded PDFs (the page view renders from them)
PENDING_QUESTION = "pending_question"  # a suggested question clicked, asked on this run
SAMPLE_FROM_URL = "sample_from_url"  # the ?sample= name already applied in this session


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
    if not name or st.session_state.get(SAMPLE_FROM_URL) == name:
        return
    st.session_state[SAMPLE_FROM_URL] = name
    sample = cached_samples().get(name)
    if sample is None:
        st.warning(f"There is no sample called '{md(name)}'. Samples: {', '.join(cached_samples())}.")
        return
    set_document(DOCUMENT, sample.document)


def remember_pdf_bytes(document: Document, data: bytes) -> None:
    """Keep an uploaded PDF's bytes for the page view (a few MB per PDF, this session only)."""
    if document.kind == "pdf":
        st.session_state.setdefault(PDF_BYTES, {})[document.sha256] = data


def pdf_bytes(document: Document) -> bytes | None:
    sample = sample_of(document)
    if sample is not None and document.kind == "pdf":
        return sample.data
    return st.session_state.get(PDF_BYTES, {}).get(document.sha256)


def suggested_questions(document: Document) -> None:
    """Buttons for a sample's suggested questions; a click asks it (see `take_pending_question`)."""
    sample = sample_of(document)
    if sample is None or not sample.questions:
        return
    st.caption("Suggested questions (their answers are far beyond what a 512-token model reads):")
    columns = st.columns(len(sample.questions))
    for i, (column, q) in enumerate(zip(columns, sample.questions, strict=True)):
        if column.button(q.question, key=f"suggested_{i}"):
            st.session_state[PENDING_QUESTION] = q.question


def take_pending_question() -> str | None:
    """The suggested question clicked on this run, if any (consumed)."""
    return st.session_state.pop(PENDING_QUESTION, None)


def _key(record: AskRecord) -> tuple[str, str]:
    return record.source.sha256, record.question


def evidence_section(record: AskRecord, settings) -> None:
    """'Why this answer?': evidence per view (a strip over the pages, the top 5 passages) and the page view."""
    st.subheader("Why this answer?")
    st.caption("Which passages the models relied on for their answers (how to read this: docs/app.md).")
    stored = st.session_state.setdefault(EXPLANATIONS, {})
    if _key(record) not in stored and st.button("Show the evidence", key="explain_button"):
        reader = reader_for(record.source, settings, "qa")
        results = {v: a.result for v, a in record.answers.items()}
        with st.spinner("Finding the evidence (one pass with gradients per model)..."):
            found = attempt(
                lambda: explain(reader, record.question, results, views=VIEWS), doing="explaining"
            )
        if found is not None:
            stored[_key(record)] = found
    explanations = stored.get(_key(record))
    if not explanations:
        return
    fig = evidence_strip_figure(record.source.n_pages, explanations)
    st.plotly_chart(fig, key="evidence_strip")
    tabs = st.tabs([v for v in reversed(VIEWS) if v in explanations])
    for tab, view in zip(tabs, [v for v in reversed(VIEWS) if v in explanations], strict=True):
        e = explanations[view]
        with tab:
            st.markdown(f"Answer: **{md(e.answer.text[:200])}** (page {md(e.answer.page_label)})")
            rows = [
                {"rank": i + 1, "share": round(ev.score, 3), "page": ev.page_label, "passage": ev.text[:300]}
                for i, ev in enumerate(e.top(5))
            ]
            st.dataframe(rows, hide_index=True, key=f"evidence_{view}")
    page_view_section(record, explanations.get("longformer") or next(iter(explanations.values())))


def page_view_section(record: AskRecord, explanation: Explanation) -> None:
    """The PDF page with the answer (red) and its top evidence passages (amber) outlined; page stepping."""
    data = pdf_bytes(record.source) if record.source.kind == "pdf" else None
    if data is None:
        return
    st.subheader("On the page")
    pages = PdfPages(data)
    default = explanation.answer.page
    page = st.number_input(
        "Page", min_value=1, max_value=pages.n_pages, value=default, step=1, key="page_view_page"
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


def strategy_section(record: AskRecord, settings) -> None:
    """'Try every strategy': the Longformer's answer under each global-attention strategy."""
    st.subheader("What global attention changes")
    tables = st.session_state.setdefault(STRATEGY_TABLES, {})
    if _key(record) not in tables and st.button("Try every strategy", key="strategies_button"):
        with st.spinner("Answering with every strategy (each reads the document again)..."):
            rows = attempt(
                lambda: try_strategies(
                    settings.pair, record.source, record.question, keywords=settings.keywords
                ),
                doing="trying the strategies",
            )
        if rows is not None:
            tables[_key(record)] = rows
    rows = tables.get(_key(record))
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
            key="strategy_table",
        )


def session_report(
    document: Document,
    history: list[AskRecord],
    figures: list[SessionFigure],
    explanations: Mapping[tuple[str, str], dict[str, Explanation]],
) -> str | None:
    """The report's HTML: every question about `document` with its answers and evidence, then the figures
    drawn about it in the session (the Attention page's); None before any question about it.

    Args:
        document: the document the report is about.
        history: the session's questions (those about other documents are left out).
        figures: figures drawn in the session (`ui.state.session_figures(document)`).
        explanations: the evidence shown, {(sha256, question): {view: Explanation}} (session's EXPLANATIONS).
    Returns:
        one self-contained HTML document, or None.
    """
    records = [r for r in history if r.source.sha256 == document.sha256]
    if not records:
        return None
    entries = [
        ReportEntry(r.question, {v: a.result for v, a in r.answers.items()}, explanations.get(_key(r), {}))
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
    explanations = dict(st.session_state.get(EXPLANATIONS, {}))
    st.download_button(
        "Download report (HTML)",
        # Built when clicked (on another thread, without the session: everything it reads is captured here).
        lambda: session_report(document, history, figures, explanations) or "",
        f"{document.name.rsplit('.', 1)[0]}-report.html",
        "text/html",
        key="report",
        help=f"Answers, evidence and {len(figures)} figure(s) from the Attention page; opens without a network."
        if figures
        else "Answers and evidence; visit the Attention page to add its figures. Opens without a network.",
    )
