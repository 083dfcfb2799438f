"""Shared UI helpers for the Streamlit app: sidebar, caching, progress, error display and rendering.

The pages hold no model logic: they call the helpers here, which call `longformer_core`. Everything the
user sees is written for someone who has never heard of attention.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from longformer_core.classify import ClassifyResult, classify, classify_with_trained_heads, parse_labels
from longformer_core.collection import Clusters, cluster, map_2d, top_terms
from longformer_core.corpus import Corpus, Embeddings, default_cache, embed_and_load, read_csv_bytes
from longformer_core.documents import Document, DocumentError, load_document, load_path, text_document
from longformer_core.encoding import VIEWS, Progress, scaled, view_windows
from longformer_core.evaluate_corpus import duplicate_groups
from longformer_core.heads import Head, bundled_heads
from longformer_core.models import BASELINE_TOKENS, EMBEDDED, ModelLoadError, ModelPair, load_models
from longformer_core.qa import QAResult, ask, check_question
from longformer_core.reader import DocumentReader
from longformer_core.results import Located
from longformer_core.similarity import (
    POOLINGS,
    PassageMatrix,
    SimilarityResult,
    compare,
    document_embedding,
    passage_matrix,
)
from longformer_core.strategies import DEFAULT_EVERY_K, DEFAULT_FOR_TASK, STRATEGIES

log = logging.getLogger(__name__)
T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent
SAMPLES_DIR = REPO_ROOT / "assets" / "samples"
SAMPLE_SUFFIXES = (".md", ".txt", ".pdf")
UPLOAD_TYPES = ["pdf", "txt", "md", "markdown", "text"]
# The core's messages are written for users; anything else is a bug we log but never show as a traceback.
USER_ERRORS = (DocumentError, ModelLoadError, ValueError)

AUTO = "auto"  # strategy choice: the paper's default for the task of the page in use
MAIN = "document"  # session-state slot of the document every page works on
SECOND = "second_document"  # the Compare page's other document
READER_CACHE_SIZE = 8  # a reader of a 79-page PDF keeps ~300 MB of token states; bound the memory

VIEW_TITLES = {
    "truncated": "Truncated model",
    "chunked": "Chunked model",
    "longformer": "Longformer",
}
VIEW_HELP = {
    "truncated": f"A classic model that reads only the first {BASELINE_TOKENS} tokens (about one page).",
    "chunked": f"The same model run on every {BASELINE_TOKENS}-token piece separately; the best piece wins.",
    "longformer": "Reads the whole document with context: every word can look far beyond its page.",
}
VIEW_COLORS = {"truncated": "#d97706", "chunked": "#2563eb", "longformer": "#059669"}
TASK_WORDS = {"qa": "questions", "classify": "classification", "similarity": "comparing documents"}


# --------------------------------------------------------------------------------------------------
# Errors and progress


def user_message(exc: Exception, doing: str) -> str:
    """What to tell the user about an error: the core's message, or a generic one for a bug (logged)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    log.error("unexpected error while %s", doing, exc_info=exc)
    return (
        f"Something unexpected went wrong while {doing}. Try again, or try another document or model. "
        "(The details are in the server log.)"
    )


def attempt(work: Callable[[], T], doing: str) -> T | None:
    """Run `work`; on failure show an st.error (never a traceback) and return None so the page goes on.

    Args:
        work: what to do.
        doing: what it is, for the message about unexpected errors ("reading the file").
    """
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - a bug or an out-of-memory must not take the app down either
        st.error(user_message(exc, doing))
        return None


@contextmanager
def working(label: str) -> Iterator[Progress]:
    """An st.status box with a progress bar; yields a `progress(fraction, message)` callback for the core.

    Errors are re-raised so that `attempt` shows them outside the box, where they stay visible.
    """
    started = time.perf_counter()
    with st.status(label, expanded=True) as box:
        bar = st.progress(0.0, text="Starting...")

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(1.0, max(0.0, float(fraction))), text=message)

        try:
            yield progress
        except BaseException:
            box.update(label=f"{label} Stopped.", state="error", expanded=False)
            raise
        box.update(label=f"Done in {time.perf_counter() - started:.1f} s.", state="complete", expanded=False)


# --------------------------------------------------------------------------------------------------
# Models, settings and the sidebar


@st.cache_resource(show_spinner="Loading the model (once for everyone using this app)...")
def cached_models(model_id: str, baseline_id: str) -> ModelPair:
    """One copy of each model pair, shared by every session."""
    return load_models(model_id or EMBEDDED, baseline=baseline_id or None)


@dataclass(frozen=True)
class Settings:
    """What the sidebar decided: the models, the global-attention strategy and its parameters."""

    pair: ModelPair = field(compare=False)
    model_key: str  # cache key part: which checkpoints the pair holds
    strategy_choice: str  # AUTO or a key of STRATEGIES
    keywords: tuple[str, ...] = ()
    every_k: int = DEFAULT_EVERY_K

    def strategy_for(self, task: str) -> str:
        """The strategy to use for a task ("qa", "classify", "similarity")."""
        return DEFAULT_FOR_TASK[task] if self.strategy_choice == AUTO else self.strategy_choice


