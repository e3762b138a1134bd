"""Where and how a run happens: device choice, seeding, and the rank of a process in a distributed job."""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist

from lepton_lib.core.checks import check_positive_int

__all__ = ["get_device", "set_seed", "seeded_torch_rng", "make_reproducible", "distributed_rank_and_world"]


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


@contextmanager
def seeded_torch_rng(seed: int) -> Iterator[None]:
    """Run a block on PyTorch's generators seeded with ``seed``, then give the caller back its own state.

    Weight initialisation and dropout draw from PyTorch's global generators and take no generator
    argument, so a library function that must be reproducible from its ``seed`` seeds them; inside this
    block that seeding is the function's business alone. The block draws exactly what it would after
    ``torch.manual_seed(seed)``, and afterwards the caller's random stream continues where it was,
    as if the call had drawn nothing.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)  # also seeds every CUDA device; fork_rng restores them all
        yield


def make_reproducible(seed: int = 0, threads: int = 2, precision: int = 4) -> None:
    """Make a notebook's printed output identical run after run.

    Seeds every generator, fixes the number of intra-op threads (the order of a
    parallel float reduction depends on it, and so do the last digits of a sum)
    and rounds printed tensors and arrays to ``precision`` decimals.
    """
    check_positive_int("threads", threads)
    set_seed(seed)
    torch.set_num_threads(threads)
    torch.set_printoptions(precision=precision, sci_mode=False)
    np.set_printoptions(precision=precision, suppress=True)


def distributed_rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes, ``(0, 1)`` outside a distributed job."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
