"""Argument types for the recipes' command lines: a bad flag is refused before any work, and the message
names the flag (argparse adds it), what came and what was expected."""
from __future__ import annotations

import argparse
import math

__all__ = ["positive_int_arg", "non_negative_int_arg", "positive_float_arg", "non_negative_float_arg",
           "name_and_directory_arg"]


def _number(text: str, kind: type, expected: str, accept) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int_arg(text: str) -> int:
    return _number(text, int, "an int >= 1", lambda v: v >= 1)


def non_negative_int_arg(text: str) -> int:
    return _number(text, int, "an int >= 0", lambda v: v >= 0)


def positive_float_arg(text: str) -> float:
    return _number(text, float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def non_negative_float_arg(text: str) -> float:
    return _number(text, float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def name_and_directory_arg(text: str) -> tuple[str, str]:
    """``NAME=DIR`` -> ``(NAME, DIR)``, both non-empty."""
    name, sep, directory = text.partition("=")
    if not (sep and name and directory):
        raise argparse.ArgumentTypeError(f"expected NAME=DIR (e.g. ours=runs/pretrain/final), got {text!r}")
    return name, directory
