"""Questions first: a process-wide foreground/background priority for model work.

On a small machine (two cores) a question that competes with other sessions' background readings
(`longformer_core.reading.background`) waits for a core most of its time. Answering is short and someone is
watching; reading ahead is long and nobody waits on it yet. So work someone waits for runs inside a
`foreground()` section, and background work calls `yield_in_background()` as it goes: while any
foreground section is open anywhere in the process, the background thread sleeps (on a Condition) and the
question gets every core (torch's intra-op threads included: a paused reading runs no kernels).

Where background work yields: a thread marked with `background_work()` pauses in `yield_in_background()`,
which a reading calls between batches (its progress callback, see `yielding`) and between the layers of
every forward pass (hooks on the encoder's layers, see `longformer_core.reading.background`): a batch of a long
document takes seconds on two cores, a layer a fraction of that. Threads not marked never pause there.

Never starved: one pause lasts at most `MAX_PAUSE_S` seconds; a pause that reaches the cap (questions kept
coming) is followed by `MIN_RUN_S` seconds in which the thread does not pause, so a reading still advances
under a steady stream of questions (at least MIN_RUN_S / (MAX_PAUSE_S + MIN_RUN_S) of its time, ~1/11).

Never deadlocked by its own thread: a thread that is inside a foreground section never yields (a
reading that answers a question itself, or a question that runs a pass through a yielding callback). A
foreground thread that waits for background work (`BackgroundReading.wait`) does so inside `waiting_for_background()`,
which stops counting it while it waits. A foreground thread that blocks on a lock a paused background thread
holds waits at most `MAX_PAUSE_S` (the cap) before that thread moves on.

    with foreground():                      # where the app answers a question
        result = ask(reader, question)

    with background_work() as pauses:       # in a background reading's thread
        encode(..., progress=yielding(progress))   # waits between batches (and layers, with hooks)
    pauses.seconds                          # time it gave to questions
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Progress = Callable[[float, str], None]  # (fraction done, message), as in longformer_core.reading.encoding

MAX_PAUSE_S = 5.0  # longest one pause of a background thread
MIN_RUN_S = 0.5  # after a pause that reached the cap, the thread runs this long before it pauses again

_condition = threading.Condition()
_active = 0  # foreground sections open in the process (over all threads), guarded by _condition
_paused = 0  # background threads sleeping in yield_to_foreground now, guarded by _condition
_local = threading.local()  # .depth: foreground sections open in this thread; .background: its PauseLog


@dataclass
class PauseLog:
    """How long a background thread gave way to foreground work."""

    seconds: float = 0.0
    pauses: int = 0
    runs_until: float = 0.0  # time.monotonic() before which the thread does not pause (after a capped pause)


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _add_active(delta: int) -> None:
    global _active
    with _condition:
        _active += delta
        if _active == 0:
            _condition.notify_all()  # wake every paused background thread


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Run the block as foreground work: background threads pause between batches until it ends.

    Sections nest and may be open in several threads at once; background work resumes when the last one
    closes (or after its cap). Leaving by an exception closes the section too.
    """
    _local.depth = _depth() + 1
    _add_active(1)
    try:
        yield
    finally:
        _local.depth = _depth() - 1
        _add_active(-1)


@contextlib.contextmanager
def waiting_for_background() -> Iterator[None]:
    """Wait for background work from inside a foreground section without holding it up.

    While the block runs, this thread's foreground sections stop counting: the background work it waits
    for is not paused on its account. Outside any foreground section it does nothing.
    """
    mine = _depth()
    if mine == 0:
        yield
        return
    _add_active(-mine)
    try:
        yield
    finally:
        _add_active(mine)


def in_foreground() -> bool:
    """Whether the calling thread is inside a foreground section."""
    return _depth() > 0


def foreground_active() -> int:
    """Foreground sections open now, over all threads (0: background work runs freely)."""
    with _condition:
        return _active


def paused_threads() -> int:
    """Background threads paused in `yield_to_foreground` now."""
    with _condition:
        return _paused


def yield_to_foreground(max_pause_s: float | None = None) -> float:
    """Block the calling background thread while foreground work is active, at most `max_pause_s` seconds.

    Returns at once when no foreground section is open, and always when the calling thread is itself in
    one (it is the work others wait for).

    Args:
        max_pause_s: the cap on this pause; None: `MAX_PAUSE_S` (read at call time).
    Returns:
        seconds spent paused (0.0 when it did not pause).
    """
    global _paused
    if in_foreground():
        return 0.0
    cap = MAX_PAUSE_S if max_pause_s is None else max_pause_s
    with _condition:
        if _active == 0:
            return 0.0
        started = time.monotonic()
        deadline = started + cap
        _paused += 1
        try:
            while _active > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break  # the cap: one more batch, then this thread checks again
                _condition.wait(left)
        finally:
            _paused -= 1
        return time.monotonic() - started


@contextlib.contextmanager
def background_work() -> Iterator[PauseLog]:
    """Mark the calling thread as background work for the block: `yield_in_background` pauses it.

    Yields:
        the PauseLog of the block (seconds paused, number of pauses).
    """
    log = PauseLog()
    outer = getattr(_local, "background", None)
    _local.background = log
    try:
        yield log
    finally:
        _local.background = outer


def yield_in_background() -> float:
    """`yield_to_foreground` for a thread inside `background_work()`; a no-op in any other thread.

    Cheap enough to call between the layers of a forward pass (a thread-local lookup when nothing waits).

    Returns:
        seconds paused.
    """
    log: PauseLog | None = getattr(_local, "background", None)
    if log is None or time.monotonic() < log.runs_until:
        return 0.0
    paused = yield_to_foreground()
    if paused:
        log.seconds += paused
        log.pauses += 1
        if foreground_active():  # the cap ended it, not the questions: run a while before pausing again
            log.runs_until = time.monotonic() + MIN_RUN_S
    return paused


def yielding(progress: Progress | None) -> Progress:
    """A progress callback that first yields to foreground work (`yield_in_background`), then reports.

    Background passes call their progress callback between batches, so wrapping it makes them pause there
    without any change to the code that runs the model.

    Args:
        progress: the (fraction, message) callback to wrap, or None.
    Returns:
        a (fraction, message) callback.
    """

    def wrapped(fraction: float, message: str) -> None:
        yield_in_background()
        if progress is not None:
            progress(fraction, message)

    return wrapped
