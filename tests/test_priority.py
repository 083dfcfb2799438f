"""Issue 19: questions first. Background readings pause between batches while foreground work (a question)
runs, for at most a capped time, and never wait on their own thread's or a waiting question's sections.

Real readings of a tiny random Longformer + RoBERTa pair in background threads; the model's forward passes
are counted (and held at a gate where a test needs the reading stopped at a known batch) with hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from longformer_core.reading import encoding, priority
from longformer_core.reading.background import BackgroundReading
from longformer_core.reading.priority import foreground, yield_to_foreground

TEXT = " ".join(
    f"Sentence {i} says that the capital of country {i % 7} is city {i % 11}, and the river runs north."
    for i in range(120)
)


@pytest.fixture()
def tiny_pair(tiny_checkpoint):
    """A fresh tiny Longformer + RoBERTa pair per test (hooks added by a test stay in it)."""
    from longformer_core.model.registry import load_models

    return load_models(str(tiny_checkpoint("longformer")), str(tiny_checkpoint("roberta")))


@pytest.fixture()
def one_window_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every forward pass holds one window: many batches, so many points where a reading yields."""
    monkeypatch.setattr(encoding, "BATCH_TOKENS", 1)


@pytest.fixture(autouse=True)
def no_section_left_open():
    yield
    assert priority.foreground_active() == 0, "a test left a foreground section open"


def _reader(pair, text: str = TEXT):
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader

    return DocumentReader(pair, text_document(text, name="priority.txt"), strategy="cls")


def _count_forwards(pair) -> list[int]:
    """A one-item list counting forward passes of both encoders (read it, it grows)."""
    count = [0]

    def hook(*_args, **_kwargs) -> None:
        count[0] += 1

    pair.longformer.encoder.register_forward_hook(hook)
    pair.baseline.encoder.register_forward_hook(hook)
    return count


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_reading_pauses_inside_its_pass_while_a_question_runs_and_resumes_after(
    tiny_pair, one_window_per_batch
):
    """A question starts while a batch runs: the reading stops before the batch's next layer."""
    forwards = _count_forwards(tiny_pair)
    gate, entered = threading.Event(), threading.Event()

    def hold_third(*_args, **_kwargs) -> None:
        if forwards[0] == 2:  # the third forward pass of the reading waits here
            entered.set()
            assert gate.wait(60), "the test never opened the gate"

    tiny_pair.baseline.encoder.register_forward_pre_hook(hold_third)
    reading = BackgroundReading(_reader(tiny_pair))
    assert entered.wait(60), "the reading never reached its third batch"
    with foreground():  # a question starts while the reading is inside a batch
        gate.set()
        _wait_until(lambda: priority.paused_threads() == 1)
        stopped_at = forwards[0]
        time.sleep(0.5)
        assert forwards[0] == stopped_at, "the reading ran while a question was answered"
        assert stopped_at == 2, "it should pause inside its third pass (between layers), not after it"
        assert not reading.done
    assert reading.join(120), "the reading did not resume after the question"
    assert reading.error is None and forwards[0] > 3
    assert reading.fractions() == {step: 1.0 for step in reading.steps}
    assert reading.paused_s >= 0.5


def test_a_reading_pauses_between_batches_without_layer_hooks(tiny_pair, one_window_per_batch, monkeypatch):
    """An encoder without `.encoder.layer` gets no hooks: its reading still pauses between batches."""
    from longformer_core.reading import background

    monkeypatch.setattr(background, "yield_between_layers", lambda _encoder: None)
    forwards = _count_forwards(tiny_pair)
    gate, entered = threading.Event(), threading.Event()

    def hold_third(*_args, **_kwargs) -> None:
        if forwards[0] == 2:
            entered.set()
            assert gate.wait(60), "the test never opened the gate"

    tiny_pair.baseline.encoder.register_forward_pre_hook(hold_third)
    reading = BackgroundReading(_reader(tiny_pair))
    assert entered.wait(60)
    with foreground():
        gate.set()
        _wait_until(lambda: priority.paused_threads() == 1)  # after the batch: its progress callback
        time.sleep(0.3)
        assert forwards[0] == 3 and not reading.done
    assert reading.join(120) and reading.error is None


def test_only_background_threads_pause_in_the_layer_hooks(tiny_pair, monkeypatch):
    """Other work on the same model (a classification, a comparison) is not held up by a question."""
    from longformer_core.reading.background import yield_between_layers

    monkeypatch.setattr(priority, "MAX_PAUSE_S", 120.0)
    yield_between_layers(tiny_pair.baseline.encoder)
    reader = _reader(tiny_pair, TEXT[:3000])
    with foreground():
        worker = threading.Thread(target=reader.encoded, args=("chunked",))
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), "a thread that is not a background reading paused"
    assert reader.has_pass("chunked")


