"""Training data of the long-context readers: whole SQuAD articles and HotpotQA questions, cut into windows.

Each question gets a window of `window_tokens` tokens holding its gold paragraph(s) at a seeded random place
(`build_windows`); the chunked reader reads the same document ranges as 512-token chunks (`chunk_windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longformer_core.qa.one_pass import ANSWER_TYPES, pool_mask_of
from longformer_core.reading.encoding import (
    CHUNK_OVERLAP,
    DocumentTokens,
    build_input,
    plan_windows,
    special_template,
    tokenize,
)

WINDOW_TOKENS = 2048  # the Longformer reader's training window (special tokens and question included)
CHUNK_TOKENS = 512  # the chunked reader's chunk length


@dataclass
class LongExample:
    """One question over a long text, with every gold answer span and the text it must see."""

    id: str
    source: str  # "squad" | "hotpot"
    question: str
    text: str
    kind: str  # "span" | "yes" | "no"
    answers: list[tuple[int, int]]  # char spans of the answer (every occurrence for HotpotQA)
    evidence: tuple[int, int]  # char span the window should hold (gold paragraph(s)), when it fits


def squad_article_examples(path: str | Path, exclude_titles: Sequence[str] = ()) -> list[LongExample]:
    """Questions over whole SQuAD articles (article-level file: paragraphs joined by blank lines)."""
    from longformer_core.evaluation.squad import _paragraph_range, load_squad_articles

    out = []
    for article in load_squad_articles(path):
        if article["title"] in set(exclude_titles):
            continue
        for qa in article["qas"]:
            spans = sorted(
                {(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa.get("answers", [])}
            )
            if not spans:
                continue
            out.append(
                LongExample(
                    qa["id"],
                    "squad",
                    qa["question"],
                    article["context"],
                    "span",
                    spans,
                    _paragraph_range(article, qa),
                )
            )
    return out


def hotpot_train_examples(path: str | Path) -> list[LongExample]:
    """The HotpotQA questions that `hotpot.is_heldout` leaves for training, answers found in the text."""
    import re

    from longformer_core.evaluation.hotpot import is_heldout, load_hotpot

    out = []
    for q in load_hotpot(path):
        if is_heldout(q.id):
            continue
        golds = [q.paragraphs[i] for i in q.gold] or [(0, len(q.text))]
        evidence = (min(a for a, _ in golds), max(b for _, b in golds))
        answer = q.answer.strip()
        if answer.lower() in ("yes", "no"):
            out.append(LongExample(q.id, "hotpot", q.question, q.text, answer.lower(), [], evidence))
            continue
        spans = [m.span() for m in re.finditer(re.escape(answer), q.text)] or [
            m.span() for m in re.finditer(re.escape(answer), q.text, flags=re.IGNORECASE)
        ]
        if spans:
            out.append(LongExample(q.id, "hotpot", q.question, q.text, "span", spans, evidence))
    return out


@dataclass
class TrainWindow:
    """One training input and its labels (positions in the input)."""

    input_ids: list[int]
    token_type_ids: list[int]
    global_attention_mask: list[int]
    pool_mask: list[int]  # [CLS] + question: what the answer-type head pools
    starts: list[int]  # gold start positions (empty for yes/no)
    ends: list[int]
    answer_type: int  # index in ANSWER_TYPES
    doc_range: tuple[int, int]  # document tokens in the window
    example: int  # index of the example


def _window_range(
    n: int, capacity: int, must: tuple[int, int], fallback: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int]:
    """A document-token range of `capacity` tokens holding `must` (else `fallback`) at a random place."""
    if n <= capacity:
        return 0, n
    a, b = must if must[1] - must[0] <= capacity else fallback
    lo, hi = max(0, b - capacity), min(a, n - capacity)
    s = int(rng.integers(lo, hi + 1)) if hi >= lo else max(0, min(a, n - capacity))
    return s, s + capacity


def build_windows(
    tokenizer, examples: Sequence[LongExample], window_tokens: int, seed: int = 0, longformer: bool = True
) -> list[TrainWindow]:
    """One window of at most `window_tokens` per example, holding its evidence (or first answer).

    Args:
        tokenizer: the reader's tokenizer.
        examples: the questions.
        window_tokens: input length, special tokens and question included.
        seed: where in the window the evidence lands.
        longformer: give [CLS] and the question global attention.
    """
    rng = np.random.default_rng(seed)
    t = special_template(tokenizer)
    n_special = len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)
    token_cache: dict[str, DocumentTokens] = {}
    out = []
    for i, ex in enumerate(examples):
        if ex.text not in token_cache:
            token_cache = {ex.text: tokenize(tokenizer, ex.text)}  # consecutive questions share an article
        tokens = token_cache[ex.text]
        q_ids = tokenizer(ex.question, add_special_tokens=False)["input_ids"][: window_tokens // 4]
        capacity = window_tokens - n_special - len(q_ids)
        gold = [tokens.tokens_in(a, b) for a, b in ex.answers]
        gold = [(a, b - 1) for a, b in gold if b > a]
        if ex.kind == "span" and not gold:
            continue
        evidence = tokens.tokens_in(*ex.evidence)
        first = (gold[0][0], gold[0][1] + 1) if gold else evidence
        s, e = _window_range(len(tokens), capacity, evidence, first, rng)
        win = build_input(
            tokenizer, tokens, (s, e), question_ids=q_ids, global_first=longformer, global_question=longformer
        )
        inside = [(a, b) for a, b in gold if s <= a and b < e]
        if ex.kind == "span" and not inside:
            continue
        out.append(
            TrainWindow(
                input_ids=win.input_ids[0].tolist(),
                token_type_ids=win.token_type_ids[0].tolist(),
                global_attention_mask=win.global_attention_mask[0].tolist(),
                pool_mask=pool_mask_of(win)[0].tolist(),
                starts=[win.doc_start + a - s for a, _ in inside],
                ends=[win.doc_start + b - s for _, b in inside],
                answer_type=ANSWER_TYPES.index(ex.kind),
                doc_range=(s, e),
                example=i,
            )
        )
    return out


def chunk_windows(
    tokenizer,
    examples: Sequence[LongExample],
    long_windows: Sequence[TrainWindow],
    chunk_tokens: int = CHUNK_TOKENS,
) -> list[list[TrainWindow]]:
    """The same document ranges as `long_windows`, cut into the chunked view's windows (one list per window).

    A chunk without the answer labels [CLS] (position 0) as start and end; every chunk carries the answer type.
    """
    t = special_template(tokenizer)
    n_special = len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)
    token_cache: dict[str, DocumentTokens] = {}
    out = []
    for w in long_windows:
        ex = examples[w.example]
        if ex.text not in token_cache:
            token_cache = {ex.text: tokenize(tokenizer, ex.text)}
        tokens = token_cache[ex.text]
        q_ids = tokenizer(ex.question, add_special_tokens=False)["input_ids"][: chunk_tokens // 4]
        gold = [tokens.tokens_in(a, b) for a, b in ex.answers]
        gold = [(a, b - 1) for a, b in gold if b > a]
        s0, e0 = w.doc_range
        chunks = []
        for cs, ce in plan_windows(e0 - s0, chunk_tokens - n_special - len(q_ids), CHUNK_OVERLAP):
            s, e = s0 + cs, s0 + ce
            win = build_input(tokenizer, tokens, (s, e), question_ids=q_ids)
            inside = [(a, b) for a, b in gold if s <= a and b < e]
            starts = [win.doc_start + a - s for a, _ in inside] or ([0] if ex.kind == "span" else [])
            ends = [win.doc_start + b - s for _, b in inside] or ([0] if ex.kind == "span" else [])
            chunks.append(
                TrainWindow(
                    input_ids=win.input_ids[0].tolist(),
                    token_type_ids=win.token_type_ids[0].tolist(),
                    global_attention_mask=[0] * win.input_ids.shape[1],
                    pool_mask=pool_mask_of(win)[0].tolist(),
                    starts=starts,
                    ends=ends,
                    answer_type=w.answer_type,
                    doc_range=(s, e),
                    example=w.example,
                )
            )
        out.append(chunks)
    return out
