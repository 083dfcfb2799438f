"""Which document tokens each view reads: windows of the model's length over one token array.

- longformer: windows of up to `max_tokens`, overlapping by `LONG_OVERLAP` when a document is longer than one;
- truncated: the first window only;
- chunked: consecutive windows of the 512-token model overlapping by `CHUNK_OVERLAP`.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from longformer_core.model.registry import LoadedModel
from longformer_core.reading.tokenization import special_template

VIEWS = ("truncated", "chunked", "longformer")


LONG_OVERLAP = 1024  # tokens shared by consecutive Longformer windows (two one-sided windows)


CHUNK_OVERLAP = 128  # tokens shared by consecutive 512-token chunks (the usual SQuAD doc stride)


def plan_windows(n_tokens: int, capacity: int, overlap: int) -> list[tuple[int, int]]:
    """Cover [0, n_tokens) with windows of at most `capacity` tokens overlapping by `overlap`.

    The last window is shifted back to end exactly at n_tokens, so no window is tiny.
    """
    if n_tokens <= capacity:
        return [(0, n_tokens)]
    stride = max(1, capacity - overlap)
    windows = []
    start = 0
    while True:
        end = min(start + capacity, n_tokens)
        windows.append((max(0, end - capacity), end))
        if end >= n_tokens:
            return windows
        start += stride


def window_capacity(model: LoadedModel, tokenizer: PreTrainedTokenizerBase, n_question: int = 0) -> int:
    """Document tokens that fit in one forward pass next to the special tokens and the question."""
    t = special_template(tokenizer)
    n_special = (
        len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)
        if n_question
        else (len(t.single_prefix) + len(t.single_suffix))
    )
    capacity = model.max_tokens - n_special - n_question
    if capacity < 16:
        raise ValueError(
            f"The question is too long for this model ({n_question} tokens of {model.max_tokens}): shorten it."
        )
    return capacity


def view_windows(
    model: LoadedModel, tokenizer: PreTrainedTokenizerBase, n_tokens: int, view: str, n_question: int = 0
) -> list[tuple[int, int]]:
    """Document-token windows a view reads (the truncated view reads only the first)."""
    capacity = window_capacity(model, tokenizer, n_question)
    if view == "truncated":
        return [(0, min(n_tokens, capacity))]
    if view == "chunked":
        return plan_windows(n_tokens, capacity, CHUNK_OVERLAP)
    if view == "longformer":
        return plan_windows(n_tokens, capacity, LONG_OVERLAP)
    raise ValueError(f"Unknown view '{view}': choose one of {', '.join(VIEWS)}")
