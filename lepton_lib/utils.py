"""Small helpers every chapter uses: device choice, seeding and input checks."""
from __future__ import annotations

import os
import random
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["get_device", "set_seed", "make_reproducible", "check_tensor"]


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the ``LEPTON_DEVICE`` environment variable) forces a choice,
    e.g. ``"cpu"`` to reproduce the book's stored outputs on a GPU machine.
    """
    choice = prefer or os.environ.get("LEPTON_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random generators."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_reproducible(seed: int = 0, threads: int = 2, precision: int = 4) -> None:
    """Make a notebook's printed output identical run after run.

    Seeds every generator, fixes the number of intra-op threads (the order of a
    parallel float reduction depends on it, and so do the last digits of a sum)
    and rounds printed tensors and arrays to ``precision`` decimals.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    set_seed(seed)
    torch.set_num_threads(threads)
    torch.set_printoptions(precision=precision, sci_mode=False)
    np.set_printoptions(precision=precision, suppress=True)


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
