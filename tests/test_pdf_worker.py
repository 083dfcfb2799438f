"""PDF extraction in a worker process (issue 19): hard time and memory limits, kills, restarts.

Every test runs real worker processes on real (generated) PDFs. One pool is shared by the module where
the test does not need its own limits, so most tests find a warm worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import build_pdf
from test_hostile import LOREM, drawing_command_flood

from longformer_core import settings
from longformer_core.documents import (
    DocumentTooLargeError,
    ExtractionTimeoutError,
    ExtractionWorkerError,
    load_document,
    pdf_worker,
)
from longformer_core.documents.pdf import extract_pdf_pages
from longformer_core.documents.pdf_worker import PdfWorkerPool

REPO_ROOT = Path(__file__).resolve().parent.parent
SLOW_PAGE = ("took too long", "a page of text takes a fraction of a second", "re-save it with a PDF printer")


@pytest.fixture(scope="module")
def pool():
    pool = PdfWorkerPool(max_workers=2)
    pool.warm()
    yield pool
    pool.close()


def _good_pdf(pages: int = 3) -> bytes:
    return build_pdf([f"Page {i}. " + LOREM for i in range(pages)])


def test_worker_reads_a_pdf_exactly_as_this_process_would(pool: PdfWorkerPool) -> None:
    """Text, page offsets and labels from the worker equal those of the same code run here, and
    load_document builds its Document from them."""
    data = build_pdf(
        ["Front matter", *[f"Chapter {i}. " + LOREM for i in range(4)]],
        page_labels=[(0, 0, "/r", None, 1), (1, 4, "/D", "A-", 1)],
    )
    here = extract_pdf_pages(data, "labels.pdf")
    assert pool.extract(data, "labels.pdf") == here
    document = load_document(data, "labels.pdf")
    assert document.text == here.text
    assert [(p.start, p.end, p.label) for p in document.pages] == list(here.pages)
    assert [page.label for page in document.pages] == ["i", "A-1", "A-2", "A-3", "A-4"]


def test_huge_content_stream_is_stopped_by_the_worker_limit() -> None:
    """40 MB of drawing commands: pypdf parses the whole stream before anything could check a clock.
    Only killing the worker stops it; the user gets the usual page message, and the pool goes on."""
    own = PdfWorkerPool(max_workers=1)
    try:
        own.warm()
        (pid,) = own.worker_pids()
        flood = drawing_command_flood()
        started = time.monotonic()
        with pytest.raises(ExtractionTimeoutError) as info:
            own.extract(flood, "flood.pdf", page_time_budget_s=1.5)
        seconds = time.monotonic() - started
        assert seconds < 1.5 + 6.0, f"took {seconds:.1f} s"  # unstopped, pypdf takes minutes; CPUs are shared
        message = str(info.value)
        assert message.startswith("Reading page 1 of 'flood.pdf' took too long (over 1.5 s;")
        for words in SLOW_PAGE:
            assert words in message
        assert not _alive(pid), "the slow worker survived"
        assert own.extract(_good_pdf(), "after.pdf").text.startswith("Page 0.")
        assert own.workers_started == 2
    finally:
        own.close()


def _alive(pid: int) -> bool:
    """Whether a process runs (a reaped or zombie one does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _serve_stuck_in_c(conn, memory_mb: int) -> None:
    """A worker whose page read blocks inside one C call: time.sleep, which an exception raised into
    the thread (the old watchdog) cannot interrupt."""
    from longformer_core.documents import pdf
    from longformer_core.documents import pdf_worker as worker_module

    def stuck(reader: object, index: int, name: str) -> str:
        time.sleep(3600)
        return ""

    pdf._read_page = stuck
    worker_module._serve(conn, memory_mb)


class _StuckInCPool(PdfWorkerPool):
    _target = staticmethod(_serve_stuck_in_c)


def test_a_page_stuck_in_c_code_is_stopped_with_the_usual_message() -> None:
    stuck = _StuckInCPool(max_workers=1)
    try:
        stuck.warm()
        pid = stuck.worker_pids()[0]
        data = _good_pdf(2)
        started = time.monotonic()
        with pytest.raises(ExtractionTimeoutError) as info:
            stuck.extract(data, "stuck.pdf", page_time_budget_s=1.0)
        assert time.monotonic() - started < 1.0 + 6.0  # stuck for an hour otherwise; CPUs are shared
        assert str(info.value).startswith("Reading page 1 of 'stuck.pdf' took too long (over 1 s;")
        assert not _alive(pid)
    finally:
        stuck.close()


def test_document_budget_names_the_page_it_reached() -> None:
    """Pages that are each fast but many: the document budget stops the worker and says how far it got."""
    stuck = _StuckInCPool(max_workers=1)
    try:
        with pytest.raises(ExtractionTimeoutError) as info:
            stuck.extract(_good_pdf(5), "slow.pdf", time_budget_s=1.0, page_time_budget_s=30.0)
        message = str(info.value)
        assert (
            "Reading 'slow.pdf' took too long: after 1 s (limit 1 s) it had only reached page 1 of 5."
            in message
        )
        assert "smaller file" in message
    finally:
        stuck.close()


def test_a_worker_killed_from_outside_gives_a_clear_error_and_the_next_upload_works(
    pool: PdfWorkerPool,
) -> None:
    result: dict[str, BaseException] = {}

    def read() -> None:
        try:
            pool.extract(drawing_command_flood(), "flood.pdf", page_time_budget_s=60.0)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            result["error"] = error

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(1.5)  # mid-parse: the flood keeps a worker busy for minutes
    busy = pool.worker_pids(busy_only=True)
    assert len(busy) == 1
    for pid in busy:
        os.kill(pid, signal.SIGKILL)
    reader.join(10)
    assert not reader.is_alive()
    error = result["error"]
    assert isinstance(error, ExtractionWorkerError)
    assert str(error).startswith(
        "Reading 'flood.pdf' stopped unexpectedly: the process that reads PDFs ended"
    )
    assert "Upload the file again" in str(error)
    assert "Traceback" not in str(error) and "SIGKILL" not in str(error)
    document = pool.extract(_good_pdf(), "next.pdf")
    assert document.text.count("incident response team") == 3


class _TablesCrashPool(PdfWorkerPool):
    """A pool whose worker dies (a real SIGKILL, as a crash in PDFium's C code would end it) whenever it reads
    a PDF with tables on; with tables off it reads as usual."""

    def extract(self, data: bytes, name: str, **kw: object) -> object:
        self.asked = [*getattr(self, "asked", []), kw.get("tables", True)]
        if kw.get("tables", True):

            def crash(pages_read: int, pages: int) -> None:
                for pid in self.worker_pids(busy_only=True):
                    os.kill(pid, signal.SIGKILL)

            kw["on_page"] = crash
        return super().extract(data, name, **kw)


def test_a_worker_that_dies_reading_tables_is_retried_without_them() -> None:
    """PDFium parses table pages inside the worker: if it crashes, the user still gets the PDF's text."""
    from longformer_core.documents.pdf_worker import replaced_default_pool

    data = _good_pdf(3)
    with replaced_default_pool(_TablesCrashPool(max_workers=1)) as crashing:
        document = load_document(data, "crash.pdf")
    assert crashing.asked == [True, False]
    assert document.text == extract_pdf_pages(data, "crash.pdf", tables=False).text
    assert document.tables == () and len(document.pages) == 3


def test_an_idle_worker_killed_from_outside_is_replaced(pool: PdfWorkerPool) -> None:
    pool.extract(_good_pdf(1), "warm.pdf")
    for pid in pool.worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert pool.extract(_good_pdf(2), "again.pdf").text.startswith("Page 0.")


def test_the_address_space_limit_turns_a_memory_hog_into_the_usual_message() -> None:
    """With 64 MB of headroom the 40 MB flood cannot even be parsed: MemoryError in the worker, the
    usual message here, and a fresh worker for the next file."""
    small = PdfWorkerPool(max_workers=1, memory_mb=64)
    try:
        with pytest.raises(DocumentTooLargeError) as info:
            small.extract(drawing_command_flood(), "hog.pdf", page_time_budget_s=60.0)
        assert (
            str(info.value)
            == "'hog.pdf' needs more memory to read than this machine has. Upload a smaller file."
        )
        assert small.extract(_good_pdf(2), "fine.pdf").text.startswith("Page 0.")
    finally:
        small.close()


def test_concurrent_uploads_share_at_most_max_workers(pool: PdfWorkerPool) -> None:
    texts: dict[int, str] = {}

    def read(i: int) -> None:
        texts[i] = pool.extract(build_pdf([f"Document {i}. " + LOREM]), f"doc{i}.pdf").text

    threads = [threading.Thread(target=read, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(texts) == list(range(5))
    assert all(texts[i].startswith(f"Document {i}.") for i in range(5))
    assert len(pool.worker_pids()) <= pool.max_workers


def test_the_worker_does_not_run_the_parents_main_script(tmp_path: Path) -> None:
    """Under `streamlit run` __main__ is the app script; a spawned worker must not run it again."""
    marker = tmp_path / "main-ran-in-child"
    script = tmp_path / "server_main.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        if __name__ != "__main__":
            open({str(marker)!r}, "w").write(__name__)
        else:
            sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
            from conftest import build_pdf
            from longformer_core.documents.pdf_worker import PdfWorkerPool
            pool = PdfWorkerPool(max_workers=1)
            print(pool.extract(build_pdf(["A page of text for the worker."]), "a.pdf").text)
            pool.close()
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "A page of text for the worker."
    assert not marker.exists(), marker.read_text()


def test_worker_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pdf_worker.WORKERS_ENV, "3")
    monkeypatch.setenv(pdf_worker.MEMORY_ENV, "512")
    pool = PdfWorkerPool()
    assert (pool.max_workers, pool.memory_mb) == (3, 512)
    monkeypatch.setenv(pdf_worker.WORKERS_ENV, "lots")  # a typo falls back to the default
    assert PdfWorkerPool().max_workers == int(settings.BY_NAME[pdf_worker.WORKERS_ENV].default) == 2
