"""Hybrid passage retrieval: words in common (BM25), meaning (the passage embedded on its own) and context (the
view's contextual token states), fused into one ranking per view.

Why three signals: definitions, acronyms and numbers are lexical questions that an embedding ranker misses;
paraphrases are semantic questions that a word-overlap ranker misses; the contextual score is what a view's
reading of the whole document adds. Each signal is z-normalised over the passages the view could see and the
three are added with the weights in `FUSION_WEIGHTS`, chosen on the shared data only (docs/results.md has the
grid and the command). The lexical index is built once per document (`LexicalIndex`) and cached with the
reading; each view ranks only the passages it read (the truncated view: those within its first 512 tokens).

BM25 comes from `bm25s` (sparse-matrix BM25; measured against `rank-bm25` on the NIST guide's passages, see
docs/results.md): scoring every passage of an 80-page PDF takes well under a millisecond.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Weights of the z-normalised signals (chosen on the shared SQuAD articles and the NIST guide; docs/results.md).
FUSION_WEIGHTS: dict[str, float] = {"lexical": 0.25, "dense": 1.0, "context": 0.25}
SIGNAL_WORDS = {  # for people who do not program: which signal found a passage
    "lexical": "words in common with the question",
    "dense": "similar meaning",
    "context": "what the model read around it",
}
_WORD = re.compile(r"[0-9]+(?:[.,\-][0-9]+)*|[^\W\d_]+(?:['’\-][^\W\d_]+)*", re.UNICODE)
# Question words that say nothing about where the answer is.
_STOP_TEXT = """a an and are as at be by can could did do does for from had has have how i if in into is it its of on
or s should so than that the their them then there these they this to was were what when where which who whom whose
why will with would you your according called mean"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())
WORDS_AT_ONCE = 2000  # texts split into words between two pauses of a background reading (~30 ms)


def words(text: str) -> list[str]:
    """Lower-cased words and numbers of a text for lexical matching, stop words left out ("3-1" stays one)."""
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP_WORDS]


class LexicalIndex:
    """BM25 over a document's passages; build once per document, then `scores(question)` per question."""

    def __init__(self, texts: Sequence[str], pause: Callable[[], object] | None = None) -> None:
        """pause: called before each `WORDS_AT_ONCE` texts are split into words (a background reading pauses
        there while someone's question runs: a book's 30k passages take ~0.4 s)."""
        import bm25s

        self.n = len(texts)
        self._index = bm25s.BM25()
        # Every passage keeps at least one token so bm25s indexes all of them (empty ones score 0).
        corpus: list[list[str]] = []
        for start in range(0, len(texts), WORDS_AT_ONCE):
            if pause is not None:
                pause()
            corpus += [words(t) or ["\u2400"] for t in texts[start : start + WORDS_AT_ONCE]]
        self._index.index(corpus, show_progress=False)

    def scores(self, question: str) -> np.ndarray:
        """(n_passages,) BM25 score of each passage for the question (0 where no word is shared)."""
        query = [w for w in words(question) if w in self._index.vocab_dict]
        if not query or not self.n:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self._index.get_scores(query), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        scores = getattr(self._index, "scores", {}) or {}
        return int(sum(getattr(v, "nbytes", 0) for v in scores.values()))


def zscore(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the seen entries; 0 where unseen or when the signal is flat."""
    out = np.zeros(values.shape, dtype=np.float64)
    if seen.sum() < 2:
        return out
    v = values[seen].astype(np.float64)
    std = v.std()
    if std > 1e-9:
        out[seen] = (v - v.mean()) / std
    return out


@dataclass
class Ranking:
    """Passages of one view ranked for one question."""

    order: np.ndarray  # passage indices, best first (only passages the view saw)
    fused: np.ndarray  # (n_passages,) fused score, -inf where unseen
    parts: dict[str, np.ndarray]  # signal -> (n_passages,) weighted z-score contribution

    def top(self, k: int) -> list[int]:
        return [int(i) for i in self.order[:k]]

    def main_signal(self, passage: int) -> str:
        """The signal that contributed most to a passage's score (a key of SIGNAL_WORDS)."""
        return max(self.parts, key=lambda s: self.parts[s][passage])


def fuse(
    signals: dict[str, np.ndarray], seen: np.ndarray, weights: dict[str, float] | None = None
) -> Ranking:
    """Fuse raw signal scores over passages into one ranking.

    Args:
        signals: signal name -> (n_passages,) raw scores (missing signals are simply not used).
        seen: (n_passages,) bool, the passages the view read.
        weights: per-signal weights (default FUSION_WEIGHTS).
    Returns:
        Ranking with the fused scores and each signal's share.
    """
    weights = FUSION_WEIGHTS if weights is None else weights
    parts = {name: weights.get(name, 0.0) * zscore(np.asarray(v), seen) for name, v in signals.items()}
    total = np.sum(list(parts.values()), axis=0) if parts else np.zeros(seen.shape)
    fused = np.where(seen, total, -np.inf)
    order = np.argsort(-fused, kind="stable")[: int(seen.sum())]
    return Ranking(order, fused, parts)
