"""The app in a real browser: `streamlit run app.py` driven by headless Chromium through Playwright.

Needs the `playwright` Python package and a Chromium binary (Debian: `apt-get install chromium`);
`playwright install` is not needed and not used. Skips cleanly when either is missing.
A screenshot of the answered question is saved to artifacts/screenshots/ask.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.app_server import CHROMIUM, CHROMIUM_ARGS, ServerMessages, running_app
from bench.soak_session import NOT_RUNNING, POLL_MS

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
PAGES = [
    "Harbour notes\nThe old ferry crosses the bay twice a day.\nTickets are sold at the kiosk on the pier.",
    "Weather\nFog is common in the autumn months.\nThe lighthouse is painted red and white.",
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    """A streamlit server running app.py on a free port (stopped after the module's tests)."""
    with running_app(tmp_path_factory.mktemp("streamlit") / "server.log", healthy_within=90) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def ask_about_the_harbour(page, app_url: str, make_pdf) -> None:
    """Open the app, upload the 2-page harbour PDF, go to Ask and ask what colour the lighthouse is."""
    page.goto(app_url)
    page.get_by_role("heading", name="Your document").wait_for(timeout=60_000)
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "harbour.pdf", "mimeType": "application/pdf", "buffer": make_pdf(PAGES)}]
    )
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("2 pages", exact=False).wait_for(timeout=120_000)
    sidebar.get_by_role("link", name="Ask").click()
    question = page.get_by_label("Your question")
    question.wait_for(timeout=60_000)
    question.fill("What colour is the lighthouse?")
    page.get_by_role("button", name="Ask").click()


def test_upload_ask_and_see_the_answer(browser, app_url, make_pdf):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    messages = ServerMessages(page)
    ask_about_the_harbour(page, app_url, make_pdf)

    # Every column highlights its answer, the sentence on page 2. An error message ends the wait early.
    answers = page.locator("mark", has_text="red and white")
    alert = page.get_by_test_id("stAlertContainer")
    answers.first.or_(alert.first).wait_for(timeout=300_000)
    assert alert.count() == 0, alert.first.inner_text()
    answers.nth(2).wait_for(timeout=60_000)
    assert answers.count() == 3
    page.get_by_text("Questions asked in this session").wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "ask.png"), full_page=True)

    # A later question reruns and redraws only the question-and-answers fragment, not the sidebar.
    page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
    # The sidebar's reading progress reruns the page once more when the reading ends: let that pass first.
    page.wait_for_timeout(1500)
    page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
    messages.clear()
    page.get_by_label("Your question").fill("Where are tickets sold?")
    page.get_by_role("button", name="Ask").click()
    page.get_by_text("Question 2 of this session").wait_for(timeout=60_000)
    page.wait_for_function(NOT_RUNNING, polling=POLL_MS)
    assert messages.runs_ended() == ["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"]
    assert messages.deltas("main") > 0 and messages.deltas("sidebar") == 0
    assert page.locator("mark", has_text="kiosk").count() == 3
    page.close()


HOSTILE = (
    "Harbour notes. <script>window.__xss = 'script ran'</script> The ferry leaves at noon.\n\n"
    '<img src="x" onerror="window.__xss = \'onerror ran\'"> The lighthouse is painted red and white.\n'
)


