"""Extractive answer spans from start/end logits (transformers >= 5.3 has no QA pipeline).

`best_spans` does what the old pipeline's post-processing did: score every (start, end) pair inside the
context with end >= start and length <= max_answer_tokens, keep the n best, and compare them with the
SQuAD 2.0 "no answer" score (start and end both on the first token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    start: int  # first token (window position)
    end: int  # last token, inclusive
    score: float  # start_logit + end_logit


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context: tuple[int, int],
    n_best: int = 5,
    max_answer_tokens: int = 30,
) -> tuple[list[Span], float]:
    """The n best answer spans inside `context` and the no-answer score.

    Args:
        start_logits: (L,) logits of each position starting the answer.
        end_logits: (L,) logits of each position ending it.
        context: [first, last) positions the answer may come from (the document part of the window).
        n_best: how many spans to return.
        max_answer_tokens: longest answer in tokens.
    Returns:
        (spans best first, null score = start_logits[0] + end_logits[0]).
    """
    c0, c1 = context
    null = float(start_logits[0] + end_logits[0])
    if c1 <= c0:
        return [], null
    s = np.asarray(start_logits[c0:c1], dtype=np.float64)
    e = np.asarray(end_logits[c0:c1], dtype=np.float64)
    n = c1 - c0
    # Only the top starts and ends can form a top-n span; this keeps the work O(k^2), not O(n^2).
    k = min(n, max(20, n_best * 4))
    starts = np.argpartition(-s, k - 1)[:k]
    ends = np.argpartition(-e, k - 1)[:k]
    cand = [(s[i] + e[j], i, j) for i in starts for j in ends if i <= j < i + max_answer_tokens]
    cand.sort(reverse=True)
    return [Span(int(i) + c0, int(j) + c0, float(sc)) for sc, i, j in cand[:n_best]], null


def span_probabilities(scores: list[float], null_score: float | None = None) -> np.ndarray:
    """Softmax over candidate span scores (and the no-answer score as the last entry when given)."""
    values = np.array(scores + ([null_score] if null_score is not None else []), dtype=np.float64)
    if values.size == 0:
        return values
    values = np.exp(values - values.max())
    return values / values.sum()
