"""Text the app shows: view names, HTML-escaped document text with highlights, Markdown escaping."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from longformer_core.choices import View
from longformer_core.documents import Document
from longformer_core.model.registry import BASELINE_TOKENS

VIEW_TITLES: dict[View, str] = {
    "truncated": "Truncated model",
    "chunked": "Chunked model",
    "longformer": "Longformer",
}
VIEW_HELP: dict[View, str] = {
    "truncated": f"A classic model that reads only the first {BASELINE_TOKENS} tokens (about one page).",
    "chunked": f"The same model run on every {BASELINE_TOKENS}-token piece separately; the best piece wins.",
    "longformer": "Reads the whole document with context: every word can look far beyond its page.",
}
VIEW_COLORS: dict[View, str] = {"truncated": "#d97706", "chunked": "#2563eb", "longformer": "#059669"}


def _plain_html(text: str) -> str:
    """Document text as safe HTML: escaped, hard line wraps joined, paragraph breaks kept."""
    escaped = html.escape(text)
    escaped = re.sub(r"\n\s*\n", "<br><br>", escaped)
    return escaped.replace("\n", " ")


def highlight(document: Document, answer: tuple[int, int], context: tuple[int, int]) -> str:
    """HTML of the context with the answer in <mark>; all document text is escaped first.

    Args:
        document: whose text to show.
        answer: char span of the answer.
        context: char span of the surrounding text (contains the answer).
    """
    a, b = answer
    c0, c1 = min(context[0], a), max(context[1], b)
    text = document.text
    before = ("..." if c0 > 0 else "") + text[c0:a]
    after = text[b:c1] + ("..." if c1 < len(text) else "")
    return (
        '<div style="line-height:1.5;font-size:0.92rem">'
        f"{_plain_html(before)}<mark>{_plain_html(text[a:b])}</mark>{_plain_html(after)}</div>"
    )


def text_box(text: str, max_chars: int = 6000) -> str:
    """HTML of a (possibly long) text, escaped and cut at max_chars, for st.html."""
    shown = text[:max_chars] + ("\n\n[...]" if len(text) > max_chars else "")
    return (
        '<div style="max-height:22rem;overflow-y:auto;border:1px solid #ddd;border-radius:0.5rem;'
        f'padding:0.75rem;font-size:0.9rem;line-height:1.5">{_plain_html(shown)}</div>'
    )


def page_text(page: int, label: str) -> str:
    """'page 12', or 'page 12 (printed "iv")' when the printed label differs."""
    return f"page {page}" if label == str(page) else f'page {page} (printed "{label}")'


def snippet(text: str, n: int = 110) -> str:
    return html.escape(flat(text, n))


def seen_caption(seen_tokens: Sequence[int], n_tokens: int) -> str:
    """'Read 8% of the document (tokens 0 to 510 of 6,432).'"""
    s, e = seen_tokens
    return f"Read {(e - s) / max(1, n_tokens):.0%} of the document (tokens {s:,} to {e:,} of {n_tokens:,})."


def seen_bar(
    view: View, n_tokens: int, seen: tuple[int, int], answer_token: int | None, answer_where: str
) -> str:
    """HTML of one bar over the whole document: the part `view` read, and a diamond where its answer starts.

    Plain HTML, not a Plotly figure: three of those (six with preliminary answers) were built by the server and
    drawn by the browser on every question; without them the page's main thread was busy p50 0.66-0.68 s per later
    question instead of 0.70-0.89 s (`bench/browser_question.py`; docs/results.md, "Books", session 14).
    """
    total = max(1, n_tokens)

    def percent(token: int) -> str:
        return f"{100 * min(max(token, 0), total) / total:.2f}%"

    read = html.escape(f"read tokens {seen[0]:,} to {seen[1]:,} of {n_tokens:,}")
    marker = ""
    if answer_token is not None:
        where = html.escape(f"answer at token {answer_token:,} ({answer_where})")
        marker = (
            f'<div title="{where}" style="position:absolute;top:50%;left:{percent(answer_token)};width:11px;'
            'height:11px;margin:-6px 0 0 -6px;background:#111827;border:1px solid #fff;transform:rotate(45deg)">'
            "</div>"
        )
    return (
        f'<div role="img" aria-label="{read}" title="whole document: {n_tokens:,} tokens" style="position:relative;'
        'height:18px;margin-top:4px;background:#e5e7eb">'
        f'<div title="{read}" style="position:absolute;top:0;bottom:0;left:{percent(seen[0])};min-width:2px;'
        f'width:calc({percent(seen[1])} - {percent(seen[0])});background:{VIEW_COLORS[view]}"></div>{marker}</div>'
        '<div style="display:flex;justify-content:space-between;font-size:0.75rem;color:#6b7280">'
        f"<span>0</span><span>{n_tokens:,} tokens</span></div>"
    )


def flat(text: str, n: int = 400) -> str:
    """Text on one line, cut at n characters (for tables and titles; not HTML-escaped)."""
    one_line = " ".join(text.split())
    return one_line[:n] + ("..." if len(one_line) > n else "")


def md(text: str) -> str:
    """User or document text made inert inside Streamlit Markdown (links, emphasis, LaTeX, HTML)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def table_html(document: Document, cell: tuple[int, int, int]) -> str:
    """A table answer shown as its table: caption, column headers, rows, the answer's cell marked and its row
    and column headers in bold. All document text is escaped.

    Args:
        document: whose `tables` hold the table.
        cell: (index in document.tables, row, column) of the answer's cell.
    """
    table_index, row, column = cell
    table = document.tables[table_index]
    mark = "background:#fde68a;outline:2px solid #dc2626;font-weight:600"
    head = "".join(
        f'<th style="padding:2px 6px;{"background:#fef3c7" if j == column else ""}">{html.escape(h)}</th>'
        for j, h in enumerate(table.header)
    )
    body = []
    for i, cells in enumerate(table.rows):
        tds = []
        for j, text in enumerate(cells):
            style = mark if (i, j) == (row, column) else ("font-weight:600" if i == row and j == 0 else "")
            tds.append(f'<td style="padding:2px 6px;{style}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    caption = html.escape(table.caption or table.label or f"Table on page {table.page}")
    return (
        '<div style="overflow-x:auto;font-size:0.85rem"><table style="border-collapse:collapse">'
        f'<caption style="caption-side:top;text-align:left;font-style:italic">{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def list_html(document: Document, items: Sequence[tuple[int, int]]) -> str:
    """A list answer as a bulleted list (each item's text escaped, its own bullet or number dropped)."""
    shown = [
        re.sub(r"^(?:[-*•◦▪‣●■□➢–\ue000-\uf8ff]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+", "", document.text[a:b])
        for a, b in items
    ]
    return (
        "<ul style='margin:0.2rem 0'>"
        + "".join(f"<li>{html.escape(flat(t, 300))}</li>" for t in shown)
        + "</ul>"
    )


def rows_html(rows: Sequence[dict[str, object]]) -> str:
    """A small table as plain HTML (headers from the first row's keys, every cell escaped).

    For a few rows that need no sorting or scrolling: an `st.dataframe` is a canvas grid whose drawing costs the
    browser more than the rest of an answer's column (three per question on the Ask page).
    """
    if not rows:
        return ""
    cell = "padding:2px 6px;text-align:left;vertical-align:top;border-bottom:1px solid #e5e7eb"
    head = "".join(f'<th style="{cell}">{html.escape(str(k))}</th>' for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f'<td style="{cell}">{html.escape(str(v))}</td>' for v in row.values()) + "</tr>"
        for row in rows
    )
    return (
        '<div style="overflow-x:auto;font-size:0.85rem"><table style="border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
