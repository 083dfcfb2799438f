"""Plotly figures and HTML of the attention plots: the pattern, its zoom and explainer, one token's
attention over the document and in the text, the band view and what the global tokens read.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from longformer_core.encoding import DocumentTokens
from longformer_core.plots.layers import LayerAttention, TokenWeights
from longformer_core.plots.pattern import (
    _SPECIAL_PREFIX,
    BAND,
    CODE_COLORS,
    CODE_NAMES,
    GLOBAL,
    MAX_CELLS,
    NOT_ATTENDED,
    PADDING,
    TRUNCATED_COLOR,
    PatternGrid,
    PatternSpec,
    cell_edges,
    pattern_grid,
    pattern_region,
    pattern_spec,
)

# --------------------------------------------------------------------------------------------------
# Attention pattern: the figures


def _discrete_colorscale() -> list[list[float | str]]:
    """Four flat colour bands for codes 0..3 (zmin=0, zmax=3)."""
    scale: list[list[float | str]] = []
    for code in range(4):
        color = CODE_COLORS[code]
        scale += [[code / 4, color], [(code + 1) / 4, color]]
    return scale


def _legend_traces() -> list[go.Scatter]:
    """Invisible one-point traces that give the heatmap a legend in words."""
    traces = [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=CODE_NAMES[code],
            marker={
                "symbol": "square",
                "size": 12,
                "color": CODE_COLORS[code],
                "line": {"width": 1, "color": "#888"},
            },
        )
        for code in (BAND, GLOBAL, PADDING, NOT_ATTENDED)
    ]
    traces.append(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines",
            name="what a 512-token model reads",
            line={"color": TRUNCATED_COLOR, "dash": "dash", "width": 2},
        )
    )
    return traces


def _pattern_layout(fig: go.Figure, title: str, height: int) -> None:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        plot_bgcolor="#ffffff",
        legend={"orientation": "h", "y": -0.12},
    )
    # constrain="domain": keep cells square by shrinking the plot, not by padding the axis ranges.
    fig.update_xaxes(title="position read (key)", showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(
        title="reading position (query)",
        autorange="reversed",
        scaleanchor="x",
        showgrid=False,
        zeroline=False,
        constrain="domain",
    )


def pattern_figure(grid: PatternGrid, title: str | None = None, height: int = 650) -> go.Figure:
    """The whole-document pattern: one heatmap cell per grid cell, truncated square and windows outlined.

    Args:
        grid: from pattern_grid.
        title: figure title (escaped); default says the size and the window.
        height: pixels.
    Returns:
        the figure; payload ~2 bytes per cell (uint8 arrays are sent as binary).
    """
    spec = grid.spec
    percent = np.where(grid.coverage > 0, np.maximum(1, np.round(grid.coverage * 100)), 0).astype(np.uint8)
    fig = go.Figure(
        go.Heatmap(
            z=grid.codes,
            x=grid.col_edges - 0.5,  # cell edges, so token i sits at [i - 0.5, i + 0.5]
            y=grid.row_edges - 0.5,
            zmin=0,
            zmax=3,
            colorscale=_discrete_colorscale(),
            showscale=False,
            customdata=percent,
            hovertemplate="reading ~%{y:.0f}, read ~%{x:.0f}<br>%{customdata}% of pairs read<extra></extra>",
            name="pattern",
        )
    )
    for trace in _legend_traces():
        fig.add_trace(trace)
    _add_truncated_square(fig, spec)
    for s, e in spec.windows:
        fig.add_shape(
            type="rect",
            x0=s - 0.5,
            x1=e - 0.5,
            y0=s - 0.5,
            y1=e - 0.5,
            name="window",
            line={"color": "#555", "width": 1, "dash": "dot"},
        )
    cell_note = "" if grid.cell == 1 else f"; one cell = {grid.cell} x {grid.cell} tokens"
    default = f"Who can read whom: {spec.n:,} tokens, window {2 * spec.window + 1} tokens{cell_note}"
    _pattern_layout(fig, html.escape(title) if title else default, height)
    return fig


def _add_truncated_square(fig: go.Figure, spec: PatternSpec) -> None:
    side = min(spec.truncated, spec.padded_length)
    fig.add_shape(
        type="rect",
        x0=-0.5,
        y0=-0.5,
        x1=side - 0.5,
        y1=side - 0.5,
        name="truncated",
        line={"color": TRUNCATED_COLOR, "width": 2, "dash": "dash"},
    )


def zoom_figure(spec: PatternSpec, q0: int, q1: int, k0: int, k1: int, height: int = 550) -> go.Figure:
    """Exact full-resolution pattern of queries [q0, q1) x keys [k0, k1) (each at most MAX_ZOOM long).

    Returns:
        a heatmap figure whose cells are single tokens.
    """
    codes = pattern_region(spec, q0, q1, k0, k1)
    fig = go.Figure(
        go.Heatmap(
            z=codes,
            x0=k0,
            dx=1,
            y0=q0,
            dy=1,
            zmin=0,
            zmax=3,
            colorscale=_discrete_colorscale(),
            showscale=False,
            hovertemplate="reading %{y}, read %{x}<extra></extra>",
            name="zoom",
        )
    )
    for trace in _legend_traces():
        fig.add_trace(trace)
    if k0 < spec.truncated and q0 < spec.truncated:
        _add_truncated_square(fig, spec)
    _pattern_layout(fig, f"Zoom, token by token: reading {q0:,}-{q1 - 1:,}, read {k0:,}-{k1 - 1:,}", height)
    fig.update_xaxes(range=[k0 - 0.5, k1 - 0.5])
    fig.update_yaxes(range=[q1 - 0.5, q0 - 0.5], autorange=False)
    return fig


# The toy document of the explainer: [CLS] + 5 sentences (2 paragraphs, 2 pages) + [SEP] + padding.
_TOY_DOC = [
    "[CLS]",
    "The",
    "lease",
    "starts",
    "in",
    "May",
    ".",
    "Rent",
    "is",
    "due",
    "each",
    "month",
    ".",
    "Pets",
    "are",
    "not",
    "allowed",
    ".",
    "The",
    "tenant",
    "pays",
    "rent",
    "by",
    "transfer",
    ".",
    "Keys",
    "are",
    "returned",
    ".",
    "[SEP]",
]
_TOY_QA = [
    "[CLS]",
    "When",
    "is",
    "rent",
    "due",
    "?",
    "[SEP]",
    "The",
    "lease",
    "starts",
    "in",
    "May",
    ".",
    "Rent",
    "is",
    "due",
    "each",
    "month",
    ".",
    "Pets",
    "are",
    "not",
    "allowed",
    ".",
    "Keys",
    "are",
    "returned",
    ".",
    "[SEP]",
]
_TOY_GLOBALS = {  # strategy -> global positions in _TOY_DOC ([CLS] added for every strategy but "none")
    "none": [],
    "cls": [],
    "sentences": [1, 7, 13, 18, 25],
    "paragraphs": [1, 13],
    "pages": [1, 18],
    "every_k": [1, 9, 17, 25],
    "keywords": [7, 21],
}


def explainer_pattern(strategy: str, n: int = 32, window: int = 4) -> tuple[list[str], PatternSpec]:
    """A toy version of the pattern for one strategy: ~32 word tokens, a window of 2*4+1.

    Args:
        strategy: a key of strategies.STRATEGIES.
        n: tokens including padding (>= the toy sentence's length).
        window: one-sided window.
    Returns:
        (word per position, "(pad)" for padding; the PatternSpec).
    """
    words = list(_TOY_QA if strategy == "question" else _TOY_DOC)
    globals_ = [1, 2, 3, 4, 5] if strategy == "question" else _TOY_GLOBALS.get(strategy, [])
    positions = sorted(set(globals_) | ({0} if strategy != "none" else set()))
    n = max(n, len(words))
    spec = pattern_spec(len(words), window, positions, padded_length=n, truncated=len(words) // 2)
    return words + ["(pad)"] * (n - len(words)), spec


def explainer_figure(strategy: str, n: int = 32, window: int = 4, height: int = 620) -> go.Figure:
    """The idea on a toy sentence: each row is a word reading, each column a word being read.

    Args:
        strategy: a key of strategies.STRATEGIES (its plain-words explanation becomes the subtitle).
        n: tokens including padding.
        window: one-sided window.
    Returns:
        a labelled figure; the truncated square here is half the toy (standing in for 512 of 16,384).
    """
    from longformer_core.strategies import STRATEGIES

    words, spec = explainer_pattern(strategy, n, window)
    grid = pattern_grid(spec, max_cells=len(words))
    labels = [f"{i}: {html.escape(word)}" for i, word in enumerate(words)]
    fig = go.Figure(
        go.Heatmap(
            z=grid.codes,
            x=labels,
            y=labels,
            zmin=0,
            zmax=3,
            colorscale=_discrete_colorscale(),
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate="%{y} reads %{x}<extra></extra>",
        )
    )
    for trace in _legend_traces():
        fig.add_trace(trace)
    fig.data[-1].name = "what a short model reads (here: the first half)"
    side = spec.truncated
    fig.add_shape(
        type="rect",
        x0=-0.5,
        y0=-0.5,
        x1=side - 0.5,
        y1=side - 0.5,
        name="truncated",
        line={"color": TRUNCATED_COLOR, "width": 2, "dash": "dash"},
    )
    known = STRATEGIES.get(strategy)
    title = f"The idea on {len(words)} words, window {2 * window + 1}: {known.label if known else strategy}"
    if known:
        title += f"<br><sup>{html.escape(known.explanation)}</sup>"
    _pattern_layout(fig, title, height)
    fig.update_layout(legend={"y": -0.3})  # below the slanted word labels
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, title="word being read")
    fig.update_yaxes(tickfont={"size": 9}, title="word reading")
    return fig


# --------------------------------------------------------------------------------------------------
# Per-token attention: the figures


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


def _max_pool_rows(x: np.ndarray, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over blocks of rows: (pooled (cells, ...), edges (cells + 1,))."""
    edges = cell_edges(x.shape[0], max_rows)
    return np.maximum.reduceat(x, edges[:-1], axis=0), edges


@dataclass(frozen=True)
class BandView:
    """Every document token's attention to its neighbours, downsampled over tokens.

    Attributes:
        values: (rows, cols) float32, max over the tokens (and offsets) of each cell.
        row_edges: (rows + 1,) document token edges.
        offset_edges: (cols + 1,) relative offset edges, from -w to w + 1.
        layer, head: what is shown (head None: average).
    """

    values: np.ndarray
    row_edges: np.ndarray
    offset_edges: np.ndarray
    layer: int
    head: int | None


def band_view(att: LayerAttention, max_rows: int = MAX_CELLS, max_cols: int = MAX_CELLS) -> BandView:
    """Query position x relative offset -w..w over the pass's document tokens, max-pooled.

    Args:
        att: the layer's attention.
        max_rows, max_cols: most cells per side.
    Returns:
        BandView (global tokens' rows are zero: they read everything, see global_rows_view).
    """
    a, b = att.doc_start, att.doc_start + att.doc_length
    rows, row_edges = _max_pool_rows(att.local[a:b], max_rows)
    cols, col_edges = _max_pool_rows(rows.T, max_cols)
    return BandView(
        cols.T.astype(np.float32), row_edges + att.doc_range[0], col_edges - att.window, att.layer, att.head
    )


def _head_name(layer: int, head: int | None) -> str:
    return f"layer {layer + 1}, " + ("average of all heads" if head is None else f"head {head + 1}")


def band_figure(view: BandView, height: int = 520) -> go.Figure:
    """Heatmap of the band view; the colour scale stops at the 99.5th percentile so details show."""
    vmax = float(np.quantile(view.values, 0.995)) if view.values.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=view.values,
            x=view.offset_edges - 0.5,
            y=view.row_edges - 0.5,
            zmin=0,
            zmax=max(vmax, 1e-6),
            colorscale="Blues",
            colorbar={"title": "attention", "tickformat": ".1%"},
            hovertemplate="token ~%{y:.0f} reading offset %{x:+.0f}: up to %{z:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Band view ({_head_name(view.layer, view.head)}): each row is a token, each column a neighbour",
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis_title="neighbour offset (negative: before, positive: after)",
        yaxis_title="document position (token)",
    )
    fig.update_yaxes(autorange="reversed")
    return fig


