"""PDF text extraction in a separate worker process, with hard time and memory limits.

pypdf is pure Python on top of C decoders, and a crafted PDF can keep it busy for minutes (tens of MB of
drawing commands, forms that draw forms) or make it allocate gigabytes. Inside the server process
nothing can stop that safely: an exception raised into the parsing thread cannot interrupt C code, can
fire in the wrong place, and does nothing for memory. So PDFs are read in a child process:

- started with the `spawn` method (a fresh interpreter: no copy of the server's model weights or
  threads), without re-running the parent's `__main__` (under Streamlit that is the app script);
- with an address-space limit (`resource.setrlimit(RLIMIT_AS)`): its start-up size plus
  LONGDOC_PDF_WORKER_MB (default 1024 MB); a page that needs more fails with the usual
  "needs more memory" message instead of swapping the server;
- watched by the parent, which kills it (SIGKILL) when one page takes longer than its page budget or the
  whole document longer than its document budget, and then tells the user exactly what it always did;
- reused across documents (a warm worker costs nothing to start) and replaced after a kill.

The parent gets the text, page offsets and tables, or a `DocumentError` subclass with its usual message. A
worker that dies otherwise (killed, out of memory or a crash in C) gives `ExtractionWorkerError`; the next gets a
fresh one, and `loading` reads the PDF once more without tables (PDFium) before giving up.

The reading itself is `documents.pdf.extract_pdf_pages` (what the worker runs; `load_document` sends
PDFs here). `PdfWorkerPool.extract` is the parent's side; `default_pool()` is the process-wide pool.
Settings: LONGDOC_PDF_WORKERS (PDFs read at once, default 2), LONGDOC_PDF_WORKER_MB (default 1024).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import popen_spawn_posix, spawn
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

import longformer_core.documents.errors as document_errors
from longformer_core import settings
from longformer_core.documents.errors import (
    DocumentError,
    EncryptedPdfError,
    ExtractionTimeoutError,
    document_too_slow_error,
    needs_memory_error,
    unexpected_error,
    worker_died_error,
)
from longformer_core.documents.limits import (
    DEFAULT_DOCUMENT_TIME_BUDGET_S,
    DEFAULT_MAX_CHARS,
    DEFAULT_PAGE_TIME_BUDGET_S,
    document_time_budget_s,
)
from longformer_core.documents.pdf import PdfText, _page_too_slow_error, extract_pdf_pages

logger = logging.getLogger(__name__)

WORKERS_ENV = "LONGDOC_PDF_WORKERS"  # how many PDFs are read at once (settings.py: default 2)
MEMORY_ENV = "LONGDOC_PDF_WORKER_MB"  # address space a worker may add to its start-up size (default 1024)
PageProgress = Callable[[int, int], None]  # (pages read, pages in the PDF), as the worker reads
WORKER_START_TIMEOUT_S = 60.0  # a fresh interpreter importing pypdf; minutes would mean a broken setup


# --------------------------------------------------------------------------------------------------
# The worker process


def _address_space_bytes() -> int:
    """This process's current virtual size (Linux: /proc/self/statm), 0 when unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_address_space(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus `extra_mb` (no-op where unsupported)."""
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        current = _address_space_bytes()
        if not current:
            return
        limit = current + extra_mb * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError, AttributeError):
        logger.warning("Could not limit the PDF worker's memory on this system.", exc_info=True)


