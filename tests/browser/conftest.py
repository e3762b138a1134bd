"""Fixtures that serve the built book on loopback and drive it in headless Chromium.

The browser may only talk to the loopback server: every other request is
aborted and recorded, so a page that needs the internet fails its test.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("LEPTON_CHROMIUM", "/usr/bin/chromium")
# Flags that keep Chromium from reaching for Google's services on start.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--no-pings",
]


def _browser_missing_reason() -> str | None:
    if not (HTML / "index.html").is_file():
        return f"no built book at {HTML}: run `make html-strict` first"
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        return f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("LEPTON_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"browser tests required (LEPTON_REQUIRE_BROWSER is set) but {reason}")
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def book_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProbe:
    """A page plus everything that went wrong while it loaded."""

    def __init__(self, browser, allowed_prefix: str) -> None:  # noqa: ANN001
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.blocked_requests: list[str] = []

        def route(r) -> None:  # noqa: ANN001
            if r.request.url.startswith(allowed_prefix):
                r.continue_()
            else:
                self.blocked_requests.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.pending: set[str] = set()
        self.page.on("request", lambda r: self.pending.add(r.url))
        self.page.on("requestfinished", lambda r: self.pending.discard(r.url))
        self.page.on("requestfailed", lambda r: (self.pending.discard(r.url), self.failed_requests.append(r.url)))
        self.page.on("response", lambda r: self.failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def wait_until_quiet(self, quiet_ms: int = 500, timeout_ms: int = 30_000) -> None:
        """Wait until no request has been in flight for ``quiet_ms`` (Playwright's own
        "networkidle" never fired on some pages although every request had finished)."""
        quiet = waited = 0
        while quiet < quiet_ms:
            if waited > timeout_ms:
                raise AssertionError(f"requests still in flight after {timeout_ms} ms: {sorted(self.pending)[:5]}")
            self.page.wait_for_timeout(100)
            waited += 100
            quiet = quiet + 100 if not self.pending else 0

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def probe(browser, book_url: str):  # noqa: ANN001
    p = PageProbe(browser, book_url)
    yield p
    p.close()