@dataclass(frozen=True)
class GlobalRowsView:
    """What each global token reads, over document positions, max-pooled.

    Attributes:
        values: (G, cols) float32.
        col_edges: (cols + 1,) document token edges.
        positions: (G,) input positions of the global tokens.
        doc_tokens: (G,) document token index of each, -1 for special tokens ([CLS]).
    """

    values: np.ndarray
    col_edges: np.ndarray
    positions: np.ndarray
    doc_tokens: np.ndarray
    layer: int
    head: int | None


def global_rows_view(att: LayerAttention, max_cols: int = MAX_CELLS) -> GlobalRowsView:
    """Each global token's global row restricted to the pass's document tokens, max-pooled over columns.

    Args:
        att: the layer's attention.
        max_cols: most columns.
    Returns:
        GlobalRowsView.
    """
    a, b = att.doc_start, att.doc_start + att.doc_length
    pooled, edges = _max_pool_rows(att.global_rows[:, a:b].T, max_cols)
    doc = att.global_positions - a
    doc_tokens = np.where((doc >= 0) & (doc < att.doc_length), doc + att.doc_range[0], -1)
    return GlobalRowsView(
        pooled.T.astype(np.float32),
        edges + att.doc_range[0],
        att.global_positions,
        doc_tokens,
        att.layer,
        att.head,
    )


