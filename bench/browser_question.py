"""One person in a browser asks about a few short documents: how long a question takes, and what the page costs.

Starts a real `streamlit run app.py` server and one headless Chromium page on the same machine (as
bench/soak.py does, without the other sessions), uploads `--docs` HotpotQA contexts from the shared data one
after the other, and asks each its own question and three more. Per question it measures, on the page's own
clock (bench/soak_session.py's `PAGE_CLOCK`): from the click on Ask to the moment the answers were in the page
and no run was going; and how many seconds the page's main thread was busy meanwhile (Chromium's
`TaskDuration`: scripts, style, layout, for the answers to appear). The server inherits the environment, so
two runs compare settings the app reads at start, e.g. `OMP_WAIT_POLICY` (the app sets PASSIVE unless told).

Prints the median and range of the later questions' latency, of the page's busy time and of what the server sent
the page over its websocket (kB), how the server's script runs for later questions ended (a full run of the page
or a run of one fragment), the first questions' latency, and the machine.

Usage (repository root; ~1 minute on 2 cores, a quiet machine):
    .venv/bin/python bench/browser_question.py --json
    OMP_WAIT_POLICY=spin .venv/bin/python bench/browser_question.py --json   # OpenMP's default (an unknown value)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from bench.app_server import CHROMIUM, CHROMIUM_ARGS, ServerMessages, running_app  # after the sys.path line
from bench.soak_session import ANSWERED_AFTER_CLICK, NOT_RUNNING, PAGE_CLOCK, POLL_MS
from longformer_core import settings
from longformer_core.machine import machine_info

HOTPOT = settings.data_dir() / "hotpotqa" / "hotpotqa-dev-distractor.squad.json"
MORE_QUESTIONS = ["What is this about?", "Who is mentioned first?", "When did it happen?"]


async def busy_s(cdp) -> float:
    """Seconds the page's main thread has been busy so far."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


async def ask(page, cdp, messages: ServerMessages, question: str, number: int) -> tuple[float, float]:
    """Ask and wait for the answers; (seconds on the page's clock, seconds the page was busy)."""
    await page.get_by_label("Your question").fill(question)
    before = await busy_s(cdp)
    messages.clear()
    await page.get_by_role("button", name="Ask").click()
    await page.get_by_text(f"Question {number} of this session", exact=False).first.wait_for()
    await page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
    seconds = await page.evaluate(ANSWERED_AFTER_CLICK, number)
    if seconds is None:
        raise RuntimeError(f"question {number}: the page did not see its answers appear after the click")
    await asyncio.sleep(0.5)  # what the page still draws after the run ended
    return seconds, await busy_s(cdp) - before


async def session(url: str, documents: list[dict]) -> tuple[dict[str, list[float]], dict[str, int]]:
    from playwright.async_api import async_playwright

    out: dict[str, list[float]] = {
        "first_s": [],
        "later_s": [],
        "later_page_busy_s": [],
        "later_kb_received": [],
    }
    runs: dict[str, int] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(300_000)
        await context.add_init_script(script=PAGE_CLOCK)
        page = await context.new_page()
        messages = ServerMessages(page)
        cdp = await context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        await page.goto(url)
        await page.get_by_role("heading", name="Your document").wait_for()
        number = 0
        for i, article in enumerate(documents):
            paragraph = article["paragraphs"][0]
            name = f"browser{i}.txt"
            upload = {"name": name, "mimeType": "text/plain", "buffer": paragraph["context"].encode()}
            await page.locator("input[type=file]").first.set_input_files(files=[upload])
            await page.get_by_test_id("stSidebar").get_by_text(name, exact=False).wait_for()
            await page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
            await page.get_by_test_id("stSidebar").get_by_role("link", name="Ask").click()
            await page.get_by_label("Your question").wait_for()
            await page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
            for k, question in enumerate([paragraph["qas"][0]["question"], *MORE_QUESTIONS]):
                number += 1
                seconds, busy = await ask(page, cdp, messages, question, number)
                if k == 0:
                    out["first_s"].append(seconds)
                else:
                    out["later_s"].append(seconds)
                    out["later_page_busy_s"].append(busy)
                    out["later_kb_received"].append(messages.bytes / 1000)
                    for ended in messages.runs_ended():
                        runs[ended] = runs.get(ended, 0) + 1
            await page.get_by_test_id("stSidebar").get_by_role("link", name="Document").click()
            await page.get_by_role("heading", name="Your document").wait_for()
        await browser.close()
    return out, runs


def spread(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=3, help="HotpotQA contexts, each asked 4 questions")
    parser.add_argument("--json", nargs="?", const="-", help="print JSON (or write it to this file)")
    args = parser.parse_args()
    if not HOTPOT.exists():
        raise SystemExit(f"{HOTPOT} is missing: set LONGDOC_DATA_DIR to the shared data")
    documents = json.loads(HOTPOT.read_text())["data"][: args.docs]
    info = machine_info()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp) / "server.log") as server:
        found, runs = asyncio.run(session(server.url, documents))
    report = {
        "command": "bench/browser_question.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(the app's: PASSIVE)"),
        "wall_s": round(time.monotonic() - started, 1),
        **{key: spread(values) for key, values in found.items()},
        "later_runs_ended": runs,
    }
    text = json.dumps(report, indent=2)
    if args.json and args.json != "-":
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
