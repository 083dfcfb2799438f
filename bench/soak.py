"""Soak test: several people use one real app server at once, and a PDF worker dies mid-parse.

Starts `streamlit run app.py` on 127.0.0.1 (a free port), then drives N browser sessions at once
(Playwright contexts in one headless Chromium: separate cookies, separate Streamlit sessions). Each
session, until the time is up: uploads a document of its own from the shared data (HotpotQA and SQuAD
contexts and BBC news as text, the Alice PDF; every third upload a hostile file), asks questions about it,
and switches between the Document and Ask pages. Session 0, after its first document, uploads the NIST
PDF while the bench kills the server's busy PDF worker (SIGKILL), expects the "stopped unexpectedly"
message, and uploads it again.

Reports: requests, errors (anything but the expected messages for hostile files and the killed worker),
first-question and later-question answer latency (p50/p95), peak RSS of the server and of its PDF
workers (sampled every 0.5 s from /proc), and whether every session saw only its own documents (no other
session's file name on its pages, every highlighted answer inside its own document's text).

Bounded: no new action starts after --minutes; each action has its own timeout; at most
--max-requests actions per session. Linux only (/proc), like the server it measures.

Usage (from the repository root):
    .venv/bin/python bench/soak.py --sessions 4 --minutes 5 --json
    .venv/bin/python bench/soak.py --sessions 2 --minutes 1 --no-kill      # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DATA_DIR = Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KILLED_WORKER_WORDS = "stopped unexpectedly"
BBC_QUESTIONS = ["What is this article about?", "Who said it?"]


# --------------------------------------------------------------------------------------------------
# Documents: each session gets its own, named so that another session's name is easy to spot


@dataclass
class Upload:
    name: str
    data: bytes
    mime: str
    questions: list[str]
    text: str = ""  # what the document says (to check highlighted answers); "" for PDFs
    expect_error: str | None = None  # words of the message a hostile file must get


def _squad_articles(path: Path, limit: int) -> list[tuple[str, str, list[str]]]:
    data = json.loads(path.read_text())["data"]
    out = []
    for article in data[:limit]:
        for paragraph in article["paragraphs"][:1]:
            questions = [qa["question"] for qa in paragraph["qas"]]
            out.append((article["title"], paragraph["context"], questions))
    return out


def _bbc_rows(path: Path, limit: int) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(row["filename"], row["text"]) for row in rows[:limit]]


def _hostile(session: int, k: int) -> Upload:
    """A hostile file and the words of the message the app shows for it today (computed, not typed)."""
    from longformer_core.documents import DocumentError, load_document

    kinds = [
        (f"soak{session}h{k}-scan.txt", bytes(range(256)) * 8, "text/plain"),
        (f"soak{session}h{k}-broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 100, "application/pdf"),
        (f"soak{session}h{k}-empty.txt", b"   \n\t ", "text/plain"),
        (f"soak{session}h{k}-word.txt", b"PK\x03\x04" + b"\x14\x00" * 40, "text/plain"),
    ]
    name, data, mime = kinds[k % len(kinds)]
    try:
        load_document(data, name)
    except DocumentError as error:
        expected = str(error)
    else:
        raise AssertionError(f"{name} is not hostile")
    return Upload(name, data, mime, [], expect_error=expected.split(":")[0])


def session_plan(session: int, n_sessions: int, rng: random.Random) -> list[Upload]:
    """Documents for one session, in order (more than it will have time for)."""
    hotpot = _squad_articles(DATA_DIR / "hotpotqa" / "hotpotqa-dev-distractor.squad.json", 400)
    bbc = _bbc_rows(DATA_DIR / "bbc" / "bbc-news.csv", 400)
    plan: list[Upload] = []
    if session == 1:
        alice = (DATA_DIR / "pdfs" / "alice_in_wonderland_latex_edition.pdf").read_bytes()
        # Uploaded and shown, not asked about: reading 112 pages takes minutes on a shared 2-core machine.
        plan.append(Upload("soak1-alice.pdf", alice, "application/pdf", []))
    # Then short documents with questions, a hostile file every third upload; disjoint across sessions.
    mine_hotpot = hotpot[session::n_sessions]
    mine_bbc = bbc[session::n_sessions]
    for k in range(40):
        if session == 0 and k == 1:
            # The worker kill: NIST takes seconds to parse; the bench kills the busy worker meanwhile.
            nist = (DATA_DIR / "pdfs" / "nist_sp800-61r2.pdf").read_bytes()
            plan.append(
                Upload("soak0-nist-kill.pdf", nist, "application/pdf", [], expect_error=KILLED_WORKER_WORDS)
            )
            plan.append(Upload("soak0-nist.pdf", nist, "application/pdf", []))
        if k % 3 == 2:
            plan.append(_hostile(session, k))
        elif k % 3 == 1 and k // 3 < len(mine_bbc):
            filename, text = mine_bbc[k // 3]
            plan.append(
                Upload(
                    f"soak{session}x{k}-bbc-{filename}", text.encode(), "text/plain", BBC_QUESTIONS[:1], text
                )
            )
        else:
            _, text, questions = mine_hotpot[k % len(mine_hotpot)]
            plan.append(
                Upload(
                    f"soak{session}x{k}-hotpot.txt",
                    text.encode(),
                    "text/plain",
                    rng.sample(questions, 1) * 2,
                    text,
                )
            )  # the same question twice: a warm cache
    return plan


# --------------------------------------------------------------------------------------------------
# The server and its memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def age_s(pid: int) -> float:
    """Seconds since the process started (0 when it is gone)."""
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def pdf_workers(server_pid: int) -> list[int]:
    """The server's PDF worker processes (spawned interpreters, not the resource tracker)."""
    workers = []
    for pid in children_of(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "multiprocessing.spawn" in cmdline and "resource_tracker" not in cmdline:
            workers.append(pid)
    return workers


class MemoryWatch:
    """Samples the server's RSS and its PDF workers' every `every_s` seconds in a thread."""

    def __init__(self, server_pid: int, every_s: float = 0.5) -> None:
        self.server_pid = server_pid
        self.every_s = every_s
        self.peak_server = 0
        self.peak_workers = 0
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            server = rss_bytes(self.server_pid)
            workers = sum(rss_bytes(pid) for pid in pdf_workers(self.server_pid))
            self.peak_server = max(self.peak_server, server)
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_total = max(self.peak_total, server + workers)
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def start_server(port: int, log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


# --------------------------------------------------------------------------------------------------
# One session


@dataclass
class SessionReport:
    session: int
    requests: int = 0
    uploads: int = 0
    questions: int = 0
    page_switches: int = 0
    expected_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_latency_s: list[float] = field(default_factory=list)  # first question about a document (reads it)
    later_latency_s: list[float] = field(default_factory=list)  # later questions (the reading is cached)
    isolation_violations: list[str] = field(default_factory=list)
    worker_killed: bool = False
    upload_after_kill_ok: bool | None = None
    cut_off: bool = False  # an action was still running at the hard stop


_WATCH_RUNS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || window.__soakWatching) return;
  window.__soakWatching = true; window.__soakRuns = 0;
  let was = app.getAttribute('data-test-script-state');
  new MutationObserver(() => {
    const now = app.getAttribute('data-test-script-state');
    if (was === 'running' && now !== 'running') window.__soakRuns += 1;
    was = now;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


class Session:
    """One user: a browser context (own cookies, own Streamlit session) working through its plan."""

    def __init__(
        self,
        index: int,
        browser,
        url: str,
        plan: list[Upload],
        all_names: dict[int, set[str]],
        args: argparse.Namespace,
        server_pid: int,
        deadline: float,
    ) -> None:
        self.index = index
        self.browser = browser
        self.url = url
        self.plan = plan
        self.all_names = all_names
        self.args = args
        self.server_pid = server_pid
        self.deadline = deadline
        self.report = SessionReport(index)
        self.own_text = ""

    async def _finished_run(self, page, action, timeout_s: float) -> float:
        """Do `action` (which starts a script run) and wait until the run ends; seconds it took."""
        await page.evaluate(_WATCH_RUNS)
        await page.evaluate("() => { window.__soakRuns = 0; }")
        started = time.perf_counter()
        await action()
        await page.wait_for_function("() => window.__soakRuns > 0", timeout=timeout_s * 1000)
        # A file upload or a click can start a second run right away (widgets settling): let it finish.
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
            " !== 'running'",
            timeout=timeout_s * 1000,
        )
        return time.perf_counter() - started

    async def _alerts(self, page) -> tuple[list[str], int]:
        errors = [await e.inner_text() for e in await page.get_by_test_id("stAlertContentError").all()]
        exceptions = await page.get_by_test_id("stException").count()
        return errors, exceptions

    async def _check_isolation(self, page, where: str) -> None:
        body = await page.locator("body").inner_text()
        for other, names in self.all_names.items():
            if other == self.index:
                continue
            for name in names:
                if name in body:
                    self.report.isolation_violations.append(f"{where}: saw session {other}'s '{name}'")
        marks = [await m.inner_text() for m in await page.locator("mark").all()]
        own = " ".join(self.own_text.split())
        for mark in marks:
            if own and " ".join(mark.split()) not in own:
                self.report.isolation_violations.append(f"{where}: highlighted text not in its own document")

    async def _goto_page(self, page, title: str) -> None:
        link = page.get_by_test_id("stSidebar").get_by_role("link", name=title)
        await self._finished_run(page, link.click, 300)
        self.report.page_switches += 1
        self.report.requests += 1

    async def _upload(self, page, upload: Upload) -> bool:
        """Upload on the Document page; True when the document is now the session's."""
        if not await page.get_by_role("heading", name="Your document").count():
            await self._goto_page(page, "Document")
        chooser = page.locator("input[type=file]").first
        kill_task = None
        if upload.expect_error == KILLED_WORKER_WORDS:
            kill_task = asyncio.create_task(self._kill_busy_worker())

        async def put() -> None:
            await chooser.set_input_files(
                files=[{"name": upload.name, "mimeType": upload.mime, "buffer": upload.data}]
            )

        try:
            await self._finished_run(page, put, 240)
        finally:
            if kill_task is not None:
                self.report.worker_killed = await kill_task
        self.report.uploads += 1
        self.report.requests += 1
        # Choosing a document reruns the page once more: wait for its name in the sidebar or a message.
        sidebar_name = page.get_by_test_id("stSidebar").get_by_text(upload.name, exact=False)
        alert = page.get_by_test_id("stAlertContentError")
        with contextlib.suppress(Exception):  # a timeout here is judged below from what the page shows
            await sidebar_name.first.or_(alert.first).wait_for(timeout=120_000)
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
            " !== 'running'",
            timeout=120_000,
        )
        errors, exceptions = await self._alerts(page)
        if exceptions:
            self.report.errors.append(f"upload {upload.name}: exception shown")
        if upload.expect_error is not None:
            if any(upload.expect_error in e for e in errors):
                self.report.expected_errors.append(f"{upload.name}: {upload.expect_error}")
            else:
                self.report.errors.append(
                    f"upload {upload.name}: expected '{upload.expect_error}', got {errors}"
                )
            return False
        if errors:
            self.report.errors.append(f"upload {upload.name}: {errors}")
            return False
        if not await sidebar_name.count():
            self.report.errors.append(f"upload {upload.name}: not shown as the document in use")
            return False
        self.own_text = upload.text
        await self._check_isolation(page, f"document page after {upload.name}")
        return True

    async def _kill_busy_worker(self) -> bool:
        """SIGKILL the server's PDF worker that is burning CPU (the one reading NIST), once it started."""
        for _ in range(100):
            await asyncio.sleep(0.3)
            before = {pid: cpu_ticks(pid) for pid in pdf_workers(self.server_pid)}
            await asyncio.sleep(0.3)
            # Busy (at least 50 ms of CPU in 0.3 s) and past its start-up (imports), i.e. parsing.
            busy = [pid for pid, ticks in before.items() if cpu_ticks(pid) - ticks >= 5 and age_s(pid) > 3.0]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                return True
        return False

    async def _ask(self, page, question: str, first: bool) -> None:
        if not await page.get_by_label("Your question").count():
            await self._goto_page(page, "Ask")
        await page.get_by_label("Your question").fill(question)
        seconds = await self._finished_run(
            page, page.get_by_role("button", name="Ask").click, self.args.action_timeout
        )
        self.report.questions += 1
        self.report.requests += 1
        errors, exceptions = await self._alerts(page)
        if errors or exceptions:
            self.report.errors.append(f"question {question!r}: {errors or 'exception shown'}")
            return
        (self.report.first_latency_s if first else self.report.later_latency_s).append(seconds)
        await self._check_isolation(page, f"answer to {question!r}")

    async def run(self) -> SessionReport:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(300_000)  # a loaded 2-core machine: 30 s (Playwright's default) is short
        context.set_default_navigation_timeout(300_000)
        page = await context.new_page()
        try:
            try:
                await page.goto(self.url)
                await page.get_by_role("heading", name="Your document").wait_for(timeout=300_000)
            except Exception as error:  # noqa: BLE001 - counted; the session cannot go on
                self.report.errors.append(f"first visit: {type(error).__name__}: {str(error)[:200]}")
                return self.report
            for upload in self.plan:
                if time.monotonic() > self.deadline or self.report.requests >= self.args.max_requests:
                    break
                try:
                    ok = await self._upload(page, upload)
                    if upload.name == "soak0-nist.pdf":
                        self.report.upload_after_kill_ok = ok
                    if not ok:
                        continue
                    for i, question in enumerate(upload.questions):
                        if time.monotonic() > self.deadline:
                            break
                        await self._ask(page, question, first=i == 0)
                    if upload.questions and time.monotonic() < self.deadline:
                        await self._goto_page(page, "Document")  # switch pages and look again
                        await self._check_isolation(page, "document page")
                except Exception as error:  # noqa: BLE001 - a timeout or a vanished element: count it, go on
                    self.report.errors.append(f"{upload.name}: {type(error).__name__}: {str(error)[:200]}")
        finally:
            await context.close()
        return self.report


# --------------------------------------------------------------------------------------------------
# Main


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def machine() -> dict:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
    }


