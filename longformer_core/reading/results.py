"""Plain result types shared by the tasks: what each model predicted, where, what it saw, how long it took."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from longformer_core.documents import Document
from longformer_core.reading.document_reading import DocumentReader


@dataclass
class Located:
    """A piece of the document: its text, character span and page."""

    text: str
    char_span: tuple[int, int]
    page: int  # 1-based
    page_label: str  # printed label

    @classmethod
    def of(cls, document: Document, span: tuple[int, int]) -> Located:
        a, b = span
        return cls(document.text[a:b], (a, b), document.page_of(a), document.page_label_of(a))


@dataclass
class ModelRun:
    """Common to every task result for one view."""

    view: str  # "truncated" | "chunked" | "longformer"
    model_name: str
    seen_tokens: tuple[int, int]  # document tokens the model read
    seen_chars: tuple[int, int]  # the same in characters
    n_tokens: int  # document length in tokens
    seconds: float  # task time, the document encoding excluded when it was cached
    encode_seconds: float = 0.0  # time spent encoding the document for this call (0 when cached)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _plain(asdict(self))


def model_run(reader: DocumentReader, view: str, seconds: float, encode_seconds: float = 0.0) -> dict:
    """The ModelRun fields of a view, for building task results."""
    info = reader.view_info(view)
    return {
        "view": view,
        "model_name": info.model_name,
        "seen_tokens": info.seen_tokens,
        "seen_chars": info.seen_chars,
        "n_tokens": info.n_tokens,
        "seconds": seconds,
        "encode_seconds": encode_seconds,
    }


def windows_run(reader: DocumentReader, view: str, windows_end: int, seconds: float) -> dict:
    """The ModelRun fields of a question-dependent run that read document tokens [0, windows_end)."""
    tokens = reader.tokens_for(view)
    return {
        "view": view,
        "model_name": reader.model_for(view).name,
        "seen_tokens": (0, windows_end),
        "seen_chars": (0, tokens.char_span(0, windows_end)[1] if windows_end else 0),
        "n_tokens": len(tokens),
        "seconds": seconds,
    }


def _plain(value):
    """JSON-ready copy: numpy scalars to Python, tuples to lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
