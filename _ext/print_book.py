"""Print the built book to one PDF with the system Chromium: ``make pdf``.

Every page of the table of contents, in its order (read from the sidebar of the root page), is
opened in headless Chromium from a loopback server and left to render its math, diagrams and
widgets; its article is then moved into one document, which Chromium prints with the book's
print stylesheet (``_ext/static/lepton-presentation.css``). No browser is downloaded: Chromium
is found as in ``tests/browser/conftest.py`` (``LEPTON_CHROMIUM``, default /usr/bin/chromium).

    python _ext/print_book.py [_build/html] [_build/html/lepton-book.pdf]
"""
from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import time
from pathlib import Path

CHROMIUM = os.environ.get("LEPTON_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions"]
ROOT_PAGE = "book/intro.html"
WAIT_MS = 60_000

# The pages of the table of contents in order: the root, then the sidebar's links.
TOC_JS = """() => {
  const seen = new Set(), out = [];
  for (const a of document.querySelectorAll('nav.bd-docs-nav a.reference.internal')) {
    const url = a.href.split('#')[0];
    if (!seen.has(url)) { seen.add(url); out.push(url); }
  }
  return out;
}"""

# Wait for MathJax, mermaid and the widgets, then give every relative URL in the article its
# absolute form (the article moves to another page) and return it with the page's own styles
# (MathJax's and the widgets' are made at run time).
CAPTURE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const t0 = Date.now();
  while ([...document.querySelectorAll('pre.mermaid')].some(e => !e.querySelector('svg')) && Date.now() - t0 < 30000) {
    await new Promise(r => setTimeout(r, 100));
  }
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  article.querySelectorAll('[src]').forEach(e => e.setAttribute('src', e.src));
  article.querySelectorAll('a[href]').forEach(e => e.setAttribute('href', e.href));
  article.querySelectorAll('script').forEach(e => e.remove());
  const styles = [...document.querySelectorAll('head style')].map(s => s.textContent).join('\\n');
  return { html: article.innerHTML, styles };
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def print_book(html: Path, target: Path) -> int:
    """Print the book under ``html`` to ``target``; return the number of pages printed."""
    from playwright.sync_api import sync_playwright

    if not (html / ROOT_PAGE).is_file():
        raise FileNotFoundError(f"no built book at {html / ROOT_PAGE}: run `make book` first")
    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM}: set LEPTON_CHROMIUM or apt-get install chromium")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1000, "height": 1200})
            reader = context.new_page()
            reader.goto(base + ROOT_PAGE, wait_until="load")
            urls = [reader.url.split("#")[0]] + [u for u in reader.evaluate(TOC_JS) if u != reader.url.split("#")[0]]
            parts, styles = [], []
            for url in urls:
                reader.goto(url, wait_until="load")
                reader.wait_for_timeout(300)
                got = reader.evaluate(CAPTURE_JS)
                parts.append(got["html"])
                styles.append(got["styles"])
            book = context.new_page()
            book.goto(base + ROOT_PAGE, wait_until="load")
            book.evaluate(
                """([parts, styles]) => {
                  const style = document.createElement('style');
                  style.textContent = styles.join('\\n');
                  document.head.appendChild(style);
                  const article = document.querySelector('article.bd-article');
                  article.innerHTML = parts.map(h => '<section class="lepton-print-page">' + h + '</section>').join('');
                  document.querySelectorAll('script').forEach(s => s.remove());
                }""",
                [parts, list(dict.fromkeys(styles))],
            )
            book.wait_for_timeout(1000)
            target.parent.mkdir(parents=True, exist_ok=True)
            book.pdf(path=str(target), format="A4", print_background=True,
                     margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"})
            browser.close()
    finally:
        server.shutdown()
    return len(urls)


def main(argv: list[str]) -> int:
    html = Path(argv[1]) if len(argv) > 1 else Path("_build/html")
    target = Path(argv[2]) if len(argv) > 2 else html / "lepton-book.pdf"
    start = time.time()
    pages = print_book(html, target)
    print(f"{target}: {pages} pages of the book, {target.stat().st_size / 1e6:.1f} MB, {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
