"""Read a document in the background as soon as it is chosen, shared by every caller that asks for it.

A `BackgroundReading` runs, on one daemon thread, everything a question needs that does not depend on the
question (what `qa.prepare` does on first use): the passages, their lexical index and embeddings
(`DocumentReader.embed_passages`), then each view's pass over the document and its passage states
(`DocumentReader.encoded`, `DocumentReader.passage_states`). Callers never wait for the whole reading: `wait(view, timeout)`
returns as soon as that one view is ready, `wait_prepared()` as soon as the passages and their lexical index are
built (before anything else: all a preliminary answer needs), and `ready_views()` / `fractions()` say where it
stands.

Readings are shared across sessions: `start_reading(reader)` returns the running (or finished) reading
of the same document hash, model pair and strategy instead of starting a second one. Nothing here
holds a lock while a model runs, so a caller never blocks another.

Questions come first: between steps, batches and the layers of each forward pass, a reading yields to
foreground work (`longformer_core.reading.priority`): while any session answers a question, readings pause, for
at most `priority.MAX_PAUSE_S` at a time.

    reading = start_reading(reader)        # returns at once
    if reading.wait("truncated", timeout=5):
        ask(reader, question, views=["truncated"])
    reading.fractions()                    # {"truncated": 1.0, "passages": 0.4, "chunked": 0.0, ...}
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import torch

from longformer_core.machine import return_freed_memory
from longformer_core.reading import priority
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS

PASSAGES = "passages"  # the step that embeds each passage on its own (every ranked answer uses it)
TRIM_EVERY_S = 5.0  # a step hands freed memory back this often (a trim takes ~0.1 s)
MAX_READINGS = 8  # readings kept (each keeps its reader's token states alive): the app's reader cache size
ReadingKey = tuple[str, str, str, str]  # (document sha256, Longformer name, baseline name, strategy)


def needed_steps(reader: DocumentReader, view: str) -> list[str]:
    """What a question's answer in `view` needs read first (see qa.ask's three methods).

    A view whose model has its own QA head reads its windows per question (nothing to read ahead); the
    truncated view with a separate QA reader reads its 512 tokens per question too. Otherwise the answer
    ranks passages: it needs the passage embeddings and the view's pass.
    """
    model = reader.model_for(view)
    if model.head == "qa" or (view == "truncated" and model.span_model is not None):
        return []
    return [PASSAGES, view]


def reading_key(reader: DocumentReader) -> ReadingKey:
    """What makes two readings the same: the document's hash, both models and the strategy."""
    return (reader.document.sha256, reader.pair.longformer.name, reader.pair.baseline.name, reader.strategy)