def parse_keywords(text: str) -> tuple[str, ...]:
    """Keywords typed by the user, separated by commas or new lines."""
    return tuple(k.strip() for k in re.split(r"[,\n]", text) if k.strip())


def _strategy_label(key: str) -> str:
    return "Recommended for each task" if key == AUTO else STRATEGIES[key].label


def _strategy_explanation(choice: str, task: str | None) -> str:
    if choice != AUTO:
        return STRATEGIES[choice].explanation
    if task is None:
        return (
            "Uses the paper's choices: the words of your question when you ask questions, "
            "the first (summary) token when you classify or compare documents."
        )
    chosen = STRATEGIES[DEFAULT_FOR_TASK[task]]
    return f"For {TASK_WORDS[task]} this is **{chosen.label.lower()}**: {chosen.explanation}"


def _sidebar_models() -> tuple[ModelPair, str]:
    """The model section of the sidebar; falls back to the embedded model when a custom one fails."""
    st.subheader("Model")
    with st.expander("Use another checkpoint"):
        model_id = st.text_input(
            "Longformer checkpoint",
            key="model_id",
            placeholder="e.g. allenai/longformer-base-4096 or /models/my-longformer",
            help="A Hugging Face id already in this machine's cache, or a folder written by save_pretrained. "
            "Leave empty to use the small offline model that ships with the app.",
        ).strip()
        baseline_id = st.text_input(
            "512-token model to compare with (optional)",
            key="baseline_id",
            placeholder="e.g. roberta-base",
            help="Leave empty to use the checkpoint's usual partner, "
            "or the same model limited to 512 tokens.",
        ).strip()
    if model_id:
        pair = attempt(lambda: cached_models(model_id, baseline_id), doing="loading the model")
        if pair is not None:
            return pair, f"{model_id}|{baseline_id}"
        st.caption("Using the built-in offline model until this is fixed.")
    pair = attempt(lambda: cached_models(EMBEDDED, ""), doing="loading the built-in model")
    if pair is None:
        st.stop()  # nothing works without a model; the message above says why
    return pair, EMBEDDED


def page_setup(task: str | None) -> Settings:
    """Start a page: page config and the sidebar (document in use, model, global-attention strategy).

    Every page calls this first instead of relying on app.py: Streamlit can run a file in pages/ on its
    own (its "pages directory" mode, e.g. the first request after a restart, and in AppTest), and the
    sidebar must be there all the same.

    Args:
        task: the page's task ("qa", "classify", "similarity"), None on the Document page.
    Returns:
        the models and strategy to use.
    """
    st.set_page_config(
        page_title="Long documents with Longformer", page_icon=":material/menu_book:", layout="wide"
    )
    with st.sidebar:
        summary = st.container()
        pair, model_key = _sidebar_models()
        st.caption(
            f"**{pair.name}**: the Longformer reads up to {pair.longformer.max_tokens:,} tokens at once; "
            f"the model it is compared with reads {pair.baseline.max_tokens}."
        )
        st.subheader("Global attention")
        choice = st.selectbox(
            "Which words read the whole document?",
            [AUTO, *STRATEGIES],
            format_func=_strategy_label,
            key="strategy",
            help="In a Longformer most words only look at their neighbours. A few 'global' words read the "
            "whole document and every word can consult them. This choice decides which words those are.",
        )
        st.caption(_strategy_explanation(choice, task))
        keywords: tuple[str, ...] = ()
        if choice == "keywords":
            keywords = parse_keywords(
                st.text_input(
                    "Keywords (separate with commas)", key="keywords", placeholder="e.g. retention, evidence"
                )
            )
        every_k = DEFAULT_EVERY_K
        if choice == "every_k":
            every_k = int(
                st.number_input(
                    "k: tokens between signposts", 16, 4096, DEFAULT_EVERY_K, step=16, key="every_k"
                )
            )
    settings = Settings(pair, model_key, choice, keywords, every_k)
    # For pages that read the model pair from the session instead (pages/attention.py).
    st.session_state["pair"] = pair
    with summary:
        attempt(
            lambda: show_document_summary(current_document(), settings),
            doing="counting the document's tokens",
        )
    return settings


def show_document_summary(document: Document | None, settings: Settings) -> None:
    """The sidebar's 'document in use' box (choosing a new document reruns the page, so it shows at once)."""
    st.subheader("Document")
    if document is None:
        st.caption("None yet: choose one on the Document page.")
        return
    st.markdown(f"**{md(document.name)}**")
    st.caption(
        f"{document.n_pages:,} page{'s' * (document.n_pages != 1)} · "
        f"{token_count(document, settings):,} tokens · {document.n_chars:,} characters"
    )


