"""What global attention changes: one question answered by the Longformer under every strategy.

Each strategy gives a different set of tokens global attention, so the Longformer's pass over the
document (and so the passages it retrieves and the span it reads) can change. `try_strategies` runs the
same question once per strategy and returns a small table: answer, page, confidence, time, and whether
the answer differs from the one under the default strategy ("question" for QA).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from longformer_core.documents import Document
from longformer_core.model.registry import ModelPair
from longformer_core.qa.answering import ask
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import Progress, scaled
from longformer_core.reading.results import _plain
from longformer_core.reading.strategies import DEFAULT_EVERY_K, DEFAULT_FOR_TASK, STRATEGIES

_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "with",
        "would",
        "should",
        "could",
        "can",
    }
)


@dataclass
class StrategyRow:
    """The Longformer's top answer under one global-attention strategy."""

    strategy: str  # key in strategies.STRATEGIES
    label: str  # what the UI calls it
    answer: str
    page: int | None  # 1-based, None without an answer
    confidence: float
    seconds: float  # encoding (unless cached) + answering
    differs: bool  # answer or page differs from the default strategy's
    error: str | None = None  # why this strategy could not run (e.g. keywords without any)

    def to_dict(self) -> dict:
        return _plain(asdict(self))


def question_keywords(question: str, limit: int = 5) -> list[str]:
    """Content words of a question (for the "keywords" strategy when the user gave none)."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9-]{2,}", question) if w.lower() not in _STOPWORDS]
    return list(dict.fromkeys(words))[:limit]


def try_strategies(
    pair: ModelPair,
    document: Document,
    question: str,
    strategies: Sequence[str] = tuple(STRATEGIES),
    keywords: Sequence[str] = (),
    every_k: int = DEFAULT_EVERY_K,
    default: str = DEFAULT_FOR_TASK["qa"],
    reader_for: Callable[[str], DocumentReader] | None = None,
    progress: Progress | None = None,
) -> list[StrategyRow]:
    """Answer one question with the Longformer under each strategy.

    Args:
        pair: the models.
        document: the document.
        question: the question.
        strategies: strategy keys to try (default: all).
        keywords: terms for "keywords" (default: the question's content words).
        every_k: spacing for "every_k".
        default: the strategy whose answer the others are compared with (run even if not listed).
        reader_for: strategy -> DocumentReader, to reuse cached readers (the app); default builds new ones.
        progress: (fraction, message) callback.
    Returns:
        One row per strategy, in the order given (the default first if it was not listed).
    """
    keywords = list(keywords) or question_keywords(question)
    order = list(dict.fromkeys([default, *strategies]))

    def make_reader(strategy: str) -> DocumentReader:
        if reader_for is not None:
            return reader_for(strategy)
        return DocumentReader(pair, document, strategy, keywords=keywords, every_k=every_k)

    rows: dict[str, StrategyRow] = {}
    for i, key in enumerate(order):
        label = STRATEGIES[key].label if key in STRATEGIES else key
        step = scaled(progress, i / len(order), (i + 1) / len(order))
        t0 = time.perf_counter()
        try:
            reader = make_reader(key)
            best = ask(reader, question, views=("longformer",), n_best=1, progress=step)["longformer"].best
        except ValueError as exc:
            rows[key] = StrategyRow(
                key, label, "", None, 0.0, time.perf_counter() - t0, False, error=str(exc)
            )
            continue
        seconds = time.perf_counter() - t0
        rows[key] = StrategyRow(
            key,
            label,
            best.text if best else "",
            best.page if best else None,
            best.score if best else 0.0,
            seconds,
            False,
        )
    base = rows[default]
    for row in rows.values():
        row.differs = row.error is None and (
            " ".join(row.answer.split()).lower() != " ".join(base.answer.split()).lower()
            or row.page != base.page
        )
    wanted = list(strategies) if default in strategies else order
    return [rows[k] for k in wanted]