class BackgroundReading:
    """One document being read on a background thread; every method is safe from any thread.

    Args:
        reader: the document, model pair and strategy to read (its caches receive the results).
        views: the views to read, in this order after the passage embeddings; the truncated view (one
            512-token window) goes first whatever the order, so its column answers within seconds.
            Steps no answer needs are skipped (see needed_steps).
    """

    def __init__(self, reader: DocumentReader, views: Sequence[str] = VIEWS) -> None:
        unknown = [v for v in views if v not in VIEWS]
        if unknown:
            raise ValueError(f"Unknown view(s) {unknown}: choose among {', '.join(VIEWS)}.")
        self.reader = reader
        self.key = reading_key(reader)
        ordered = [v for v in views if v == "truncated"] + [v for v in views if v != "truncated"]
        self._needs = {view: needed_steps(reader, view) for view in ordered}
        wanted = {step for steps in self._needs.values() for step in steps}
        # Skip what no answer needs (a view with its own QA head reads per question).
        self.steps: list[str] = [s for s in ordered[:1] + [PASSAGES] + ordered[1:] if s in wanted]
        self._fraction = {step: 0.0 for step in self.steps}
        self._done = {step: threading.Event() for step in self.steps}
        # The passages, paragraphs and lexical index are built (or the reading ended).
        self._prepared = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()  # guards _fraction and error; never held while a model runs
        self.error: BaseException | None = None
        self.started_at = time.monotonic()
        self.seconds: dict[str, float] = {}  # step -> seconds from start to done
        self._step_started: dict[str, float] = {}  # step -> time.monotonic() when it began
        self._pauses = priority.PauseLog()  # time given to foreground work (questions), by its own thread
        self._thread = threading.Thread(target=self._run, name=f"reading-{self.key[0][:8]}", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------------------------------
    # What callers ask

    @property
    def views(self) -> list[str]:
        return list(self._needs)

    def is_ready(self, view: str) -> bool:
        """Everything the view's answer needs is read (its pass, the passage embeddings; see needed_steps)."""
        self._check_view(view)
        return all(self._done[step].is_set() for step in self._needs[view])

    def ready_views(self) -> list[str]:
        """Views whose answers need no more reading, in reading order."""
        return [v for v in self.views if self.is_ready(v)]

    def wait(self, view: str, timeout: float | None = None) -> bool:
        """Block until `view` is ready, at most `timeout` seconds (None: no limit).

        Returns:
            True when the view is ready, False on timeout.
        Raises:
            the reading's error, when reading failed before the view was ready.
        """
        self._check_view(view)
        deadline = None if timeout is None else time.monotonic() + timeout
        # A question waiting for this reading must not pause it (see priority.waiting_for_background).
        with priority.waiting_for_background():
            for step in self._needs[view]:
                while not self._done[step].is_set():
                    if self._finished.is_set():  # failed: the step will never be done
                        self._raise_error()
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    # Wake up when the step is done or the reading ends (an error), whichever is first.
                    self._done[step].wait(0.05 if left is None else min(0.05, left))
        return True

    def wait_prepared(self, timeout: float | None = None) -> bool:
        """Block until the document's passages, paragraphs and lexical index are built (what a preliminary answer
        needs), at most `timeout` seconds; True when they are, or when the reading ended (its error, if any,
        comes from `wait`). The caller stops counting as foreground while it waits, so the reading goes on."""
        with priority.waiting_for_background():
            return self._prepared.wait(timeout)

    def fractions(self) -> dict[str, float]:
        """Fraction done of each step (each view, and "passages"), in reading order."""
        with self._lock:
            return dict(self._fraction)

    def seconds_left(self, step: str) -> float | None:
        """Estimated seconds until `step` is done, from its pace so far (None before it has run a second or
        reached 1 %, and once it is done). Time given to questions counts in the pace."""
        with self._lock:
            fraction = self._fraction.get(step, 0.0)
            started = self._step_started.get(step)
        if started is None or not 0.01 <= fraction < 1.0:
            return None
        elapsed = time.monotonic() - started
        return elapsed * (1.0 - fraction) / fraction if elapsed >= 1.0 else None

    def running_step(self) -> str | None:
        """The step being read now (None before the first and after the last)."""
        with self._lock:
            return next((s for s in self.steps if s in self._step_started and self._fraction[s] < 1.0), None)

    @property
    def done(self) -> bool:
        """Every step finished (or reading stopped on an error)."""
        return self._finished.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the whole reading; True when it finished within `timeout`."""
        return self._finished.wait(timeout)

    # ----------------------------------------------------------------------------------------------
    # The background thread

    @property
    def paused_s(self) -> float:
        """Seconds this reading spent paused while questions were answered."""
        return self._pauses.seconds

    def _run(self) -> None:
        try:
            for model in (self.reader.pair.longformer, self.reader.pair.baseline):
                yield_between_layers(model.encoder)
            with torch.inference_mode(), priority.background_work() as pauses:
                self._pauses = pauses
                self._prepare()
                for step in self.steps:
                    priority.yield_in_background()  # a question asked meanwhile goes first
                    with self._lock:
                        self._step_started[step] = time.monotonic()
                    progress = self._progress_of(step)
                    if step == PASSAGES:
                        self.reader.embed_passages(progress)
                    else:
                        self.reader.encoded(step, progress)
                        priority.yield_in_background()
                        self.reader.passage_states(step)
                    return_freed_memory()  # what the step freed: ~0.9 GB after a book's passages
                    self._set(step, 1.0)
                    self.seconds[step] = round(time.monotonic() - self.started_at, 3)
                    self._done[step].set()
        except Exception as exc:  # noqa: BLE001 - reported to whoever waits; the thread must not die silently
            with self._lock:
                self.error = exc
        finally:
            self._prepared.set()
            self._finished.set()

    def _prepare(self) -> None:
        """The document's passages and paragraphs (and their lexical index, when a step ranks passages) first: a
        preliminary answer needs them and nothing else. For a book that is seconds of plain Python, which would
        hold Python's lock against every session's questions: it pauses between pages and chunks of passages
        while any question runs, as the passes do between layers."""
        priority.yield_in_background()  # a question asked meanwhile goes first
        _ = self.reader.passages, self.reader.paragraph_starts
        if PASSAGES in self.steps:
            _ = self.reader.lexical_index
        self._prepared.set()

    def _progress_of(self, step: str) -> priority.Progress:
        """The step's progress callback: it records the fraction, after yielding to foreground work, and hands
        freed memory back to the kernel every `TRIM_EVERY_S` (see machine.return_freed_memory)."""
        trimmed = [time.monotonic()]

        def record(fraction: float, _message: str) -> None:
            self._set(step, min(1.0, max(0.0, float(fraction))))
            if time.monotonic() - trimmed[0] > TRIM_EVERY_S:
                return_freed_memory()
                trimmed[0] = time.monotonic()

        return priority.yielding(record)

    def _set(self, step: str, fraction: float) -> None:
        with self._lock:
            self._fraction[step] = max(self._fraction[step], fraction)

    def _check_view(self, view: str) -> None:
        if view not in self._needs:
            raise ValueError(
                f"This reading does not read the view '{view}'; it reads {', '.join(self.views)}."
            )

    def _raise_error(self) -> None:
        error = self.error
        if error is None:
            raise RuntimeError("Reading the document stopped before this view was ready.")
        raise RuntimeError(f"Reading the document failed: {error}") from error


_LAYER_HOOKED: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()  # encoders whose layers yield
_LAYER_HOOK_LOCK = threading.Lock()


def _yield_before_layer(_module: torch.nn.Module, _inputs: object) -> None:
    priority.yield_in_background()  # a no-op outside a background reading's thread


def yield_between_layers(encoder: torch.nn.Module) -> None:
    """Let background readings pause between the layers of `encoder` too, not only between batches.

    A batch of a long document takes seconds on two cores; a question asked meanwhile waits at most one
    layer. The hook (once per encoder, kept with it) does nothing in threads that are not background work,
    so questions, other pages and other models' users never pause in it. A paused batch keeps its
    activations until it resumes (at most `priority.MAX_PAUSE_S` per pause). Encoders without
    `.encoder.layer` (not BERT/RoBERTa/Longformer-like) pause between batches only.
    """
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None:
        return
    with _LAYER_HOOK_LOCK:
        if encoder in _LAYER_HOOKED:
            return
        for layer in layers:
            layer.register_forward_pre_hook(_yield_before_layer)
        _LAYER_HOOKED.add(encoder)


_READINGS: OrderedDict[ReadingKey, BackgroundReading] = OrderedDict()
_READINGS_LOCK = threading.Lock()


def start_reading(reader: DocumentReader, views: Sequence[str] = VIEWS) -> BackgroundReading:
    """The background reading of this document, model pair and strategy: started now or already going.

    Returns at once. A reading that failed is started again (the cause may have been transient, e.g.
    memory); a finished or running one is returned as it is.
    """
    key = reading_key(reader)
    with _READINGS_LOCK:
        reading = _READINGS.get(key)
        if reading is None or (reading.done and reading.error is not None):
            reading = BackgroundReading(reader, views)
            _READINGS[key] = reading
        _READINGS.move_to_end(key)
        while len(_READINGS) > MAX_READINGS:
            _READINGS.popitem(last=False)  # oldest first; a running thread finishes on its own
        return reading


def reading_of(reader: DocumentReader) -> BackgroundReading | None:
    """The reading of this reader's document, models and strategy, if one was started."""
    with _READINGS_LOCK:
        return _READINGS.get(reading_key(reader))