# --------------------------------------------------------------------------------------------------
# Documents


def data_dir() -> Path:
    """The shared public data folder (env LONGDOC_DATA_DIR, default ../shared/data next to the repo)."""
    return Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def sample_files() -> dict[str, Path]:
    """Bundled samples and, when present, the public-domain NIST guide: {label shown: path}."""
    samples = {}
    for path in sorted(SAMPLES_DIR.iterdir()) if SAMPLES_DIR.is_dir() else []:
        if path.suffix.lower() in SAMPLE_SUFFIXES:
            samples[_sample_title(path)] = path
    nist = data_dir() / "pdfs" / "nist_sp800-61r2.pdf"
    if nist.is_file():
        samples["NIST SP 800-61r2: Computer Security Incident Handling Guide (79-page PDF)"] = nist
    return samples


def _sample_title(path: Path) -> str:
    """A Markdown sample's first heading, else its file name."""
    if path.suffix.lower() == ".md":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return f"{line[2:].strip()} (sample guide)"
    return path.name


@st.cache_resource(show_spinner="Reading the file...")
def cached_sample(path: str, modified: float) -> Document:
    """A sample document, extracted once for all sessions (`modified` refreshes it when the file changes)."""
    return load_path(path)


def current_document(slot: str = MAIN) -> Document | None:
    return st.session_state.get(slot)


def require_document(message: str = "Choose a document first.") -> Document:
    """The document in use; without one, say so with a link to the Document page and stop the page."""
    document = current_document()
    if document is None:
        st.info(message)
        st.page_link("pages/document.py", label="Choose a document", icon=":material/description:")
        st.stop()
    return document


def document_picker(slot: str) -> Document | None:
    """Upload a file or pick a sample; the document that loads becomes the slot's document.

    Args:
        slot: session-state key of the document (MAIN for the Document page, SECOND on Compare).
    Returns:
        The slot's document (maybe from an earlier run), or None.
    """
    uploaded = st.file_uploader(
        "Upload a PDF or a text file (.txt, .md)", type=UPLOAD_TYPES, key=f"{slot}_upload"
    )
    password = st.text_input(
        "PDF password (only if the file is locked)", type="password", key=f"{slot}_password"
    )
    if uploaded is not None:
        _load_upload(slot, uploaded.file_id, uploaded.getvalue(), uploaded.name, password)
    samples = sample_files()
    if samples:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        choice = left.selectbox("...or use a sample document", list(samples), key=f"{slot}_sample")
        if right.button("Use this sample", key=f"{slot}_use_sample", type="primary"):
            path = samples[choice]
            document = attempt(
                lambda: cached_sample(str(path), path.stat().st_mtime), doing="reading the sample"
            )
            if document is not None:
                _use(slot, document)
    return current_document(slot)


def _use(slot: str, document: Document) -> None:
    """Make `document` the slot's document; rerun so the sidebar (drawn before the page) shows it."""
    changed = current_document(slot) is not document
    st.session_state[slot] = document
    if changed and slot == MAIN:
        st.rerun()


def _load_upload(slot: str, file_id: str, data: bytes, name: str, password: str) -> None:
    """Load an upload once per (file, password); keep showing its error until the user changes something."""
    key = (file_id, password)
    if st.session_state.get(f"{slot}_upload_key") != key:
        st.session_state[f"{slot}_upload_key"] = key
        st.session_state[f"{slot}_upload_error"] = None
        try:
            with st.spinner(f"Reading {name}..."):
                document = load_document(data, name, password=password or None)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message (see user_message)
            st.session_state[f"{slot}_upload_error"] = user_message(exc, "reading the file")
        else:
            _use(slot, document)
    error = st.session_state.get(f"{slot}_upload_error")
    if error:
        st.error(error)


# --------------------------------------------------------------------------------------------------
# Readers: one document read by one model pair under one strategy (the core caches the encodings)


@st.cache_resource(max_entries=READER_CACHE_SIZE, show_spinner=False)
def _cached_reader(
    sha256: str,
    model_key: str,
    strategy: str,
    keywords: tuple[str, ...],
    every_k: int,
    _pair: ModelPair,
    _document: Document,
) -> DocumentReader:
    # The leading underscores keep the models and the text out of Streamlit's hashing; the key is the rest.
    return DocumentReader(_pair, _document, strategy=strategy, keywords=keywords, every_k=every_k)


def reader_for(document: Document, settings: Settings, task: str) -> DocumentReader:
    """The shared reader of this document, model pair and strategy (ValueError for a bad strategy setup)."""
    strategy = settings.strategy_for(task)
    # Parameters of other strategies would only split the cache.
    keywords = settings.keywords if strategy == "keywords" else ()
    every_k = settings.every_k if strategy == "every_k" else DEFAULT_EVERY_K
    return _cached_reader(
        document.sha256, settings.model_key, strategy, keywords, every_k, settings.pair, document
    )


