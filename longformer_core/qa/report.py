"""A self-contained HTML report of a session: the document, each question, the three views' answers and
their evidence, and the figures shown, with plotly.js inlined so the file opens without a network.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from longformer_core.documents import Document
from longformer_core.qa.answering import QAResult
from longformer_core.qa.evidence import Explanation, page_strip
from longformer_core.reading.encoding import VIEWS

VIEW_TITLES = {
    "truncated": "Truncated (first 512 tokens)",
    "chunked": "Chunked (512-token pieces)",
    "longformer": "Longformer (whole document)",
}


@dataclass
class ReportEntry:
    """One question asked in the session."""

    question: str
    results: Mapping[str, QAResult]  # view -> result
    explanations: Mapping[str, Explanation] = field(default_factory=dict)  # view -> evidence (optional)


MAX_STRIP_CELLS = 250  # columns of the evidence strip: past this many pages, consecutive pages share a cell


def strip_bins(n_pages: int, max_cells: int = MAX_STRIP_CELLS) -> np.ndarray:
    """Edges of the strip's cells over pages: one page per cell up to `max_cells` pages, else equal runs of
    consecutive pages (a 1,221-page book: 5 pages a cell), so a page's evidence is never thinner than a pixel.

    Returns:
        (cells + 1,) int64 0-based page edges: cell i holds pages [edges[i], edges[i + 1]).
    """
    per_cell = max(1, -(-n_pages // max_cells))
    return np.append(np.arange(0, n_pages, per_cell, dtype=np.int64), np.int64(n_pages))


def evidence_strip_figure(
    n_pages: int, explanations: Mapping[str, Explanation], title: str = "", max_cells: int = MAX_STRIP_CELLS
) -> go.Figure:
    """Where the evidence for each view's answer lies: one row per view, one cell per page (or per run of
    pages, past `max_cells` pages).

    A cell's colour is the share of the view's positive evidence on its pages (darker = more support);
    the answer's page is marked with a star.

    Args:
        n_pages: pages in the document.
        explanations: view -> Explanation.
        title: figure title.
        max_cells: most columns; longer documents bin consecutive pages (`strip_bins`).
    Returns:
        A plotly heatmap figure (rows: views; columns: pages, or runs of pages named by their first and last).
    """
    views = [v for v in VIEWS if v in explanations]
    edges = strip_bins(n_pages, max_cells)
    rows = []
    for v in views:
        strip = np.add.reduceat(page_strip(n_pages, explanations[v].evidence), edges[:-1])  # (cells,)
        rows.append((strip / strip.sum()).tolist() if strip.sum() > 0 else strip.tolist())
    first, last = edges[:-1] + 1, edges[1:]  # 1-based pages of each cell
    binned = bool((last > first).any())
    x = ((first + last) / 2).tolist()  # the cell's middle page, so the answer's star falls inside it
    names = [f"pages {a:,}-{b:,}" if b > a else f"page {a:,}" for a, b in zip(first, last, strict=True)]
    fig = go.Figure(
        go.Heatmap(
            z=rows,
            x=x,
            y=views,
            customdata=[names] * len(views),
            colorscale="Oranges",
            zmin=0,
            zmax=max([max(r) for r in rows] + [1e-9]),
            colorbar={"title": "share of<br>evidence"},
            hovertemplate="%{customdata}<br>%{y}: %{z:.0%} of the evidence<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[explanations[v].answer.page for v in views],
            y=views,
            mode="markers",
            name="answer",
            marker={"symbol": "star", "size": 14, "color": "#dc2626", "line": {"width": 1, "color": "white"}},
            hovertemplate="answer on page %{x}<extra>%{y}</extra>",
        )
    )
    per_cell = int(last[0] - first[0] + 1)
    fig.update_layout(
        title=title or ("Where the evidence is (pages" + (f", {per_cell} per cell)" if binned else ")")),
        height=110 + 45 * len(views),
        margin={"l": 90, "r": 20, "t": 40, "b": 40},
        # Pages start at 1: without a range plotly pads a short document's axis to show -3 and 0.
        xaxis={"title": "page", "range": [0.5, n_pages + 0.5], "tick0": 1, "dtick": max(1, n_pages // 20)},
        showlegend=False,
    )
    return fig


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _answers_table(entry: ReportEntry) -> str:
    rows = []
    for view in VIEWS:
        r = entry.results.get(view)
        if r is None:
            continue
        best = r.best
        answer = _esc(best.text) if best else "<em>no answer</em>"
        page = _esc(best.page_label) if best else "-"
        conf = f"{best.score:.0%}" if best else "-"
        seen = f"{r.seen_tokens[1] - r.seen_tokens[0]:,} of {r.n_tokens:,}"
        rows.append(
            f"<tr><td>{_esc(VIEW_TITLES[view])}</td><td class='answer'>{answer}</td><td>{page}</td>"
            f"<td>{conf}</td><td>{seen}</td><td>{r.seconds + r.encode_seconds:.1f} s</td></tr>"
        )
    return (
        "<table><thead><tr><th>reader</th><th>answer</th><th>page</th><th>confidence</th>"
        "<th>tokens read</th><th>time</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _evidence_lists(entry: ReportEntry, top: int) -> str:
    parts = []
    for view in VIEWS:
        e = entry.explanations.get(view)
        if e is None:
            continue
        items = "".join(
            f"<li><span class='score'>{ev.score:+.2f}</span> <span class='page'>p.{_esc(ev.page_label)}</span> "
            f"{_esc(ev.text[:400])}</li>"
            for ev in e.top(top)
        )
        parts.append(
            f"<div class='evidence'><h4>{_esc(VIEW_TITLES[view])}: evidence for "
            f"&ldquo;{_esc(e.answer.text[:120])}&rdquo;</h4><ol>{items}</ol></div>"
        )
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1f2937}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #e5e7eb;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #e5e7eb;padding:.35em .6em;
text-align:left;vertical-align:top}th{background:#f9fafb}.answer{font-weight:600}
.score{font-family:monospace;color:#b45309}.page{color:#6b7280}.meta{color:#6b7280}
.evidence ol{padding-left:1.4em}.evidence li{margin:.3em 0}
"""


