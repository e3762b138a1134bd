"""nbval, extended: outcomes of training are compared within a stated tolerance.

nbval compares each re-executed cell's output with the stored one, character for character.
That is right for exact quantities, and wrong for the outcome of a training run: its last
digits legitimately move from one CPU to another (AVX2 or AVX-512 kernels, an ARM laptop), as
float sums are taken in another order. This module lets a notebook say, next to the value,
how far such a number may move; everything else stays an exact comparison.

Two ways to state a tolerance, both read from the *stored* notebook:

* a comment line in the code cell, covering every number the cell prints or glues::

      # tolerance: ±0.5            (absolute)
      # tolerance: ±2%             (relative to the stored value)
      # tolerance: ±0.5 or ±2%     (either bound suffices)

* a glued value's own metadata (``lepton_lib.core.glue_number(..., tolerance=...)``), which
  takes precedence over the cell's comment for that value.

An output passes when its text, with every number replaced by a placeholder and runs of
whitespace collapsed, is identical to the stored text, and each number is within the tolerance
of the stored one. It then counts as equal and nbval's own comparison (with the sanitisers) runs
as before; otherwise nbval reports the difference as usual. A value that moves past its tolerance
therefore still fails ``make test``.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

__all__ = ["Tolerance", "cell_tolerance", "within_tolerance", "reconcile_outputs", "install"]

TOLERANCE_KEY = "lepton_tolerance"  # = lepton_lib.core.glue.TOLERANCE_KEY (tests need no torch)
_MARKER = re.compile(r"^\s*#\s*tolerance:\s*(?P<spec>.+?)\s*$", re.MULTILINE)
_BOUND = re.compile(r"±\s*(?P<value>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<percent>%?)")
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf)(?!\w)")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Tolerance:
    """``|new - stored| <= max(abs, rel * |stored|)``; ``None`` bounds count as zero."""

    abs: float | None = None
    rel: float | None = None

    def admits(self, stored: float, new: float) -> bool:
        if stored == new or (math.isnan(stored) and math.isnan(new)):
            return True
        if not (math.isfinite(stored) and math.isfinite(new)):
            return False
        bound = max(self.abs or 0.0, (self.rel or 0.0) * abs(stored))
        return abs(new - stored) <= bound * (1 + 1e-9)


def cell_tolerance(source: str) -> Tolerance | None:
    """The tolerance a ``# tolerance: ...`` comment in ``source`` states, or None."""
    match = _MARKER.search(source)
    if match is None:
        return None
    bounds = _BOUND.findall(match.group("spec"))
    if not bounds:
        raise ValueError(f"unreadable tolerance comment {match.group(0).strip()!r}: "
                         "expected e.g. '# tolerance: ±0.5', '# tolerance: ±2%' or both with 'or'")
    absolute = [float(v) for v, percent in bounds if not percent]
    relative = [float(v) / 100 for v, percent in bounds if percent]
    return Tolerance(abs=max(absolute) if absolute else None, rel=max(relative) if relative else None)


def _skeleton(text: str) -> str:
    return _SPACE.sub(" ", NUMBER.sub("#", text)).strip()


def within_tolerance(stored: str, new: str, tolerance: Tolerance) -> bool:
    """True if ``new`` is ``stored`` up to numbers that each moved within ``tolerance``."""
    if stored == new:
        return True
    if _skeleton(stored) != _skeleton(new):
        return False
    old_numbers, new_numbers = NUMBER.findall(stored), NUMBER.findall(new)
    return len(old_numbers) == len(new_numbers) and all(
        tolerance.admits(float(a), float(b)) for a, b in zip(old_numbers, new_numbers)
    )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _signature(output: dict) -> tuple:
    scrapbook = output.get("metadata", {}).get("scrapbook", {})
    return output.get("output_type"), output.get("name"), scrapbook.get("name")


def _output_tolerance(output: dict, default: Tolerance | None) -> Tolerance | None:
    stated = output.get("metadata", {}).get(TOLERANCE_KEY)
    if stated:
        return Tolerance(abs=stated.get("abs"), rel=stated.get("rel"))
    return default


def reconcile_outputs(new: list[dict], stored: list[dict], cell_source: str,
                      sanitize=lambda s: s) -> list[dict]:
    """A copy of ``new`` in which every text within tolerance of ``stored`` is replaced by it.

    Outputs are paired in order by kind (stream name, or glue name); a text is only replaced when
    its tolerance (the output's own, else the cell's comment) admits every number in it.
    ``sanitize`` is applied to both texts first (nbval's regex sanitisers: tqdm timings...).
    """
    default = cell_tolerance(cell_source)
    result = copy.deepcopy(new)
    unmatched = list(range(len(result)))
    for ref in stored:
        tolerance = _output_tolerance(ref, default)
        index = next((i for i in unmatched if _signature(result[i]) == _signature(ref)), None)
        if index is None:
            continue
        unmatched.remove(index)
        if tolerance is None:
            continue
        out = result[index]
        if ref.get("output_type") == "stream":
            old, now = _text(ref.get("text")), _text(out.get("text"))
            if old is not None and now is not None and within_tolerance(sanitize(old), sanitize(now), tolerance):
                out["text"] = ref["text"]
            continue
        for mime, value in ref.get("data", {}).items():
            old, now = _text(value), _text(out.get("data", {}).get(mime))
            if old is not None and now is not None and within_tolerance(sanitize(old), sanitize(now), tolerance):
                out["data"][mime] = value
    return result


def install() -> None:
    """Make nbval's cell comparison tolerance-aware (idempotent)."""
    from nbval.plugin import IPyNbCell, coalesce_streams

    if getattr(IPyNbCell.compare_outputs, "_lepton_tolerance", False):
        return
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):  # noqa: ANN001
        source = self.cell.source if isinstance(self.cell.source, str) else "".join(self.cell.source)
        test = reconcile_outputs(coalesce_streams(test), ref, source, self.sanitize)
        return exact(self, test, ref, skip_compare)

    compare_outputs._lepton_tolerance = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_configure(config) -> None:  # noqa: ANN001
    """Also usable as a plugin on its own: ``pytest -p nbval_tolerance --nbval ...``."""
    if config.pluginmanager.hasplugin("nbval"):
        install()
