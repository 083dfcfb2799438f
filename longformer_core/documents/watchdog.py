"""A per-page deadline for PDF extraction: interrupts a page that takes too long, safely."""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import threading
import time
from typing import Self

logger = logging.getLogger(__name__)

class _PageTimeout(Exception):
    """Raised inside pypdf when a page is over its time budget (never escapes `_extract_page_text`)."""


class _PageDeadline:
    """Time budget for reading one PDF page.

    pypdf parses a page's whole content stream before its first callback, and that parse alone can take
    minutes on a crafted page. So besides `check` (a pypdf visitor), a watchdog thread raises
    `_PageTimeout` in the reading thread at the deadline (CPython's PyThreadState_SetAsyncExc: the
    exception fires at the next bytecode, which bounds pure-Python parsing; zlib runs are bounded by the
    size limits). It re-arms every 0.2 s because pypdf catches and logs some exceptions, and it waits
    while the thread is inside logging or threading code, where an exception could leave a lock held.
    """

    _REARM_S = 0.2
    _clock = staticmethod(time.monotonic)  # its own reference: tests fake the module's clock per page

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.expired = False
        self._deadline = 0.0
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread_id = 0
        self._watchdog: threading.Thread | None = None

    def check(self, *args: object) -> None:
        """pypdf visitor (operator, operands, cm, tm): raise once over budget."""
        if self._clock() > self._deadline:
            self.expired = True
            raise _PageTimeout

    def __enter__(self) -> Self:
        self._deadline = self._clock() + self.budget_s
        self._thread_id = threading.get_ident()
        self._watchdog = threading.Thread(target=self._watch, name="pdf-page-deadline", daemon=True)
        self._watchdog.start()
        return self

    def _watch(self) -> None:
        if self._done.wait(self.budget_s):
            return
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                self.expired = True  # from now on the visitor raises too
                safe = _safe_to_interrupt(self._thread_id)
                if safe:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(self._thread_id), ctypes.py_object(_PageTimeout)
                    )
            if self._done.wait(self._REARM_S if safe else 0.01):
                return

    def __exit__(self, *exc: object) -> None:
        # Stop the watchdog for good before leaving: an exception it raised may still fire right here,
        # so retry until `_done` is set and nothing is pending.
        while True:
            try:
                with self._lock:
                    self._done.set()
                    if self.expired:  # cancel an exception raised but not fired yet
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)
                break
            except _PageTimeout:
                continue
        if self._watchdog is not None:
            self._watchdog.join()


# An exception raised between a lock's acquire() and the try that releases it would leave the lock held
# (logging's handler locks, threading's conditions): never interrupt a thread inside these modules.
_UNINTERRUPTIBLE_FILES = frozenset({logging.__file__, threading.__file__})


def _safe_to_interrupt(thread_id: int) -> bool:
    """Whether the thread is outside logging and threading code (see _UNINTERRUPTIBLE_FILES) and outside
    garbage-collector callbacks (an exception there is printed and lost) right now."""
    gc_callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_filename in _UNINTERRUPTIBLE_FILES or frame.f_code in gc_callbacks:
            return False
        frame = frame.f_back
    return True
