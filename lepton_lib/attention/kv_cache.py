"""A KV cache for incremental decoding, and what it costs in memory.

Decoding one token at a time, a causal model needs the keys and values of every earlier token; since
an earlier position never attends a later one, those never change. ``KVCache`` keeps them, so
generating token ``t`` projects only that token instead of recomputing all ``t`` of them
(``MultiHeadAttention.forward(..., kv_cache=...)`` appends to it). ``kv_cache_bytes`` is the memory
that speed-up costs.
"""
from __future__ import annotations

import torch
from torch import Tensor

from lepton_lib.core.checks import check_positive_int

__all__ = ["KVCache", "kv_cache_bytes"]


def kv_cache_bytes(num_layers: int, batch_size: int, num_heads: int, length: int, head_dim: int,
                   bytes_per_value: int = 4) -> int:
    """Bytes of a full cache: keys and values, ``2 * layers * B * H * length * Dh`` numbers.

    ``num_heads`` counts the key/value heads: with multi-query or grouped-query attention that is the
    number of shared K/V heads, not the number of query heads.
    """
    for name, value in (("num_layers", num_layers), ("batch_size", batch_size), ("num_heads", num_heads),
                        ("length", length), ("head_dim", head_dim), ("bytes_per_value", bytes_per_value)):
        check_positive_int(name, value)
    return 2 * num_layers * batch_size * num_heads * length * head_dim * bytes_per_value


class KVCache:
    """Preallocated keys ``(B, H, max_length, Dh)`` and values ``(B, H, max_length, Dv)``.

    Decoding one token at a time, a model needs the keys and values of every earlier token; the
    cache keeps them so each step projects only the new token. It is for inference: append under
    ``torch.no_grad()`` (the buffer is written in place, which autograd cannot differentiate).
    """

    def __init__(
        self,
        batch_size: int,
        num_heads: int,
        max_length: int,
        head_dim: int,
        value_dim: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        sizes = {"batch_size": batch_size, "num_heads": num_heads, "max_length": max_length, "head_dim": head_dim}
        for name, size in sizes.items():
            check_positive_int(name, size)
        value_dim = head_dim if value_dim is None else value_dim
        self.keys = torch.zeros(batch_size, num_heads, max_length, head_dim, dtype=dtype, device=device)
        self.values = torch.zeros(batch_size, num_heads, max_length, value_dim, dtype=dtype, device=device)
        self._length = 0

    @property
    def length(self) -> int:
        """Number of positions stored so far."""
        return self._length

    @property
    def max_length(self) -> int:
        return self.keys.shape[2]

    def reset(self) -> None:
        """Forget every stored position (the memory stays allocated)."""
        self._length = 0

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``key (B, H, T, Dh)`` and ``value (B, H, T, Dv)``; return all keys and values so far."""
        B, H, _, Dh = self.keys.shape
        for name, t, buffer in (("key", key, self.keys), ("value", value, self.values)):
            expected = (B, H, "T", buffer.shape[3])
            if not isinstance(t, Tensor) or t.dim() != 4 or any(
                want != "T" and got != want for got, want in zip(t.shape, expected)
            ):
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"{name} must have shape {expected}, got {got}")
            if t.dtype != buffer.dtype or t.device != buffer.device:
                raise ValueError(
                    f"{name} has dtype {t.dtype} on {t.device}, expected {buffer.dtype} on {buffer.device}"
                )
            if torch.is_grad_enabled() and t.requires_grad:
                raise ValueError(f"{name} requires grad; KVCache is for inference, use torch.no_grad()")
        if key.shape[2] != value.shape[2]:
            raise ValueError(f"key has {key.shape[2]} positions but value has {value.shape[2]}, expected equal")
        start, stop = self._length, self._length + key.shape[2]
        if stop > self.max_length:
            raise ValueError(
                f"KVCache overflow: it holds {start} of {self.max_length} positions, "
                f"cannot append {key.shape[2]} more"
            )
        self.keys[:, :, start:stop] = key
        self.values[:, :, start:stop] = value
        self._length = stop
        return self.keys[:, :, :stop], self.values[:, :, :stop]
