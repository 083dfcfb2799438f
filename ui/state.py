"""Session state: every key the app keeps per browser session, in one place, with typed accessors.

Anyone adding a page reads this module to know what the session holds. Results a page keeps between
reruns are stored with the `Provenance` they were computed from (documents, model, strategy) and are
dropped as soon as the sidebar or the document no longer matches, so a page never shows, or computes
with, a result of another model or document.

No other module touches `st.session_state`: they call the accessors below. A widget given a key keeps its
value in the session under that key, so widget keys are named here too (constants, or `widget_key` for
widgets made per slot, view or index). tests/test_state.py fails on either rule broken elsewhere.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import plotly.graph_objects as go
import streamlit as st

from longformer_core.choices import Task
from longformer_core.documents import Document
from longformer_core.model.registry import ModelPair
from longformer_core.reading.cache import Holder
from longformer_core.reading.strategies import DEFAULT_EVERY_K, DEFAULT_FOR_TASK
from ui.records import AskRecord, Provenance  # Provenance lives beside the records that carry it

if TYPE_CHECKING:
    from longformer_core.qa.evidence import Explanation
    from longformer_core.qa.strategy_effect import StrategyRow

T = TypeVar("T")

# --------------------------------------------------------------------------------------------------
# Keys of what the pages keep (read and written through the accessors below).

DOCUMENT = "document"  # the Document every page works on
SECOND_DOCUMENT = "second_document"  # the Compare page's other document
ASK_HISTORY = "ask_history"  # list[records.AskRecord]: every question of the session (each names its source)
CLASSIFY_LAST = "classify_last"  # Stored[records.ClassifyRecord]
COMPARE_LAST = "compare_last"  # Stored[records.CompareRecord]
COLLECTION = "collection"  # Stored[collection.CollectionState]
EXPLANATIONS = (
    "explanations"  # {answers' Provenance: {view: Explanation}}: the evidence shown on the Ask page
)
STRATEGY_TABLES = "strategy_tables"  # {Provenance: list[StrategyRow]}: "Try every strategy" per question
UPLOADED_PDFS = "uploaded_pdfs"  # {sha256: PdfFile}: uploaded PDFs' bytes and password, for the page view
PENDING_QUESTION = "pending_question"  # a suggested question clicked, asked on this run
SAMPLE_FROM_URL = "sample_from_url"  # the ?sample= name already applied in this session
# Figures the pages drew, for the report: {(document sha256, figure name): SessionFigure}, oldest first.
SESSION_FIGURES = "session_figures"
MAX_SESSION_FIGURES = 12  # the oldest go first: a report embeds every figure of its document
# The session's pins in the server's reader cache (a cache.Holder): readers of the documents it shows
# are not evicted under it; the pins go when the session ends and this object is collected.
READER_PINS = "reader_pins"
# Per document slot (DOCUMENT, SECOND_DOCUMENT), keyed widget_key(slot, ...):
LAST_UPLOAD = "upload_key"  # (file id, password) last read from the slot's uploader: each upload is read once
UPLOAD_ERROR = "upload_error"  # the message about the slot's failed upload, shown while that file stays

# --------------------------------------------------------------------------------------------------
# Widget keys. The sidebar's (values read through `Settings`, not directly):
MODEL_ID = "model_id"
BASELINE_ID = "baseline_id"
STRATEGY = "strategy"  # AUTO or a key of STRATEGIES
KEYWORDS = "keywords"
EVERY_K = "every_k"
# The document picker's, one of each per slot (widget_key(slot, UPLOADER) is "document_upload"):
UPLOADER = "upload"
PASSWORD = "password"
SAMPLE_CHOICE = "sample"
USE_SAMPLE = "use_sample"
# Ask page:
ASK_FORM = "ask"
QUESTION = "question"
ASK_BUTTON = "ask_button"
SUGGESTED_QUESTION = "suggested"  # one button per sample question: widget_key(SUGGESTED_QUESTION, index)
READING_PROGRESS = "reading_progress"  # the sidebar's box of reading progress
CSV_DOWNLOAD = "csv"
JSON_DOWNLOAD = "json"
REPORT_DOWNLOAD = "report"
EXPLAIN_BUTTON = "explain_button"
EVIDENCE_STRIP = "evidence_strip"
EVIDENCE_TABLE = "evidence"  # one per view: widget_key(EVIDENCE_TABLE, view)
PAGE_VIEW_PAGE = "page_view_page"  # the page number box of "On the page"
STRATEGIES_BUTTON = "strategies_button"
STRATEGY_TABLE = "strategy_table"
# Classify page:
CLASSIFY_BY = "classify_by"
CLASSIFY_FORM = "classify"
LABELS = "labels"
CLASSIFY_BUTTON = "classify_button"
# Compare page:
POOLING = "pooling"
COMPARE_BUTTON = "compare_button"
HEATMAP_VIEW = "heatmap_view"
# Collection page:
COLLECTION_SOURCE = "collection_source"
COLLECTION_FILES = "collection_files"
COLLECTION_CSV = "collection_csv"
COLLECTION_TEXT_COLUMN = "collection_text_column"
COLLECTION_TITLE_COLUMN = "collection_title_column"
COLLECTION_LABEL_COLUMN = "collection_label_column"
COLLECTION_EMBED = "collection_embed"
COLLECTION_VIEW = "collection_view"
COLLECTION_POOLING = "collection_pooling"
COLLECTION_K = "collection_k"
COLLECTION_MAP_CHART = "collection_map_chart"
COLLECTION_DOC = "collection_doc"
COLLECTION_NEW_FORM = "collection_new"
COLLECTION_PASTED = "collection_pasted"
COLLECTION_NEW_BUTTON = "collection_new_button"
COLLECTION_LIKED = "collection_liked"
# Attention page (a figure's download buttons: widget_key(its ..._DOWNLOAD, HTML_FILE or PNG_FILE)):
ATTN_ZOOM_Q = "attn_zoom_q"
ATTN_ZOOM_SAME = "attn_zoom_same"
ATTN_ZOOM_K = "attn_zoom_k"
ATTN_ZOOM = "attn_zoom"
ATTN_MODE = "attn_mode"
ATTN_WORD = "attn_word"
ATTN_MATCH = "attn_match"
ATTN_POS = "attn_pos"
ATTN_HEAD = "attn_head"
ATTN_LAYER = "attn_layer"
ATTN_EXPLAINER = "attn_explainer"
ATTN_PATTERN = "attn_pattern"
ATTN_PATTERN_DOWNLOAD = "attn_pattern_dl"
ATTN_TOKEN = "attn_token"
ATTN_TOKEN_DOWNLOAD = "attn_token_dl"
ATTN_BAND = "attn_band"
ATTN_BAND_DOWNLOAD = "attn_band_dl"
ATTN_GLOBALS = "attn_globals"
ATTN_GLOBALS_DOWNLOAD = "attn_globals_dl"
HTML_FILE = "html"
PNG_FILE = "png"

AUTO = "auto"  # strategy choice: the paper's default for the task of the page in use


def widget_key(*parts: str | int) -> str:
    """The key of one of several widgets (or per-slot values) of a kind: a constant and what tells them apart.

    Args:
        parts: a slot, a key constant, a view, an index..., joined by "_" (DOCUMENT, UPLOADER ->
            "document_upload"; EVIDENCE_TABLE, "longformer" -> "evidence_longformer").
    Returns:
        the key.
    """
    return "_".join(str(p) for p in parts)


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


def kept(key: str, state: MutableMapping[str, Any] | None = None) -> Stored | None:
    """What is kept under a result key, stale or not: to learn what it was computed from (e.g. which
    collection), then ask `stored` for it with the provenance that would hold now."""
    value = _session(state).get(key)
    return value if isinstance(value, Stored) else None


# --------------------------------------------------------------------------------------------------
# Documents and uploads


def current_document(slot: str = DOCUMENT) -> Document | None:
    """The document in a slot (DOCUMENT or SECOND_DOCUMENT), None before one is chosen."""
    return st.session_state.get(slot)


def set_document(slot: str, document: Document) -> None:
    st.session_state[slot] = document


def note_upload(slot: str, file_id: str, password: str) -> bool:
    """Note a (file, password) seen in a slot's uploader; each one is read once.

    Returns:
        True when it differs from the last one (it becomes the last one and the slot's error is cleared),
        False when it was read already.
    """
    upload = (file_id, password)
    if st.session_state.get(widget_key(slot, LAST_UPLOAD)) == upload:
        return False
    st.session_state[widget_key(slot, LAST_UPLOAD)] = upload
    set_upload_error(slot, None)
    return True


def upload_error(slot: str) -> str | None:
    """The message about the slot's last upload, when it could not be read."""
    return st.session_state.get(widget_key(slot, UPLOAD_ERROR))


def set_upload_error(slot: str, message: str | None) -> None:
    st.session_state[widget_key(slot, UPLOAD_ERROR)] = message


@dataclass(frozen=True)
class PdfFile:
    """A PDF as the page view opens it: its bytes and the password the user typed for it."""

    data: bytes
    password: str | None = None


def keep_pdf(document: Document, pdf: PdfFile, state: MutableMapping[str, Any] | None = None) -> None:
    """Keep an uploaded PDF's bytes and password for the page view (a few MB per PDF, this session only)."""
    if document.kind == "pdf":
        _session(state).setdefault(UPLOADED_PDFS, {})[document.sha256] = pdf


def kept_pdf(document: Document, state: MutableMapping[str, Any] | None = None) -> PdfFile | None:
    """The uploaded PDF `document` was read from, None when it was not uploaded in this session."""
    return _session(state).get(UPLOADED_PDFS, {}).get(document.sha256)


def reader_pins() -> Holder:
    """This session's `cache.Holder` (created on first use)."""
    return st.session_state.setdefault(READER_PINS, Holder("session"))


def documents_in_use() -> set[str]:
    """sha256 of the documents this session shows (its document and, on Compare, the second one)."""
    return {
        d.sha256 for d in (current_document(DOCUMENT), current_document(SECOND_DOCUMENT)) if d is not None
    }


def take_sample_link(name: str, state: MutableMapping[str, Any] | None = None) -> bool:
    """Whether `?sample=name` is new to this session; it is then noted, so a later choice of document sticks."""
    session = _session(state)
    if session.get(SAMPLE_FROM_URL) == name:
        return False
    session[SAMPLE_FROM_URL] = name
    return True


# --------------------------------------------------------------------------------------------------
# The Ask page


def ask_history() -> list[AskRecord]:
    """The session's questions, oldest first (each record names its document, model and strategy)."""
    return st.session_state.setdefault(ASK_HISTORY, [])


def set_pending_question(question: str) -> None:
    """Ask `question` on this run (a suggested question was clicked)."""
    st.session_state[PENDING_QUESTION] = question


def take_pending_question() -> str | None:
    """The suggested question clicked on this run, if any (consumed)."""
    return st.session_state.pop(PENDING_QUESTION, None)


def explanations() -> dict[Provenance, dict[str, Explanation]]:
    """The evidence found in this session, {provenance of the answers explained: {view: Explanation}}.

    Keyed by the answers' provenance (document, model, strategy, question), so evidence found with one
    model is never shown for another model's answers.
    """
    return st.session_state.setdefault(EXPLANATIONS, {})


def strategy_tables() -> dict[Provenance, list[StrategyRow]]:
    """The "Try every strategy" tables of this session, by what each was computed from (document, model,
    question and keywords)."""
    return st.session_state.setdefault(STRATEGY_TABLES, {})


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
