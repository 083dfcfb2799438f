"""The tasks the pages run: the shared reader cache, reading with progress, and the records of answers,
classifications and comparisons the pages keep and draw."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from longformer_core.choices import AnswerMethod, ModelHead, Task, View, reads_per_request
from longformer_core.classify import classify, classify_with_trained_heads, parse_labels
from longformer_core.documents import Document
from longformer_core.heads import Head, bundled_heads
from longformer_core.qa.answering import QAResult, ask, check_question, preliminary_answer
from longformer_core.reading.background import BackgroundReading, start_reading
from longformer_core.reading.cache import ByteBudgetCache, reader_nbytes
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, Progress, scaled, view_windows
from longformer_core.reading.priority import foreground
from longformer_core.reading.strategies import DEFAULT_EVERY_K
from longformer_core.similarity import PassageMatrix, compare, passage_matrix
from ui import state
from ui.feedback import time_left, working
from ui.records import AskRecord, ClassifyRecord, CompareRecord, ViewAnswer
from ui.render import VIEW_TITLES
from ui.state import Settings

ReaderKey = tuple[str, str, str, tuple[str, ...], int]  # sha256, model key, strategy, keywords, every_k


@st.cache_resource(show_spinner=False)
def reader_cache() -> ByteBudgetCache[ReaderKey, DocumentReader]:
    """The server's readers, bounded by their estimated bytes (LONGDOC_CACHE_MB), shared by all sessions."""
    return ByteBudgetCache(size_of=reader_nbytes, name="reader cache")


def _shared_reader(document: Document, settings: Settings, key: ReaderKey) -> DocumentReader:
    """The cached reader for `key`, pinned for this session while it shows the document."""
    cache = reader_cache()
    pins = state.reader_pins()
    # Documents this session no longer shows may be evicted now; the one asked for (and the other one
    # on Compare) stay pinned until the session moves on or ends.
    in_use = state.documents_in_use() | {document.sha256}
    cache.release(pins, keep=lambda pinned: pinned[0] in in_use)
    _, _, strategy, keywords, every_k = key
    return cache.get(
        key,
        lambda: DocumentReader(
            settings.pair, document, strategy=strategy, keywords=keywords, every_k=every_k
        ),
        holder=pins,
    )


def reader_for(document: Document, settings: Settings, task: Task) -> DocumentReader:
    """The shared reader of this document, model pair and strategy (ValueError for a bad strategy setup)."""
    strategy = settings.strategy_for(task)
    # Parameters of other strategies would only split the cache.
    keywords = settings.keywords if strategy == "keywords" else ()
    every_k = settings.every_k if strategy == "every_k" else DEFAULT_EVERY_K
    return _shared_reader(
        document, settings, (document.sha256, settings.model_key, strategy, keywords, every_k)
    )


