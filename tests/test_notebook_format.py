"""Code cells are formatted to the book's code column (issue 19), by ``tools/format_notebooks.py``.

* Every notebook under book/ (less the tool's EXCLUDE) is as ``ruff format`` leaves it at
  LINE_LENGTH, and no line of a cell the book shows is wider than LINE_LENGTH, comments and
  strings included (what ``python tools/format_notebooks.py --check`` reports). No kernel runs.
* The tool itself, on small notebooks: it finds an unformatted cell and a long line, formats
  code while leaving magics, outputs, execution counts, tags and metadata as they were, does not
  hold hidden cells to the width (a hide-input cell to a narrower one), and refuses a cell whose syntax tree formatting would change.

The built book's side (no code line scrolls in its block) is tests/browser/test_code_width.py.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("format_notebooks_tool", ROOT / "tools" / "format_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _notebook(path: Path, cells: list[dict]) -> Path:
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _code(source: str, tags: list[str] | None = None, outputs: list | None = None) -> dict:
    return {"cell_type": "code", "execution_count": 3, "id": "a1", "metadata": {"tags": tags or []},
            "outputs": outputs or [], "source": source.splitlines(keepends=True)}


def test_every_notebook_is_formatted_to_the_column() -> None:
    problems = []
    paths = tool.notebooks()
    assert len(paths) > 40, f"expected the book's notebooks under {tool.BOOK}, found {len(paths)}"
    for path in paths:
        problems += tool.format_notebook(path, write=False)[1]
    assert problems == [], (
        f"{len(problems)} problem(s); run `python tools/format_notebooks.py`, then shorten by hand what "
        f"it cannot (comments, strings, docstrings):\n" + "\n".join(map(str, problems[:30]))
    )


def test_excluded_notebooks_exist() -> None:
    """An exclusion must not outlive its notebook."""
    missing = [p for p in tool.EXCLUDE if not (ROOT / p).is_file()]
    assert missing == [], f"EXCLUDE names notebooks that do not exist: {missing}"


def test_check_finds_an_unformatted_cell_and_a_long_line(tmp_path: Path) -> None:
    long_comment = "# " + "word " * 20
    path = _notebook(tmp_path / "bad.ipynb", [_code("x=1\n"), _code(f"y = 2\n{long_comment.strip()}")])
    before = path.read_text(encoding="utf-8")
    changed, problems = tool.format_notebook(path, write=False)
    assert changed == 1
    messages = [str(p) for p in problems]
    assert any("cell 0: not formatted" in m for m in messages), messages
    assert any("cell 1: line 2 is 101 characters, over 77" in m for m in messages), messages
    assert path.read_text(encoding="utf-8") == before, "--check must not write"
    assert tool.main(["--check", str(path)]) == 1


def test_format_keeps_magics_outputs_tags_and_metadata(tmp_path: Path) -> None:
    outputs = [{"name": "stdout", "output_type": "stream", "text": ["1\n"]}]
    cells = [
        _code('import sys\nif "google.colab" in sys.modules:\n    %pip install -q "lepton_lib[book]"',
              tags=["remove-cell"]),
        _code("%%time\nx = {'a':1}\nprint( x['a'] )", tags=["hide-input"], outputs=outputs),
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["x=1  # not code\n"]},
    ]
    path = _notebook(tmp_path / "nb.ipynb", copy.deepcopy(cells))
    changed, problems = tool.format_notebook(path, write=True)
    assert (changed, problems) == (2, [])
    after = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert "".join(after[0]["source"]).endswith('    %pip install -q "lepton_lib[book]"')
    assert "".join(after[1]["source"]) == '%%time\nx = {"a": 1}\nprint(x["a"])'
    for old, new in zip(cells, after):
        assert {k: v for k, v in old.items() if k != "source"} == {k: v for k, v in new.items() if k != "source"}
    assert after[2]["source"] == cells[2]["source"]
    assert tool.format_notebook(path, write=False) == (0, [])


def test_hidden_cells_are_not_held_to_the_width(tmp_path: Path) -> None:
    """remove-cell and remove-input cells are not shown; a hide-input cell's box is narrower."""
    long_line, line_76 = "# " + "x" * 100, "# " + "x" * 74
    path = _notebook(tmp_path / "nb.ipynb", [_code(long_line, tags=["remove-cell"]),
                                             _code(long_line, tags=["remove-input"]),
                                             _code(long_line, tags=["hide-input"]),
                                             _code(line_76),
                                             _code(line_76, tags=["hide-input"])])
    problems = tool.format_notebook(path, write=False)[1]
    assert [p.cell for p in problems] == [2, 4], [str(p) for p in problems]
    assert "line 1 is 76 characters, over 75" in str(problems[1])


def test_width_counts_wide_characters_twice() -> None:
    assert tool.display_width("ab") == 2
    assert tool.display_width("注意") == 4
    assert tool.long_lines("x" * 77 + "\n" + "x" * 78) == [(2, 78)]


def test_refuses_a_cell_whose_syntax_tree_would_change(tmp_path: Path, monkeypatch) -> None:
    path = _notebook(tmp_path / "nb.ipynb", [_code("x = 1"), _code("y=2")])
    before = path.read_text(encoding="utf-8")
    monkeypatch.setattr(tool, "ruff_format", lambda sources, length: ["x = 2", "y = 2"])
    changed, problems = tool.format_notebook(path, write=True)
    assert changed == 1
    assert [str(p) for p in problems] == [f"{path}: cell 0: formatting would change its syntax tree; refused"]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert ["".join(c["source"]) for c in cells] == ["x = 1", "y = 2"]
    assert before != path.read_text(encoding="utf-8")


def test_code_tree_ignores_magics_and_layout_only() -> None:
    assert tool.code_tree("%%time\nx = (1)\n%pip install a") == tool.code_tree("x = 1\npass")
    assert tool.code_tree("s = 'a' 'b'") == tool.code_tree('s = "ab"')
    assert tool.code_tree("x = 1") != tool.code_tree("x = 2")
    assert tool.code_tree("def f(:") is None


def test_a_comment_that_forced_a_wrap_goes_above_its_statement() -> None:
    wrapped = (
        "make_reproducible(\n    seed=0, threads=1\n)  # graph operations this small gain nothing from a second thread\n"
        "for x in y:\n    total = sum(\n        x\n    )  # why\n"
    )
    hoisted = tool.hoist_wrapped_comments(wrapped)
    assert hoisted == (
        "# graph operations this small gain nothing from a second thread\n"
        "make_reproducible(\n    seed=0, threads=1\n)\n"
        "for x in y:\n    # why\n    total = sum(\n        x\n    )\n"
    )
    assert tool.code_tree(hoisted) == tool.code_tree(wrapped)
    assert tool.ruff_format([hoisted])[0].startswith("# graph operations")  # ruff joins the call again
    assert "make_reproducible(seed=0, threads=1)\n" in tool.ruff_format([hoisted])[0]
    one_line = "x = f(1)  # stays where it is\n"
    magic = "%time f(\n    1\n)  # a magic cell is left alone\n"
    assert tool.hoist_wrapped_comments(one_line) == one_line
    assert tool.hoist_wrapped_comments(magic) == magic
    long_comment = "f(\n    1\n)  # " + "word " * 30 + "\n"
    assert all(len(line) <= tool.LINE_LENGTH for line in tool.hoist_wrapped_comments(long_comment).splitlines())
