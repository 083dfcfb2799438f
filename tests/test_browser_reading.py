"""Reading in the background, seen in a real browser (issue 16): `streamlit run app.py` + headless Chromium.

After a document is chosen, the Ask page's sidebar shows one progress bar per reading step; a question
asked while the document is still being read gets each column's answer as soon as that column's view is
read, so the first column (the truncated model, which reads its 512 tokens per question) answers while the
Longformer column still shows its preliminary answer. Screenshots go to artifacts/screenshots/.

Reuses test_browser's server and browser fixtures (skips the same way without Playwright or Chromium).
"""

from __future__ import annotations

import time

import pytest
from test_browser import SCREENSHOTS, app_url, browser  # noqa: F401 - fixtures, used by name

from ui.columns import PRELIMINARY_CAPTION
from ui.render import VIEW_TITLES

pytestmark = pytest.mark.browser

FACT = "The lighthouse at the end of the pier is painted red and white."
QUESTION = "What colour is the lighthouse?"
N_PAGES = 60  # ~30k tokens: the Longformer column needs several seconds of reading, even on a quiet machine


def _pages() -> list[str]:
    """A long document whose answer is on its last page (distinct filler, so nothing else matches)."""
    filler = [
        f"Section {i}. The harbour office keeps records of ship number {i} and its cargo of {i * 3} crates. "
        f"Crews of the {i}th convoy unload timber, grain and wool before the tide turns at {i % 12} o'clock. "
        * 6
        for i in range(N_PAGES - 1)
    ]
    return [*filler, f"Last notes. {FACT} Visitors climb it on Sundays."]


def _column(page, view: str):
    """The Ask page's bordered column of one view (found by its heading, not by position)."""
    heading = page.get_by_role("heading", name=VIEW_TITLES[view], exact=True)
    return page.get_by_test_id("stColumn").filter(has=heading).last


def _state(page, view: str) -> str:
    """'final', 'preliminary' or 'empty' for one column, from its text."""
    text = _column(page, view).inner_text(timeout=5_000)
    if PRELIMINARY_CAPTION.split(":")[0] in text:
        return "preliminary"
    return "final" if "Took " in text else "empty"


def _upload_long_pdf_and_ask(browser, app_url: str, make_pdf, name: str):  # noqa: F811 - fixtures passed in
    """A new page with the long PDF uploaded and the Ask page opened (its reading starts): (page, sidebar)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(app_url)
    page.get_by_role("heading", name="Your document").wait_for(timeout=60_000)
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": name, "mimeType": "application/pdf", "buffer": make_pdf(_pages())}]
    )
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(f"{N_PAGES} pages", exact=False).wait_for(timeout=120_000)
    sidebar.get_by_role("link", name="Ask").click()
    return page, sidebar


def test_sidebar_shows_reading_progress_and_first_column_answers_before_the_last(
    browser,  # noqa: F811 - the imported fixture
    app_url,  # noqa: F811
    make_pdf,
):
    page, sidebar = _upload_long_pdf_and_ask(browser, app_url, make_pdf, "harbour-long.pdf")

    # The reading starts when the document is there: one progress bar per step, in the sidebar.
    progress = sidebar.locator(".st-key-reading_progress")
    progress.wait_for(timeout=120_000)
    assert "Reading the document for questions" in progress.inner_text()
    bars = progress.get_by_test_id("stProgress")
    bars.first.wait_for(timeout=30_000)
    assert bars.count() == 3  # passages, chunked, Longformer (the truncated view reads per question)
    assert "Longformer" in progress.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reading-progress.png"), full_page=True)

    question = page.get_by_label("Your question")
    question.fill(QUESTION)
    page.get_by_role("button", name="Ask").click()

    # Watch the columns: the truncated one must be final while the Longformer one is still preliminary.
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert page.get_by_test_id("stException").count() == 0
        states = (_state(page, "truncated"), _state(page, "longformer"))
        if not seen or seen[-1] != states:
            seen.append(states)
            if states == ("final", "preliminary"):
                page.screenshot(path=str(SCREENSHOTS / "reading-first-column-first.png"), full_page=True)
        if states[1] == "final":
            break
        time.sleep(0.2)
    assert ("final", "preliminary") in seen, f"column states seen (truncated, longformer): {seen}"
    assert seen[-1] == ("final", "final"), f"the Longformer column never answered: {seen}"
    # Once read, the Longformer column finds the answer on the last page, and the sidebar says it is done.
    _column(page, "longformer").locator("mark", has_text="red and white").first.wait_for(timeout=30_000)
    progress.get_by_text("(done)", exact=False).wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "reading-all-columns.png"), full_page=True)
    page.close()


SCRIPT_STATE = (
    "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
)


def test_leaving_the_ask_page_while_reading_does_not_leave_the_app_running(
    browser,  # noqa: F811 - the imported fixture
    app_url,  # noqa: F811
    make_pdf,
):
    """The sidebar's reading progress refreshes itself every second on the Ask page; after switching to
    another page while the reading goes on, the app must settle (not show 'Running...' for ever)."""
    page, sidebar = _upload_long_pdf_and_ask(browser, app_url, make_pdf, "harbour-leave.pdf")
    sidebar.locator(".st-key-reading_progress").get_by_test_id("stProgress").first.wait_for(timeout=120_000)
    time.sleep(2.5)  # a few refreshes of the progress
    sidebar.get_by_role("link", name="Document").click()
    page.get_by_role("heading", name="Your document").wait_for(timeout=60_000)
    states = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states.append(page.evaluate(SCRIPT_STATE))
        if states[-1] != "running" and len(states) > 5 and "running" not in states[-5:]:
            break
        time.sleep(0.5)
    assert "running" not in states[-5:], f"script state after leaving the Ask page: {states}"
    assert page.get_by_test_id("stException").count() == 0
    page.close()