def global_rows_figure(
    view: GlobalRowsView, labels: Sequence[str] | None = None, height: int | None = None
) -> go.Figure:
    """Heatmap: one row per global token, over document positions.

    Args:
        view: from global_rows_view.
        labels: one per global token (escaped here); default "token i".
        height: pixels; default grows with the number of global tokens.
    """
    g = view.values.shape[0]
    labels = (
        [html.escape(x) for x in labels]
        if labels
        else [f"token {t}" if t >= 0 else _SPECIAL_PREFIX for t in view.doc_tokens]
    )
    vmax = float(np.quantile(view.values, 0.995)) if view.values.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=view.values,
            x=view.col_edges - 0.5,
            y=np.arange(g),
            zmin=0,
            zmax=max(vmax, 1e-6),
            colorscale="Oranges",
            colorbar={"title": "attention", "tickformat": ".1%"},
            hovertemplate="global token #%{y} reading ~%{x:.0f}: up to %{z:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"What the global tokens read ({_head_name(view.layer, view.head)})",
        height=height or min(700, 160 + 22 * g),
        margin={"l": 140, "r": 20, "t": 60, "b": 50},
        xaxis_title="document position (token)",
    )
    fig.update_yaxes(
        autorange="reversed",
        tickvals=list(range(g)) if g <= 60 else None,
        ticktext=labels if g <= 60 else None,
        title="global token",
    )
    return fig
