"""The tolerance extension of nbval: outcomes within their stated tolerance pass, others fail.

The end-to-end tests store a notebook whose output was moved by a tenth of its tolerance (must
pass) and by twice its tolerance (must fail), and run nbval on it in a fresh pytest process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbval_tolerance import Tolerance, cell_tolerance, reconcile_outputs, within_tolerance

TESTS = Path(__file__).resolve().parent


def test_cell_tolerance_reads_absolute_relative_and_both():
    assert cell_tolerance("x = 1\nprint(x)") is None
    assert cell_tolerance("# tolerance: ±0.5\nprint(1)") == Tolerance(abs=0.5)
    assert cell_tolerance("# tolerance: ±2%") == Tolerance(rel=0.02)
    assert cell_tolerance("  # tolerance: ±0.5 or ±2%") == Tolerance(abs=0.5, rel=0.02)
    with pytest.raises(ValueError, match="unreadable tolerance comment"):
        cell_tolerance("# tolerance: half a point")


POINT = Tolerance(abs=0.5)
TWO_PERCENT = Tolerance(rel=0.02)


@pytest.mark.parametrize(
    ("stored", "new", "tolerance", "ok"),
    [
        ("acc 58.49", "acc 58.60", POINT, True),  # moved 0.11 <= 0.5
        ("acc 58.49", "acc 59.49", POINT, False),  # moved 1.0 > 0.5
        ("acc 58.49", "acc 57.49", POINT, False),
        ("acc  9.99 | n 100", "acc 10.01 | n 100", POINT, True),  # a column grew one character
        ("acc 58.49 | n 100", "acc 58.49 | m 100", POINT, False),  # words are compared exactly
        ("[0.1, 0.2]", "[0.1, 0.2, 0.3]", POINT, False),  # a number appeared
        ("loss nan", "loss 0.1", POINT, False),
        ("loss nan", "loss nan", POINT, True),
        ("grad 7.2e-05", "grad 7.3e-05", TWO_PERCENT, True),  # 0.1e-05 <= 2% of 7.2e-05
        ("grad 7.2e-05", "grad 7.5e-05", TWO_PERCENT, False),
        ("acc 58.49", "acc 59.49", Tolerance(abs=0.5, rel=0.02), True),  # either bound suffices
    ],
)
def test_within_tolerance(stored, new, tolerance, ok):
    assert within_tolerance(stored, new, tolerance) is ok


def test_glue_metadata_takes_precedence_over_the_cell_comment():
    def glue(name, text, tol=None):
        metadata = {"scrapbook": {"name": name}}
        if tol is not None:
            metadata["lepton_tolerance"] = {"abs": tol, "rel": None}
        return {"output_type": "display_data", "metadata": metadata,
                "data": {"application/papermill.record/text/plain": text}}

    stored = [glue("a", "58.49", tol=0.05), glue("b", "58.49")]
    new = [glue("a", "58.60"), glue("b", "58.60")]
    out = reconcile_outputs(new, stored, "# tolerance: ±0.5\n")
    # a: its own ±0.05 rejects 0.11; b: the cell's ±0.5 admits it
    assert out[0]["data"]["application/papermill.record/text/plain"] == "58.60"
    assert out[1]["data"]["application/papermill.record/text/plain"] == "58.49"
    assert new[1]["data"]["application/papermill.record/text/plain"] == "58.60"  # input untouched


def test_without_a_stated_tolerance_nothing_is_reconciled():
    stored = [{"output_type": "stream", "name": "stdout", "text": "acc 58.49\n"}]
    new = [{"output_type": "stream", "name": "stdout", "text": "acc 58.50\n"}]
    assert reconcile_outputs(new, stored, "print(acc)")[0]["text"] == "acc 58.50\n"


def _notebook(path: Path, stored_accuracy: str) -> None:
    """One cell that prints and glues an 'accuracy' of 58.49, stored as ``stored_accuracy``."""
    source = ("# tolerance: ±0.5\n"
              "from lepton_lib.core import glue_number\n"
              "accuracy = 58.49\n"
              "print(f'accuracy {accuracy:.2f}')\n"
              "glue_number('demo-accuracy', accuracy, 2, tolerance=0.5)")
    cell = {
        "cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "source": source,
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": f"accuracy {stored_accuracy}\n"},
            {"output_type": "display_data", "data": {"application/papermill.record/text/plain": stored_accuracy},
             "metadata": {"scrapbook": {"name": "demo-accuracy", "mime_prefix": "application/papermill.record/"},
                          "lepton_tolerance": {"abs": 0.5, "rel": None}}},
        ],
    }
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")


def _run_nbval(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_tolerance", "--nbval", "--nbval-current-env",
         "-p", "no:cacheprovider", "-q", "--rootdir", str(path.parent), str(path)],
        capture_output=True, text=True, env=env, cwd=path.parent, timeout=300,
    )


@pytest.mark.parametrize(("stored", "passes"), [("58.54", True), ("59.49", False), ("57.49", False)])
def test_nbval_passes_a_tenth_of_the_tolerance_and_fails_twice_it(tmp_path, stored, passes):
    # stored 58.54: 0.05 away (a tenth of ±0.5); 59.49 / 57.49: 1.0 away (twice ±0.5)
    path = tmp_path / "outcome.ipynb"
    _notebook(path, stored)
    result = _run_nbval(path)
    assert (result.returncode == 0) is passes, result.stdout[-3000:] + result.stderr[-2000:]
    if not passes:
        assert "Cell outputs differ" in result.stdout
