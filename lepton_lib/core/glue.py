"""Numbers for the prose, glued at the precision the prose shows.

A chapter's text never types a number a cell computed; it glues it (myst-nb's ``{glue:text}``
role) and the notebook stores the glued value with its outputs. ``make test`` re-executes the
notebook and compares the stored value with the new one, so two rules keep that comparison honest
on every machine:

* **exact quantities** (closed-form maths, counts, parity errors) are rounded to the digits the
  prose shows before they are stored, so a difference in the last bits of a float, which varies
  between CPUs, never reaches the comparison, while any difference a reader could see does;
* **outcomes of training or sampling** (accuracies, losses after many steps) also carry the
  tolerance within which they must agree across machines. It is stored next to the value in the
  output's metadata, and the notebook test compares within it (see ``tests/nbval_tolerance.py``).
"""
from __future__ import annotations

import math
from numbers import Integral, Real

from IPython.display import display

__all__ = ["TOLERANCE_KEY", "glue_number", "glue_value", "rounded", "scientific_text"]

# myst-nb finds glued values by this metadata key and mime prefix (myst_nb.ext.glue).
_SCRAPBOOK_PREFIX = "application/papermill.record/"
# The metadata key under which a glued outcome stores its tolerance.
TOLERANCE_KEY = "lepton_tolerance"


def rounded(value: float, digits: int | None = None, *, significant: int | None = None) -> float | int:
    """``value`` as a float rounded to ``digits`` decimals (4 by default) or to ``significant`` figures.

    Give at most one of the two: decimals suit quantities of known scale (an accuracy in percent,
    a loss near 1), significant figures suit quantities that span orders of magnitude (a gradient
    error of 7.2e-05).
    """
    if isinstance(value, bool) or not isinstance(value, Real) and not hasattr(value, "__float__"):
        raise ValueError(f"value must be a real number, got {type(value).__name__} {value!r}")
    integer_tensor = hasattr(value, "is_floating_point") and not value.is_floating_point()
    if isinstance(value, Integral) or integer_tensor:
        return int(value)  # a count stays a count: 1437, not 1437.0
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"value must be finite to be shown in the text, got {number}")
    if significant is not None:
        if digits is not None:
            raise ValueError(f"give digits or significant, not both (got digits={digits}, "
                             f"significant={significant})")
        if not isinstance(significant, int) or isinstance(significant, bool) or significant < 1:
            raise ValueError(f"significant must be an int >= 1, got {significant!r}")
        result = float(f"{number:.{significant}g}")
        # 480 to two figures is the count 480, not 480.0 (which would show a decimal the text hides)
        return int(result) if abs(result) >= 1 and result.is_integer() else result
    digits = 4 if digits is None else digits
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be an int >= 0, got {digits!r}")
    if digits == 0:
        return int(round(number))
    result = round(number, digits)
    return 0.0 if result == 0 else result  # never store "-0.0"


def glue_value(name: str, value: object, tolerance: float | None = None,
               rel_tolerance: float | None = None) -> None:
    """Glue ``value`` (already in the form the prose shows) under ``name``, not displayed.

    With ``tolerance`` (absolute) and/or ``rel_tolerance`` (a fraction of the stored value), the
    notebook test accepts a re-run value within either bound; without them it must be identical.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    for label, bound in (("tolerance", tolerance), ("rel_tolerance", rel_tolerance)):
        if bound is not None and not (isinstance(bound, Real) and math.isfinite(bound) and bound > 0):
            raise ValueError(f"{label} must be a positive finite number or None, got {bound!r}")
    metadata: dict[str, object] = {"scrapbook": {"name": name, "mime_prefix": _SCRAPBOOK_PREFIX}}
    if tolerance is not None or rel_tolerance is not None:
        metadata[TOLERANCE_KEY] = {"abs": tolerance, "rel": rel_tolerance}
    display({_SCRAPBOOK_PREFIX + "text/plain": repr(value)}, raw=True, metadata=metadata)


def glue_number(name: str, value: float, digits: int | None = None, *, significant: int | None = None,
                tolerance: float | None = None, rel_tolerance: float | None = None) -> None:
    """Glue ``value`` rounded for the prose (see :func:`rounded`); nothing is displayed.

    Round to what the text shows: a glue read as ``{glue:text}`name:.1f``` takes ``digits=1``.
    An outcome of training takes a ``tolerance`` too, e.g. ``tolerance=1.0`` for an accuracy in
    percent that may move by up to a point from one CPU to another.
    """
    glue_value(name, rounded(value, digits, significant=significant),
               tolerance=tolerance, rel_tolerance=rel_tolerance)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def scientific_text(value: float, digits: int = 1) -> str:
    """``3.1 × 10¹⁴`` for 3.14e14: a large or small number as prose shows it (glue it with ``glue_value``)."""
    if not (isinstance(value, Real) and math.isfinite(value) and value != 0):
        raise ValueError(f"value must be a finite non-zero number, got {value!r}")
    if not (isinstance(digits, int) and digits >= 0):
        raise ValueError(f"digits must be an int >= 0, got {digits!r}")
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa} \u00d7 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
