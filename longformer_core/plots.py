"""Attention plots that work on whole documents (100 to 50,000 tokens): the data as numpy, plus plotly figures.

Tools such as bertviz draw a line per token pair and stall beyond a few hundred tokens; none knows
Longformer's band format. Everything here stays small however long the document is:

* **Attention pattern** (`pattern_grid`, `pattern_figure`): which keys each query may attend to
  (sliding band, global rows/columns, padding) with the 512 x 512 square a truncated model sees laid
  over it. It is computed per *cell* of an at most ~600 x 600 grid by interval arithmetic, never as
  an n x n matrix, and max-pooled so a single global row stays visible at 50,000 tokens.
  `pattern_region` gives the exact full-resolution pattern of a small region (zoom);
  `explainer_figure` a 32-token toy version labelled with words.
* **Per-token attention** (`compute_layer_attention`, `token_weights`, `token_attention_figure`,
  `token_text_html`): the model's real probabilities (from `attention.band_attention_probs`, in band
  format) for one layer and head (or the head average) turned into the weight one chosen token gives
  to every position, as a line over the document and as shaded text. `band_view` shows every token's
  attention to its neighbours (query x offset -w..w); `global_rows_view` what each global token reads.
* **Cost** (`attention_cost`): attended (query, key) pairs and attention FLOPs against full n^2 attention.

No streamlit here: the app's page (pages/attention.py) only lays these out.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from longformer_core.encoding import DocumentTokens, build_input, special_template, view_windows
from longformer_core.models import BASELINE_TOKENS

# Pattern cell codes, ordered so that max pooling keeps the most informative thing in a cell.
NOT_ATTENDED, PADDING, BAND, GLOBAL = 0, 1, 2, 3
CODE_NAMES = {
    NOT_ATTENDED: "not read",
    PADDING: "padding (filler, never read)",
    BAND: "neighbourhood (sliding window)",
    GLOBAL: "global token (reads and is read by all)",
}
CODE_COLORS = {NOT_ATTENDED: "#ffffff", PADDING: "#d0d0d0", BAND: "#4c78a8", GLOBAL: "#f58518"}
TRUNCATED_COLOR = "#d62728"
MAX_CELLS = 600  # grid side: enough detail for a screen, ~0.5 MB of uint8 per figure
MAX_ZOOM = 1000  # side of the largest exact (full-resolution) region
_SPECIAL_PREFIX = "start marker"
_SPECIAL_SUFFIX = "end marker"


# --------------------------------------------------------------------------------------------------
# Attention pattern: the data


@dataclass(frozen=True)
class PatternSpec:
    """Which (query, key) pairs a Longformer pass may attend to, in interval form (no matrix).

    Positions are input positions of one pass ([CLS] doc [SEP]) or, for documents read in several
    windows, document token positions.

    Attributes:
        n: real tokens; positions [n, padded_length) are padding.
        window: one-sided window w: query q reads keys k with |q - k| <= w.
        global_positions: (G,) int64 sorted, unique positions of global tokens (all < n).
        global_spans: (G, 2) int64 [lo, hi): global token g reads keys in [lo, hi) and is read by the
            queries in [lo, hi) (the whole pass, or the windows holding g when there are several).
        padded_length: length of the pass after padding (HF pads to a multiple of 2w).
        truncated: side of the square a truncated (512-token) model reads, starting at 0.
        windows: (start, end) of each separately read window, for outlines; empty for one pass.
    """

    n: int
    window: int
    global_positions: np.ndarray
    global_spans: np.ndarray
    padded_length: int
    truncated: int = BASELINE_TOKENS
    windows: tuple[tuple[int, int], ...] = ()

    @property
    def n_global(self) -> int:
        return int(self.global_positions.shape[0])


def pattern_spec(
    n: int,
    window: int,
    global_positions: Sequence[int] | np.ndarray = (),
    *,
    padded_length: int | None = None,
    truncated: int = BASELINE_TOKENS,
    global_spans: np.ndarray | None = None,
    windows: Sequence[tuple[int, int]] = (),
) -> PatternSpec:
    """Validate and normalise a pattern description.

    Args:
        n: number of real tokens (>= 1).
        window: one-sided window w (>= 0).
        global_positions: positions of global tokens in [0, n) (any order, duplicates allowed).
        padded_length: total length with padding (>= n); default n.
        truncated: side of the truncated model's square.
        global_spans: (G, 2) [lo, hi) reach of each (sorted, unique) global; default [0, n).
        windows: outlines of separately read windows.
    Returns:
        the PatternSpec.
    Raises:
        ValueError: a position outside [0, n), a padded length below n, or a bad span.
    """
    if n < 1 or window < 0:
        raise ValueError(f"Need n >= 1 and window >= 0, got n={n}, window={window}.")
    positions = np.unique(np.asarray(global_positions, dtype=np.int64))
    if positions.size and (positions[0] < 0 or positions[-1] >= n):
        raise ValueError(f"Global positions must lie in [0, {n}).")
    padded = n if padded_length is None else int(padded_length)
    if padded < n:
        raise ValueError(f"padded_length {padded} is shorter than n={n}.")
    if global_spans is None:
        spans = np.tile(np.array([0, n], dtype=np.int64), (positions.size, 1))
    else:
        spans = np.asarray(global_spans, dtype=np.int64).reshape(-1, 2)
        ok = (spans[:, 0] <= positions) & (positions < spans[:, 1]) & (spans[:, 0] >= 0) & (spans[:, 1] <= n)
        if spans.shape[0] != positions.size or not bool(ok.all()):
            raise ValueError("global_spans needs one [lo, hi) per global position, containing it, inside [0, n).")
    return PatternSpec(n, int(window), positions, spans, padded, int(truncated), tuple(windows))


def padded_length_for(length: int, window: int) -> int:
    """Length HF's Longformer pads an input to: the next multiple of the two-sided window 2w."""
    step = 2 * window
    return length if step == 0 else -(-length // step) * step


def document_pattern_spec(
    n_doc: int,
    window: int,
    doc_global: np.ndarray,
    global_first: bool,
    windows: Sequence[tuple[int, int]],
    *,
    n_prefix: int = 1,
    n_suffix: int = 1,
) -> PatternSpec:
    """The pattern of a whole document as the model reads it.

    One window: input positions of the single pass ([CLS] + doc + [SEP], padded to a multiple of 2w).
    Several windows: document token positions; each window's own first token ([CLS]) is drawn at the
    window's first document token, and a global token reaches only the windows that hold it (every
    position's span is the union of those windows, so "reads" and "is read by" stay symmetric).

    Args:
        n_doc: document tokens.
        window: one-sided window w.
        doc_global: (n_doc,) bool, the strategy's global document tokens.
        global_first: the first token of each pass is global.
        windows: document token ranges read in one pass each (encoding.view_windows).
        n_prefix: special tokens before the document in a pass (1: [CLS]).
        n_suffix: special tokens after it (1: [SEP]).
    Returns:
        the PatternSpec.
    """
    doc_positions = np.flatnonzero(np.asarray(doc_global, dtype=bool)[:n_doc])
    if len(windows) <= 1:
        n = n_prefix + n_doc + n_suffix
        positions = doc_positions + n_prefix
        if global_first:
            positions = np.concatenate([[0], positions])
        return pattern_spec(n, window, positions, padded_length=padded_length_for(n, window))
    starts = np.array([s for s, _ in windows], dtype=np.int64)
    ends = np.array([e for _, e in windows], dtype=np.int64)
    positions = np.unique(np.concatenate([doc_positions, starts if global_first else []]).astype(np.int64))
    # Windows overlap and are sorted, so the windows holding a position form one interval.
    inside = (starts[None, :] <= positions[:, None]) & (positions[:, None] < ends[None, :])
    lo = np.where(inside, starts[None, :], n_doc).min(axis=1)
    hi = np.where(inside, ends[None, :], 0).max(axis=1)
    # A truncated model reads [CLS] + (512 - specials) document tokens: its square in document positions.
    return pattern_spec(
        n_doc,
        window,
        positions,
        truncated=BASELINE_TOKENS - n_prefix - n_suffix,
        global_spans=np.stack([lo, hi], axis=1),
        windows=[(int(s), int(e)) for s, e in windows],
    )


def reader_pattern_spec(reader) -> PatternSpec:
    """The pattern of a DocumentReader's Longformer view (its tokens, strategy and windows).

    Args:
        reader: a longformer_core.reader.DocumentReader.
    Returns:
        the PatternSpec (see document_pattern_spec).
    """
    model = reader.pair.longformer
    tokens = reader.long_tokens
    windows = view_windows(model, model.tokenizer, len(tokens), "longformer")
    template = special_template(model.tokenizer)
    return document_pattern_spec(
        len(tokens),
        (model.attention_window or 0) // 2,
        reader.plan.doc_mask,
        reader.plan.global_first,
        windows,
        n_prefix=len(template.single_prefix),
        n_suffix=len(template.single_suffix),
    )


@dataclass(frozen=True)
class PatternGrid:
    """The pattern downsampled to cells.

    Attributes:
        codes: (rows, cols) uint8, max over the cell's pairs of NOT_ATTENDED < PADDING < BAND < GLOBAL.
        coverage: (rows, cols) float64, share of the cell's (query, key) pairs that are attended.
        row_edges: (rows + 1,) int64 query position edges: cell i holds queries [row_edges[i], row_edges[i+1]).
        col_edges: (cols + 1,) int64 key position edges.
        spec: what was drawn.
    """

    codes: np.ndarray
    coverage: np.ndarray
    row_edges: np.ndarray
    col_edges: np.ndarray
    spec: PatternSpec

    @property
    def cell(self) -> int:
        """Tokens per cell side (the last cell may hold fewer)."""
        return int(self.row_edges[1] - self.row_edges[0])


def cell_edges(length: int, max_cells: int = MAX_CELLS) -> np.ndarray:
    """Edges of equal cells (the last one possibly shorter) covering [0, length), at most max_cells.

    Returns:
        (cells + 1,) int64, starting at 0 and ending at length.
    """
    step = max(1, math.ceil(length / max_cells))
    return np.append(np.arange(0, length, step, dtype=np.int64), np.int64(length))


def pattern_grid(spec: PatternSpec, max_cells: int = MAX_CELLS) -> PatternGrid:
    """Downsample the pattern to at most max_cells x max_cells cells, exactly, in O(cells^2 + G * cells).

    Args:
        spec: the pattern.
        max_cells: most cells per side.
    Returns:
        PatternGrid: codes max-pooled over each cell, and the exact share of attended pairs per cell.
    """
    edges = cell_edges(spec.padded_length, max_cells)
    counts = _pair_counts(spec, edges, edges)
    codes = np.full(counts.band.shape, NOT_ATTENDED, dtype=np.uint8)
    rows_real = _real_sizes(edges, spec.n)
    sizes = np.diff(edges)
    has_padding = (rows_real[:, None] < sizes[:, None]) | (rows_real[None, :] < sizes[None, :])
    codes[has_padding] = PADDING
    codes[counts.band > 0] = BAND
    codes[counts.with_global > 0] = GLOBAL
    coverage = counts.attended / (sizes[:, None] * sizes[None, :]).astype(np.float64)
    return PatternGrid(codes, coverage, edges, edges, spec)


def pattern_region(spec: PatternSpec, q0: int, q1: int, k0: int, k1: int) -> np.ndarray:
    """The exact, full-resolution pattern of queries [q0, q1) x keys [k0, k1) (the zoom).

    Args:
        spec: the pattern.
        q0, q1: query range, inside [0, padded_length), at most MAX_ZOOM long.
        k0, k1: key range, likewise.
    Returns:
        (q1 - q0, k1 - k0) uint8 codes (NOT_ATTENDED, PADDING, BAND, GLOBAL).
    Raises:
        ValueError: a range outside the pass or longer than MAX_ZOOM.
    """
    for a, b in ((q0, q1), (k0, k1)):
        if not 0 <= a < b <= spec.padded_length or b - a > MAX_ZOOM:
            raise ValueError(f"Zoom ranges must lie in [0, {spec.padded_length}) and be at most {MAX_ZOOM} long.")
    q = np.arange(q0, q1, dtype=np.int64)[:, None]
    k = np.arange(k0, k1, dtype=np.int64)[None, :]
    q_lo, q_hi = _span_lookup(spec, q[:, 0])
    k_lo, k_hi = _span_lookup(spec, k[0])
    reads_all = (k >= q_lo[:, None]) & (k < q_hi[:, None])  # q is global and k is in its reach
    read_by_all = (q >= k_lo[None, :]) & (q < k_hi[None, :])  # k is global and q is in its reach
    codes = np.where(np.abs(q - k) <= spec.window, BAND, NOT_ATTENDED).astype(np.uint8)
    codes[reads_all | read_by_all] = GLOBAL
    codes[(q >= spec.n) | (k >= spec.n)] = PADDING
    return codes


def _span_lookup(spec: PatternSpec, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) reach of each position: its span when global, the empty [0, 0) otherwise."""
    lo = np.zeros(positions.shape, dtype=np.int64)
    hi = np.zeros(positions.shape, dtype=np.int64)
    idx = np.searchsorted(spec.global_positions, positions)
    idx_ok = np.minimum(idx, max(spec.n_global - 1, 0))
    is_global = (idx < spec.n_global) & (spec.global_positions[idx_ok] == positions) if spec.n_global else idx < 0
    lo[is_global] = spec.global_spans[idx_ok[is_global], 0]
    hi[is_global] = spec.global_spans[idx_ok[is_global], 1]
    return lo, hi


@dataclass(frozen=True)
class _PairCounts:
    """Per cell: pairs in the band, pairs involving a global token, and all attended pairs."""

    band: np.ndarray
    with_global: np.ndarray
    attended: np.ndarray


def _real_sizes(edges: np.ndarray, n: int) -> np.ndarray:
    """Non-padding positions in each cell."""
    return np.clip(np.minimum(edges[1:], n) - edges[:-1], 0, None)


def _pair_counts(spec: PatternSpec, row_edges: np.ndarray, col_edges: np.ndarray) -> _PairCounts:
    """Count attended (query, key) pairs in every cell by inclusion-exclusion over intervals.

    attended = |Band u Rows u Cols| where Rows: the query is global and the key in its reach, Cols:
    the key is global and the query in its reach (all over real tokens). Each term is a sum of
    interval overlaps, so the cost is O(cells^2 + G * cells), whatever n is.
    """
    n, w = spec.n, spec.window
    ra, rb = row_edges[:-1], np.maximum(row_edges[:-1], np.minimum(row_edges[1:], n))
    ca, cb = col_edges[:-1], np.maximum(col_edges[:-1], np.minimum(col_edges[1:], n))
    band = _band_pairs(ra[:, None], rb[:, None], ca[None, :], cb[None, :], w)
    shape = band.shape
    rows, cols, both, band_rows, band_cols, band_both = (np.zeros(shape, np.int64) for _ in range(6))
    g = spec.global_positions
    if g.size:
        lo, hi = spec.global_spans[:, 0:1], spec.global_spans[:, 1:2]
        blo, bhi = np.maximum(lo, g[:, None] - w), np.minimum(hi, g[:, None] + w + 1)  # band part of the reach
        g_row = np.searchsorted(row_edges, g, side="right") - 1
        g_col = np.searchsorted(col_edges, g, side="right") - 1
        np.add.at(rows, g_row, _overlap(lo, hi, ca[None, :], cb[None, :]))
        np.add.at(band_rows, g_row, _overlap(blo, bhi, ca[None, :], cb[None, :]))
        np.add.at(cols.T, g_col, _overlap(lo, hi, ra[None, :], rb[None, :]))
        np.add.at(band_cols.T, g_col, _overlap(blo, bhi, ra[None, :], rb[None, :]))
        np.add.at(both, g_row, _globals_between(g, np.maximum(lo, ca[None, :]), np.minimum(hi, cb[None, :])))
        np.add.at(band_both, g_row, _globals_between(g, np.maximum(blo, ca[None, :]), np.minimum(bhi, cb[None, :])))
    with_global = rows + cols - both
    attended = band + with_global - band_rows - band_cols + band_both
    return _PairCounts(band=band, with_global=with_global, attended=attended)


def _overlap(lo1: np.ndarray, hi1: np.ndarray, lo2: np.ndarray, hi2: np.ndarray) -> np.ndarray:
    """Length of [lo1, hi1) n [lo2, hi2), broadcast."""
    return np.clip(np.minimum(hi1, hi2) - np.maximum(lo1, lo2), 0, None)


def _globals_between(g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many of the sorted positions g lie in [lo, hi), broadcast."""
    return np.clip(np.searchsorted(g, hi) - np.searchsorted(g, lo), 0, None)


def _band_pairs(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, w: int) -> np.ndarray:
    """#{(q, k): a <= q < b, c <= k < d, |q - k| <= w} in closed form, broadcast over the arrays.

    With S(t) = #{k - q <= t} = sum_q clip(q + t + 1 - c, 0, d - c), the band is S(w) - S(-w - 1),
    and each S is a difference of H(u) = sum_{v < u} clip(v, 0, L), a piecewise quadratic.
    """
    length = np.maximum(d - c, 0)

    def h(u: np.ndarray) -> np.ndarray:
        u = np.maximum(u, 0)
        inside = u * (u - 1) // 2
        beyond = length * (length + 1) // 2 + (u - 1 - length) * length
        return np.where(u <= length + 1, inside, beyond)

    def below(t: int) -> np.ndarray:
        return h(b + t + 1 - c) - h(a + t + 1 - c)

    return np.where(b > a, below(w) - below(-w - 1), 0)


# --------------------------------------------------------------------------------------------------
# Cost


@dataclass(frozen=True)
class AttentionCost:
    """What one strategy's attention costs on one document, against full n^2 attention.

    FLOPs count the two matmuls per attended pair (scores q.k and the weighted sum of values),
    2 * head_dim each, for every head and layer; softmax and projections are left out (they are the
    same for both).
    """

    n_tokens: int
    window: int
    n_global: int
    attended_pairs: int  # per head and layer
    full_pairs: int
    flops: float
    full_flops: float

    @property
    def share(self) -> float:
        """Attended pairs as a share of all n^2 pairs."""
        return self.attended_pairs / self.full_pairs if self.full_pairs else 0.0

    @property
    def saving(self) -> float:
        """How many times less attention work than full attention."""
        return self.full_flops / self.flops if self.flops else math.inf


def attention_cost(spec: PatternSpec, *, heads: int = 12, head_dim: int = 64, layers: int = 12) -> AttentionCost:
    """Global tokens, attended pairs and estimated attention FLOPs of a pattern.

    Args:
        spec: the pattern (padding excluded from the counts).
        heads, head_dim, layers: the model's shape (embedded default: 12, 32, 6).
    Returns:
        AttentionCost.
    """
    whole = np.array([0, spec.padded_length], dtype=np.int64)
    pairs = int(_pair_counts(spec, whole, whole).attended[0, 0])
    per_pair = 4.0 * head_dim * heads * layers
    return AttentionCost(
        n_tokens=spec.n,
        window=spec.window,
        n_global=spec.n_global,
        attended_pairs=pairs,
        full_pairs=spec.n * spec.n,
        flops=per_pair * pairs,
        full_flops=per_pair * spec.n * spec.n,
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
            x=[None], y=[None], mode="markers", name=CODE_NAMES[code],
            marker={"symbol": "square", "size": 12, "color": CODE_COLORS[code],
                    "line": {"width": 1, "color": "#888"}},
        )
        for code in (BAND, GLOBAL, PADDING, NOT_ATTENDED)
    ]
    traces.append(go.Scatter(x=[None], y=[None], mode="lines", name="what a 512-token model reads",
                             line={"color": TRUNCATED_COLOR, "dash": "dash", "width": 2}))
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
    fig.update_yaxes(title="reading position (query)", autorange="reversed", scaleanchor="x", showgrid=False,
                     zeroline=False, constrain="domain")


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
        fig.add_shape(type="rect", x0=s - 0.5, x1=e - 0.5, y0=s - 0.5, y1=e - 0.5, name="window",
                      line={"color": "#555", "width": 1, "dash": "dot"})
    cell_note = "" if grid.cell == 1 else f"; one cell = {grid.cell} x {grid.cell} tokens"
    default = f"Who can read whom: {spec.n:,} tokens, window {2 * spec.window + 1} tokens{cell_note}"
    _pattern_layout(fig, html.escape(title) if title else default, height)
    return fig