def _serve(conn: Connection, memory_mb: int) -> None:
    """Worker main loop: one request (data, name, password, max_chars, tables) at a time until the pipe closes.

    Messages to the parent: ("ready", pid), then per request ("opened", n_pages), ("page", index)...,
    and finally ("done", text, pages, tables) or ("error", class name, message, wrong_password, fatal).
    """
    import pypdf  # noqa: F401  (before the memory limit, so the limit is for documents only; pypdfium2 too:
    import pypdfium2  # noqa: F401  documents.tables reads table pages with it)

    _limit_address_space(memory_mb)
    with contextlib.suppress(OSError, AttributeError):  # parsing yields the cores to the server's questions
        os.nice(WORKER_NICENESS)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            data, name, password, max_chars, tables = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            report = lambda kind, value: conn.send((kind, value))
            result = extract_pdf_pages(data, name, password, max_chars, report, tables=tables)
            message: tuple[Any, ...] = ("done", result.text, result.pages, result.tables)
        except DocumentError as error:
            wrong = isinstance(error, EncryptedPdfError) and error.wrong_password
            message = ("error", type(error).__name__, str(error), wrong, False)
        except MemoryError:
            message = ("error", "DocumentTooLargeError", str(needs_memory_error(name)), False, True)
        except Exception as error:
            logger.warning("Unexpected failure reading %r", name, exc_info=True)
            message = ("error", "DocumentError", str(unexpected_error(name, error)), False, True)
        del data
        try:
            conn.send(message)
        except (OSError, ValueError):
            return
        if message[0] == "error" and message[4]:
            return  # after a MemoryError the interpreter's state is suspect: let the parent start a new one


_LAUNCH_LOCK = threading.Lock()
WORKER_NICENESS = 5  # a worker runs at a lower CPU priority than the server: a question outranks a parse