def token_count(document: Document, settings: Settings) -> int:
    """The document's length in the Longformer's tokens (tokenized once per document and model).

    Counted with the first-token strategy, whatever the sidebar says: the count does not depend on the
    strategy, and this reader is the one classification and comparison use by default.
    """
    reader = _cached_reader(
        document.sha256, settings.model_key, "cls", (), DEFAULT_EVERY_K, settings.pair, document
    )
    return len(reader.long_tokens)


def baseline_reach(document: Document, settings: Settings) -> int:
    """How many document tokens the truncated 512-token model reads.

    Counted in the Longformer's tokens: the same as the baseline's for the embedded pair, close enough
    to draw for other pairs.
    """
    baseline = settings.pair.baseline
    n_tokens = token_count(document, settings)
    (_, end), *_ = view_windows(baseline, baseline.tokenizer, n_tokens, "truncated")
    return end


def longformer_windows(document: Document, settings: Settings) -> int:
    """How many passes the Longformer needs for this document (1 when it fits)."""
    longformer = settings.pair.longformer
    n_tokens = token_count(document, settings)
    return len(view_windows(longformer, longformer.tokenizer, n_tokens, "longformer"))


def read_views(
    reader: DocumentReader,
    views: Sequence[str],
    progress: Progress,
    *,
    task_head: str | None = None,
    sentences: bool = False,
) -> None:
    """Read the document with each view that needs it, reporting progress in plain words.

    The tasks would do this themselves on first use; doing it here first gives one progress bar per
    step and lets later questions reuse everything.

    Args:
        reader: the shared reader.
        views: views about to be used.
        progress: where to report.
        task_head: a view whose model has this head ("qa", "classification") runs its own pass per
            request, so it is skipped here.
        sentences: also embed every sentence on its own (to pick answer sentences without a QA head).
    """
    todo = [v for v in views if reader.model_for(v).head != task_head and not reader.has_pass(v)]
    sentences = sentences and not reader.passage_vectors_ready()
    steps = len(todo) + int(sentences)
    for i, view in enumerate(todo):
        step = scaled(progress, i / steps, (i + 1) / steps)
        step(0.0, f"{VIEW_TITLES[view]} is reading the document...")
        reader.encoded(
            view, lambda f, msg, step=step, view=view: step(f, f"{VIEW_TITLES[view]} is reading ({msg})")
        )
    if sentences:
        step = scaled(progress, len(todo) / steps, 1.0)
        step(0.0, f"Reading each of the {len(reader.passages):,} passages on its own...")
        reader.embed_passages(lambda f, msg: step(f, f"Reading each passage on its own ({msg})"))
    progress(1.0, "The document is read; answering...")


def reading_seconds(reader: DocumentReader, view: str, method: str) -> float | None:
    """Time the view spent reading the document once; None for a task head, which reads per request."""
    if method in ("span", "head") or not reader.has_pass(view):
        return None
    return reader.encoded(view).seconds


# --------------------------------------------------------------------------------------------------
# Question answering


@dataclass
class ViewAnswer:
    """One view's answer, with what the page needs to draw it without the reader."""

    result: QAResult
    answer_token: int | None  # document token where the best answer starts (for the "what it saw" bar)
    reading_seconds: float | None  # the one-off reading of the document (None: per-question model)


@dataclass
class AskRecord:
    """One question asked in this session and every view's answer (the page's history)."""

    question: str
    source: Document  # the document asked about (its text is needed to highlight answers)
    strategy: str
    model: str
    answers: dict[str, ViewAnswer]
    asked_at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))


def answer_question(
    document: Document,
    settings: Settings,
    question: str,
    on_answer: Callable[[str, ViewAnswer], None],
) -> AskRecord:
    """Ask every view; call `on_answer(view, answer)` as soon as each view has answered.

    Raises:
        ValueError: empty or too long question, bad strategy setup (messages for the user).
    """
    question = check_question(question)
    reader = reader_for(document, settings, "qa")
    record = AskRecord(question, document, reader.strategy, settings.pair.name, {})
    with working("Answering...") as progress:
        sentences = any(reader.model_for(v).head != "qa" for v in VIEWS)
        read_views(reader, VIEWS, scaled(progress, 0.0, 0.9), task_head="qa", sentences=sentences)
        for i, view in enumerate(VIEWS):
            step = scaled(progress, 0.9 + 0.1 * i / len(VIEWS), 0.9 + 0.1 * (i + 1) / len(VIEWS))
            result = ask(reader, question, views=(view,), progress=step)[view]
            best = result.best
            token = reader.tokens_for(view).token_at(best.char_span[0]) if best else None
            reading = reading_seconds(reader, view, result.method)
            record.answers[view] = ViewAnswer(result, token, reading)
            on_answer(view, record.answers[view])
    return record