def _add_truncated_square(fig: go.Figure, spec: PatternSpec) -> None:
    side = min(spec.truncated, spec.padded_length)
    fig.add_shape(type="rect", x0=-0.5, y0=-0.5, x1=side - 0.5, y1=side - 0.5, name="truncated",
                  line={"color": TRUNCATED_COLOR, "width": 2, "dash": "dash"})


def zoom_figure(spec: PatternSpec, q0: int, q1: int, k0: int, k1: int, height: int = 550) -> go.Figure:
    """Exact full-resolution pattern of queries [q0, q1) x keys [k0, k1) (each at most MAX_ZOOM long).

    Returns:
        a heatmap figure whose cells are single tokens.
    """
    codes = pattern_region(spec, q0, q1, k0, k1)
    fig = go.Figure(
        go.Heatmap(z=codes, x0=k0, dx=1, y0=q0, dy=1, zmin=0, zmax=3, colorscale=_discrete_colorscale(),
                   showscale=False, hovertemplate="reading %{y}, read %{x}<extra></extra>", name="zoom")
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
_TOY_DOC = ["[CLS]", "The", "lease", "starts", "in", "May", ".", "Rent", "is", "due", "each", "month", ".", "Pets", "are", "not", "allowed", ".", "The", "tenant", "pays", "rent", "by", "transfer", ".", "Keys", "are", "returned", ".", "[SEP]"]
_TOY_QA = ["[CLS]", "When", "is", "rent", "due", "?", "[SEP]", "The", "lease", "starts", "in", "May", ".", "Rent", "is", "due", "each", "month", ".", "Pets", "are", "not", "allowed", ".", "Keys", "are", "returned", ".", "[SEP]"]
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
        go.Heatmap(z=grid.codes, x=labels, y=labels, zmin=0, zmax=3, colorscale=_discrete_colorscale(),
                   showscale=False, xgap=1, ygap=1, hovertemplate="%{y} reads %{x}<extra></extra>")
    )
    for trace in _legend_traces():
        fig.add_trace(trace)
    fig.data[-1].name = "what a short model reads (here: the first half)"
    side = spec.truncated
    fig.add_shape(type="rect", x0=-0.5, y0=-0.5, x1=side - 0.5, y1=side - 0.5, name="truncated",
                  line={"color": TRUNCATED_COLOR, "width": 2, "dash": "dash"})
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
# Per-token attention: the data


