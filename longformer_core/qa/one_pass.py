"""One-pass long reading for question answering (the paper's TriviaQA/HotpotQA reader), and its chunked twin.

`read_one_pass` gives the Longformer the whole document in **one** forward pass when it fits
(`ONE_PASS_TOKENS` = 4,096 tokens, question and special tokens included), else the best-matching
retrieved regions of at least `REGION_TOKENS` = 2,048 tokens concatenated into one pass. The question
tokens (and [CLS]) get global attention, and the answer is the best span under ONE softmax over every
start/end position of that pass: there is no merging of windows, so two paragraphs far apart are read
together.

`read_chunks` reads the same text as separate 512-token chunks (the chunked view's windows) with the
same kind of head; the best span over all chunks wins. `truncated=True` reads only the first chunk.

Yes/no questions (HotpotQA comparisons) need an answer the text may not hold: a small classifier
(`AnswerTypeHead`: span / yes / no) on the mean of the [CLS] and question states. For the Longformer
those are its global tokens, which attended to the whole document; for the chunked view every chunk
gets a vote and the mean of the chunks' probabilities decides. A head without a trained classifier
(today's shipped head) answers every question with a span.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from longformer_core.model.qa_head import ANSWER_TYPES, AnswerTypeHead
from longformer_core.model.registry import LoadedModel
from longformer_core.qa.spans import best_spans
from longformer_core.reading.encoding import (
    DocumentTokens,
    WindowInput,
    build_input,
    model_kwargs,
    tokenizer_call,
    view_windows,
    window_capacity,
)

ONE_PASS_TOKENS = 4096  # longest single pass (special tokens and question included); the paper's length
REGION_TOKENS = 2048  # shortest retrieved region when the document does not fit in one pass
MAX_ANSWER_TOKENS = 30


@dataclass
class SpanModel:
    """A QA network and what it needs to read: tokenizer, limits, device, optional answer-type head."""

    model: LoadedModel  # tokenizer, max_tokens, device, is_longformer
    module: nn.Module  # a *ForQuestionAnswering model (e.g. LoadedModel.span_model)
    answer_type: AnswerTypeHead | None = None
    reader_globals: str = "question"  # what else it saw global in training (LoadedModel.reader_globals)

    @classmethod
    def of(
        cls, model: LoadedModel, answer_type: AnswerTypeHead | None = None, module: nn.Module | None = None
    ) -> SpanModel:
        """The reader of a loaded model: its own QA head, else its `span_model`; refuses a model with neither."""
        if module is None and answer_type is None and model.head != "qa":
            answer_type = model.answer_type  # the embedded Longformer's long reader brings its classifier
        module = module or (model.model if model.head == "qa" else model.span_model)
        if module is None:
            raise ValueError(
                f"'{model.name}' has no extractive QA head: load the embedded default with its QA head "
                "(assets/qa_head) or a checkpoint fine-tuned for question answering."
            )
        globals_ = model.reader_globals if model.long_reader and module is model.span_model else "question"
        return cls(model=model, module=module, answer_type=answer_type, reader_globals=globals_)


def qa_forward(
    module: nn.Module,
    kwargs: dict[str, torch.Tensor],
    pool_mask: torch.Tensor,
    answer_type: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Start/end logits (as HF's *ForQuestionAnswering computes them) and answer-type logits.

    Args:
        module: a *ForQuestionAnswering model (encoder under `base_model_prefix`, span layer `qa_outputs`).
        kwargs: model inputs, each (batch, L).
        pool_mask: (batch, L) 1 on the positions pooled for the answer type ([CLS] + question).
        answer_type: the span/yes/no head, or None.
    Returns:
        (start (batch, L), end (batch, L), type logits (batch, 3) or None).
    """
    encoder = getattr(module, module.base_model_prefix)
    hidden = encoder(**kwargs)[0]  # (batch, L, hidden)
    logits = module.qa_outputs(hidden)  # (batch, L, 2)
    start, end = logits.split(1, dim=-1)
    type_logits = None
    if answer_type is not None:
        weights = pool_mask.to(hidden.dtype).unsqueeze(-1)  # (batch, L, 1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (batch, hidden)
        type_logits = answer_type(pooled)
    return start.squeeze(-1), end.squeeze(-1), type_logits


def pool_mask_of(win: WindowInput) -> torch.Tensor:
    """(1, L) mask of [CLS] and the question tokens of one window (what the answer-type head pools)."""
    mask = torch.zeros_like(win.input_ids)
    mask[0, 0] = 1
    if win.question_range is not None:
        mask[0, win.question_range[0] : win.question_range[1]] = 1
    return mask


