"""What a question-answering view returns: its answers (text, place, confidence, shape) and how it read."""

from __future__ import annotations

from dataclasses import dataclass, field

from longformer_core.reading.results import Located, ModelRun
from longformer_core.reading.retrieval import SIGNAL_WORDS


@dataclass
class Answer(Located):
    score: float = 0.0  # confidence in [0, 1]
    context: tuple[int, int] = (0, 0)  # char span of the surrounding text to show (sentence / window text)
    passage: tuple[int, int] = (0, 0)  # char span of the passage the answer came from
    signal: str = ""  # the retrieval signal that found the passage most: a key of retrieval.SIGNAL_WORDS
    items: list[tuple[int, int]] = field(default_factory=list)  # a list answer: each item's char span
    cell: tuple[int, int, int] | None = None  # a table cell answer: (index in Document.tables, row, column)

    @property
    def found_by(self) -> str:
        """Which signal found the passage, in words for people who do not program ("" when none)."""
        return SIGNAL_WORDS.get(self.signal, "")


@dataclass
class QAResult(ModelRun):
    question: str = ""
    method: str = "sentence"  # "sentence" | "span" | "retrieve-then-read" | "long-window"
    answers: list[Answer] = field(default_factory=list)  # best first
    no_answer_probability: float | None = None  # span method with a SQuAD 2.0 head
    # long-window: the document-token ranges its one pass read, in document order (the evidence view explains them)
    read_ranges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None
