"""Errors and progress in the UI: what to tell the user about an error, and a progress box for the core."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st

from longformer_core.documents import DocumentError
from longformer_core.model.registry import ModelLoadError
from longformer_core.reading.encoding import Progress
from ui.render import md

log = logging.getLogger(__name__)
T = TypeVar("T")

# The core's messages are written for users; anything else is a bug we log but never show as a traceback.
USER_ERRORS = (DocumentError, ModelLoadError, ValueError)


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


def time_left(seconds: float | None) -> str:
    """A remaining time in words for a progress line ("about 40 s left", "about 3 min left"); "" when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0:  # unknown, NaN or negative
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def page_progress(name: str) -> Callable[[int, int], None]:
    """A progress bar in the sidebar for a PDF being read: pages read, pages per second and the time left.

    Returns:
        the (pages read, pages in the PDF) callback for `load_document(on_page=...)`; the bar goes away when
        the last page is read. Redrawn at most 4 times a second (a book reports ~60 pages a second).
    """
    bar = st.sidebar.empty()
    started = time.monotonic()
    drawn = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total:
            bar.empty()
            return
        if now - drawn[0] < 0.25:
            return
        drawn[0] = now
        rate = done / (now - started) if done and now > started else 0.0
        speed = f" · {rate:,.0f} pages/s" if rate else ""
        left = time_left((total - done) / rate) if rate else ""
        text = f"Reading {md(name)}: page {done:,} of {total:,}{speed}" + (f" · {left}" if left else "")
        bar.progress(done / max(total, 1), text=text)

    return update