@dataclass(frozen=True)
class LayerAttention:
    """One layer's attention in one pass, for one head or the head average, as numpy.

    Attributes:
        layer: layer index (0-based).
        head: head index, or None for the average over heads.
        window: one-sided window w.
        local: (L, 2w+1) float32; column c is key i - w + c; zero rows for global and padding tokens.
        global_positions: (G,) int64 input positions of the global tokens.
        global_columns: (L, G) float32 every token's attention to each global token.
        global_rows: (G, L) float32 each global token's attention to every token.
        doc_start: input position of the first document token.
        doc_range: document tokens [s, e) in this pass.
    """

    layer: int
    head: int | None
    window: int
    local: np.ndarray
    global_positions: np.ndarray
    global_columns: np.ndarray
    global_rows: np.ndarray
    doc_start: int = 0
    doc_range: tuple[int, int] = (0, 0)

    @property
    def length(self) -> int:
        return int(self.local.shape[0])

    @property
    def doc_length(self) -> int:
        return self.doc_range[1] - self.doc_range[0]

    def input_position(self, doc_token: int) -> int:
        """Input position of a document token that lies in this pass."""
        if not self.doc_range[0] <= doc_token < self.doc_range[1]:
            s, e = self.doc_range
            raise ValueError(f"Token {doc_token} is outside this pass (tokens {s}-{e - 1}).")
        return self.doc_start + doc_token - self.doc_range[0]

    def global_doc_tokens(self) -> np.ndarray:
        """Document token indices of the global tokens that are document tokens."""
        doc = self.global_positions - self.doc_start
        keep = (doc >= 0) & (doc < self.doc_length)
        return doc[keep] + self.doc_range[0]


