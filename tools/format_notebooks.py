"""Format the code cells of the book's notebooks to the width of the book's code column.

    python tools/format_notebooks.py            # format every notebook under book/ in place
    python tools/format_notebooks.py --check    # list what is not formatted; exit 1 if anything
    python tools/format_notebooks.py book/gnn/gcn.ipynb   # some notebooks only (EXCLUDE too)

The built book shows code in a 688 px column (1280 px window): 652 px inside the code block's
padding, where the theme's 14 px monospace font (8.43 px a character in DejaVu Sans Mono, about
0.6 em as in Menlo and Source Code Pro) fits 77 characters. LINE_LENGTH is that width. A cell
tagged hide-input shows its code, once opened, in a box 18 px narrower: 75 characters
(HIDDEN_INPUT_LINE_LENGTH). ``tests/browser/test_code_width.py`` checks in the built book that
no code line is wider than its block.

Each code cell is formatted by ``ruff format`` (its notebook mode, which keeps IPython magics such
as ``%pip`` and ``%%time`` as they are). Only cell sources change: outputs, execution counts, tags
and metadata are left untouched, so formatting never calls for re-executing a notebook. A cell
whose code would mean something else after formatting (its syntax tree, magics aside, differs) is
refused and reported, not written.

``--check`` lists every cell that ``ruff format`` would change and every line longer than
LINE_LENGTH in a cell the book shows (one not tagged remove-cell or remove-input, as the Colab
install cell is, whose ``%pip`` line cannot be split). Comments, strings and docstrings count
too: the formatter does not split them, so a long comment is rewrapped and a long string split
into adjacent literals (``"ab"`` as ``"a" "b"``, the same syntax tree) by hand.
``tests/test_notebook_format.py`` runs the check in ``make test``.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import io
import subprocess
import sys
import textwrap
import tokenize
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
LINE_LENGTH = 77
HIDDEN_INPUT_LINE_LENGTH = 75  # a hide-input cell's code, in its collapsible box
# Notebooks left out of formatting (each named here needs hand-shortened lines first); none now.
EXCLUDE: set[str] = set()
RUFF = [sys.executable, "-m", "ruff", "format", "--isolated"]
# Cells the built book does not show (myst-nb tags): formatted, but not held to the column width.
HIDDEN_TAGS = {"remove-cell", "remove-input"}
# An IPython line magic, shell escape or help request: ruff keeps them; ast cannot parse them.
MAGIC_LINE = re.compile(r"^(\s*)(?:%|!|\?).*$")


@dataclass
class Problem:
    """One thing ``--check`` (or formatting) found in one cell."""

    notebook: str
    cell: int  # index among the notebook's cells, from 0
    message: str

    def __str__(self) -> str:
        return f"{self.notebook}: cell {self.cell}: {self.message}"


def notebooks(paths: list[str] | None = None) -> list[Path]:
    """The notebooks to format: ``paths`` (files or folders), or every notebook under book/,
    less EXCLUDE and Jupyter's checkpoints."""
    roots = [Path(p).resolve() for p in paths] if paths else [BOOK]
    found: set[Path] = set()
    named: set[Path] = set()  # notebooks named one by one are formatted even if excluded
    for root in roots:
        if not root.exists():
            raise ValueError(f"paths: {root} does not exist; expected notebooks or folders holding them")
        if root.is_file():
            named.add(root)
        found.update([root] if root.is_file() else root.rglob("*.ipynb"))
    return sorted(
        p for p in found
        if p.suffix == ".ipynb" and ".ipynb_checkpoints" not in p.parts and (p in named or _rel(p) not in EXCLUDE)
    )


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


def source_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_tree(source: str) -> str | None:
    """The syntax tree of a cell's code as text, magics replaced by ``pass`` (a cell magic's
    first line dropped); None when the code does not parse."""
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        lines = lines[1:]
    lines = [MAGIC_LINE.sub(r"\1pass", line) for line in lines]
    try:
        return ast.dump(ast.parse("\n".join(lines)))
    except SyntaxError:
        return None


