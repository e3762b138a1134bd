"""The built book, opened in headless Chromium with the network cut off.

Every page must load without console errors or failed requests, with all math
typeset by MathJax, every mermaid diagram drawn as SVG, every stored widget
shown and every image loaded. One page per chapter is saved as a screenshot
in _build/screenshots/ (a CI artefact).
"""
from __future__ import annotations

import json
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from .conftest import HTML, ROOT, SCREENSHOTS, PageProbe

SKIP = {"genindex.html", "search.html", "index.html"}  # index.html only redirects to the first page
PAGES = sorted(
    str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
    if not p.relative_to(HTML).parts[0].startswith("_") and str(p.relative_to(HTML)) not in SKIP
) if HTML.is_dir() else []
TOTALS: Counter = Counter()

WAIT_MS = 60_000


def _screenshot_name(page: str) -> str | None:
    """One screenshot per chapter: the first content page of each folder under book/."""
    parts = Path(page).parts
    folder_pages = sorted(p for p in PAGES if Path(p).parent == Path(page).parent and not p.endswith("index.html"))
    if len(parts) >= 2 and folder_pages and folder_pages[0] == page:
        return "-".join(parts[1:-1] or ("book",)) + ".png"
    if page == "book/intro.html":
        return "intro.png"
    return None


def render(probe: PageProbe, url: str) -> dict:
    """Load a page, wait for MathJax, mermaid and the widget manager, and count what rendered."""
    page = probe.page
    page.goto(url, wait_until="load")
    if page.locator(".math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=WAIT_MS)
        page.evaluate("() => MathJax.startup.promise.then(() => true)")
    page.wait_for_function(
        "() => [...document.querySelectorAll('pre.mermaid')].every(e => e.querySelector('svg'))", timeout=WAIT_MS
    )
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if views:
        page.wait_for_function(
            "n => document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox,"
            " .jupyter-widgets.widget-inline-vbox, .jupyter-widgets.widget-box, .jupyter-widgets.widget-output,"
            " .jupyter-widgets.widget-image, .jupyter-widgets.widget-html, .jupyter-widgets.widget-label').length >= n",
            arg=views, timeout=WAIT_MS,
        )
    probe.wait_until_quiet()
    return page.evaluate(
        """() => {
        const maths = [...document.querySelectorAll('span.math, div.math')];
        const untypeset = maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80));
        const mermaids = [...document.querySelectorAll('pre.mermaid')];
        const imgs = [...document.querySelectorAll('article img')];
        const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
        // Raw TeX delimiters left in prose (code cells may legitimately show them).
        const prose = [...document.querySelectorAll('article p, article li, article td')]
          .filter(e => !e.closest('pre, code, .highlight, .cell_output'));
        const rawTex = prose.map(e => e.textContent).filter(t => /\\$\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/.test(t));
        return {
          formulas: maths.length, untypeset,
          diagrams: mermaids.length, undrawn: mermaids.filter(m => !m.querySelector('svg')).length,
          widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
          images: imgs.length, broken, rawTex: rawTex.slice(0, 3),
        };
    }"""
    )


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(page: str, probe: PageProbe, book_url: str) -> None:
    found = render(probe, f"{book_url}/{page}")
    assert probe.blocked_requests == [], f"{page} tried to reach the network: {probe.blocked_requests[:5]}"
    assert probe.failed_requests == [], f"{page} had failed requests: {probe.failed_requests[:5]}"
    assert probe.console_errors == [], f"{page} logged errors: {probe.console_errors[:5]}"
    assert found["untypeset"] == [], f"{page}: math not typeset by MathJax: {found['untypeset'][:3]}"
    assert found["rawTex"] == [], f"{page}: raw TeX left in the text: {found['rawTex']}"
    assert found["undrawn"] == 0, f"{page}: {found['undrawn']} mermaid diagram(s) not drawn"
    assert found["broken"] == [], f"{page}: images that did not load: {found['broken']}"
    TOTALS.update(pages=1, formulas=found["formulas"], diagrams=found["diagrams"], widgets=found["widgets"],
                  images=found["images"])
    name = _screenshot_name(page)
    if name:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        probe.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_no_page_carries_thebe() -> None:
    """Thebe ("Live Code") loads from a CDN and runs code on a Binder kernel, so offline it hung on
    "Loading thebe from CDN..."; the book leaves it out (_ext/lepton_no_thebe.py). No page may carry
    its button, its scripts, its configuration or its CDN's address."""
    pages = sorted(HTML.rglob("*.html"))
    assert pages, f"no built pages under {HTML}"
    found = {}
    for path in pages:
        text = path.read_text(encoding="utf-8").lower()
        marks = [m for m in ("thebe", "unpkg.com") if m in text]
        if marks:
            found[str(path.relative_to(HTML))] = marks
    assert found == {}, f"pages that still carry Thebe (page: what was found): {dict(list(found.items())[:5])}"


def test_search_finds_a_known_term(probe: PageProbe, book_url: str) -> None:
    page = probe.page
    page.goto(f"{book_url}/search.html?q=backpropagation", wait_until="load")
    page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0", timeout=WAIT_MS)
    titles = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.textContent)")
    assert any("Backpropagation" in t for t in titles), titles
    assert probe.blocked_requests == [] and probe.console_errors == []


def test_dark_light_switch(probe: PageProbe, book_url: str) -> None:
    page = probe.page
    page.goto(f"{book_url}/book/intro.html", wait_until="load")
    before = page.evaluate("() => document.documentElement.dataset.theme")
    button = page.locator("button.theme-switch-button").first
    seen = {before}
    for _ in range(3):  # the switch cycles auto → light/dark → ...
        button.click()
        seen.add(page.evaluate("() => document.documentElement.dataset.theme"))
    assert {"light", "dark"} <= seen, seen
    assert probe.console_errors == []


def test_zip_works_from_disk(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """`make zip`'s archive, unpacked and opened from file://, still renders math and diagrams."""
    archive = ROOT / "_build" / "lepton-book-html.zip"
    subprocess.run(["make", "-s", "zip"], cwd=ROOT, check=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path)
    page_path = tmp_path / "html" / "book" / "foundations" / "neurons.html"
    probe = PageProbe(browser, "file://")
    try:
        found = render(probe, page_path.as_uri())
        assert probe.blocked_requests == [] and probe.console_errors == [], (probe.blocked_requests, probe.console_errors)
        assert found["formulas"] > 0 and found["untypeset"] == []
        assert found["diagrams"] > 0 and found["undrawn"] == 0
    finally:
        probe.close()


def test_zz_report_totals() -> None:
    """Print (and save) what the page tests checked; runs last by name."""
    if not TOTALS:
        pytest.skip("no page was checked")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "summary.json").write_text(json.dumps(dict(TOTALS), indent=2))
    print("browser check totals:", dict(TOTALS))
