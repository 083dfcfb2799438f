"""The attention pattern as data: which keys each query may attend to, per cell of a small grid
(interval arithmetic, never an n x n matrix), the exact pattern of a zoomed region, and its cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longformer_core.model.registry import BASELINE_TOKENS
from longformer_core.reading.encoding import special_template, view_windows

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
_GLOBALS_PER_BLOCK = 2048  # globals counted at once in a grid (each block's tables: ~10 MB at 600 cells)
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
            raise ValueError(
                "global_spans needs one [lo, hi) per global position, containing it, inside [0, n)."
            )
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
    # Windows overlap and are sorted (starts and ends both increase), so the windows holding a position form
    # one interval: from the first that ends after it to the last that starts at or before it. Found by binary
    # search: a (globals x windows) table was gigabytes for a book read with a global token per sentence.
    first = np.searchsorted(ends, positions, side="right")
    last = np.searchsorted(starts, positions, side="right") - 1
    lo, hi = starts[first], ends[last]
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
        reader: a longformer_core.reading.document_reading.DocumentReader.
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
            raise ValueError(
                f"Zoom ranges must lie in [0, {spec.padded_length}) and be at most {MAX_ZOOM} long."
            )
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
    is_global = (
        (idx < spec.n_global) & (spec.global_positions[idx_ok] == positions) if spec.n_global else idx < 0
    )
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
    # Globals a block at a time: each term is a (globals x cells) table, ~1 GB at once for a book with a global
    # token per sentence.
    for first in range(0, g.size, _GLOBALS_PER_BLOCK):
        block = slice(first, first + _GLOBALS_PER_BLOCK)
        gb = g[block]
        lo, hi = spec.global_spans[block, 0:1], spec.global_spans[block, 1:2]
        blo, bhi = (
            np.maximum(lo, gb[:, None] - w),
            np.minimum(hi, gb[:, None] + w + 1),
        )  # band part of the reach
        g_row = np.searchsorted(row_edges, gb, side="right") - 1
        g_col = np.searchsorted(col_edges, gb, side="right") - 1
        np.add.at(rows, g_row, _overlap(lo, hi, ca[None, :], cb[None, :]))
        np.add.at(band_rows, g_row, _overlap(blo, bhi, ca[None, :], cb[None, :]))
        np.add.at(cols.T, g_col, _overlap(lo, hi, ra[None, :], rb[None, :]))
        np.add.at(band_cols.T, g_col, _overlap(blo, bhi, ra[None, :], rb[None, :]))
        np.add.at(both, g_row, _globals_between(g, np.maximum(lo, ca[None, :]), np.minimum(hi, cb[None, :])))
        np.add.at(
            band_both, g_row, _globals_between(g, np.maximum(blo, ca[None, :]), np.minimum(bhi, cb[None, :]))
        )
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


def attention_cost(
    spec: PatternSpec, *, heads: int = 12, head_dim: int = 64, layers: int = 12
) -> AttentionCost:
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