def build_report(
    document: Document,
    entries: Sequence[ReportEntry],
    figures: Sequence[tuple[str, go.Figure]] = (),
    n_tokens: int | None = None,
    model_name: str = "",
    strategy: str = "",
    top_evidence: int = 5,
) -> str:
    """The whole report as one HTML string (plotly.js inlined once; no network needed to open it).

    Args:
        document: the document the questions were about.
        entries: the questions, with each view's result and (optionally) evidence.
        figures: (caption, figure) pairs shown in the session (attention views etc.), added at the end.
        n_tokens: document length in tokens, shown with its size.
        model_name: the models used.
        strategy: the global-attention strategy used.
        top_evidence: evidence passages listed per view.
    Returns:
        A complete HTML document.
    """
    blocks: list[str] = []
    plotly_included = False

    def figure_html(fig: go.Figure) -> str:
        nonlocal plotly_included
        out = pio.to_html(
            fig,
            include_plotlyjs=not plotly_included,
            full_html=False,
            config={"displaylogo": False, "responsive": True},
        )
        plotly_included = True
        return f"<div class='figure'>{out}</div>"

    size = f"{document.n_pages:,} page{'s' if document.n_pages != 1 else ''}, {document.n_chars:,} characters"
    if n_tokens is not None:
        size += f", {n_tokens:,} tokens"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks.append(
        f"<h1>{_esc(document.name)}</h1><p class='meta'>{_esc(size)}. "
        f"{'Models: ' + _esc(model_name) + '. ' if model_name else ''}"
        f"{'Global attention: ' + _esc(strategy) + '. ' if strategy else ''}Report made {stamp}.</p>"
    )
    if not entries:
        blocks.append("<p>No questions were asked in this session.</p>")
    for i, entry in enumerate(entries, 1):
        blocks.append(f"<h2>Question {i}: {_esc(entry.question)}</h2>")
        blocks.append(_answers_table(entry))
        if entry.explanations:
            blocks.append(figure_html(evidence_strip_figure(document.n_pages, entry.explanations)))
            blocks.append(_evidence_lists(entry, top_evidence))
    if figures:
        blocks.append(
            "<h2>Figures from the session</h2><p class='meta'>As last drawn in the app (the Attention page: "
            "who can read whom, what one word reads, what the global tokens read). They stay interactive: "
            "hover for values, drag to zoom, double-click to reset.</p>"
        )
        for caption, fig in figures:
            blocks.append(f"<h3>{_esc(caption)}</h3>" + figure_html(fig))
    body = "\n".join(blocks)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(document.name)}: "
        f"longdoc report</title><style>{_CSS}</style></head><body>{body}"
        "<p class='meta'>Made with longdoc (Longformer long-document explorer). Evidence scores: each passage's "
        "share of the gradient &times; input magnitude for the answer (how much the answer depends on "
        "it).</p></body></html>"
    )