def history_rows(history: Sequence[AskRecord]) -> list[dict]:
    """One row per (question, model) for the CSV download and the history table."""
    rows = []
    for record in history:
        for view, answer in record.answers.items():
            best = answer.result.best
            rows.append(
                {
                    "asked_at": record.asked_at,
                    "document": record.source.name,
                    "question": record.question,
                    "model": VIEW_TITLES[view],
                    "answer": " ".join(best.text.split()) if best else "",
                    "confidence": round(best.score, 4) if best else None,
                    "page": best.page if best else None,
                    "page_label": best.page_label if best else "",
                    "seconds": round(answer.result.seconds, 3),
                    "strategy": record.strategy,
                }
            )
    return rows


def history_csv(history: Sequence[AskRecord]) -> str:
    return pd.DataFrame(history_rows(history)).to_csv(index=False)


def history_json(history: Sequence[AskRecord]) -> str:
    """The full results (all candidate answers, what each model read) for every question."""
    return json.dumps(
        [
            {
                "asked_at": r.asked_at,
                "document": r.source.name,
                "question": r.question,
                "strategy": r.strategy,
                "model": r.model,
                "results": {view: a.result.to_dict() for view, a in r.answers.items()},
            }
            for r in history
        ],
        indent=2,
    )


# --------------------------------------------------------------------------------------------------
# Classification and similarity


def needs_typed_labels(settings: Settings) -> bool:
    """Whether any view reads the typed labels (a model with a classification head brings its own)."""
    pair = settings.pair
    return any(m.head != "classification" for m in (pair.longformer, pair.baseline))


def own_labels(settings: Settings) -> list[str]:
    """The labels of the Longformer's classification head ([] when it has none)."""
    return list(settings.pair.longformer.labels)


@dataclass
class ClassifyRecord:
    results: dict[str, ClassifyResult]
    reading: dict[str, float | None]  # each view's one-off reading of the document (None: per run)


def classify_document(document: Document, settings: Settings, labels_text: str) -> ClassifyRecord:
    """Score the labels with every view (ValueError for fewer than two labels)."""
    labels = parse_labels(labels_text) if needs_typed_labels(settings) else []
    reader = reader_for(document, settings, "classify")
    with working("Classifying...") as progress:
        read_views(reader, VIEWS, scaled(progress, 0.0, 0.9), task_head="classification")
        results = classify(reader, labels, progress=scaled(progress, 0.9, 1.0))
    reading = {view: reading_seconds(reader, view, results[view].method) for view in VIEWS}
    return ClassifyRecord(results, reading)


@st.cache_resource(show_spinner=False)
def shipped_heads() -> dict[str, dict[str, Head]]:
    """The trained heads in assets/heads, {task: {view: Head}}, read once."""
    return bundled_heads()


def trained_head_titles() -> dict[str, str]:
    """{task: title} of the shipped heads ("hyperpartisan": "Hyperpartisan news?")."""
    return {task: next(iter(by_view.values())).title for task, by_view in shipped_heads().items()}


def classify_with_head(document: Document, settings: Settings, task: str) -> ClassifyRecord:
    """Classify with a shipped trained head (one per view)."""
    heads = shipped_heads()[task]
    reader = reader_for(document, settings, "classify")
    with working("Classifying...") as progress:
        read_views(reader, [v for v in VIEWS if v in heads], scaled(progress, 0.0, 0.95))
        results = classify_with_trained_heads(reader, heads)
    reading = {view: reading_seconds(reader, view, results[view].method) for view in results}
    return ClassifyRecord(results, reading)


@dataclass
class CompareRecord:
    results: dict[str, SimilarityResult]
    reader_a: DocumentReader
    reader_b: DocumentReader
    pooling: str


def compare_documents(a: Document, b: Document, settings: Settings, pooling: str) -> CompareRecord:
    """Cosine similarity of two documents with every view."""
    reader_a = reader_for(a, settings, "similarity")
    reader_b = reader_for(b, settings, "similarity")
    with working("Comparing...") as progress:
        read_views(reader_a, VIEWS, scaled(progress, 0.0, 0.5))
        read_views(reader_b, VIEWS, scaled(progress, 0.5, 1.0))
        results = compare(reader_a, reader_b, pooling=pooling)
    return CompareRecord(results, reader_a, reader_b, pooling)


def passages_of(record: CompareRecord, view: str) -> PassageMatrix:
    return passage_matrix(record.reader_a, record.reader_b, view=view, pooling=record.pooling)


# --------------------------------------------------------------------------------------------------
# Rendering


def _plain_html(text: str) -> str:
    """Document text as safe HTML: escaped, hard line wraps joined, paragraph breaks kept."""
    escaped = html.escape(text)
    escaped = re.sub(r"\n\s*\n", "<br><br>", escaped)
    return escaped.replace("\n", " ")