def layer_attention(
    layer_probs: dict,
    layer: int,
    head: int | None = None,
    *,
    head_index: int | None = None,
    batch: int = 0,
    doc_start: int = 0,
    doc_range: tuple[int, int] | None = None,
) -> LayerAttention:
    """Reduce one layer of band_attention_probs' output to one head (or the head average), as numpy.

    Args:
        layer_probs: band_attention_probs(...)[layer].
        layer: its index (kept for labels).
        head: model head number for labels; None means "average".
        head_index: index into the kept heads; None averages all kept heads.
        batch: which example.
        doc_start: input position of the first document token.
        doc_range: document tokens [s, e) in the pass; default all input positions.
    Returns:
        LayerAttention; unused global slots (position -1) are dropped.
    """

    def reduce(t) -> np.ndarray:  # (h, ...) -> (...)
        x = t[batch].float()
        x = x.mean(dim=0) if head_index is None else x[head_index]
        return x.cpu().numpy().astype(np.float32)

    local = reduce(layer_probs["local"])
    n = local.shape[0]
    if "global_positions" in layer_probs:
        positions = layer_probs["global_positions"][batch].cpu().numpy().astype(np.int64)
        used = positions >= 0
        columns, rows = reduce(layer_probs["global_columns"])[:, used], reduce(layer_probs["global_rows"])[used]
        positions = positions[used]
    else:
        positions = np.zeros(0, np.int64)
        columns, rows = np.zeros((n, 0), np.float32), np.zeros((0, n), np.float32)
    return LayerAttention(
        layer=layer,
        head=head,
        window=int(layer_probs["window"]),
        local=local,
        global_positions=positions,
        global_columns=columns,
        global_rows=rows,
        doc_start=doc_start,
        doc_range=doc_range if doc_range is not None else (0, n),
    )