class _PopenWithoutMain(popen_spawn_posix.Popen):
    """Spawn a fresh interpreter that does not run the parent's __main__ again.

    multiprocessing re-imports the parent's main module in a spawned child. Under `streamlit run` that
    is the app script (Streamlit installs it as __main__), which would start the app inside the worker.
    """

    def _launch(self, process_obj: Any) -> None:
        real = spawn.get_preparation_data

        def without_main(name: str) -> dict[str, Any]:
            data = real(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        with _LAUNCH_LOCK:
            spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = real


class _WorkerProcess(SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _PopenWithoutMain:  # multiprocessing names it so
        return _PopenWithoutMain(process_obj)


@dataclass
class _Worker:
    process: _WorkerProcess
    conn: Connection

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """SIGKILL and reap (no zombie); safe to call twice."""
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


# --------------------------------------------------------------------------------------------------
# The parent's side


def _setting_int(name: str) -> int:
    """A positive whole-number setting (a typo falls back to its default, see settings.positive_number)."""
    return max(1, int(settings.positive_number(name)))


def _rebuild_error(class_name: str, message: str, wrong_password: bool) -> DocumentError:
    """The worker's error as the same DocumentError subclass in this process."""
    cls = getattr(document_errors, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, DocumentError)):
        cls = DocumentError
    if cls is EncryptedPdfError:
        return EncryptedPdfError(message, wrong_password=wrong_password)
    return cls(message)


class PdfWorkerPool:
    """Up to `max_workers` warm worker processes, each reading one PDF at a time.

    Thread-safe: Streamlit serves each session's script in its own thread, so several uploads can be
    read at once; more than `max_workers` wait for a free worker (within their document budget).

    Args:
        max_workers: processes at most; default env LONGDOC_PDF_WORKERS, else 2.
        memory_mb: address space each worker may add to its start-up size; default env
            LONGDOC_PDF_WORKER_MB, else 1024.
        clock: seconds as a float, monotonic (tests may pass a fake one).
    """

    _target = staticmethod(_serve)  # what the worker runs (a test swaps in a worker stuck in C code)

    def __init__(
        self,
        max_workers: int | None = None,
        memory_mb: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_workers = max_workers or _setting_int(WORKERS_ENV)
        self.memory_mb = memory_mb or _setting_int(MEMORY_ENV)
        self._clock = clock
        self._context = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(self.max_workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: list[_Worker] = []
        self._started = 0  # workers started so far (restarts included); for tests and the soak report
        self._closed = False

    # -- workers ---------------------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        with self._lock:
            self._started += 1
            number = self._started
        process = _WorkerProcess(
            target=type(self)._target,
            args=(child_end, self.memory_mb),
            name=f"longdoc-pdf-worker-{number}",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        try:
            if not parent_end.poll(WORKER_START_TIMEOUT_S):
                raise TimeoutError("no answer")
            message = parent_end.recv()
            if message[0] != "ready":
                raise RuntimeError(f"unexpected first message {message[0]!r}")
        except (EOFError, OSError, TimeoutError, RuntimeError) as error:
            worker.kill()
            raise DocumentError(
                "The PDF reader could not start on this server (its helper process did not come up). "
                "Try again in a minute; if it keeps failing, ask whoever runs the app to check its logs."
            ) from error
        return worker

    def _checkout(self, wait_s: float, name: str) -> _Worker:
        if not self._slots.acquire(timeout=max(wait_s, 0.0)):
            raise ExtractionTimeoutError(
                f"The server is busy reading other PDFs and could not start on '{name}' within "
                f"{wait_s:.0f} s. Try again in a minute."
            )
        try:
            worker = None
            with self._lock:
                while self._idle and worker is None:
                    candidate = self._idle.pop()
                    if candidate.alive():
                        worker = candidate
                    else:
                        candidate.kill()  # died while idle (killed from outside): reap it
            if worker is None:
                worker = self._start_worker()
            with self._lock:
                self._busy.append(worker)
            return worker
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, worker: _Worker, healthy: bool) -> None:
        with self._lock:
            if worker in self._busy:
                self._busy.remove(worker)
            keep = healthy and not self._closed and worker.alive()
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.kill()
        self._slots.release()
        if not keep and not self._closed:
            self._restart_soon()

    def _restart_soon(self) -> None:
        """Start a replacement worker in the background, so the next upload finds one warm."""
        threading.Thread(target=self.warm, name="pdf-worker-restart", daemon=True).start()

    def warm(self) -> bool:
        """Start one worker now if none is idle (at start-up: takes the first PDF's wait away).

        Returns:
            Whether a worker is idle and ready afterwards (False when all are busy or one failed to
            start; that is logged, and the next PDF tries again).
        """
        if not self._slots.acquire(blocking=False):
            return False
        try:
            with self._lock:
                if self._idle or self._closed:
                    return bool(self._idle)
            worker = self._start_worker()
            with self._lock:
                closed = self._closed
                if not closed:
                    self._idle.append(worker)
            if closed:
                worker.kill()
            return not closed
        except DocumentError:
            logger.warning("Could not start a PDF worker in advance", exc_info=True)
            return False
        finally:
            self._slots.release()

    def worker_pids(self, busy_only: bool = False) -> list[int]:
        """Process ids of the live workers (only those reading a PDF right now with `busy_only`)."""
        with self._lock:
            workers = list(self._busy) if busy_only else [*self._idle, *self._busy]
        return [w.pid for w in workers if w.alive()]

    @property
    def workers_started(self) -> int:
        """How many worker processes this pool has started (a restart after a kill counts)."""
        return self._started

    def close(self) -> None:
        """Stop every worker (busy ones too: their readers get ExtractionWorkerError)."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.kill()

    # -- reading -----------------------------------------------------------------------------------

    def extract(
        self,
        data: bytes,
        name: str,
        *,
        password: str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        time_budget_s: float | None = None,
        page_time_budget_s: float = DEFAULT_PAGE_TIME_BUDGET_S,
        on_page: PageProgress | None = None,
        tables: bool = True,
    ) -> PdfText:
        """Read a PDF in a worker, within a time budget per page and per document.

        Args:
            data: the PDF's bytes.
            name: file name shown in messages.
            password: password for an encrypted PDF.
            max_chars: refuse documents with more extracted characters.
            time_budget_s: the whole document (opening it and every page) must be read within this; None:
                `document_time_budget_s(n_pages)` (a minute, plus 0.2 s a page once the page count is known).
            page_time_budget_s: each page must be read within this.
            on_page: called with (pages read, pages in the PDF) when the page list is read and after each page
                (in this thread, as the worker's messages arrive), e.g. to show pages per second.
            tables: also rebuild tables (PDFium, `documents.tables`); False reads pypdf's text only.

        Returns:
            The text, page offsets and tables.

        Raises:
            ExtractionTimeoutError: a page or the document took too long; the worker was killed.
            ExtractionWorkerError: the worker died while reading (killed from outside, out of memory).
            DocumentError: any other problem the worker found, as the same subclass and message.
        """
        worker = self._checkout(time_budget_s or DEFAULT_DOCUMENT_TIME_BUDGET_S, name)
        healthy = False
        try:
            # The budgets start once a worker has the file: waiting for a free one is not reading.
            worker.conn.send((data, name, password, max_chars, tables))
            result = self._follow(
                worker, name, time_budget_s, page_time_budget_s, on_page or (lambda *_: None)
            )
            healthy = True
            return result
        except _WorkerError as error:
            healthy = not error.fatal
            raise error.document_error from None
        finally:
            self._checkin(worker, healthy)

    def _follow(
        self,
        worker: _Worker,
        name: str,
        time_budget_s: float | None,
        page_time_budget_s: float,
        on_page: PageProgress,
    ) -> PdfText:
        """Wait for the worker's messages, reporting pages, until its text comes (or a budget runs out)."""
        started = self._clock()
        budget_s = time_budget_s or DEFAULT_DOCUMENT_TIME_BUDGET_S
        n_pages: int | None = None
        page: int | None = None
        page_started = started
        while True:
            document_deadline = started + budget_s
            page_deadline = page_started + page_time_budget_s if page is not None else float("inf")
            wait = min(document_deadline, page_deadline) - self._clock()
            if wait <= 0 or not worker.conn.poll(wait):
                if page is not None and page_deadline <= document_deadline:
                    raise _page_too_slow_error(name, page, page_time_budget_s)
                elapsed = self._clock() - started
                raise document_too_slow_error(name, elapsed, budget_s, page, n_pages)
            try:
                message = worker.conn.recv()
            except (EOFError, OSError) as error:
                raise worker_died_error(name) from error
            kind = message[0]
            if kind == "opened":
                n_pages = message[1]
                if time_budget_s is None:  # a book gets time in proportion to its pages
                    budget_s = document_time_budget_s(n_pages)
                on_page(0, n_pages)
            elif kind == "page":
                page, page_started = message[1], self._clock()
                if page and n_pages:
                    on_page(page, n_pages)  # pages before this one are read
            elif kind == "done":
                if n_pages:
                    on_page(n_pages, n_pages)
                return PdfText(message[1], tuple(tuple(p) for p in message[2]), message[3])
            elif kind == "error":
                _, class_name, text, wrong_password, fatal = message
                raise _WorkerError(_rebuild_error(class_name, text, wrong_password), fatal)


class _WorkerError(Exception):
    """The worker reported a DocumentError; `fatal`: its interpreter should not be reused."""

    def __init__(self, document_error: DocumentError, fatal: bool) -> None:
        super().__init__(str(document_error))
        self.document_error, self.fatal = document_error, fatal


_DEFAULT_POOL: PdfWorkerPool | None = None
_DEFAULT_POOL_LOCK = threading.Lock()


def default_pool() -> PdfWorkerPool:
    """The process-wide pool (created on first use, settings from the environment)."""
    global _DEFAULT_POOL
    with _DEFAULT_POOL_LOCK:
        if _DEFAULT_POOL is None:
            _DEFAULT_POOL = PdfWorkerPool()
        return _DEFAULT_POOL


@contextlib.contextmanager
def replaced_default_pool(pool: PdfWorkerPool) -> Iterator[PdfWorkerPool]:
    """Use `pool` as the process-wide pool inside the block (tests: small limits), then close it."""
    global _DEFAULT_POOL
    with _DEFAULT_POOL_LOCK:
        previous, _DEFAULT_POOL = _DEFAULT_POOL, pool
    try:
        yield pool
    finally:
        with _DEFAULT_POOL_LOCK:
            _DEFAULT_POOL = previous
        pool.close()