def highlight(document: Document, answer: tuple[int, int], context: tuple[int, int]) -> str:
    """HTML of the context with the answer in <mark>; all document text is escaped first.

    Args:
        document: whose text to show.
        answer: char span of the answer.
        context: char span of the surrounding text (contains the answer).
    """
    a, b = answer
    c0, c1 = min(context[0], a), max(context[1], b)
    text = document.text
    before = ("..." if c0 > 0 else "") + text[c0:a]
    after = text[b:c1] + ("..." if c1 < len(text) else "")
    return (
        '<div style="line-height:1.5;font-size:0.92rem">'
        f"{_plain_html(before)}<mark>{_plain_html(text[a:b])}</mark>{_plain_html(after)}</div>"
    )


def text_box(text: str, max_chars: int = 6000) -> str:
    """HTML of a (possibly long) text, escaped and cut at max_chars, for st.html."""
    shown = text[:max_chars] + ("\n\n[...]" if len(text) > max_chars else "")
    return (
        '<div style="max-height:22rem;overflow-y:auto;border:1px solid #ddd;border-radius:0.5rem;'
        f'padding:0.75rem;font-size:0.9rem;line-height:1.5">{_plain_html(shown)}</div>'
    )


def page_text(page: int, label: str) -> str:
    """'page 12', or 'page 12 (printed "iv")' when the printed label differs."""
    return f"page {page}" if label == str(page) else f'page {page} (printed "{label}")'


def coverage_chart(n_tokens: int, baseline_reads: int, longformer_limit: int) -> go.Figure:
    """Bars: what the 512-token model reads, what the Longformer can read at once, the document's length."""
    names = ["A 512-token model reads", "The Longformer reads at once", "Your document"]
    values = [baseline_reads, longformer_limit, n_tokens]
    colors = [VIEW_COLORS["truncated"], VIEW_COLORS["longformer"], "#6b7280"]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=colors,
            text=[f"{v:,} tokens" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} tokens<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        xaxis_title="tokens",
        yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return fig


def seen_chart(
    view: str, n_tokens: int, seen: tuple[int, int], answer_token: int | None, answer_where: str
) -> go.Figure:
    """One bar over the whole document: the part this view read, and a marker where its answer starts."""
    fig = go.Figure()
    fig.add_bar(
        x=[n_tokens],
        y=[""],
        orientation="h",
        marker_color="#e5e7eb",
        name="not read",
        hovertemplate=f"whole document: {n_tokens:,} tokens<extra></extra>",
    )
    fig.add_bar(
        x=[max(1, seen[1] - seen[0])],
        base=[seen[0]],
        y=[""],
        orientation="h",
        marker_color=VIEW_COLORS[view],
        name="read",
        hovertemplate=f"read tokens {seen[0]:,} to {seen[1]:,}<extra></extra>",
    )
    if answer_token is not None:
        fig.add_scatter(
            x=[answer_token],
            y=[""],
            mode="markers",
            name="answer",
            marker={
                "symbol": "diamond",
                "size": 14,
                "color": "#111827",
                "line": {"color": "white", "width": 1},
            },
            hovertemplate=f"answer at token {answer_token:,} ({html.escape(answer_where)})<extra></extra>",
        )
    fig.update_layout(
        barmode="overlay",
        height=90,
        margin={"l": 0, "r": 0, "t": 0, "b": 25},
        showlegend=False,
        xaxis={"range": [0, max(1, n_tokens)], "title": None, "tickformat": ","},
        yaxis={"visible": False},
    )
    return fig


def scores_chart(results: dict[str, ClassifyResult]) -> go.Figure:
    """Grouped bars: each label's probability for each model."""
    fig = go.Figure()
    for view, result in results.items():
        labels = list(result.scores)
        fig.add_bar(
            x=labels,
            y=[result.scores[k] for k in labels],
            name=VIEW_TITLES[view],
            marker_color=VIEW_COLORS[view],
            hovertemplate="%{x}: %{y:.0%}<extra>" + VIEW_TITLES[view] + "</extra>",
        )
    fig.update_layout(
        barmode="group",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"title": "probability", "tickformat": ".0%", "range": [0, 1]},
        legend={"orientation": "h", "y": 1.1},
    )
    return fig


def _snippet(text: str, n: int = 110) -> str:
    return html.escape(flat(text, n))