def compute_layer_attention(model, window_input, layer: int, head: int | None = None) -> LayerAttention:
    """Run the model once on one pass and keep one layer's attention (one head, or the average).

    Only that layer's probabilities are kept, and only for the asked head, so a 16,384-token pass
    holds (16,384 x 513) floats instead of 12 times that.

    Args:
        model: an HF Longformer model (LongformerModel or a task model).
        window_input: encoding.WindowInput (input_ids, attention_mask, global_attention_mask (1, L)).
        layer: 0-based layer.
        head: 0-based head, or None for the average over heads.
    Returns:
        LayerAttention for the pass.
    """
    from longformer_core.attention import band_attention_probs

    device = next(model.parameters()).device
    probs = band_attention_probs(
        model,
        window_input.input_ids.to(device),
        attention_mask=window_input.attention_mask.to(device),
        global_attention_mask=window_input.global_attention_mask.to(device),
        layers=[layer],
        heads=None if head is None else [head],
    )
    return layer_attention(
        probs[layer], layer, head, head_index=None if head is None else 0,
        doc_start=window_input.doc_start, doc_range=window_input.doc_range,
    )


def token_window(reader, token: int) -> tuple[int, int]:
    """The document tokens of the pass that reads `token` (the window where it is most central).

    Documents up to the model's limit (16,384 tokens) have one pass; longer ones are read in
    overlapping windows, and a token's attention is taken from the window where it sits furthest from
    an edge, as the reader merges token states.

    Args:
        reader: a DocumentReader.
        token: document token index.
    Returns:
        (start, end) document tokens.
    """
    model = reader.pair.longformer
    windows = view_windows(model, model.tokenizer, len(reader.long_tokens), "longformer")
    return most_central_window(windows, token)


