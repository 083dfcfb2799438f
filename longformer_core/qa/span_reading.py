"""Extractive spans from a QA head: candidates from each pass's start/end logits, shaped and scored with retrieval.

`span_candidates` runs a QA head over a view's windows (or given regions); `window_spans` takes one pass's
candidates (the n-best over its document tokens, plus the best inside each of the `FOCUS_PASSAGES` best-ranked
passages); `score_spans` shapes them (`qa.shaping`: a whole entry, cell, list or definition; never a caption for
a question about content), drops running headers and the question's own words, and adds `RETRIEVAL_WEIGHT` x
the passage's fused retrieval score; `span_answers` turns the best into `Answer`s with confidences.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np

from longformer_core.qa.intent import question_intent
from longformer_core.qa.results import Answer, QAResult
from longformer_core.qa.shaping import answer_layout, shape_span
from longformer_core.qa.spans import best_spans, span_probabilities
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import DocumentTokens, Progress, run_windows, tokenizer_call
from longformer_core.reading.results import Located, windows_run
from longformer_core.reading.retrieval import Ranking

RETRIEVAL_WEIGHT = 3.0  # span score += this x fused retrieval score of its passage (docs/results.md)
FOCUS_PASSAGES = 8  # the best-ranked passages whose own best spans are always candidates


def paragraph_around(reader: DocumentReader, span: tuple[int, int], max_chars: int = 1200) -> tuple[int, int]:
    """The paragraph holding `span`, clipped to about max_chars around it (for highlighting in context)."""
    a, b = span
    # Paragraphs are ordered and disjoint: the only one that can hold `a` is the last starting at or before it
    # (found by binary search: a book has tens of thousands of paragraphs).
    i = int(np.searchsorted(reader.paragraph_starts, a, side="right")) - 1
    pa, pb = reader.paragraphs[i] if i >= 0 and a < reader.paragraphs[i][1] else (a, b)
    pad = max(0, (max_chars - (b - a)) // 2)
    return max(pa, a - pad), min(pb, b + pad) if pb >= b else b


def _plain_words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def answer_spans(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    max_answer_tokens: int = 30,
    regions: Sequence[tuple[int, int]] | None = None,
    ranking: Ranking | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> QAResult:
    """Extract answer spans with a QA head: every window the view reads (or the given document-token
    regions), best spans over all of them. Uses the model's own head, else its `span_model`.

    ranking: when given, each span's score adds `retrieval_weight` x the fused score of its passage, and the
        answer records its passage and the signal that found it.
    """
    t0 = time.perf_counter()
    located, nulls, seen_end = span_candidates(
        reader, question, view, n_best, progress, max_answer_tokens, regions, ranking, retrieval_weight
    )
    # the window most sure an answer exists sets the no-answer score
    answers, no_answer = span_answers(
        reader, question, located, n_best, ranking, min(nulls) if nulls else None
    )
    run = windows_run(reader, view, seen_end, time.perf_counter() - t0)
    return QAResult(**run, question=question, method="span", answers=answers, no_answer_probability=no_answer)


def span_answers(
    reader: DocumentReader,
    question: str,
    located: list[tuple[float, tuple[int, int], int]],
    n_best: int,
    ranking: Ranking | None,
    null_score: float | None = None,
) -> tuple[list[Answer], float | None]:
    """The n_best answers from scored spans (`score_spans`), with confidences; and the no-answer probability."""
    located = _dedupe(sorted(located, key=lambda c: -c[0]))[:n_best]
    probs = span_probabilities([c[0] for c in located], null_score)
    intent = question_intent(question)
    answers = []
    for (score, span, passage), p in zip(located, probs):
        loc = Located.of(reader.document, span)
        extra = {}
        if passage >= 0:
            extra = {"passage": reader.passages.spans[passage], "signal": ranking.main_signal(passage)}
        extra.update(answer_layout(reader.document, reader.passages, span, intent))
        answers.append(Answer(**vars(loc), score=float(p), context=paragraph_around(reader, span), **extra))
    no_answer = float(probs[-1]) if null_score is not None and len(probs) else None
    return answers, no_answer


def focus_ranges(
    reader: DocumentReader, tokens: DocumentTokens, ranking: Ranking | None
) -> list[tuple[int, int]]:
    """Token ranges of the best-ranked passages: each always puts forward its own best spans, so a passage
    retrieval trusts is never out-voted only because the reader liked some other place in the same pass better."""
    if ranking is None:
        return []
    return [tokens.tokens_in(*reader.passages.spans[int(i)]) for i in ranking.order[:FOCUS_PASSAGES]]


def window_spans(
    start: np.ndarray,
    end: np.ndarray,
    doc_start: int,
    doc_range: tuple[int, int],
    focus: Sequence[tuple[int, int]],
    n_best: int,
    max_answer_tokens: int,
) -> tuple[list[tuple[float, int, int]], float]:
    """Candidate spans of one pass: the n_best over its document tokens, plus the best 2 inside each focus passage.

    Args:
        start, end: the pass's start/end logits (all its positions).
        doc_start: the position of document token `doc_range[0]` in the pass.
        doc_range: the document tokens [s, e) the pass read.
    Returns:
        ([(score, first token, last token)] in the tokens' coordinates, no-answer score).
    """
    s, e = doc_range
    spans, null = best_spans(start, end, (doc_start, doc_start + e - s), n_best, max_answer_tokens)
    for pa, pb in focus:
        if s <= pa and pb <= e and pb > pa:
            context = (doc_start + pa - s, doc_start + pb - s)
            spans += best_spans(start, end, context, 2, max_answer_tokens)[0]
    return [(sp.score, s + sp.start - doc_start, s + sp.end - doc_start) for sp in spans], null


def span_candidates(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    max_answer_tokens: int = 30,
    regions: Sequence[tuple[int, int]] | None = None,
    ranking: Ranking | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> tuple[list[tuple[float, tuple[int, int], int]], list[float], int]:
    """Run the QA head over the windows (or regions) and score every candidate span.

    Returns:
        ([(score, char span, passage index or -1)], no-answer score per window, last document token read).
    """
    model = reader.model_for(view)
    tokens = reader.tokens_for(view)
    q_ids = tokenizer_call(model.tokenizer, question, add_special_tokens=False)["input_ids"]
    candidates: list[tuple[float, int, int]] = []  # (score, first doc token, last doc token)
    nulls: list[float] = []
    seen_end = 0
    focus = focus_ranges(reader, tokens, ranking)
    for win, out in run_windows(
        model,
        tokens,
        view,
        question_ids=q_ids,
        doc_global=reader.plan.doc_mask if view == "longformer" else None,
        global_first=reader.plan.global_first,
        global_question=True,  # the paper's QA setting, whatever the document strategy
        progress=progress,
        windows=regions,
        module=None if model.head == "qa" else model.span_model,
    ):
        seen_end = max(seen_end, win.doc_range[1])
        start = out.start_logits[0].float().cpu().numpy()
        end = out.end_logits[0].float().cpu().numpy()
        spans, null = window_spans(start, end, win.doc_start, win.doc_range, focus, n_best, max_answer_tokens)
        nulls.append(null)
        candidates += spans
    return score_spans(reader, question, tokens, candidates, ranking, retrieval_weight), nulls, seen_end


def score_spans(
    reader: DocumentReader,
    question: str,
    tokens: DocumentTokens,
    candidates: Sequence[tuple[float, int, int]],
    ranking: Ranking | None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> list[tuple[float, tuple[int, int], int]]:
    """Shape and score candidate spans (token ranges of `tokens`, whose offsets point into the document).

    Returns:
        [(score, char span, passage index or -1)]: the reader's score + the shape's bonus + `retrieval_weight` x
        the passage's fused score; running headers and spans made of the question's own words are dropped.
    """
    located = []
    question_words = _plain_words(question)
    intent = question_intent(question)
    for score, a, b in candidates:
        span = tokens.char_span(a, b + 1)
        passage = reader.passages.holding(span[0]) if ranking is not None else -1
        # The answer's shape (qa.shaping): a whole entry, cell, list or definition; never a caption for a
        # question about content.
        shaped = shape_span(reader.document, reader.passages, span, passage, intent)
        if shaped is None:
            continue
        span, bonus = shaped
        score += bonus
        if (
            reader.passages.touches_excluded(span)
            or _plain_words(reader.document.text[span[0] : span[1]]) <= question_words
        ):
            continue  # a running header, or the question's own words ("MSSP" for "What does MSSP stand for?")
        if passage >= 0 and np.isfinite(ranking.fused[passage]):
            score += retrieval_weight * float(ranking.fused[passage])
        located.append((score, span, passage))
    return located


def _dedupe(cands: list[tuple[float, tuple[int, int], int]]) -> list[tuple[float, tuple[int, int], int]]:
    """Drop spans repeated by overlapping windows (same characters), keeping the best-scored copy."""
    seen, out = set(), []
    for c in cands:
        if c[1] not in seen:
            seen.add(c[1])
            out.append(c)
    return out