def test_a_reading_started_during_a_question_runs_no_model_until_it_ends(tiny_pair):
    forwards = _count_forwards(tiny_pair)
    with foreground():
        reading = BackgroundReading(_reader(tiny_pair))
        _wait_until(lambda: priority.paused_threads() == 1)
        time.sleep(0.3)
        assert forwards[0] == 0 and not reading.done
    assert reading.join(120) and reading.error is None


def test_the_reading_resumes_when_the_last_of_several_questions_ends(tiny_pair):
    forwards = _count_forwards(tiny_pair)
    second_open, second_close = threading.Event(), threading.Event()

    def another_session() -> None:
        with foreground():
            second_open.set()
            assert second_close.wait(60)

    other = threading.Thread(target=another_session)
    with foreground():
        other.start()
        assert second_open.wait(10)
        reading = BackgroundReading(_reader(tiny_pair))
        _wait_until(lambda: priority.paused_threads() == 1)
    assert priority.foreground_active() == 1  # the other session still answers
    time.sleep(0.3)
    assert forwards[0] == 0 and priority.paused_threads() == 1
    second_close.set()
    other.join(10)
    assert reading.join(120) and reading.error is None and forwards[0] > 0


def test_the_cap_lets_a_reading_finish_under_a_question_that_never_ends(
    tiny_pair, one_window_per_batch, monkeypatch
):
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 0.05)
    monkeypatch.setattr(priority, "MIN_RUN_S", 0.0)  # the cap alone (MIN_RUN_S has its own test)
    forwards = _count_forwards(tiny_pair)
    with foreground():
        reading = BackgroundReading(_reader(tiny_pair, TEXT[:3000]))
        assert reading.join(120), "a capped pause starved the reading"
    assert reading.error is None and forwards[0] >= 3
    # It paused at each step, batch and layer (0.05 s each), not once for the whole reading.
    assert reading.paused_s >= 0.05 * 3


def test_after_a_capped_pause_background_work_runs_a_while_before_pausing_again(monkeypatch):
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 0.2)
    monkeypatch.setattr(priority, "MIN_RUN_S", 0.5)
    pauses: list[float] = []

    def background() -> None:
        with priority.background_work() as log:
            pauses.append(priority.yield_in_background())  # capped: the question never ends
            pauses.append(priority.yield_in_background())  # within MIN_RUN_S: no pause
            time.sleep(0.6)
            pauses.append(priority.yield_in_background())  # MIN_RUN_S is over: pauses again
            pauses.append(log.pauses)

    with foreground():
        worker = threading.Thread(target=background)
        worker.start()
        worker.join(10)
    assert pauses[0] >= 0.2 and pauses[1] == 0.0 and pauses[2] >= 0.2 and pauses[3] == 2
    assert priority.yield_in_background() == 0.0  # a thread not marked as background never pauses


def test_a_thread_inside_a_foreground_section_never_waits_for_others(tiny_pair, monkeypatch):
    """A reading thread that enters a foreground section itself (or a question whose pass runs through a
    yielding callback) goes on while other sections are open: no deadlock, no pause."""
    from longformer_core.reading.background import yield_between_layers

    monkeypatch.setattr(priority, "MAX_PAUSE_S", 120.0)
    yield_between_layers(tiny_pair.baseline.encoder)
    reader = _reader(tiny_pair, TEXT[:3000])
    result: dict[str, object] = {}

    def reading_that_answers() -> None:
        with foreground(), foreground():  # nested, as a question inside a section would be
            result["paused"] = yield_to_foreground()
            with priority.background_work():  # and it is marked as background work
                result["pass"] = reader.encoded("chunked", priority.yielding(None))

    with foreground():  # another session's question, open all along
        worker = threading.Thread(target=reading_that_answers)
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), "a foreground thread waited for foreground work"
    assert result["paused"] == 0.0 and reader.has_pass("chunked")


def test_a_question_waiting_for_the_reading_does_not_pause_it(tiny_pair, one_window_per_batch, monkeypatch):
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 120.0)  # a pause would outlast the wait below
    reader = _reader(tiny_pair, TEXT[:3000])
    with foreground():
        reading = BackgroundReading(reader)
        started = time.monotonic()
        assert reading.wait("longformer", timeout=60)
        assert time.monotonic() - started < 60
        assert priority.foreground_active() == 1  # counted again once the wait is over
    assert reading.join(60) and reading.error is None


