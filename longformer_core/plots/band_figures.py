"""Every token's attention to its neighbours (the band view) and what the global tokens read, as heatmaps."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from longformer_core.plots.layers import LayerAttention
from longformer_core.plots.pattern import (
    _SPECIAL_PREFIX,
    MAX_CELLS,
    cell_edges,
)


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