MODEL_LOADED_RSS = [0]  # the server's RSS once the model is loaded, before any session


async def drive(args: argparse.Namespace, url: str, server_pid: int) -> list[SessionReport]:
    from playwright.async_api import async_playwright

    rng = random.Random(args.seed)
    plans = {i: session_plan(i, args.sessions, rng) for i in range(args.sessions)}
    if args.no_kill and plans[0] and plans[0][0].expect_error == KILLED_WORKER_WORDS:
        plans[0] = plans[0][1:]
    names = {i: {u.name for u in plan} for i, plan in plans.items()}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # One visit first: the server loads the model once for everyone; that is not a session's wait.
            warmup = await browser.new_context()
            page = await warmup.new_page()
            await page.goto(url)
            # Loading the model took 205 s at a load average of 26 on 2 cores (AppTest, same machine).
            await page.get_by_role("heading", name="Your document").wait_for(timeout=900_000)
            await warmup.close()
            MODEL_LOADED_RSS[0] = rss_bytes(server_pid)
            deadline = time.monotonic() + args.minutes * 60
            sessions = [
                Session(i, browser, url, plans[i], names, args, server_pid, deadline)
                for i in range(args.sessions)
            ]
            tasks = [asyncio.create_task(s.run()) for s in sessions]
            # Hard stop: actions still running `grace` seconds after the deadline are cut off.
            _, pending = await asyncio.wait(tasks, timeout=args.minutes * 60 + args.grace)
            for task in pending:
                task.cancel()
            for session, task in zip(sessions, tasks):
                if task in pending:
                    session.report.cut_off = True
            await asyncio.gather(*pending, return_exceptions=True)
            return [s.report for s in sessions]
        finally:
            await browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=5.0, help="no new action starts after this")
    parser.add_argument("--max-requests", type=int, default=200, help="per session")
    parser.add_argument("--action-timeout", type=float, default=240.0, help="seconds for one question")
    parser.add_argument(
        "--grace",
        type=float,
        default=150.0,
        help="seconds after --minutes before actions still running are cut off",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-kill", action="store_true", help="do not kill a PDF worker")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        print(f"No Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LONGDOC_DATA_DIR": str(DATA_DIR)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.mkdtemp(prefix="soak-")) / "server.log"
    started = time.monotonic()
    server = start_server(port, log_path, env)
    watch = MemoryWatch(server.pid)
    try:
        wait_until_healthy(url, server)
        watch.start()
        reports = asyncio.run(drive(args, url, server.pid))
        idle_rss = rss_bytes(server.pid)
    finally:
        watch.stop()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    first = [s for r in reports for s in r.first_latency_s]
    later = [s for r in reports for s in r.later_latency_s]
    errors = [f"session {r.session}: {e}" for r in reports for e in r.errors]
    violations = [f"session {r.session}: {v}" for r in reports for v in r.isolation_violations]
    summary = {
        "command": "bench/soak.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "sessions": args.sessions,
        "minutes": args.minutes,
        "wall_s": round(time.monotonic() - started, 1),
        "cache_mb": os.environ.get("LONGDOC_CACHE_MB", "default"),
        "requests": sum(r.requests for r in reports),
        "uploads": sum(r.uploads for r in reports),
        "questions": sum(r.questions for r in reports),
        "page_switches": sum(r.page_switches for r in reports),
        "expected_errors": sum(len(r.expected_errors) for r in reports),
        "errors": len(errors),
        "error_list": errors,
        "first_question_s": {"n": len(first), "p50": percentile(first, 0.5), "p95": percentile(first, 0.95)},
        "later_question_s": {"n": len(later), "p50": percentile(later, 0.5), "p95": percentile(later, 0.95)},
        "peak_rss_mb": {
            "server": round(watch.peak_server / 2**20),
            "pdf_workers": round(watch.peak_workers / 2**20),
            "total": round(watch.peak_total / 2**20),
            "server_at_end": round(idle_rss / 2**20),
            "server_with_model_before_sessions": round(MODEL_LOADED_RSS[0] / 2**20),
        },
        "sessions_cut_off_at_hard_stop": [r.session for r in reports if r.cut_off],
        "worker_killed": any(r.worker_killed for r in reports),
        "upload_after_kill_ok": next((r.upload_after_kill_ok for r in reports if r.session == 0), None),
        "isolated": not violations,
        "isolation_violations": violations,
        "server_log": str(log_path),
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if not errors and not violations else 1


if __name__ == "__main__":
    raise SystemExit(main())
