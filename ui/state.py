"""Session state: every key the app keeps per browser session, in one place, with typed accessors.

Anyone adding a page reads this module to know what the session holds. Results a page keeps between
reruns are stored with the `Provenance` they were computed from (documents, model, strategy) and are
dropped as soon as the sidebar or the document no longer matches, so a page never shows, or computes
with, a result of another model or document.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import plotly.graph_objects as go
import streamlit as st

from longformer_core.choices import Task
from longformer_core.documents import Document
from longformer_core.model.registry import ModelPair
from longformer_core.reading.cache import Holder
from longformer_core.reading.strategies import DEFAULT_EVERY_K, DEFAULT_FOR_TASK
from ui.records import AskRecord

T = TypeVar("T")

# Results and documents kept by the pages.
DOCUMENT = "document"  # the Document every page works on
SECOND_DOCUMENT = "second_document"  # the Compare page's other document
ASK_HISTORY = "ask_history"  # list[records.AskRecord]: every question of the session (each names its source)
CLASSIFY_LAST = "classify_last"  # Stored[records.ClassifyRecord]
COMPARE_LAST = "compare_last"  # Stored[records.CompareRecord]
COLLECTION = "collection"  # Stored[collection.CollectionState]
# Figures the pages drew, for the report: {(document sha256, figure name): SessionFigure}, oldest first.
SESSION_FIGURES = "session_figures"
MAX_SESSION_FIGURES = 12  # the oldest go first: a report embeds every figure of its document
# The session's pins in the server's reader cache (a cache.Holder): readers of the documents it shows
# are not evicted under it; the pins go when the session ends and this object is collected.
READER_PINS = "reader_pins"
# Sidebar widgets (their values are read through `Settings`, not directly).
MODEL_ID = "model_id"
BASELINE_ID = "baseline_id"
STRATEGY = "strategy"  # AUTO or a key of STRATEGIES
KEYWORDS = "keywords"
EVERY_K = "every_k"

AUTO = "auto"  # strategy choice: the paper's default for the task of the page in use


@dataclass(frozen=True)
class Provenance:
    """What a stored result was computed from; a result whose provenance differs is stale."""

    documents: tuple[str, ...]  # sha256 of each document (or corpus hash) read
    model_key: str
    strategy: str
    keywords: tuple[str, ...] = ()
    every_k: int = DEFAULT_EVERY_K
    choice: str = ""  # a page's own choice the result depends on (the Classify page's classifier)


@dataclass(frozen=True)
class Settings:
    """What the sidebar decided: the models, the global-attention strategy and its parameters."""

    pair: ModelPair = field(compare=False)
    model_key: str  # cache key part: which checkpoints the pair holds
    strategy_choice: str  # AUTO or a key of STRATEGIES
    keywords: tuple[str, ...] = ()
    every_k: int = DEFAULT_EVERY_K

    def strategy_for(self, task: Task) -> str:
        """The strategy to use for a task ("qa", "classify", "similarity")."""
        return DEFAULT_FOR_TASK[task] if self.strategy_choice == AUTO else self.strategy_choice

    def provenance(self, task: Task, *hashes: str, choice: str = "") -> Provenance:
        """The provenance of a result of `task` on the documents with these hashes under these settings.

        Parameters of strategies other than the one in use are left out: they do not change the result.
        """
        strategy = self.strategy_for(task)
        keywords = self.keywords if strategy == "keywords" else ()
        every_k = self.every_k if strategy == "every_k" else DEFAULT_EVERY_K
        return Provenance(tuple(hashes), self.model_key, strategy, keywords, every_k, choice)


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A result kept in the session with what it was computed from."""

    provenance: Provenance
    value: T


def _session(state: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
    return st.session_state if state is None else state


def store(key: str, provenance: Provenance, value: T, state: MutableMapping[str, Any] | None = None) -> None:
    """Keep `value` under `key` with its provenance (`state`: the session, or a dict in tests)."""
    _session(state)[key] = Stored(provenance, value)


def stored(key: str, provenance: Provenance, state: MutableMapping[str, Any] | None = None) -> Any | None:
    """The value kept under `key` if it was computed from `provenance`; a stale one is dropped.

    Args:
        key: one of the result keys above.
        provenance: what the page would compute now.
        state: the session (default) or any mapping.
    Returns:
        the stored value, or None when there is none or it was computed from something else.
    """
    session = _session(state)
    kept = session.get(key)
    if kept is None:
        return None
    if not isinstance(kept, Stored) or kept.provenance != provenance:
        del session[key]
        return None
    return kept.value


def current_document(slot: str = DOCUMENT) -> Document | None:
    """The document in a slot (DOCUMENT or SECOND_DOCUMENT), None before one is chosen."""
    return st.session_state.get(slot)


def set_document(slot: str, document: Document) -> None:
    st.session_state[slot] = document


def upload_key(slot: str) -> str:
    """Key of the (file id, password) last read from a slot's uploader: each upload is read once."""
    return f"{slot}_upload_key"


def upload_error_key(slot: str) -> str:
    """Key of the message about a slot's failed upload (shown while that file stays in the uploader)."""
    return f"{slot}_upload_error"


def reader_pins() -> Holder:
    """This session's `cache.Holder` (created on first use)."""
    return st.session_state.setdefault(READER_PINS, Holder("session"))


def documents_in_use() -> set[str]:
    """sha256 of the documents this session shows (its document and, on Compare, the second one)."""
    return {
        d.sha256 for d in (current_document(DOCUMENT), current_document(SECOND_DOCUMENT)) if d is not None
    }


def ask_history() -> list[AskRecord]:
    """The session's questions, oldest first (each record names its document, model and strategy)."""
    return st.session_state.setdefault(ASK_HISTORY, [])


@dataclass(frozen=True)
class SessionFigure:
    """A figure a page drew, kept for the report ("Download report" on the Ask page)."""

    document: str  # sha256 of the document it shows
    name: str  # stable name on its page ("attention_pattern"): drawing it again replaces it in place
    caption: str  # the heading the report prints above it (what it shows, with its settings)
    figure: go.Figure


def record_figure(
    document: Document,
    name: str,
    caption: str,
    figure: go.Figure,
    state: MutableMapping[str, Any] | None = None,
) -> None:
    """Keep a figure the page just drew so the report can include it (the latest drawing of each name).

    Args:
        document: the document the figure is about.
        name: the figure's name on its page; a figure drawn again under the same name replaces the old one.
        caption: what the report prints above it.
        figure: the plotly figure as shown.
        state: the session (default) or any mapping (tests).
    """
    figures: dict[tuple[str, str], SessionFigure] = _session(state).setdefault(SESSION_FIGURES, {})
    figures[(document.sha256, name)] = SessionFigure(document.sha256, name, caption, figure)
    while len(figures) > MAX_SESSION_FIGURES:
        del figures[next(iter(figures))]


def session_figures(document: Document, state: MutableMapping[str, Any] | None = None) -> list[SessionFigure]:
    """The figures drawn in this session about `document`, in the order they were first drawn."""
    figures = _session(state).get(SESSION_FIGURES, {})
    return [f for f in figures.values() if f.document == document.sha256]
