"""Code cells fit the book's column (issue 19): no code line wider than its block at 1280 px.

``tools/format_notebooks.py`` formats every notebook's code cells to LINE_LENGTH characters
(``tests/test_notebook_format.py`` checks the sources). Here the built book is measured in
Chromium: on one page per chapter (the one with the most code cells), every code block of a
code cell (``div.cell_input pre``) must not scroll sideways (scrollWidth <= clientWidth), and a
failure names the page, the cell and the lines that overflow (every page passed when this was
written; CI measures a sample to keep the browser stage short). A second test ties LINE_LENGTH to
the theme: LINE_LENGTH characters of the code font must fit inside a code block's padding.
"""
from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from .conftest import HTML, ROOT, PageProbe

DESKTOP = {"width": 1280, "height": 900}


def _load_tool():
    spec = importlib.util.spec_from_file_location("format_notebooks_tool", ROOT / "tools" / "format_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
CELL_INPUT = re.compile(r'<div class="cell_input')


def _sample() -> list[str]:
    """Per folder of book/ (a chapter), the built page of a formatted notebook with the most code cells."""
    if not HTML.is_dir():
        return []
    best: dict[str, tuple[int, str]] = {}
    for nb in tool.notebooks():
        page = HTML / nb.relative_to(ROOT).with_suffix(".html")
        if not page.is_file():
            continue
        count = len(CELL_INPUT.findall(page.read_text(encoding="utf-8")))
        chapter = nb.parent.name
        if count and count > best.get(chapter, (0, ""))[0]:
            best[chapter] = (count, str(page.relative_to(HTML)))
    return sorted(page for _, page in best.values())


SAMPLE = _sample()

# For every code block of a code cell: its overflow, and the lines wider than the room inside its
# padding (each line measured in the block's own font).
WIDTH_JS = """() => [...document.querySelectorAll('div.cell_input pre')].map((pre, index) => {
  const style = getComputedStyle(pre);
  const room = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const probe = document.createElement('span');
  probe.style.whiteSpace = 'pre';
  const wide = [];
  if (pre.scrollWidth > pre.clientWidth) {
    pre.textContent.split('\\n').forEach((line, i) => {
      probe.textContent = line;
      pre.appendChild(probe);
      const w = probe.getBoundingClientRect().width;
      probe.remove();
      if (w > room) wide.push({ line: i + 1, px: Math.round(w), text: line.slice(0, 60) });
    });
  }
  return { index, scroll: pre.scrollWidth, client: pre.clientWidth, room: Math.round(room), wide };
})"""

# The room inside a code block's padding, and the width of one character of its font.
FONT_JS = """() => {
  const pre = document.querySelector('div.cell_input pre');
  const style = getComputedStyle(pre);
  const probe = document.createElement('span');
  probe.textContent = 'x'.repeat(100);
  pre.appendChild(probe);
  const char = probe.getBoundingClientRect().width / 100;
  probe.remove();
  return { room: pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight), char,
           font: style.fontFamily, size: style.fontSize };
}"""


def _open(browser, book_url: str, page: str) -> PageProbe:  # noqa: ANN001
    probe = PageProbe(browser, book_url)
    probe.page.set_viewport_size(DESKTOP)
    probe.page.goto(f"{book_url}/{page}", wait_until="load")
    probe.page.evaluate("() => document.fonts.ready.then(() => true)")
    return probe


def test_one_page_per_chapter_is_sampled() -> None:
    chapters = {p.split("/")[1] for p in SAMPLE}
    expected = {nb.parent.name for nb in tool.notebooks()}
    assert chapters == expected, f"sampled chapters {sorted(chapters)}, notebooks in {sorted(expected)}"


@pytest.mark.parametrize("page", SAMPLE)
def test_no_code_line_is_wider_than_its_block(page: str, browser, book_url: str) -> None:  # noqa: ANN001
    probe = _open(browser, book_url, page)
    try:
        blocks = probe.page.evaluate(WIDTH_JS)
    finally:
        probe.close()
    assert blocks, f"{page}: no code cell found (div.cell_input pre)"
    wide = [b for b in blocks if b["scroll"] > b["client"]]
    assert wide == [], f"{page}: {len(wide)} of {len(blocks)} code blocks scroll sideways at 1280 px: " + "; ".join(
        f"code cell {b['index'] + 1} ({b['scroll']} > {b['client']} px): "
        + ", ".join(f"line {w['line']} is {w['px']} px > {b['room']} px: {w['text']!r}" for w in b["wide"])
        for b in wide[:5]
    )


def test_line_length_fits_the_column(browser, book_url: str) -> None:  # noqa: ANN001
    """LINE_LENGTH characters of the code font fit inside a code block: a theme with a larger code
    font or a narrower column fails here before any page does."""
    assert SAMPLE, f"no built page with code cells in {HTML}"
    probe = _open(browser, book_url, SAMPLE[0])
    try:
        font = probe.page.evaluate(FONT_JS)
    finally:
        probe.close()
    fits = int(font["room"] // font["char"])
    assert fits >= tool.LINE_LENGTH, (
        f"a code block has {font['room']:.0f} px inside its padding, {fits} characters of "
        f"{font['size']} {font['font']!r} ({font['char']:.2f} px each), fewer than LINE_LENGTH = "
        f"{tool.LINE_LENGTH} in tools/format_notebooks.py"
    )
