"""One token's attention: a line over the document (plotly) and the text shaded by it (HTML)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from longformer_core.plots.layers import TokenWeights
from longformer_core.plots.pattern import (
    BAND,
    CODE_COLORS,
    GLOBAL,
    TRUNCATED_COLOR,
)
from longformer_core.reading.encoding import DocumentTokens


def token_label(text: str, tokens: DocumentTokens, token: int) -> str:
    """The document text of a token (not escaped)."""
    a, b = tokens.offsets[token]
    return text[int(a) : int(b)]


def token_attention_figure(
    tw: TokenWeights,
    *,
    label: str = "",
    marks: Sequence[tuple[int, str]] = (),
    max_labelled_pages: int = 60,
    height: int = 380,
) -> go.Figure:
    """Line over document positions: how much the chosen token reads each one.

    Args:
        tw: from document_token_weights.
        label: the chosen token's text (escaped here).
        marks: (token, page label) page boundaries (page_marks); those inside the pass are drawn.
        max_labelled_pages: page lines beyond this many get no text (they would overlap).
        height: pixels.
    Returns:
        figure: the line (float32, sent as binary), the token's neighbourhood shaded, global tokens
        as dots, page boundaries as dotted lines.
    """
    s, e = tw.doc_range
    fig = go.Figure()
    fig.add_vrect(
        x0=max(s, tw.token - tw.window) - 0.5,
        x1=min(e - 1, tw.token + tw.window) + 0.5,
        fillcolor=CODE_COLORS[BAND],
        opacity=0.12,
        line_width=0,
        layer="below",
    )
    fig.add_trace(
        go.Scatter(
            x0=s,
            dx=1,
            y=tw.weights.astype(np.float32),
            mode="lines",
            name="attention",
            line={"color": CODE_COLORS[BAND], "width": 1},
            hovertemplate="token %{x}: %{y:.2%}<extra></extra>",
        )
    )
    if tw.global_tokens.size:
        g = tw.global_tokens
        fig.add_trace(
            go.Scatter(
                x=g,
                y=tw.weights[g - s].astype(np.float32),
                mode="markers",
                name="global tokens",
                marker={"color": CODE_COLORS[GLOBAL], "size": 6},
                hovertemplate="global token %{x}: %{y:.2%}<extra></extra>",
            )
        )
    fig.add_vline(x=tw.token, line={"color": TRUNCATED_COLOR, "width": 1})
    inside = [(t, lab) for t, lab in marks if s <= t < e]
    for i, (t, lab) in enumerate(inside):
        fig.add_vline(
            x=t - 0.5,
            line={"color": "#999", "width": 1, "dash": "dot"},
            annotation_text=f"p. {html.escape(lab)}" if len(inside) <= max_labelled_pages else None,
            annotation_font_size=9,
        )
    specials = ", ".join(f"{name}: {value:.1%}" for name, value in tw.specials.items() if value > 0)
    title = f'What "{html.escape(label)}" (token {tw.token:,}) reads'
    if specials:
        title += f"<br><sup>not shown (special tokens): {specials}</sup>"
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        xaxis_title="document position (token)",
        yaxis_title="share of attention",
        yaxis_tickformat=".1%",
        showlegend=True,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def token_text_html(
    text: str,
    tokens: DocumentTokens,
    tw: TokenWeights,
    *,
    context: int | None = None,
    top_far: int = 10,
    page_of: Callable[[int], int] | None = None,
    max_height_px: int = 420,
) -> str:
    """The text around the chosen token with every token shaded by how much the token reads it.

    All document text is html-escaped. The neighbourhood (context tokens either side, default the
    window) is shown in full; the `top_far` most-read tokens outside it follow, each with a snippet.

    Args:
        text: document text.
        tokens: its tokens (offsets).
        tw: from document_token_weights.
        context: tokens shown either side of the chosen one; default the window w.
        top_far: most-read tokens beyond the neighbourhood to list.
        page_of: char offset -> page number, for the list.
        max_height_px: the block scrolls beyond this height.
    Returns:
        an HTML fragment (a styled <div>).
    """
    s, e = tw.doc_range
    context = tw.window if context is None else context
    a, b = max(s, tw.token - context), min(e, tw.token + context + 1)
    shown = tw.weights[a - s : b - s]
    scale = float(shown.max()) if shown.size and shown.max() > 0 else 1.0
    box_style = (
        f"max-height:{max_height_px}px;overflow-y:auto;line-height:1.9;font-family:sans-serif;"
        "font-size:15px;padding:6px;border:1px solid #ddd;border-radius:6px"
    )
    parts = [f'<div style="{box_style}">']
    parts.append(_shaded_run(text, tokens, tw, a, b, scale))
    parts.append("</div>")
    far = _far_tokens(tw, a, b, top_far)
    if far:
        parts.append(
            '<div style="font-family:sans-serif;font-size:14px;margin-top:8px">'
            "<b>Most-read words further away:</b><ol>"
        )
        for t in far:
            page = f"page {page_of(int(tokens.offsets[t, 0]))}, " if page_of else ""
            snippet = _shaded_run(text, tokens, tw, max(s, t - 4), min(e, t + 5), scale, emphasise=t)
            parts.append(f"<li>{page}token {t:,} ({tw.weights[t - s]:.1%}): {snippet}</li>")
        parts.append("</ol></div>")
    specials = ", ".join(f"{name} {value:.1%}" for name, value in tw.specials.items() if value > 0)
    if specials:
        parts.append(
            f'<div style="font-family:sans-serif;font-size:13px;color:#555">Also read: {specials}.</div>'
        )
    return "".join(parts)


def _shaded_run(
    text: str,
    tokens: DocumentTokens,
    tw: TokenWeights,
    a: int,
    b: int,
    scale: float,
    emphasise: int | None = None,
) -> str:
    """HTML of document tokens [a, b) with the text between them, each token shaded by its weight."""
    s = tw.doc_range[0]
    out: list[str] = []
    cursor = int(tokens.offsets[a, 0])
    for t in range(a, b):
        start, end = int(tokens.offsets[t, 0]), int(tokens.offsets[t, 1])
        if start > cursor:  # the spaces and punctuation the tokenizer skipped
            out.append(html.escape(text[cursor:start]))
        start = max(start, cursor)
        weight = float(tw.weights[t - s])
        alpha = math.sqrt(min(1.0, weight / scale)) if scale > 0 else 0.0  # sqrt: faint weights stay visible
        style = f"background:rgba(245,133,24,{alpha:.2f})"
        if t == tw.token:
            style += ";outline:2px solid #d62728"
        elif t == emphasise:
            style += ";font-weight:bold"
        tip = html.escape(f"token {t}: {weight:.2%}", quote=True)
        out.append(f'<span style="{style}" title="{tip}">{html.escape(text[start:end])}</span>')
        cursor = max(cursor, end)
    return "".join(out)


def _far_tokens(tw: TokenWeights, a: int, b: int, k: int) -> list[int]:
    """The k most-read document tokens outside [a, b), highest first."""
    s = tw.doc_range[0]
    weights = tw.weights.copy()
    weights[a - s : b - s] = -1.0
    k = min(k, int((weights > 0).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-weights, k - 1)[:k]
    return [int(i) + s for i in top[np.argsort(-weights[top])]]
