"""No stored number carries more digits than the book shows.

The last digits of a float vary from one CPU to another; a notebook that stores them makes
``make test`` fail on a reader's machine for a difference nobody can see. So:

* every glued number is stored at no more decimals than the widest format the prose shows it
  with (``{glue:text}`name:.1f``` -> at most 1 decimal), and a glued float shown without a format
  has at most 6 significant digits;
* no stored text output prints a float at full precision (11 or more significant digits).

Also tests ``lepton_lib.core.glue``, the one helper every notebook glues through.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from lepton_lib.core import glue_number, rounded

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
GLUE_ROLE = re.compile(r"\{glue(?::text)?\}`(?:[^`:]+::)?([^`:]+)(?::([^`]*))?`")
PRECISION = re.compile(r"\.(\d+)([fFeE%])")
RECORD = "application/papermill.record/text/plain"
LONG_FLOAT = re.compile(r"(?<![\w.])-?(\d+\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
MAX_RAW_SIGNIFICANT = 6
MAX_PRINTED_SIGNIFICANT = 10


def _markdown(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def prose_formats(pages: list[Path]) -> dict[str, set[str]]:
    """Glue name -> the format specs the prose shows it with ('' for none)."""
    uses: dict[str, set[str]] = defaultdict(set)
    for page in pages:
        for name, spec in GLUE_ROLE.findall(_markdown(page)):
            uses[name].add(spec)
    return uses


def shown_decimals(specs: set[str]) -> int | None:
    """Most decimals any of ``specs`` shows; None if one shows the stored text as it is."""
    most = 0
    for spec in specs:
        match = PRECISION.search(spec)
        if match is None:
            return None
        digits, kind = int(match.group(1)), match.group(2)
        if kind in "eE":
            return None  # significant figures: checked by the significant-digit rule
        most = max(most, digits + (2 if kind == "%" else 0))
    return most


def significant_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text.lstrip("-+"))[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "." in text else len(mantissa)


def stored_glue(nb_path: Path):
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and RECORD in out.get("data", {}):
                yield index, name, out["data"][RECORD]


def glue_problems(nb_path: Path, uses: dict[str, set[str]]) -> list[str]:
    problems = []
    for index, name, text in stored_glue(nb_path):
        if not re.fullmatch(r"-?\d+\.\d+(?:e-?\d+)?", text):
            continue  # ints and strings are stored as shown
        decimals = len(text.split(".")[1].split("e")[0])
        allowed = shown_decimals(uses[name]) if name in uses else None
        if allowed is not None and "e" not in text and decimals > allowed:
            problems.append(f"cell {index}: {name} = {text}: {decimals} decimals, the prose shows {allowed}")
        elif allowed is None and significant_digits(text) > MAX_RAW_SIGNIFICANT:
            problems.append(f"cell {index}: {name} = {text}: more than {MAX_RAW_SIGNIFICANT} significant digits")
    return problems


def printed_problems(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    problems = []
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            texts = ["".join(out["text"]) if isinstance(out.get("text"), list) else out.get("text", "")]
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and mime != "text/html" or mime == RECORD:
                    texts.append("".join(value) if isinstance(value, list) else value)
            for text in texts:
                for match in LONG_FLOAT.finditer(text or ""):
                    if significant_digits(match.group(0)) > MAX_PRINTED_SIGNIFICANT:
                        problems.append(f"cell {index}: prints {match.group(0)}")
    return problems


PAGES = sorted(p for p in BOOK.rglob("*") if p.suffix in (".md", ".ipynb") and ".ipynb_checkpoints" not in p.parts)
NOTEBOOKS = [p for p in PAGES if p.suffix == ".ipynb"]
USES = prose_formats(PAGES)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: str(p.relative_to(BOOK)))
def test_glued_numbers_are_stored_at_the_precision_the_prose_shows(nb_path):
    assert glue_problems(nb_path, USES) == []


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: str(p.relative_to(BOOK)))
def test_no_output_prints_a_float_at_full_precision(nb_path):
    assert printed_problems(nb_path) == []


def _fake_notebook(tmp_path: Path, glued: str, printed: str, prose: str) -> tuple[Path, dict]:
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": prose},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": printed},
            {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x"}}, "data": {RECORD: glued}},
        ]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "fake.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path, prose_formats([path])


@pytest.mark.parametrize(("glued", "prose", "ok"), [
    ("0.9104", "{glue:text}`x:.4f`", True),
    ("0.9104470014572144", "{glue:text}`x:.4f`", False),
    ("58.49", "{glue:text}`x:.1f`", False),
    ("58.5", "{glue:text}`x:.1f` and {glue:text}`other.ipynb::x:.2f`", True),
    ("7.3e-05", "{glue:text}`x:.1e`", True),
    ("0.123456789", "{glue:text}`x`", False),
    ("1437", "{glue:text}`x:,.0f`", True),
])
def test_the_glue_check_can_fail(tmp_path, glued, prose, ok):
    path, uses = _fake_notebook(tmp_path, glued, "", prose)
    assert (glue_problems(path, uses) == []) is ok


@pytest.mark.parametrize(("printed", "ok"), [
    ("loss 0.6931\n", True), ("ratio 9.999000099989997\n", False), ("0.00001000 1e-05\n", True),
])
def test_the_printed_check_can_fail(tmp_path, printed, ok):
    path, _ = _fake_notebook(tmp_path, "1", printed, "")
    assert (printed_problems(path) == []) is ok


def test_rounded():
    assert rounded(0.9104470014572144) == 0.9104
    assert rounded(58.4862, 1) == 58.5
    assert rounded(7.26e-05, significant=2) == 7.3e-05
    assert rounded(479.6, significant=2) == 480 and isinstance(rounded(479.6, significant=2), int)
    assert rounded(2.46, significant=2) == 2.5
    assert rounded(2023.0, 0) == 2023 and isinstance(rounded(2023.0, 0), int)
    assert rounded(-0.00001, 2) == 0.0 and str(rounded(-0.00001, 2)) == "0.0"
    import numpy as np
    import torch
    assert rounded(np.int64(5)) == 5 and isinstance(rounded(np.int64(5)), int)
    assert rounded(torch.tensor(3)) == 3 and isinstance(rounded(torch.tensor(3)), int)
    assert rounded(torch.tensor(0.123456)) == 0.1235


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"value": float("nan")}, "finite"),
    ({"value": "0.5"}, "real number"),
    ({"value": True}, "real number"),
    ({"value": 0.5, "digits": -1}, "digits must be an int >= 0"),
    ({"value": 0.5, "digits": 2, "significant": 2}, "not both"),
    ({"value": 0.5, "significant": 0}, "significant must be an int >= 1"),
])
def test_rounded_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rounded(**kwargs)


def test_glue_number_stores_the_rounded_value_and_its_tolerance(monkeypatch):
    shown = []
    monkeypatch.setattr("lepton_lib.core.glue.display", lambda data, raw, metadata: shown.append((data, metadata)))
    glue_number("acc", 58.4862, 1, tolerance=1.0)
    glue_number("exact", 0.9104470014572144)
    (acc, acc_meta), (exact, exact_meta) = shown
    assert acc == {RECORD: "58.5"} and acc_meta["scrapbook"]["name"] == "acc"
    assert acc_meta["lepton_tolerance"] == {"abs": 1.0, "rel": None}
    assert exact == {RECORD: "0.9104"} and "lepton_tolerance" not in exact_meta
    with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
        glue_number("bad", 1.0, tolerance=-1)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        glue_number("", 1.0)


def test_scientific_text_writes_the_power_of_ten_as_prose_shows_it():
    from lepton_lib.core import scientific_text

    assert scientific_text(3.14e14) == "3.1 \u00d7 10\u00b9\u2074"
    assert scientific_text(2.5e-5, 2) == "2.50 \u00d7 10\u207b\u2075"
    assert scientific_text(9.96e19) == "1.0 \u00d7 10\u00b2\u2070"  # rounding carries into the exponent
    for bad in (0, float("inf"), "1e3"):
        with pytest.raises(ValueError, match="value must be"):
            scientific_text(bad)
