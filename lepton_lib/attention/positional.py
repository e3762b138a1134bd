"""Positional information for Transformers: sinusoidal, learned and rotary (RoPE).

Attention is permutation-equivariant: shuffle the tokens and the outputs shuffle the same way. So a
Transformer must be told where each token sits. Three common ways:

* ``sinusoidal_positional_encoding``: fixed sines and cosines added to the embeddings
  (Vaswani et al. 2017, arXiv:1706.03762, section 3.5);
* ``LearnedPositionalEmbedding``: one trained vector per position (as in BERT and GPT-2);
* ``apply_rotary_embedding``: rotate query/key feature pairs by a position-dependent angle, so the
  score ``q_m . k_n`` depends on the offset ``m - n`` only (Su et al. 2021, arXiv:2104.09864).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lepton_lib.core.checks import should_check_values

__all__ = ["sinusoidal_positional_encoding", "LearnedPositionalEmbedding", "apply_rotary_embedding"]


def _check_even_dim(name: str, dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"{name} must be a positive even int (features come in sin/cos pairs), got {dim!r}")


def _inverse_frequencies(dim: int, base: float, device: torch.device | None) -> Tensor:
    """``base^(-2i/dim)`` for ``i = 0 .. dim/2 - 1``, in float64: wavelengths from 2*pi to base*2*pi."""
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base}")
    exponents = torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim
    return base**-exponents


def sinusoidal_positional_encoding(
    length: int,
    dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``(length, dim)`` table ``PE[p, 2i] = sin(p / base^(2i/dim))``, ``PE[p, 2i+1] = cos(...)``.

    Each pair of features is a clock of its own frequency, so ``PE[p + k]`` is a fixed rotation of
    ``PE[p]`` for every ``p``: relative offsets are linear functions of the encoding.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    _check_even_dim("dim", dim)
    device = torch.device(device) if device is not None else None
    angles = torch.arange(length, dtype=torch.float64, device=device)[:, None] * _inverse_frequencies(dim, base, device)
    table = torch.empty(length, dim, dtype=torch.float64, device=device)
    table[:, 0::2] = torch.sin(angles)  # angles computed in float64, so long tables stay accurate
    table[:, 1::2] = torch.cos(angles)
    return table.to(dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A trained vector per position: ``forward(positions (..., L)) -> (..., L, dim)``.

    Unlike the sinusoidal table it cannot describe a position beyond ``max_length - 1``; asking for
    one is an error rather than a silent wrap-around.
    """

    def __init__(self, max_length: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        if max_length < 1 or dim < 1:
            raise ValueError(f"max_length and dim must be positive, got {max_length} and {dim}")
        self.max_length, self.dim = max_length, dim
        self.weight = nn.Parameter(torch.randn(max_length, dim) * init_std)  # small, as in GPT-2

    def forward(self, positions: Tensor) -> Tensor:
        if not isinstance(positions, Tensor) or positions.dtype not in (torch.int32, torch.int64):
            got = positions.dtype if isinstance(positions, Tensor) else type(positions).__name__
            raise ValueError(f"positions must be an integer tensor, got {got}")
        # The range is read only where that costs no device sync (see should_check_values).
        if positions.numel() and should_check_values(positions) and (
            positions.min() < 0 or positions.max() >= self.max_length
        ):
            raise ValueError(
                f"positions must lie in [0, {self.max_length - 1}], got values in "
                f"[{int(positions.min())}, {int(positions.max())}]"
            )
        return self.weight[positions]

    def extra_repr(self) -> str:
        return f"max_length={self.max_length}, dim={self.dim}"


def apply_rotary_embedding(x: Tensor, positions: Tensor | None = None, base: float = 10000.0) -> Tensor:
    """Rotate each feature pair ``(x[2i], x[2i+1])`` of ``x (..., L, D)`` by ``position * base^(-2i/D)``.

    Applied to queries and keys (not values) before attention, it makes ``<R_m q, R_n k>`` a
    function of ``q``, ``k`` and ``m - n`` only, because ``R_m^T R_n = R_{n-m}``. ``positions`` (shape
    ``(L,)``, default ``0 .. L-1``) lets a decoder with a KV cache rotate new tokens by their absolute
    positions. Pairs are adjacent features, as in the paper; some libraries pair feature ``i`` with
    ``i + D/2`` instead, which is the same map on permuted features.
    """
    if not isinstance(x, Tensor) or x.dim() < 2 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor of shape (..., L, D), got {got}")
    L, D = x.shape[-2], x.shape[-1]
    _check_even_dim("x.shape[-1]", D)
    if positions is None:
        positions = torch.arange(L, device=x.device)
    elif not isinstance(positions, Tensor) or tuple(positions.shape) != (L,):
        got = tuple(positions.shape) if isinstance(positions, Tensor) else type(positions).__name__
        raise ValueError(f"positions must have shape ({L},) (one per row of x), got {got}")
    angles = positions.to(torch.float64)[:, None] * _inverse_frequencies(D, base, x.device)  # (L, D/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    # (even, odd) -> (even cos - odd sin, even sin + odd cos): a 2-D rotation of every pair.
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)
