"""Plotly figures of the attention pattern: the whole document, a zoomed region, and the 32-token explainer."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from longformer_core.plots.pattern import (
    BAND,
    CODE_COLORS,
    CODE_NAMES,
    GLOBAL,
    NOT_ATTENDED,
    PADDING,
    TRUNCATED_COLOR,
    PatternGrid,
    PatternSpec,
    pattern_grid,
    pattern_region,
    pattern_spec,
)


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
_TOY_SENTENCES = [
    "The lease starts in May .",
    "Rent is due each month .",
    "Pets are not allowed .",
    "The tenant pays rent by transfer .",
    "Keys are returned .",
]
_TOY_DOC = ["[CLS]", *" ".join(_TOY_SENTENCES).split(), "[SEP]"]
# The question setting: the question first, then the document without the tenant sentence.
_TOY_QA = [
    "[CLS]",
    *["When", "is", "rent", "due", "?"],
    "[SEP]",
    *" ".join(_TOY_SENTENCES[:3] + _TOY_SENTENCES[4:]).split(),
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
    from longformer_core.reading.strategies import STRATEGIES

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