def test_document_markup_never_runs_and_the_attention_page_draws(browser, app_url):
    """Script and onerror handlers inside a document are shown as text, never executed; the Attention
    page draws its plots for the same document (screenshot saved)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app_url)
    page.get_by_role("heading", name="Your document").wait_for(timeout=60_000)
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "hostile.txt", "mimeType": "text/plain", "buffer": HOSTILE.encode()}]
    )
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("hostile.txt", exact=False).wait_for(timeout=120_000)
    # The Document page shows the text, markup included, as plain text.
    page.get_by_text("window.__xss = 'script ran'", exact=False).first.wait_for(timeout=30_000)

    sidebar.get_by_role("link", name="Ask").click()
    question = page.get_by_label("Your question")
    question.wait_for(timeout=60_000)
    question.fill("What colour is the lighthouse?")
    page.get_by_role("button", name="Ask").click()
    page.locator("mark", has_text="red and white").first.wait_for(timeout=300_000)

    sidebar.get_by_role("link", name="Attention").click()
    page.get_by_role("heading", name="Attention: who reads whom").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot >> visible=true").nth(2).wait_for(
        timeout=300_000
    )  # pattern, per-token, band
    assert page.get_by_test_id("stException").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "attention.png"), full_page=True)
    # Streamlit scrolls inside its own container, so the per-token plot gets a screenshot of its own.
    page.locator(".js-plotly-plot >> visible=true").nth(1).screenshot(
        path=str(SCREENSHOTS / "attention_token.png")
    )

    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    page.close()


TWO_SESSIONS = [
    ("ferry.pdf", PAGES, "What colour is the lighthouse?", "red and white"),
    (
        "garden.pdf",
        [
            "Garden diary\nThe roses were planted in April.",
            "Tools\nThe wheelbarrow is kept in the green shed.",
        ],
        "Where is the wheelbarrow kept?",
        "green shed",
    ),
]


def test_two_browser_sessions_at_once_see_only_their_own_document(browser, app_url, make_pdf):
    """Two browser contexts (separate cookies: two users) upload different PDFs and ask at the same
    time; both finish, and each sees only its own document and answer. (That both use one cached model
    is checked in-process by test_concurrency.py, where loads can be counted.)"""
    pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in TWO_SESSIONS]
    for page in pages:
        page.goto(app_url)
    for page, (name, doc_pages, _, _) in zip(pages, TWO_SESSIONS):
        page.get_by_role("heading", name="Your document").wait_for(timeout=60_000)
        page.locator("input[type=file]").first.set_input_files(
            files=[{"name": name, "mimeType": "application/pdf", "buffer": make_pdf(doc_pages)}]
        )
    for page, (name, _, question, _) in zip(pages, TWO_SESSIONS):
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text(name, exact=False).wait_for(timeout=120_000)
        sidebar.get_by_role("link", name="Ask").click()
        page.get_by_label("Your question").wait_for(timeout=60_000)
        page.get_by_label("Your question").fill(question)
    for page in pages:  # both questions are in flight together
        page.get_by_role("button", name="Ask").click()

    for page, (name, _, _, expected) in zip(pages, TWO_SESSIONS):
        answers = page.locator("mark", has_text=expected)
        alert = page.get_by_test_id("stAlertContainer")
        answers.first.or_(alert.first).wait_for(timeout=300_000)
        assert alert.count() == 0, alert.first.inner_text()
        answers.nth(2).wait_for(timeout=120_000)
    for page, (name, _, _, _), (other, _, _, other_answer) in zip(pages, TWO_SESSIONS, TWO_SESSIONS[::-1]):
        body = page.locator("body").inner_text()
        assert name in body and other not in body
        assert other_answer not in body
        assert page.get_by_test_id("stException").count() == 0
        page.context.close()


def test_report_downloads_and_opens_offline_and_the_page_view_draws(browser, app_url, make_pdf, tmp_path):
    """Ask on a PDF, show the evidence (page view with the answer outlined), draw the Attention page, download
    the report, then open it in Chromium with the network off: the answers, the evidence strip and the
    Attention page's pattern figure are there (issue 20)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1400}, accept_downloads=True)
    ask_about_the_harbour(page, app_url, make_pdf)
    page.locator("mark", has_text="red and white").first.wait_for(timeout=300_000)
    page.get_by_role("button", name="Show the evidence").click()
    page.get_by_text("On the page").wait_for(timeout=300_000)
    page.get_by_test_id("stImage").first.wait_for(timeout=60_000)
    assert page.get_by_test_id("stException").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "ask_evidence_page_view.png"), full_page=True)
    # Streamlit scrolls inside its own container: the evidence strip and the page view get their own shots.
    strip = page.locator(".st-key-evidence_strip .js-plotly-plot")  # not the answers' reading bars above it
    strip.wait_for(timeout=60_000)
    strip.screenshot(path=str(SCREENSHOTS / "evidence_strip.png"))
    page.get_by_test_id("stImage").first.screenshot(path=str(SCREENSHOTS / "page_view.png"))

    # The Attention page's figures go into the report: draw them, then come back to download it.
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("link", name="Attention").click()
    page.get_by_role("heading", name="Attention: who reads whom").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot >> visible=true").nth(2).wait_for(timeout=300_000)  # pattern, token, band
    sidebar.get_by_role("link", name="Ask").click()
    report_button = page.get_by_role("button", name="Download report (HTML)")
    report_button.wait_for(timeout=120_000)
    with page.expect_download(timeout=60_000) as download:
        report_button.click()
    report = tmp_path / "report.html"
    download.value.save_as(report)  # Playwright deletes its own copy when the page closes
    page.close()

    context = browser.new_context(offline=True, viewport={"width": 1300, "height": 1400})
    offline = context.new_page()
    offline.goto(report.as_uri())
    offline.get_by_text("What colour is the lighthouse?", exact=False).first.wait_for(timeout=30_000)
    assert offline.get_by_text("red and white", exact=False).count() >= 1
    offline.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # plotly.js ran offline
    attention = offline.locator("h3:has-text('Attention: who can read whom') + div.figure .js-plotly-plot")
    attention.locator(".main-svg").first.wait_for(timeout=30_000)  # the Attention page's pattern, drawn
    offline.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    attention.screenshot(path=str(SCREENSHOTS / "report_attention.png"))
    context.close()
