"""Tokens with character offsets, and the input of one forward pass.

A document is tokenized once, without special tokens (`tokenize`, in slices on line boundaries); every window
is then assembled from that one token array with the tokenizer's own special tokens (`build_input`: BERT or
RoBERTa style, the question first when there is one) and its global-attention mask.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class DocumentTokens:
    """A document's tokens (no special tokens) and the character span of each."""

    ids: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n, 2) int64 char [start, end) in the document text

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def token_at(self, char_offset: int) -> int:
        """Index of the first token that ends after `char_offset` (clamped to the last token)."""
        i = int(np.searchsorted(self.offsets[:, 1], char_offset, side="right"))
        return min(i, len(self) - 1)

    def char_span(self, start_token: int, end_token: int) -> tuple[int, int]:
        """Character span [start, end) covered by tokens [start_token, end_token)."""
        end_token = max(end_token, start_token + 1)
        return int(self.offsets[start_token, 0]), int(self.offsets[end_token - 1, 1])

    def tokens_in(self, char_start: int, char_end: int) -> tuple[int, int]:
        """Token range [t0, t1) of the tokens overlapping chars [char_start, char_end)."""
        t0 = int(np.searchsorted(self.offsets[:, 1], char_start, side="right"))
        t1 = int(np.searchsorted(self.offsets[:, 0], char_end, side="left"))
        return t0, max(t1, t0)


_TOKENIZER_LOCK = threading.Lock()


def tokenizer_call(tokenizer: PreTrainedTokenizerBase, *args: object, **kwargs: object):
    """Call a tokenizer under one process-wide lock.

    A fast tokenizer sets truncation and padding on its shared Rust backend for the length of each call, so two
    threads using it at once (a background reading and a question) can see each other's settings. Calls are
    short (a whole document's slice is ~0.1 s), so one lock costs nothing measurable.
    """
    with _TOKENIZER_LOCK:
        return tokenizer(*args, **kwargs)


def tokenize(tokenizer: PreTrainedTokenizerBase, text: str, stop_after: int | None = None) -> DocumentTokens:
    """Tokenize a whole document once, keeping character offsets.

    Args:
        tokenizer: a fast (Rust) tokenizer.
        text: the document text (any length).
        stop_after: stop early once more than this many tokens are found (the caller refuses such
            documents; no need to tokenize millions of tokens to say so).
    Returns:
        DocumentTokens with ids and offsets (only the first slices' when stopped early: more than
        `stop_after` tokens, fewer than the whole text).
    """
    # Tokenize in slices on line boundaries: one call on millions of characters is fine for the Rust
    # tokenizer, but slices keep memory flat and avoid the "sequence too long" warning.
    ids: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    slice_chars = 100_000
    start = 0
    while start < len(text):
        end = min(len(text), start + slice_chars)
        if end < len(text):
            cut = text.rfind("\n", start + slice_chars // 2, end)
            end = cut + 1 if cut > start else end
        enc = tokenizer_call(
            tokenizer, text[start:end], add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        if enc["input_ids"]:
            ids.append(np.asarray(enc["input_ids"], dtype=np.int64))
            offsets.append(np.asarray(enc["offset_mapping"], dtype=np.int64) + start)
        start = end
        if stop_after is not None and sum(len(chunk) for chunk in ids) > stop_after:
            break
    if not ids:
        return DocumentTokens(np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    return DocumentTokens(np.concatenate(ids), np.concatenate(offsets))


@dataclass(frozen=True)
class SpecialTemplate:
    """Where a tokenizer puts its special tokens for `q` alone and for the pair `(q, doc)`."""

    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]
    pair_prefix: tuple[int, ...]
    pair_middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    second_type_id: int  # token_type_id of the second segment (1 for BERT, 0 for RoBERTa)


@lru_cache(maxsize=16)
def _template_cached(tokenizer: PreTrainedTokenizerBase) -> SpecialTemplate:
    single = tokenizer("a", add_special_tokens=True)["input_ids"]
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    pair_enc = tokenizer("a", "b", add_special_tokens=True, return_token_type_ids=True)
    pair = pair_enc["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    i = single.index(a[0])
    pi = pair.index(a[0])
    pj = len(pair) - 1 - pair[::-1].index(b[-1])
    type_ids = pair_enc.get("token_type_ids") or [0] * len(pair)
    return SpecialTemplate(
        single_prefix=tuple(single[:i]),
        single_suffix=tuple(single[i + len(a) :]),
        pair_prefix=tuple(pair[:pi]),
        pair_middle=tuple(pair[pi + len(a) : pj - len(b) + 1]),
        pair_suffix=tuple(pair[pj + 1 :]),
        second_type_id=int(type_ids[pj]),
    )


def special_template(tokenizer: PreTrainedTokenizerBase) -> SpecialTemplate:
    return _template_cached(tokenizer)


@dataclass
class WindowInput:
    """One forward pass's input and where the document tokens sit inside it."""

    input_ids: torch.Tensor  # (1, L)
    attention_mask: torch.Tensor  # (1, L)
    token_type_ids: torch.Tensor  # (1, L)
    global_attention_mask: torch.Tensor  # (1, L) 1 = global attention
    doc_start: int  # input position of the first document token
    doc_range: tuple[int, int]  # document token range [start, end) in this window
    question_range: tuple[int, int] | None  # input positions of the question tokens


def build_input(
    tokenizer: PreTrainedTokenizerBase,
    doc: DocumentTokens,
    doc_range: tuple[int, int],
    question_ids: Sequence[int] | None = None,
    doc_global: np.ndarray | None = None,
    global_first: bool = False,
    global_question: bool = False,
) -> WindowInput:
    """Assemble `[CLS] question [SEP] doc[start:end] [SEP]` (or `[CLS] doc [SEP]`) for one window.

    Args:
        tokenizer: decides the special tokens (BERT or RoBERTa style).
        doc: the document tokens.
        doc_range: which document tokens go in.
        question_ids: question token ids (no special tokens), or None.
        doc_global: (len(doc),) bool, global attention for document tokens (the strategy's mask).
        global_first: give the first token ([CLS] / <s>) global attention.
        global_question: give every question token global attention (the paper's QA setting).
    """
    t = special_template(tokenizer)
    s, e = doc_range
    body = doc.ids[s:e].tolist()
    if question_ids is not None and len(question_ids):
        q = list(question_ids)
        ids = list(t.pair_prefix) + q + list(t.pair_middle) + body + list(t.pair_suffix)
        q_range = (len(t.pair_prefix), len(t.pair_prefix) + len(q))
        doc_start = q_range[1] + len(t.pair_middle)
        types = [0] * doc_start + [t.second_type_id] * (len(ids) - doc_start)
    else:
        ids = list(t.single_prefix) + body + list(t.single_suffix)
        q_range = None
        doc_start = len(t.single_prefix)
        types = [0] * len(ids)
    glob = np.zeros(len(ids), dtype=np.int64)
    if global_first:
        glob[0] = 1
    if global_question and q_range:
        glob[q_range[0] : q_range[1]] = 1
    if doc_global is not None:
        glob[doc_start : doc_start + (e - s)] = doc_global[s:e]
    return WindowInput(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        token_type_ids=torch.tensor([types]),
        global_attention_mask=torch.from_numpy(glob)[None],
        doc_start=doc_start,
        doc_range=(s, e),
        question_range=q_range,
    )