def most_central_window(windows: Sequence[tuple[int, int]], token: int) -> tuple[int, int]:
    """The window holding `token` furthest from either edge (the first one on ties)."""
    holding = [(s, e) for s, e in windows if s <= token < e]
    if not holding:
        raise ValueError(f"Token {token} is in no window.")
    return max(holding, key=lambda se: min(token - se[0], se[1] - 1 - token))


def reader_layer_attention(
    reader, doc_range: tuple[int, int], layer: int, head: int | None = None
) -> LayerAttention:
    """One layer's attention on one pass of a DocumentReader's Longformer view (its strategy's globals).

    Args:
        reader: a DocumentReader.
        doc_range: document tokens of the pass (token_window).
        layer, head: as compute_layer_attention.
    Returns:
        LayerAttention.
    """
    model = reader.pair.longformer
    win = build_input(
        model.tokenizer, reader.long_tokens, doc_range,
        doc_global=reader.plan.doc_mask, global_first=reader.plan.global_first,
    )
    return compute_layer_attention(model.model, win, layer, head)


def token_weights(att: LayerAttention, query: int) -> np.ndarray:
    """The attention one query gives to every input position: exactly the model's probabilities.

    Band columns go to their keys, global columns to the global tokens (HF removes global keys from
    the band, so nothing is counted twice); a global query's row is its global row.

    Args:
        att: the layer's attention.
        query: input position.
    Returns:
        (L,) float64; sums to 1 for a real token, all zero for padding.
    """
    if not 0 <= query < att.length:
        raise ValueError(f"Query {query} outside the pass of {att.length} tokens.")
    hit = np.flatnonzero(att.global_positions == query)
    if hit.size:
        return att.global_rows[hit[0]].astype(np.float64)
    out = np.zeros(att.length, dtype=np.float64)
    w = att.window
    keys = np.arange(query - w, query + w + 1)
    valid = (keys >= 0) & (keys < att.length)
    out[keys[valid]] = att.local[query, valid]
    np.add.at(out, att.global_positions, att.global_columns[query].astype(np.float64))
    return out