def heatmap(m: PassageMatrix, name_a: str, name_b: str) -> go.Figure:
    """Passage-by-passage cosine; hover shows both passages' pages and snippets (escaped)."""
    hover = [
        [
            f"<b>{html.escape(name_a)}</b>, page {html.escape(pa.page_label)}: {_snippet(pa.text)}<br>"
            f"<b>{html.escape(name_b)}</b>, page {html.escape(pb.page_label)}: {_snippet(pb.text)}<br>"
            + (
                "similarity: not read by this model"
                if np.isnan(m.matrix[i, j])
                else f"similarity: {m.matrix[i, j]:.2f}"
            )
            for j, pb in enumerate(m.passages_b)
        ]
        for i, pa in enumerate(m.passages_a)
    ]
    z = np.where(np.isnan(m.matrix), None, m.matrix).tolist()  # None: a gap plotly leaves blank
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            colorscale="Viridis",
            colorbar={"title": "similarity"},
            x=list(range(1, len(m.passages_b) + 1)),
            y=list(range(1, len(m.passages_a) + 1)),
        )
    )
    fig.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=f"passages of {html.escape(name_b)}",
        yaxis_title=f"passages of {html.escape(name_a)}",
        yaxis={"autorange": "reversed"},
    )
    return fig


def model_header(view: str) -> None:
    """The column title of a view with its one-line explanation."""
    st.subheader(VIEW_TITLES[view])
    st.caption(VIEW_HELP[view])


def seen_caption(seen_tokens: Sequence[int], n_tokens: int) -> str:
    """'Read 8% of the document (tokens 0 to 510 of 6,432).'"""
    s, e = seen_tokens
    return f"Read {(e - s) / max(1, n_tokens):.0%} of the document (tokens {s:,} to {e:,} of {n_tokens:,})."


def flat(text: str, n: int = 400) -> str:
    """Text on one line, cut at n characters (for tables and titles; not HTML-escaped)."""
    one_line = " ".join(text.split())
    return one_line[:n] + ("..." if len(one_line) > n else "")


def md(text: str) -> str:
    """User or document text made inert inside Streamlit Markdown (links, emphasis, LaTeX, HTML)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def render_answer(view: str, answer: ViewAnswer, document: Document) -> None:
    """One view's column on the Ask page: answer, confidence, page, highlight, what it read, time."""
    result = answer.result
    best = result.best
    if best is None:
        st.warning("No answer: this model found nothing to point to in the part it read.")
    else:
        st.html(f'<p style="font-weight:600;margin:0">{html.escape(flat(best.text))}</p>')
        left, right = st.columns(2)
        left.metric(
            "Confidence",
            f"{best.score:.0%}",
            help="How strongly the model preferred this passage over the others it read. "
            "It is not a promise that the answer is right, and says nothing about parts it did not read.",
        )
        right.metric(
            "Page", best.page_label, help=f"Found on {page_text(best.page, best.page_label)} of the file."
        )
        st.html(highlight(document, best.char_span, best.context))
    where = page_text(best.page, best.page_label) if best else ""
    st.plotly_chart(
        seen_chart(view, result.n_tokens, result.seen_tokens, answer.answer_token, where),
        config={"displayModeBar": False},
        key=f"seen_{view}",
    )
    st.caption(seen_caption(result.seen_tokens, result.n_tokens))
    for note in result.notes:
        st.caption(note)
    st.caption(_timing(result.seconds, answer.reading_seconds))
    if len(result.answers) > 1:
        with st.expander("Other candidates"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "answer": [flat(a.text, 200) for a in result.answers[1:]],
                        "confidence": [f"{a.score:.0%}" for a in result.answers[1:]],
                        "page": [a.page_label for a in result.answers[1:]],
                    }
                ),
                hide_index=True,
            )


def _timing(task_seconds: float, reading: float | None) -> str:
    if reading is None:
        return f"Took {task_seconds:.2f} s (this model reads the document again for every question)."
    return (
        f"Took {task_seconds:.2f} s. Reading the document took {reading:.1f} s, once; "
        "later questions reuse it."
    )


def render_classification(result: ClassifyResult, reader_seconds: float | None) -> None:
    """One view's column on the Classify page."""
    st.metric(
        "Best label",
        result.prediction,
        f"{result.score:.0%} probability",
        delta_color="off",
        delta_arrow="off",
        help="The label this model found most fitting, and how sure it is compared with the other labels.",
    )
    if result.method == "head":
        st.caption("Uses the labels this model was trained with.")
    for note in result.notes:
        st.caption(note)
    if result.evidence is not None:
        ev = result.evidence
        st.caption(f"Decided by the piece starting on {page_text(ev.page, ev.page_label)}.")
    st.caption(seen_caption(result.seen_tokens, result.n_tokens))
    st.caption(_timing(result.seconds, reader_seconds))


def render_similarity(result: SimilarityResult) -> None:
    """One view's column on the Compare page."""
    st.metric(
        "Similarity",
        f"{result.cosine:.2f}",
        help="1 means the two documents point the same way in meaning; around 0 means unrelated.",
    )
    other = result.other
    st.caption(f"First document: {seen_caption(result.seen_tokens, result.n_tokens)}")
    st.caption(f"Second document: {seen_caption(other['seen_tokens'], other['n_tokens'])}")


