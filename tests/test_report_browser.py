"""reports/report.html in a real headless browser: sections and images there, no errors, a screenshot saved."""

import shutil

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = ROOT / "reports" / "screenshots" / "report.png"


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs it: apt-get install chromium)")
    report = ROOT / "reports" / "report.html"
    if not report.exists():
        pytest.fail("reports/report.html is missing: run `make repro` (make test does it first)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        page.problems, page.requests = problems, requests
        yield page
        browser.close()


def test_page_loads_without_errors_or_network(page):
    assert page.problems == []
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests


def test_sections_are_there(page):
    for section in ("#headline", "#label-candidacy", "#label-police_warning", "#real", "#challenge", "#data",
                    "#reading"):
        assert page.locator(section).count() == 1, section
    assert page.locator("table.headline tr").count() == 1 + 2 * 2  # header + model and keyword per label
    assert page.locator("table.thresholds").count() == 2
    assert page.locator("table.errors").count() + page.get_by_text("No mistakes on the test split").count() == 2


def test_every_image_is_inline_and_rendered(page):
    images = page.locator("img")
    assert images.count() == 8  # four charts per label
    for i in range(images.count()):
        image = images.nth(i)
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")


def test_chinese_text_renders_and_a_screenshot_is_saved(page):
    # Chinese is HTML text, so it renders with the reader's CJK font; measure that a glyph has width.
    width = page.evaluate("""() => { const s = document.createElement('span'); s.textContent = '喝茶';
        document.body.appendChild(s); const w = s.getBoundingClientRect().width; s.remove(); return w; }""")
    assert width > 10
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000