@dataclass(frozen=True)
class TokenWeights:
    """What one document token reads, over document positions.

    Attributes:
        token: the chosen document token.
        doc_range: document tokens [s, e) of the pass.
        weights: (e - s,) float64 attention to each document token of the pass.
        specials: attention to the pass's special tokens ("start marker" [CLS], "end marker" [SEP]).
        global_tokens: document token indices of the global tokens in the pass.
        window: one-sided window w.
    """

    token: int
    doc_range: tuple[int, int]
    weights: np.ndarray
    specials: dict[str, float]
    global_tokens: np.ndarray
    window: int

    @property
    def total(self) -> float:
        return float(self.weights.sum() + sum(self.specials.values()))


def document_token_weights(att: LayerAttention, token: int) -> TokenWeights:
    """token_weights for a document token, split into document positions and special tokens.

    Args:
        att: the layer's attention on a pass holding `token`.
        token: document token index.
    Returns:
        TokenWeights.
    """
    full = token_weights(att, att.input_position(token))
    a, b = att.doc_start, att.doc_start + att.doc_length
    specials = {_SPECIAL_PREFIX: float(full[:a].sum()), _SPECIAL_SUFFIX: float(full[b:].sum())}
    return TokenWeights(token, att.doc_range, full[a:b], specials, att.global_doc_tokens(), att.window)


def page_marks(document, tokens: DocumentTokens) -> list[tuple[int, str]]:
    """(first document token, printed label) of every page after the first.

    Args:
        document: a documents.Document.
        tokens: its tokens.
    Returns:
        list of (token index, page label), in order.
    """
    if len(tokens) == 0:
        return []
    return [(tokens.token_at(page.start), page.label) for page in document.pages[1:]]


