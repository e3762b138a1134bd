"""Argument checks that raise a ``ValueError`` naming the argument, its value and what was expected.

Every public function of the library validates its inputs before it computes or changes anything,
so a typo (a negative count, a utilisation of 45 instead of 0.45, a tensor of the wrong shape)
fails loudly at the call that made it, and a rejected call leaves every object as it was.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "check_tensor",
    "check_positive_int",
    "check_non_negative_int",
    "check_int_in_range",
    "check_positive_number",
    "check_non_negative_number",
    "check_fraction",
    "should_check_values",
]


def check_positive_int(name: str, value: object, allow_none: bool = False) -> int | None:
    """Return ``value`` if it is an int >= 1 (``bool`` is not an int here), else raise naming ``name``."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        suffix = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive int{suffix}, got {value!r}")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def check_int_in_range(name: str, value: object, low: int, high: int, high_means: str = "") -> int:
    """Return ``value`` if it is an int in ``[low, high]``; ``high_means`` says what the bound is."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bound = f"{high} ({high_means})" if high_means else f"{high}"
        raise ValueError(f"{name} must be an int in [{low}, {bound}], got {value!r}")
    return value


def _finite_number(name: str, value: object, bound: str, ok) -> float:
    # NumPy scalars count as numbers (np.float64(0.1) from an array is as good as 0.1); bools do not.
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not is_number:
        raise ValueError(f"{name} must be a finite number {bound}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or not ok(value):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_positive_number(name: str, value: object) -> float:
    """Return ``float(value)`` if it is a finite number > 0 (Python or NumPy), else raise naming ``name``."""
    return _finite_number(name, value, "> 0", lambda v: v > 0)


def check_non_negative_number(name: str, value: object) -> float:
    """Return ``float(value)`` if it is a finite number >= 0 (Python or NumPy), else raise naming ``name``."""
    return _finite_number(name, value, ">= 0", lambda v: v >= 0)


def check_fraction(name: str, value: object) -> float:
    """Return ``float(value)`` if it lies in (0, 1]; a percentage such as 45 is refused."""
    value = check_positive_number(name, value)
    if value > 1.0:
        raise ValueError(f"{name} must lie in (0, 1] (a fraction, not a percentage), got {value!r}")
    return value


def check_tensor(
    name: str,
    value: object,
    shape: Sequence[int | str | None] | None = None,
    dtype: torch.dtype | Sequence[torch.dtype] | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Validate an argument and raise a ``ValueError`` that names it.

    ``shape`` lists the expected sizes; ``None`` or a string (a symbolic name
    such as ``"B"``) matches any size, and a symbolic name must take the same
    size wherever it appears. ``dtype`` may be one dtype or several.
    """
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if shape is not None:
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        if value.dim() != len(shape):
            raise ValueError(
                f"{name} must have {len(shape)} dimensions {expected}, got shape {tuple(value.shape)}"
            )
        bound: dict[str, int] = {}
        for size, want in zip(value.shape, shape):
            if isinstance(want, str):
                if bound.setdefault(want, size) != size:
                    raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {expected}")
            elif want is not None and size != want:
                raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {expected}")
    if dtype is not None:
        allowed = (dtype,) if isinstance(dtype, torch.dtype) else tuple(dtype)
        if value.dtype not in allowed:
            names = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have dtype {names}, got {value.dtype}")
    if device is not None and value.device != torch.device(device):
        raise ValueError(f"{name} is on {value.device}, expected {device}")
    return value


def should_check_values(tensor: torch.Tensor) -> bool:
    """Whether to validate the VALUES of ``tensor`` (ids in range, masks of 0/1), not only its shape.

    Shape, dtype and device checks read metadata and are free everywhere. A value check reads the
    data: on the CPU that is cheap, but on an accelerator ``int(t.max())`` or ``bool(t.any())`` waits
    for the device (a host-device sync on every forward pass), and it fails under ``torch.compile``
    and on ``meta`` tensors. So value checks run on CPU tensors always, and on any other device only
    when the environment variable ``LEPTON_CHECK_VALUES=1`` asks for them (while debugging: a bad id
    on a GPU otherwise surfaces as a device-side assert, or as a silently wrong result).
    """
    if tensor.device.type == "cpu":
        return True
    return os.environ.get("LEPTON_CHECK_VALUES", "") == "1"
