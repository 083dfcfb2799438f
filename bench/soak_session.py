"""One soak session: a browser context (own cookies, own Streamlit session) working through its plan.

A request is done when the page shows its result and no script run is going: an upload when the sidebar
names the document (or a new message is shown), a question when its numbered answers are shown (or a message),
a page switch when the page's heading is.

A question's latency is taken on the page's own clock: from its click on Ask to the moment its numbered answers
appeared in the page and no run was going (a script in every page, `PAGE_CLOCK`, notes both). Playwright's waits,
which the bench also uses, look again after 0, 20, 50, 100, 100 and then every 500 ms, so the time at which the
bench noticed an answer could be up to half a second late; that time is kept too (`*_polled_s`), to compare.

Accounting, so that a slow machine is never reported as a broken app:
- an **error** is something the app did wrong: an error message or a traceback where none was due, a
  hostile file without its message, a document not shown after its upload, another session's document;
- a request that runs past `--action-timeout` is **timed out** (the session reloads its page and goes on);
  one still running at the hard stop (`--minutes` + `--grace`) is **unfinished**. Neither is an error:
  both are listed with how long they had run, and counted in the latency percentiles at that time (a
  lower bound of their real latency), so the slowest requests are never dropped from p95.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_plan import KILLED_WORKER_WORDS, Upload
from bench.soak_proc import age_s, cpu_ticks, pdf_workers


@dataclass
class SessionReport:
    session: int
    requests: int = 0
    uploads: int = 0
    questions: int = 0
    page_switches: int = 0
    expected_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the app did something wrong
    upload_latency_s: list[float] = field(
        default_factory=list
    )  # upload to the document shown (or its message)
    first_latency_s: list[float] = field(default_factory=list)  # first question about a document (reads it)
    later_latency_s: list[float] = field(default_factory=list)  # later questions (the reading is cached)
    # The same questions as Playwright noticed them (its waits look again every 500 ms at most).
    first_polled_s: list[float] = field(default_factory=list)
    later_polled_s: list[float] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)  # ran past --action-timeout (not an app error)
    unfinished: list[str] = field(default_factory=list)  # still running at the hard stop (not an app error)
    censored_questions: int = 0  # questions in the latency lists at their time so far (a lower bound)
    isolation_violations: list[str] = field(default_factory=list)  # another session's text, or no document's
    stale_highlights: list[str] = field(default_factory=list)  # text of this session's earlier document
    worker_killed: bool = False
    upload_after_kill_ok: bool | None = None
    timeline: list[tuple[float, float, str]] = field(
        default_factory=list
    )  # (started, seconds, label) of requests


class RequestCutShort(Exception):
    """A request did not finish within its time: past --action-timeout, or at the hard stop."""

    def __init__(self, label: str, seconds: float, at_hard_stop: bool) -> None:
        super().__init__(f"{label}: still running after {seconds:.0f} s")
        self.label, self.seconds, self.at_hard_stop = label, seconds, at_hard_stop


_SCRIPT_STATE = (
    "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
)
NOT_RUNNING = _SCRIPT_STATE + " !== 'running'"
# Check the page every 50 ms, not on every animation frame (Playwright's default): four pages polled at
# 60 Hz took the cores the server needs (Chromium 260 CPU s against the server's 122 s four and a half minutes
# into one soak; 123 s against 123 s in the next, polling every 50 ms).
POLL_MS = 50
# Installed in every page before Streamlit's own scripts: notes the last click, the first moment each "Question
# N of this session" caption was in the page, and every change of the app's script state (page clock, ms).
PAGE_CLOCK = """(() => {
  const t = (window.__soak = { click: null, answered: {}, states: [] });
  document.addEventListener("click", () => { t.click = performance.now(); }, true);
  const seen = (node) => {
    const m = /Question (\\d+) of this session/.exec(node.textContent || "");
    if (m && !(m[1] in t.answered)) t.answered[m[1]] = performance.now();
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") t.states.push([performance.now(), r.target.getAttribute(r.attributeName)]);
      else if (r.type === "characterData") seen(r.target);
      else r.addedNodes.forEach(seen);
    }
  }).observe(document, {
    childList: true, subtree: true, characterData: true, attributes: true,
    attributeFilter: ["data-test-script-state"],
  });
})()"""
# Seconds from the last click to the moment question N's caption was shown and no run was going (None when the
# page did not see both, e.g. a reloaded page); forgets the script states before that moment.
ANSWERED_AFTER_CLICK = """(n) => {
  const t = window.__soak, shown = t && t.answered[n];
  if (shown === undefined || t.click === null) return null;
  let before = null, after = null;
  for (const [at, state] of t.states) {
    if (at <= shown) before = state;
    else if (after === null && state !== "running") after = at;
  }
  const done = before === "running" ? after : before === null ? null : shown;
  t.states = t.states.slice(-1);
  return done === null ? null : (done - t.click) / 1000;
}"""
PAGE_HEADINGS = {"Document": "Your document", "Ask": "Ask a question"}  # what each page shows first
SOAK_SHOTS = (
    Path(__file__).resolve().parent.parent / "artifacts" / "soak"
)  # screenshots of requests that ran out of time


class Session:
    """One user. `deadline`: no new action after it; `hard_stop`: every request ends by then."""

    def __init__(
        self,
        index: int,
        browser,
        url: str,
        plan: list[Upload],
        all_names: dict[int, set[str]],
        all_texts: dict[int, list[str]],
        args: argparse.Namespace,
        server_pid: int,
        deadline: float,
    ) -> None:
        self.index = index
        self.browser = browser
        self.url = url
        self.plan = plan
        self.all_names = all_names
        self.all_texts = all_texts  # every session's planned document texts, whitespace-normalised
        self.args = args
        self.server_pid = server_pid
        self.deadline = deadline
        self.hard_stop = deadline + args.grace
        self.report = SessionReport(index)
        self.own_text = ""
        self.earlier_texts: list[str] = []  # this session's earlier documents, whitespace-normalised
        self.current: tuple[str, float] | None = None  # the request running now and when it started
        self.answered = 0  # questions answered in the current browser session (the app numbers them)
        self.rng = random.Random(args.seed * 1000 + index)  # this session's pauses between actions
        self.action_timeout = args.action_timeout  # longer while working on the big document (--big)

    # ----------------------------------------------------------------------------------------------
    # Requests

    async def _request(
        self,
        page,
        label: str,
        action: Callable[[], Awaitable[None]],
        shown: Callable[[float], Awaitable[None]],
        on_page_clock: Callable[[float], Awaitable[float]] | None = None,
    ) -> float:
        """Do `action`, wait for `shown(limit)` (what the page shows once the request is served) and for no run
        to be going; seconds it took: as the bench noticed it, or what `on_page_clock(those seconds)` makes of
        them (a question: the page's own clock, see the module's docstring).

        Runs are not counted: a short run can reach the page start and end in one update and never show the
        'running' state (missed runs left requests waiting 240 s while the page was drawn and idle).

        Raises:
            RequestCutShort: not finished within --action-timeout or by the hard stop.
        """
        started = time.monotonic()
        seconds: float | None = None
        limit = min(started + self.action_timeout, self.hard_stop)
        self.current = (label, started)
        try:
            async with self._cut_short_on_timeout(label, started):
                await action()
                await shown(limit)
                await page.wait_for_function(NOT_RUNNING, polling=POLL_MS, timeout=self._ms_left(limit))
                seconds = time.monotonic() - started
                if on_page_clock is not None:
                    seconds = await on_page_clock(seconds)
        finally:
            self.current = None
            self.report.timeline.append((started, seconds or time.monotonic() - started, label))
        await asyncio.sleep(self.args.think * self.rng.uniform(0.5, 1.5))  # reading what came back
        return seconds

    @contextlib.asynccontextmanager
    async def _cut_short_on_timeout(self, label: str, started: float) -> AsyncIterator[None]:
        """Turn Playwright's TimeoutError into RequestCutShort (anything else goes up as it is)."""
        try:
            yield
        except Exception as error:
            if type(error).__name__ != "TimeoutError":
                raise
            now = time.monotonic()
            raise RequestCutShort(label, now - started, at_hard_stop=now >= self.hard_stop - 1) from error

    @staticmethod
    def _ms_left(limit: float) -> float:
        return max(1.0, (limit - time.monotonic()) * 1000)

    async def cut_short(self, page, cut: RequestCutShort) -> None:
        """Record a request that ran out of time (not an app error), with what the page showed then: the
        app's script state, its status line and a screenshot in artifacts/soak/."""
        seen = ""
        with contextlib.suppress(Exception):  # a page that is gone says nothing more
            state = await page.evaluate(_SCRIPT_STATE)
            status = await page.get_by_test_id("stStatusWidget").all_inner_texts()
            SOAK_SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SOAK_SHOTS / f"session{self.index}-{int(time.time())}.png"
            await page.screenshot(path=str(shot), full_page=True)
            seen = f" (script state {state!r}, status {' '.join(status)!r}, {shot.name})"
        (self.report.unfinished if cut.at_hard_stop else self.report.timed_out).append(f"{cut}{seen}")

    def stopped_now(self) -> None:
        """The bench cancels this session (after the hard stop): its running request is unfinished."""
        if self.current is not None:
            label, started = self.current
            self.report.unfinished.append(f"{label}: still running after {time.monotonic() - started:.0f} s")

    async def _alerts(self, page) -> tuple[list[str], int]:
        # all_inner_texts reads what is there now; inner_text on each of .all() waits (up to 300 s) for an
        # element that a rerun removed meanwhile: uploads were reported stuck for minutes, their pages done.
        errors = await page.get_by_test_id("stAlertContentError").all_inner_texts()
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
        marks = await page.locator("mark").all_inner_texts()
        own = " ".join(self.own_text.split())
        for mark in (" ".join(m.split()) for m in marks):
            if not own or mark in own:
                continue
            if any(mark in text for text in self.earlier_texts):
                self.report.stale_highlights.append(
                    f"{where}: {mark[:80]!r} (an earlier document of this session)"
                )
                continue
            owners = [
                i for i, texts in self.all_texts.items() if i != self.index and any(mark in t for t in texts)
            ]
            self.report.isolation_violations.append(
                f"{where}: highlighted text not in its own document"
                + (f" but in session {owners}'s" if owners else " nor in any uploaded one")
                + f": {mark[:80]!r}"
            )

    async def _goto_page(self, page, title: str) -> None:
        """Switch pages: done when the page's own heading is shown and no run is going."""
        link = page.get_by_test_id("stSidebar").get_by_role("link", name=title)
        heading = page.get_by_role("heading", name=PAGE_HEADINGS[title])
        self.report.requests += 1
        await self._request(
            page,
            f"switch to {title}",
            link.click,
            lambda limit: heading.wait_for(timeout=self._ms_left(limit)),
        )
        self.report.page_switches += 1

    # ----------------------------------------------------------------------------------------------
    # Uploads

    async def _upload(self, page, upload: Upload) -> bool:
        """Upload on the Document page; True when the document is now the session's."""
        if not await page.get_by_role("heading", name="Your document").count():
            await self._goto_page(page, "Document")
        chooser = page.locator("input[type=file]").first
        before, _ = await self._alerts(page)  # a message about the previous upload may still be shown
        kill_task = None
        if upload.expect_error == KILLED_WORKER_WORDS:
            kill_task = asyncio.create_task(self._kill_busy_worker())

        async def put() -> None:
            await chooser.set_input_files(
                files=[{"name": upload.name, "mimeType": upload.mime, "buffer": upload.data}]
            )

        # Done when the sidebar names the document, or a new message is shown (not the one about the previous
        # upload, which stays on the page until the rerun replaces it).
        sidebar_name = page.get_by_test_id("stSidebar").get_by_text(upload.name, exact=False)

        async def shown(limit: float) -> None:
            while not await sidebar_name.count() and not set((await self._alerts(page))[0]) - set(before):
                if time.monotonic() > limit:
                    raise TimeoutError(f"{upload.name} not shown")
                await asyncio.sleep(0.1)

        self.report.requests += 1
        try:
            self.report.upload_latency_s.append(
                await self._request(page, f"upload {upload.name}", put, shown)
            )
        finally:
            if kill_task is not None:
                self.report.worker_killed = await kill_task
        self.report.uploads += 1
        return await self._judge_upload(page, upload, sidebar_name, before)

    async def _judge_upload(self, page, upload: Upload, sidebar_name, before: list[str]) -> bool:
        shown, exceptions = await self._alerts(page)
        errors = [e for e in shown if e not in before]
        if len(errors) < len(shown) and await sidebar_name.count():
            self.report.errors.append(f"upload {upload.name}: the previous upload's message is still shown")
        if exceptions:
            self.report.errors.append(f"upload {upload.name}: exception shown")
        if upload.expect_error is not None:
            if any(upload.expect_error in e for e in errors):
                self.report.expected_errors.append(f"{upload.name}: {upload.expect_error}")
                return False
            if upload.expect_error == KILLED_WORKER_WORDS and not errors and await sidebar_name.count():
                # The app reads a PDF again (without tables) when its worker dies (documents/loading.py); only
                # a second death gets the message. Either way the user is told or served, never left hanging.
                self.report.expected_errors.append(f"{upload.name}: read again after its worker was killed")
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
        if self.own_text:
            self.earlier_texts.append(" ".join(self.own_text.split()))
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

    # ----------------------------------------------------------------------------------------------
    # Questions

    async def _ask(self, page, question: str, first: bool) -> None:
        if not await page.get_by_label("Your question").count():
            await self._goto_page(page, "Ask")
        await page.get_by_label("Your question").fill(question)
        latencies = self.report.first_latency_s if first else self.report.later_latency_s
        self.report.requests += 1
        self.report.questions += 1
        label = f"{'first' if first else 'later'} question {question!r}"
        # The Ask page numbers each answered question: done when this one's number (or an error) is shown.
        answered = page.get_by_text(f"Question {self.answered + 1} of this session", exact=False)
        done = answered.or_(page.get_by_test_id("stAlertContentError")).first

        noticed: list[float] = []

        async def on_page_clock(polled: float) -> float:
            noticed.append(polled)
            return await page.evaluate(ANSWERED_AFTER_CLICK, self.answered + 1) or polled

        try:
            seconds = await self._request(
                page,
                label,
                page.get_by_role("button", name="Ask").click,
                lambda limit: done.wait_for(timeout=self._ms_left(limit)),
                on_page_clock,
            )
        except RequestCutShort as cut:
            latencies.append(cut.seconds)  # at least this long: p95 keeps its slowest requests
            self.report.censored_questions += 1
            raise
        errors, exceptions = await self._alerts(page)
        if errors or exceptions:
            self.report.errors.append(f"{label}: {errors or 'exception shown'}")
            return
        self.answered += 1
        latencies.append(seconds)
        (self.report.first_polled_s if first else self.report.later_polled_s).extend(noticed)
        await self._check_isolation(page, f"answer to {question!r}")

    # ----------------------------------------------------------------------------------------------
    # The session

    async def run(self) -> SessionReport:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        await context.add_init_script(script=PAGE_CLOCK)
        context.set_default_timeout(300_000)  # a loaded 2-core machine: 30 s (Playwright's default) is short
        context.set_default_navigation_timeout(300_000)
        page = await context.new_page()
        try:
            if await self._open(page):
                for upload in self.plan:
                    if time.monotonic() > self.deadline or self.report.requests >= self.args.max_requests:
                        break
                    if not await self._work_on(page, upload):
                        break
        finally:
            await context.close()
        return self.report

    async def _open(self, page) -> bool:
        self.answered = 0  # a fresh page is a new app session, with no questions yet
        try:
            await page.goto(self.url)
            await page.get_by_role("heading", name="Your document").wait_for(timeout=300_000)
        except Exception as error:  # noqa: BLE001 - counted; the session cannot go on
            self.report.errors.append(f"first visit: {type(error).__name__}: {str(error)[:200]}")
            return False
        return True

    async def _work_on(self, page, upload: Upload) -> bool:
        """Upload, ask, switch pages; False when the session must stop (the hard stop)."""
        self.action_timeout = upload.timeout_s or self.args.action_timeout
        try:
            ok = await self._upload(page, upload)
            if upload.name == "soak0-nist.pdf":
                self.report.upload_after_kill_ok = ok
            if not ok:
                return True
            for i, question in enumerate(upload.questions):
                if time.monotonic() > self.deadline:
                    break
                await self._ask(page, question, first=i == 0)
            if upload.questions and time.monotonic() < self.deadline:
                await self._goto_page(page, "Document")  # switch pages and look again
                await self._check_isolation(page, "document page")
        except RequestCutShort as cut:
            await self.cut_short(page, cut)
            if cut.at_hard_stop:
                return False
            return await self._open(page)  # a fresh page (a new script run) to go on with
        except Exception as error:  # noqa: BLE001 - a vanished element or the like: count it, go on
            self.report.errors.append(f"{upload.name}: {type(error).__name__}: {str(error)[:200]}")
        return True