def word_matches(text: str, word: str, limit: int = 50, context: int = 40) -> list[tuple[int, str]]:
    """Where a word occurs (whole word, any case), with a little context to choose from.

    Args:
        text: document text.
        word: what the user typed (taken literally, not as a regex).
        limit: most matches returned.
        context: characters shown either side.
    Returns:
        list of (char offset, "...context...") in document order; plain text (not escaped).
    """
    word = word.strip()
    if not word:
        return []
    out = []
    for m in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, flags=re.IGNORECASE):
        snippet = text[max(0, m.start() - context) : m.end() + context].replace("\n", " ")
        out.append((m.start(), f"...{snippet}..."))
        if len(out) >= limit:
            break
    return out


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
    fig.add_vrect(x0=max(s, tw.token - tw.window) - 0.5, x1=min(e - 1, tw.token + tw.window) + 0.5,
                  fillcolor=CODE_COLORS[BAND], opacity=0.12, line_width=0, layer="below")
    fig.add_trace(go.Scatter(x0=s, dx=1, y=tw.weights.astype(np.float32), mode="lines", name="attention",
                             line={"color": CODE_COLORS[BAND], "width": 1},
                             hovertemplate="token %{x}: %{y:.2%}<extra></extra>"))
    if tw.global_tokens.size:
        g = tw.global_tokens
        fig.add_trace(go.Scatter(x=g, y=tw.weights[g - s].astype(np.float32), mode="markers", name="global tokens",
                                 marker={"color": CODE_COLORS[GLOBAL], "size": 6},
                                 hovertemplate="global token %{x}: %{y:.2%}<extra></extra>"))
    fig.add_vline(x=tw.token, line={"color": TRUNCATED_COLOR, "width": 1})
    inside = [(t, lab) for t, lab in marks if s <= t < e]
    for i, (t, lab) in enumerate(inside):
        fig.add_vline(x=t - 0.5, line={"color": "#999", "width": 1, "dash": "dot"},
                      annotation_text=f"p. {html.escape(lab)}" if len(inside) <= max_labelled_pages else None,
                      annotation_font_size=9)
    specials = ", ".join(f"{name}: {value:.1%}" for name, value in tw.specials.items() if value > 0)
    title = f"What \"{html.escape(label)}\" (token {tw.token:,}) reads"
    if specials:
        title += f"<br><sup>not shown (special tokens): {specials}</sup>"
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 70, "b": 50},
                      xaxis_title="document position (token)", yaxis_title="share of attention",
                      yaxis_tickformat=".1%", showlegend=True, legend={"orientation": "h", "y": -0.25})
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
    parts = [(f'<div style="max-height:{max_height_px}px;overflow-y:auto;line-height:1.9;'
             'font-family:sans-serif;font-size:15px;padding:6px;border:1px solid #ddd;border-radius:6px">')]
    parts.append(_shaded_run(text, tokens, tw, a, b, scale))
    parts.append("</div>")
    far = _far_tokens(tw, a, b, top_far)
    if far:
        parts.append('<div style="font-family:sans-serif;font-size:14px;margin-top:8px">'
                     "<b>Most-read words further away:</b><ol>")
        for t in far:
            page = f"page {page_of(int(tokens.offsets[t, 0]))}, " if page_of else ""
            snippet = _shaded_run(text, tokens, tw, max(s, t - 4), min(e, t + 5), scale, emphasise=t)
            parts.append(f"<li>{page}token {t:,} ({tw.weights[t - s]:.1%}): {snippet}</li>")
        parts.append("</ol></div>")
    specials = ", ".join(f"{name} {value:.1%}" for name, value in tw.specials.items() if value > 0)
    if specials:
        parts.append(f'<div style="font-family:sans-serif;font-size:13px;color:#555">Also read: {specials}.</div>')
    return "".join(parts)


def _shaded_run(
    text: str, tokens: DocumentTokens, tw: TokenWeights, a: int, b: int, scale: float, emphasise: int | None = None
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
    return BandView(cols.T.astype(np.float32), row_edges + att.doc_range[0], col_edges - att.window,
                    att.layer, att.head)


def _head_name(layer: int, head: int | None) -> str:
    return f"layer {layer + 1}, " + ("average of all heads" if head is None else f"head {head + 1}")


def band_figure(view: BandView, height: int = 520) -> go.Figure:
    """Heatmap of the band view; the colour scale stops at the 99.5th percentile so details show."""
    vmax = float(np.quantile(view.values, 0.995)) if view.values.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=view.values, x=view.offset_edges - 0.5, y=view.row_edges - 0.5, zmin=0, zmax=max(vmax, 1e-6),
        colorscale="Blues", colorbar={"title": "attention", "tickformat": ".1%"},
        hovertemplate="token ~%{y:.0f} reading offset %{x:+.0f}: up to %{z:.1%}<extra></extra>",
    ))
    fig.update_layout(
        title=f"Band view ({_head_name(view.layer, view.head)}): each row is a token, each column a neighbour",
        height=height, margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis_title="neighbour offset (negative: before, positive: after)", yaxis_title="document position (token)",
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
    return GlobalRowsView(pooled.T.astype(np.float32), edges + att.doc_range[0], att.global_positions,
                          doc_tokens, att.layer, att.head)


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
    labels = [html.escape(x) for x in labels] if labels else [
        f"token {t}" if t >= 0 else _SPECIAL_PREFIX for t in view.doc_tokens]
    vmax = float(np.quantile(view.values, 0.995)) if view.values.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=view.values, x=view.col_edges - 0.5, y=np.arange(g), zmin=0, zmax=max(vmax, 1e-6), colorscale="Oranges",
        colorbar={"title": "attention", "tickformat": ".1%"},
        hovertemplate="global token #%{y} reading ~%{x:.0f}: up to %{z:.1%}<extra></extra>",
    ))
    fig.update_layout(
        title=f"What the global tokens read ({_head_name(view.layer, view.head)})",
        height=height or min(700, 160 + 22 * g), margin={"l": 140, "r": 20, "t": 60, "b": 50},
        xaxis_title="document position (token)",
    )
    fig.update_yaxes(autorange="reversed", tickvals=list(range(g)) if g <= 60 else None,
                     ticktext=labels if g <= 60 else None, title="global token")
    return fig