def display_width(line: str) -> int:
    """Columns a line takes in a monospace font (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def long_lines(source: str, limit: int = LINE_LENGTH) -> list[tuple[int, int]]:
    """(line number from 1, width) of every line wider than ``limit``."""
    return [(i, w) for i, line in enumerate(source.splitlines(), 1) if (w := display_width(line)) > limit]


def line_length(cell: dict) -> int:
    """The width a code cell's lines must fit: narrower in a hide-input cell's box."""
    return HIDDEN_INPUT_LINE_LENGTH if "hide-input" in cell.get("metadata", {}).get("tags", []) else LINE_LENGTH


CLOSING_LINE = re.compile(r"^\s*[)\]}]")  # a line that starts by closing a bracket


def hoist_wrapped_comments(source: str, length: int = LINE_LENGTH) -> str:
    """Move a comment that ends a statement split over several lines (``)  # why``: ruff wraps a
    line that only a trailing comment made too long) onto its own lines above the statement,
    wrapped to ``length``, so that ruff can join the statement again. Cells with magics, or that
    do not parse, are returned unchanged; the syntax tree never changes (comments are not in it)."""
    if any(MAGIC_LINE.match(line) for line in source.splitlines()):
        return source
    try:
        tree = ast.parse(source)
        comments = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    except (SyntaxError, tokenize.TokenError):
        return source
    lines = source.splitlines()
    ends: dict[int, ast.stmt] = {}  # last line -> the innermost statement ending there
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.end_lineno is not None:
            if node.end_lineno not in ends or node.lineno > ends[node.end_lineno].lineno:
                ends[node.end_lineno] = node
    for comment in sorted(comments, key=lambda t: -t.start[0]):  # bottom-up keeps line numbers valid
        row, col = comment.start
        statement = ends.get(row)
        line = lines[row - 1]
        if statement is None or statement.lineno == row or not CLOSING_LINE.match(line) or not line[:col].strip():
            continue
        indent = " " * statement.col_offset
        text = comment.string.lstrip("#").strip()
        wrapped = textwrap.wrap(text, width=max(20, length - len(indent) - 2)) or [""]
        lines[row - 1] = line[:col].rstrip()
        lines[statement.lineno - 1:statement.lineno - 1] = [f"{indent}# {part}" for part in wrapped]
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def ruff_format(sources: list[str], length: int = LINE_LENGTH) -> list[str]:
    """Every source formatted by ruff at line length ``length``, in one call (a notebook holding
    them as code cells)."""
    if not sources:
        return []
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
                   "outputs": [], "source": s} for i, s in enumerate(sources)],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    run = subprocess.run([*RUFF, "--line-length", str(length), "--stdin-filename", "cells.ipynb", "-"],
                         input=json.dumps(nb),
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"ruff format failed (exit {run.returncode}): {run.stderr.strip()[:2000]}")
    return [source_text(c) for c in json.loads(run.stdout)["cells"]]


def _code_cells(nb: dict) -> list[int]:
    return [i for i, c in enumerate(nb.get("cells", [])) if c.get("cell_type") == "code"]


def format_notebook(path: Path, write: bool) -> tuple[int, list[Problem]]:
    """Format one notebook's code cells (in place when ``write``). Returns the number of cells
    that formatting changes (or would change) and the problems left: cells refused because their
    syntax tree would change, cells ``ruff`` leaves unparsed, lines wider than LINE_LENGTH."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    name = _rel(path)
    index = _code_cells(nb)
    before = [source_text(nb["cells"][i]) for i in index]
    lengths = [line_length(nb["cells"][i]) for i in index]
    after = list(before)
    for length in set(lengths):
        group = [k for k, n in enumerate(lengths) if n == length]
        for k, text in zip(group, ruff_format([before[k] for k in group], length)):
            after[k] = text
        # comments that made ruff wrap a statement go above it; ruff then joins the statement again
        hoisted = {k: hoist_wrapped_comments(after[k], length) for k in group}
        again = [k for k in group if hoisted[k] != after[k]]
        for k, text in zip(again, ruff_format([hoisted[k] for k in again], length)):
            after[k] = text
    changed, problems = 0, []
    for i, old, new, length in zip(index, before, after, lengths):
        text = old
        if new != old:
            tree = code_tree(old)
            if tree is None:
                problems.append(Problem(name, i, "does not parse as Python (magics aside); not formatted"))
            elif code_tree(new) != tree:
                problems.append(Problem(name, i, "formatting would change its syntax tree; refused"))
            else:
                changed += 1
                text = new
                if write:
                    nb["cells"][i]["source"] = new.splitlines(keepends=True)
                else:
                    problems.append(Problem(name, i, "not formatted (run tools/format_notebooks.py)"))
        if HIDDEN_TAGS & set(nb["cells"][i].get("metadata", {}).get("tags", [])):
            continue
        for line, width in long_lines(text, length):
            problems.append(Problem(name, i, f"line {line} is {width} characters, over {length}: "
                                    f"{text.splitlines()[line - 1].strip()[:60]!r}"))
    if write and changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="notebooks or folders (default: every notebook under book/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is not formatted")
    args = parser.parse_args(argv)
    total, problems = 0, []
    paths = notebooks(args.paths)
    for path in paths:
        changed, found = format_notebook(path, write=not args.check)
        total += changed
        problems += found
    for problem in problems:
        print(problem)
    verb = "would change" if args.check else "changed"
    print(f"{len(paths)} notebooks, {total} code cells {verb}, {len(problems)} problem(s); "
          f"line length {LINE_LENGTH}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