def token_count(document: Document, settings: Settings) -> int:
    """The document's length in the Longformer's tokens (tokenized once per document and model).

    Counted with the first-token strategy, whatever the sidebar says: the count does not depend on the
    strategy, and this reader is the one classification and comparison use by default.
    """
    reader = _shared_reader(
        document, settings, (document.sha256, settings.model_key, "cls", (), DEFAULT_EVERY_K)
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
    views: Sequence[View],
    progress: Progress,
    *,
    task_head: ModelHead | None = None,
    sentences: bool = False,
    last4: bool = False,
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
        last4: also keep the sum of the last four layers (the "sum-last4" pooling of Compare).
    """
    todo = [v for v in views if reader.model_for(v).head != task_head and not reader.has_pass(v, last4)]
    sentences = sentences and not reader.passage_vectors_ready()
    steps = len(todo) + int(sentences)
    for i, view in enumerate(todo):
        step = scaled(progress, i / steps, (i + 1) / steps)
        step(0.0, f"{VIEW_TITLES[view]} is reading the document...")
        reader.encoded(
            view,
            lambda f, msg, step=step, view=view: step(f, f"{VIEW_TITLES[view]} is reading ({msg})"),
            last4=last4,
        )
    if sentences:
        step = scaled(progress, len(todo) / steps, 1.0)
        step(0.0, f"Reading each of the {len(reader.passages):,} passages on its own...")
        reader.embed_passages(lambda f, msg: step(f, f"Reading each passage on its own ({msg})"))
    progress(1.0, "The document is read; answering...")


def reading_seconds(reader: DocumentReader, view: View, method: AnswerMethod) -> float | None:
    """Time the view spent reading the document once; None for a task head, which reads per request."""
    if reads_per_request(method) or not reader.has_pass(view):
        return None
    return reader.encoded(view).seconds


# --------------------------------------------------------------------------------------------------
# Question answering


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
    provenance = settings.provenance("qa", document.sha256, choice=question)
    record = AskRecord(question, document, reader.strategy, settings.pair.name, {}, provenance)
    reading = start_reading(reader)  # already going since the page opened, usually (shared by sessions)
    with working("Answering...") as progress:
        pending: list[View] = list(VIEWS)
        if not all(reading.is_ready(v) for v in pending):
            # A preliminary answer needs the passages and their index, which the reading builds first (seconds
            # for a book, pausing while others' questions run); waiting for them does not pause it.
            progress(0.0, "Finding the document's passages...")
            reading.wait_prepared()
        # Someone is waiting: background readings (every session's) pause while this section is open.
        # One section for all the views, so no reading slips a batch in between two of them.
        with foreground():
            for view in [v for v in pending if not reading.is_ready(v)]:
                # Answer early: words in common and the reader on two regions need no reading of the document.
                early = preliminary_answer(reader, question, view)
                record.preliminary[view] = ViewAnswer(
                    early, _answer_token(reader, view, early), None, preliminary=True
                )
                on_answer(view, record.preliminary[view])
        while pending:
            ready = [v for v in pending if reading.is_ready(v)]
            if not ready:  # wait for the next view, showing how far the reading is
                fractions = reading.fractions()
                done = sum(fractions.values()) / max(1, len(fractions))
                running = reading.running_step()
                left = time_left(reading.seconds_left(running)) if running else ""
                progress(
                    0.95 * done,
                    "Reading the document: "
                    + ", ".join(
                        f"{VIEW_TITLES.get(step, step.capitalize())} {fraction:.0%}"
                        for step, fraction in fractions.items()
                    )
                    + (f" ({_step_title(running)}: {left})" if left else ""),
                )
                reading.wait(pending[0], timeout=0.5)  # raises when the reading failed
                continue
            with foreground():  # as above: readings pause while the views that are read answer
                for view in ready:  # each column answers as soon as its view is read
                    result = ask(reader, question, views=(view,))[view]
                    token = _answer_token(reader, view, result)
                    seconds = reading_seconds(reader, view, result.method)
                    record.answers[view] = ViewAnswer(result, token, seconds)
                    on_answer(view, record.answers[view])
                    pending.remove(view)
    return record


def _answer_token(reader: DocumentReader, view: str, result: QAResult) -> int | None:
    best = result.best
    return reader.tokens_for(view).token_at(best.char_span[0]) if best else None


def start_background_reading(document: Document, settings: Settings) -> BackgroundReading:
    """Start (or find) the background reading of this document for questions: every view's pass and the
    passage embeddings, shared by every session (longformer_core.reading.background)."""
    return start_reading(reader_for(document, settings, "qa"))


READING_STEP_TITLES = {"passages": "Each passage on its own"}


def _step_title(step: str) -> str:
    return READING_STEP_TITLES.get(step) or VIEW_TITLES.get(step, step)


def show_reading_progress(reading: BackgroundReading) -> None:
    """One progress bar per reading step; refreshed every second while the reading goes on."""
    if reading.done:
        _draw_reading_progress(reading)
    else:
        _live_reading_progress(reading)


@st.fragment(run_every=1.0)
def _live_reading_progress(reading: BackgroundReading) -> None:
    _draw_reading_progress(reading)
    if reading.done:
        st.rerun()  # once more without the timer


def _draw_reading_progress(reading: BackgroundReading) -> None:
    with st.container(key=state.READING_PROGRESS):
        st.caption(
            "Reading the document for questions" + (" (done)" if reading.done and not reading.error else "")
        )
        for step, fraction in reading.fractions().items():
            title = _step_title(step)
            left = time_left(reading.seconds_left(step))
            st.progress(fraction, text=f"{title}: {fraction:.0%}" + (f" · {left}" if left else ""))
        if reading.error is not None:
            st.caption("Reading stopped; asking a question will try again.")


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
        # The Hyperpartisan heads read the sum of the last four layers: keep it while reading.
        last4 = any(head.pooling == "sum-last4" for head in heads.values())
        read_views(reader, [v for v in VIEWS if v in heads], scaled(progress, 0.0, 0.95), last4=last4)
        results = classify_with_trained_heads(reader, heads)
    reading = {view: reading_seconds(reader, view, results[view].method) for view in results}
    return ClassifyRecord(results, reading)


def compare_documents(a: Document, b: Document, settings: Settings, pooling: str) -> CompareRecord:
    """Cosine similarity of two documents with every view."""
    reader_a = reader_for(a, settings, "similarity")
    reader_b = reader_for(b, settings, "similarity")
    with working("Comparing...") as progress:
        last4 = pooling == "sum-last4"  # the only pooling that needs the last four layers
        read_views(reader_a, VIEWS, scaled(progress, 0.0, 0.5), last4=last4)
        read_views(reader_b, VIEWS, scaled(progress, 0.5, 1.0), last4=last4)
        results = compare(reader_a, reader_b, pooling=pooling)
    return CompareRecord(results, reader_a, reader_b, pooling)


def passages_of(record: CompareRecord, view: View) -> PassageMatrix:
    return passage_matrix(record.reader_a, record.reader_b, view=view, pooling=record.pooling)
