"""What the pages keep of a task's result: plain records, with no Streamlit and no model work.

`ui.state` stores them in the session and `ui.tasks` makes them; both import this module and neither imports
the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from longformer_core.classify import ClassifyResult
from longformer_core.documents import Document
from longformer_core.qa.answering import QAResult
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.strategies import DEFAULT_EVERY_K
from longformer_core.similarity import SimilarityResult


@dataclass(frozen=True)
class Provenance:
    """What a kept result was computed from; a result whose provenance differs is stale.

    Defined here, beside the records that carry it; `ui.state` (which stores them) re-exports it.
    """

    documents: tuple[str, ...]  # sha256 of each document (or corpus hash) read
    model_key: str
    strategy: str
    keywords: tuple[str, ...] = ()
    every_k: int = DEFAULT_EVERY_K
    choice: str = (
        ""  # a page's own choice the result depends on (the Classify page's classifier, the question)
    )


@dataclass
class ViewAnswer:
    """One view's answer, with what the page needs to draw it without the reader."""

    result: QAResult
    answer_token: int | None  # document token where the best answer starts (for the "what it saw" bar)
    reading_seconds: float | None  # the one-off reading of the document (None: per-question model)
    preliminary: bool = False  # a first answer given before the view had read the document; replaced later


@dataclass
class AskRecord:
    """One question asked in this session and every view's answer (the page's history)."""

    question: str
    source: Document  # the document asked about (its text is needed to highlight answers)
    strategy: str
    model: str
    answers: dict[str, ViewAnswer]
    # Document, model, strategy and question the answers came from: their evidence is kept under it, and is
    # only computed while the sidebar still matches it (the evidence pass needs the model that answered).
    provenance: Provenance
    asked_at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    preliminary: dict[str, ViewAnswer] = field(default_factory=dict)  # first answers shown while reading


@dataclass
class ClassifyRecord:
    results: dict[str, ClassifyResult]
    reading: dict[str, float | None]  # each view's one-off reading of the document (None: per run)


@dataclass
class CompareRecord:
    results: dict[str, SimilarityResult]
    reader_a: DocumentReader
    reader_b: DocumentReader
    pooling: str