def test_sections_from_many_threads_count_right_and_close_on_errors():
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def session(i: int) -> None:
        try:
            barrier.wait(10)
            for k in range(200):
                try:
                    with foreground():
                        assert priority.in_foreground()
                        if (i + k) % 5 == 0:
                            raise KeyError("a question that fails")
                except KeyError:
                    pass
                assert not priority.in_foreground()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    yielded: list[float] = []
    stop = threading.Event()

    def background() -> None:  # a reader yielding all along, with a short cap
        while not stop.is_set():
            yielded.append(yield_to_foreground(0.01))

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    reader = threading.Thread(target=background)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop.set()
    reader.join(10)
    assert not failures, failures
    assert priority.foreground_active() == 0 and priority.paused_threads() == 0
    assert all(s <= 1.0 for s in yielded)  # capped pauses, each ended
    assert yield_to_foreground(10.0) == 0.0  # nothing open: no wait at all


def test_the_ask_page_answers_inside_foreground_sections(make_pdf, monkeypatch):
    """The app's question path (ui.tasks.answer_question) runs every model answer as foreground work.

    The real embedded model answers; a spy around the answer functions records whether a section was open.
    """
    from test_app import SMALL_PAGES, assert_healthy, start, upload

    import ui.tasks

    seen: list[tuple[str, bool]] = []

    def spy(name: str, function: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            seen.append((name, priority.in_foreground()))
            return function(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(ui.tasks, "ask", spy("ask", ui.tasks.ask))
    monkeypatch.setattr(ui.tasks, "preliminary_answer", spy("preliminary", ui.tasks.preliminary_answer))
    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("What colour is the lighthouse?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    assert [name for name, _ in seen].count("ask") == 3  # one per view
    assert all(inside for _, inside in seen), seen
    assert "red and white" in at.session_state["ask_history"][-1].answers["longformer"].result.best.text


def test_a_reading_hands_freed_memory_back_after_each_step_and_as_it_goes(
    tiny_pair, one_window_per_batch, monkeypatch
):
    from longformer_core.reading import background

    trims: list[float] = []
    monkeypatch.setattr(background, "return_freed_memory", lambda: trims.append(time.monotonic()) or True)
    monkeypatch.setattr(background, "TRIM_EVERY_S", 0.0)  # at every batch too
    reading = BackgroundReading(_reader(tiny_pair))
    assert reading.join(120) and reading.error is None
    assert len(trims) > len(reading.steps)  # once per step, and between batches


def test_a_question_waiting_for_the_passages_gets_them_while_the_reading_pauses_for_nobody_else(
    tiny_pair, monkeypatch
):
    monkeypatch.setattr(priority, "MAX_PAUSE_S", 120.0)  # a deadlock would show as a timeout, not as the cap
    forwards = _count_forwards(tiny_pair)
    reader = _reader(tiny_pair)
    with foreground():  # the question's page run
        reading = BackgroundReading(reader)
        assert reading.wait_prepared(timeout=60)  # built while this section waits, not after the cap
        assert {"passages", "lexical_index", "paragraph_starts"} <= set(vars(reader))
        _wait_until(lambda: priority.paused_threads() == 1)  # then the reading pauses for the question
        assert forwards[0] == 0 and not reading.done
    assert reading.join(120) and reading.error is None


def test_a_question_needing_what_a_paused_reading_is_building_waits_without_pausing_it(
    tiny_pair, monkeypatch
):
    from longformer_core.reading import document_reading, retrieval

    monkeypatch.setattr(priority, "MAX_PAUSE_S", 120.0)  # a deadlock would show as a timeout, not as the cap
    monkeypatch.setattr(retrieval, "WORDS_AT_ONCE", 1)  # a pause between any two passages of the index
    inside, go = threading.Event(), threading.Event()

    def pause_inside_the_index() -> float:
        if not inside.is_set():  # the first pause: the reading holds the lexical index's lock
            inside.set()
            go.wait(60)
        return priority.yield_in_background()  # pauses: a question is running

    monkeypatch.setattr(document_reading, "yield_in_background", pause_inside_the_index)
    reader = _reader(tiny_pair)
    reading = BackgroundReading(reader)
    assert inside.wait(60)
    got = []

    def question() -> None:
        with foreground():  # a question that needs the index (a preliminary answer, say)
            go.set()
            _wait_until(lambda: priority.paused_threads() == 1)
            got.append(reader.lexical_index)

    asking = threading.Thread(target=question, daemon=True)
    asking.start()
    asking.join(60)
    assert got and got[0] is reader.lexical_index
    assert reading.join(120) and reading.error is None
