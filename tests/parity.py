"""Shared settings for the parity tests against torch's own layers."""
from __future__ import annotations

import pytest
import torch

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}  # the tolerances the book promises
DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    torch.testing.assert_close(actual, expected, atol=TOL[dtype], rtol=TOL[dtype])
