"""Running the model for attention: one layer's real probabilities over a window of the document,
and the weight one token gives to every position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longformer_core.plots.pattern import _SPECIAL_PREFIX, _SPECIAL_SUFFIX
from longformer_core.reading.encoding import DocumentTokens, build_input, view_windows

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
        columns, rows = (
            reduce(layer_probs["global_columns"])[:, used],
            reduce(layer_probs["global_rows"])[used],
        )
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
    from longformer_core.model.attention import band_attention_probs

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
        probs[layer],
        layer,
        head,
        head_index=None if head is None else 0,
        doc_start=window_input.doc_start,
        doc_range=window_input.doc_range,
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
        model.tokenizer,
        reader.long_tokens,
        doc_range,
        doc_global=reader.plan.doc_mask,
        global_first=reader.plan.global_first,
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