def best_pairs_table(matrix: PassageMatrix, k: int = 5) -> list[dict]:
    """The k most similar passage pairs the model read, as table rows (page and text of each side)."""
    return [
        {
            "similarity": round(score, 3),
            "first document": _passage_cell(matrix.passages_a[i]),
            "second document": _passage_cell(matrix.passages_b[j]),
        }
        for i, j, score in matrix.best_pairs(k)
        if not np.isnan(matrix.matrix[i, j])
    ]


def _passage_cell(passage: Located) -> str:
    return f"page {passage.page_label}: {flat(passage.text, 160)}"


# --------------------------------------------------------------------------------------------------
# Collections (pages/collection.py): many documents, embedded once, clustered and searched

COLLECTION_VIEWS = ("longformer", "truncated")  # the chunked view would add a pass per chunk for little


@dataclass
class CollectionState:
    """An embedded collection: the documents and their vectors for every view and pooling."""

    corpus: Corpus
    embeddings: dict[tuple[str, str], Embeddings]
    model_key: str
    strategy: str

    @property
    def titles(self) -> list[str]:
        given = self.corpus.titles or [""] * len(self.corpus)
        return [title or flat(text.strip().split("\n", 1)[0], 80) for title, text in zip(given, self.corpus.texts)]

    @property
    def groups(self) -> np.ndarray:
        return duplicate_groups(self.corpus.texts)


def default_text_column(columns: Sequence[str]) -> int:
    """Index of the column most likely to hold the text (Content, text, body, ...)."""
    lowered = [c.lower() for c in columns]
    for name in ("content", "text", "body", "article", "document"):
        if name in lowered:
            return lowered.index(name)
    return 0


def read_collection_csv(data: bytes, name: str, text_column: str, title_column: str | None,
                        label_column: str | None) -> Corpus:
    return read_csv_bytes(data, text_column, title_column=title_column, label_column=label_column, name=name)


def embed_collection(corpus: Corpus, settings: Settings) -> CollectionState:
    """Embed every document with the Longformer and the truncated view (all poolings, one pass each),
    reusing whatever an earlier run left in the on-disk cache."""
    strategy = settings.strategy_for("similarity")
    with working(f"Reading {len(corpus)} documents...") as progress:
        embeddings = embed_and_load(settings.pair, corpus, default_cache(corpus),  # shared with `evaluate`
                                    COLLECTION_VIEWS, list(POOLINGS), strategy, progress=progress)
    return CollectionState(corpus, embeddings, settings.model_key, strategy)


@st.cache_data(max_entries=32, show_spinner="Grouping the documents...")
def collection_clusters(key: str, view: str, pooling: str, k: int, _state: CollectionState) -> Clusters:
    return cluster(_state.embeddings[(view, pooling)].vectors, k)


@st.cache_data(max_entries=32, show_spinner=False)
def collection_map(key: str, view: str, pooling: str, _state: CollectionState) -> np.ndarray:
    return map_2d(_state.embeddings[(view, pooling)].vectors)


@st.cache_data(max_entries=32, show_spinner=False)
def collection_terms(key: str, view: str, pooling: str, k: int, _state: CollectionState) -> list[list[str]]:
    clusters = collection_clusters(key, view, pooling, k, _state)
    return top_terms(_state.corpus.texts, clusters.labels)


def collection_figure(coords: np.ndarray, labels: np.ndarray, titles: Sequence[str], texts: Sequence[str]) -> go.Figure:
    """The 2-D map: one dot per document, coloured by cluster; hover shows the title and a snippet (escaped)."""
    fig = go.Figure()
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        fig.add_scatter(
            x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=f"cluster {c + 1}",
            text=[f"<b>{html.escape(flat(titles[i], 90))}</b><br>{_snippet(texts[i], 160)}" for i in idx],
            hovertemplate="%{text}<extra>cluster " + str(c + 1) + "</extra>",
            marker={"size": 8, "opacity": 0.8},
        )
    fig.update_layout(height=480, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"title": "first direction of difference (PCA)"},
                      yaxis={"title": "second direction (PCA)"}, legend={"orientation": "h", "y": 1.08})
    return fig


def neighbour_rows(state: CollectionState, hits: Sequence[tuple[int, float | None]]) -> list[dict]:
    """Table rows for (document index, similarity or None) pairs."""
    labels = state.corpus.labels
    return [
        {"document": flat(state.titles[i], 90), **({"similarity": round(s, 3)} if s is not None else {}),
         **({"label": labels[i]} if labels else {}), "start": flat(state.corpus.texts[i], 140)}
        for i, s in hits
    ]


def embed_one_text(text: str, state: CollectionState, settings: Settings, view: str, pooling: str) -> np.ndarray:
    """A pasted article's embedding, read the way the collection was (same view, pooling and strategy)."""
    document = text_document(text, "pasted article")
    reader = DocumentReader(settings.pair, document, strategy=state.strategy)
    return document_embedding(reader, view, pooling)