@dataclass
class ReadAnswer:
    """One view's answer to one question, and what it read."""

    text: str  # the answer: a span of the document, or "yes" / "no"
    kind: str  # "span" | "yes" | "no"
    score: float  # span: start+end logit of the best span; yes/no: the classifier's probability
    char_span: tuple[int, int] | None  # document characters of a span answer
    passes: list[list[tuple[int, int]]] = field(
        default_factory=list
    )  # document-token ranges, per forward pass
    type_probabilities: dict[str, float] | None = None  # span/yes/no, when a classifier decided
    seconds: float = 0.0


def sub_tokens(tokens: DocumentTokens, ranges: Sequence[tuple[int, int]]) -> DocumentTokens:
    """The tokens of several document ranges, concatenated (offsets still point into the document)."""
    ids = np.concatenate([tokens.ids[s:e] for s, e in ranges])
    offsets = np.concatenate([tokens.offsets[s:e] for s, e in ranges])
    return DocumentTokens(ids, offsets)


def sub_mask(mask: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    """A per-token mask of the document cut to several ranges, concatenated (as `sub_tokens` cuts the tokens)."""
    return np.concatenate([mask[s:e] for s, e in ranges])


def select_regions(
    tokens: DocumentTokens, text: str, question: str, capacity: int, region_tokens: int = REGION_TOKENS
) -> list[tuple[int, int]]:
    """Document-token regions that fill one pass of `capacity` tokens, closest to the question first.

    The pass holds k = capacity // region_tokens regions of capacity // k tokens each (so each is at least
    `region_tokens` long). Candidates start every quarter region; each is scored by the TF-IDF cosine
    (unigrams + bigrams, sublinear tf, fitted on the document's pieces of up to 128 tokens) of its pieces with the
    question, summed; the best non-overlapping ones are kept, returned in document order.
    """
    n = len(tokens)
    if n <= capacity:
        return [(0, n)]
    k = max(1, capacity // region_tokens)
    size = capacity // k
    piece = max(8, min(128, size // 4))  # pieces must fit several times in a region to tell regions apart
    pieces = [(s, min(n, s + piece)) for s in range(0, n, piece)]
    piece_texts = [text[slice(*tokens.char_span(s, e))] for s, e in pieces]
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(piece_texts + [question])
        matrix = vectorizer.transform(piece_texts)  # rows are L2-normalised
        piece_scores = (matrix @ vectorizer.transform([question]).T).toarray().ravel()
    except ValueError:  # no usable words (e.g. only numbers/punctuation): keep the document order
        piece_scores = np.zeros(len(pieces))
    starts = sorted({*range(0, n - size, max(1, size // 4)), n - size})
    scored = []
    for s in starts:
        inside = [piece_scores[i] for i, (a, b) in enumerate(pieces) if a >= s and b <= s + size]
        scored.append((float(np.sum(inside)), -s, s))
    chosen: list[tuple[int, int]] = []
    for _, _, s in sorted(scored, reverse=True):
        if len(chosen) == k:
            break
        if all(s + size <= a or s >= b for a, b in chosen):
            chosen.append((s, s + size))
    return sorted(chosen)


def _decide(
    spans_found: list[tuple[float, int, int]],
    tokens: DocumentTokens,
    text: str,
    type_probs: np.ndarray | None,
) -> tuple[str, str, float, tuple[int, int] | None]:
    """(answer text, kind, score, char span) from the best span and the answer-type probabilities."""
    if type_probs is not None and int(np.argmax(type_probs)) > 0:
        kind = ANSWER_TYPES[int(np.argmax(type_probs))]
        return kind, kind, float(type_probs.max()), None
    if not spans_found:
        return "", "span", float("-inf"), None
    score, a, b = max(spans_found)
    span = tokens.char_span(a, b + 1)
    return text[span[0] : span[1]], "span", score, span


def window_logits(
    reader: SpanModel,
    tokens: DocumentTokens,
    doc_range: tuple[int, int],
    q_ids: list[int],
    doc_global: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One forward pass over document tokens `doc_range` with the question (global on a Longformer), in the
    model's arithmetic (bf16 autocast where the hardware has it).

    doc_global: (len(tokens),) global attention of document tokens (a strategy's mask; Longformer only).
    Returns:
        (start logits (e - s,), end logits (e - s,) of the window's document tokens, answer-type probabilities
        (3,) or None).
    """
    model = reader.model
    s, e = doc_range
    win = build_input(
        model.tokenizer,
        tokens,
        doc_range,
        question_ids=q_ids,
        doc_global=doc_global if model.is_longformer else None,
        global_first=model.is_longformer,
        global_question=model.is_longformer,
    )
    with model.autocast():
        start, end, type_logits = qa_forward(
            reader.module, model_kwargs(model, win), pool_mask_of(win).to(model.device), reader.answer_type
        )
    doc = slice(win.doc_start, win.doc_start + e - s)
    probs = None if type_logits is None else torch.softmax(type_logits[0].float(), -1).cpu().numpy()
    return start[0, doc].float().cpu().numpy(), end[0, doc].float().cpu().numpy(), probs


def _read_window(
    reader: SpanModel,
    tokens: DocumentTokens,
    doc_range: tuple[int, int],
    q_ids: list[int],
    max_answer_tokens: int,
    doc_global: np.ndarray | None = None,
) -> tuple[list[tuple[float, int, int]], np.ndarray | None]:
    """The best span of one forward pass (`window_logits`).

    Returns:
        ([(score, first doc token, last doc token)] of the best span, answer-type probabilities or None).
    """
    start, end, probs = window_logits(reader, tokens, doc_range, q_ids, doc_global)
    spans, _ = best_spans(start, end, (0, len(start)), 1, max_answer_tokens)
    s = doc_range[0]
    return [(sp.score, s + sp.start, s + sp.end) for sp in spans], probs


@torch.inference_mode()
def read_one_pass(
    reader: SpanModel,
    tokens: DocumentTokens,
    text: str,
    question: str,
    max_tokens: int = ONE_PASS_TOKENS,
    region_tokens: int = REGION_TOKENS,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    doc_global: np.ndarray | None = None,
) -> ReadAnswer:
    """Answer with one forward pass over the whole document, or over retrieved regions when it is longer.

    Args:
        reader: a Longformer QA reader (a 512-token model works too, on documents that fit).
        tokens: the document's tokens for the reader's tokenizer.
        text: the document text (offsets of `tokens` point into it).
        question: the question.
        max_tokens: longest pass, special tokens and question included (capped by the model's limit).
        region_tokens: shortest retrieved region when the document does not fit.
        max_answer_tokens: longest answer span.
        doc_global: (len(tokens),) document tokens global besides the question (a strategy's mask), or None.
    Returns:
        ReadAnswer with one entry in `passes`.
    """
    t0 = time.perf_counter()
    model = reader.model
    q_ids = tokenizer_call(model.tokenizer, question, add_special_tokens=False)["input_ids"]
    limited = model.limited_to(min(max_tokens, model.max_tokens))
    capacity = window_capacity(limited, model.tokenizer, len(q_ids))
    ranges = select_regions(tokens, text, question, capacity, region_tokens)
    whole = ranges == [(0, len(tokens))]
    sub = tokens if whole else sub_tokens(tokens, ranges)
    if doc_global is not None and not whole:
        doc_global = sub_mask(doc_global, ranges)
    found, type_probs = _read_window(reader, sub, (0, len(sub)), q_ids, max_answer_tokens, doc_global)
    answer, kind, score, span = _decide(found, sub, text, type_probs)
    return ReadAnswer(
        answer,
        kind,
        score,
        span,
        passes=[list(ranges)],
        type_probabilities=None if type_probs is None else dict(zip(ANSWER_TYPES, map(float, type_probs))),
        seconds=time.perf_counter() - t0,
    )


@torch.inference_mode()
def read_chunks(
    reader: SpanModel,
    tokens: DocumentTokens,
    text: str,
    question: str,
    truncated: bool = False,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> ReadAnswer:
    """Answer from separate 512-token chunks (the chunked view's windows); the best span over all wins.

    Args:
        reader: a 512-token QA reader (the baseline's `span_model`).
        tokens: the document's tokens for the reader's tokenizer.
        text: the document text.
        question: the question.
        truncated: read only the first chunk (the truncated view).
        max_answer_tokens: longest answer span.
    Returns:
        ReadAnswer with one entry in `passes` per chunk; yes/no from the mean of the chunks' probabilities.
    """
    t0 = time.perf_counter()
    model = reader.model
    q_ids = tokenizer_call(model.tokenizer, question, add_special_tokens=False)["input_ids"]
    windows = view_windows(
        model, model.tokenizer, len(tokens), "truncated" if truncated else "chunked", len(q_ids)
    )
    found: list[tuple[float, int, int]] = []
    type_votes = []
    for window in windows:
        spans, probs = _read_window(reader, tokens, window, q_ids, max_answer_tokens)
        found += spans
        if probs is not None:
            type_votes.append(probs)
    type_probs = np.mean(type_votes, axis=0) if type_votes else None
    answer, kind, score, span = _decide(found, tokens, text, type_probs)
    return ReadAnswer(
        answer,
        kind,
        score,
        span,
        passes=[[w] for w in windows],
        type_probabilities=None if type_probs is None else dict(zip(ANSWER_TYPES, map(float, type_probs))),
        seconds=time.perf_counter() - t0,
    )
