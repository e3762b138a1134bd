"""Label and score arrays: convert what a caller passes to checked 1-D NumPy arrays.

The metric functions (here, in :mod:`lepton_lib.foundations.curves` and in the case studies'
fairness and calibration reports) accept NumPy arrays, torch tensors or plain lists. These
helpers turn any of them into a 1-D NumPy array of the right kind, or raise a ``ValueError``
that names the argument, so every metric checks its inputs the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

__all__ = ["ArrayLike", "as_1d_array", "as_labels", "as_scores", "check_same_length"]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def as_1d_array(name: str, values: ArrayLike) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D NumPy array; raise ``ValueError`` naming ``name``."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:  # NumPy has no bfloat16
            values = values.float()
        values = values.numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (N,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; expected at least one element")
    return array


def as_labels(name: str, values: ArrayLike) -> np.ndarray:
    """Class labels as an int64 array of shape (N,): integers, bools, or floats that are all whole numbers."""
    array = as_1d_array(name, values)
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values {array[:5]}")
        return array.astype(np.int64)
    raise ValueError(f"{name} must hold integer class labels, got dtype {array.dtype}")


def as_scores(name: str, values: ArrayLike) -> np.ndarray:
    """Real-valued, finite scores (or probabilities) as a float64 array of shape (N,)."""
    array = as_1d_array(name, values)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold real-valued scores, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(array)))} NaN or infinite values")
    return array


def check_same_length(first: tuple[str, np.ndarray], second: tuple[str, np.ndarray]) -> None:
    """Raise ``ValueError`` unless the two ``(name, array)`` pairs hold arrays of the same length."""
    (name_a, a), (name_b, b) = first, second
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} elements but {name_b} has {len(b)}; expected the same length")
