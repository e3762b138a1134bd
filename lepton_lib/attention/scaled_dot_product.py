"""Scaled dot-product attention and causal masks: the formula every attention module computes.

Scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762) maps queries ``(..., L, E)``,
keys ``(..., S, E)`` and values ``(..., S, Ev)`` to ``softmax(Q K^T * scale + mask) V`` of shape
``(..., L, Ev)``. Conventions used throughout this library:

* ``attn_mask`` follows ``torch.nn.functional.scaled_dot_product_attention``: a boolean mask is
  True where a query MAY attend a key; a float mask is added to the scores (``-inf`` blocks).
* ``key_padding_mask`` follows ``nn.MultiheadAttention``: True marks a padding key to ignore.
* ``is_causal`` lets query ``i`` attend keys ``j <= i`` (top-left aligned, as torch does when
  ``L != S``).

A query row that may attend no key at all ("fully masked") is defined here: its output row and its
weights are zero and every gradient that flows through it is zero. The textbook softmax would give
0/0 = NaN. ``F.scaled_dot_product_attention`` returns zeros for such rows too since torch 2.5
(its "safe softmax", pytorch/pytorch#133882; earlier releases return NaN, and the fast path below
guards against them), while ``nn.MultiheadAttention`` still returns NaN rows for a fully padded
sequence (checked with torch 2.13).

``MultiHeadAttention`` (``lepton_lib.attention.multi_head``) projects inputs into heads and calls
``scaled_dot_product_attention``; the tiled (flash-style) pass is in ``lepton_lib.attention.tiled``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["causal_mask", "check_qkv", "check_attention_mask", "scaled_dot_product_attention"]

_IMPLEMENTATIONS = ("auto", "fast", "reference")


def causal_mask(
    query_length: int, key_length: int, offset: int = 0, device: torch.device | None = None
) -> Tensor:
    """Boolean ``(L, S)`` mask, True where query ``i`` may attend key ``j``, i.e. ``j <= i + offset``.

    ``offset=0`` is torch's top-left alignment; ``offset = S - L`` aligns the last query with the
    last key, which is what incremental decoding with a cache needs.
    """
    rows = torch.arange(query_length, device=device).unsqueeze(-1)
    cols = torch.arange(key_length, device=device)
    return cols <= rows + offset


def check_qkv(query: Tensor, key: Tensor, value: Tensor) -> None:
    """Check ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)`` agree; raise ``ValueError`` if not.

    Batch dims must be equal, dtypes and devices those of ``query``, and ``S >= 1``.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.dim() < 2:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a tensor of shape (..., length, features), got {got}")
    if not query.is_floating_point():
        raise ValueError(f"query must have a floating dtype, got {query.dtype}")
    batch, E, S = tuple(query.shape[:-2]), query.shape[-1], key.shape[-2]
    for name, t, expected in (("key", key, batch + ("S", E)), ("value", value, batch + (S, "Ev"))):
        if t.dtype != query.dtype or t.device != query.device:
            raise ValueError(f"{name} has {t.dtype} on {t.device}, expected query's {query.dtype} on {query.device}")
        if t.dim() != query.dim() or t.shape[:-2] != query.shape[:-2]:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}, expected {expected}: the batch dimensions of query "
                f"{tuple(query.shape)}"
            )
    if key.shape[-1] != E:
        raise ValueError(f"key has shape {tuple(key.shape)}, expected {batch + ('S', E)} (E of query)")
    if value.shape[-2] != S:
        raise ValueError(f"value has shape {tuple(value.shape)}, expected {batch + (S, 'Ev')} (S of key)")
    if S == 0:
        raise ValueError(f"key must hold at least one position, got shape {tuple(key.shape)}")


def check_attention_mask(name: str, mask: object, target: tuple[int, ...], query: Tensor) -> None:
    """Check a mask named ``name``: bool or of query's float dtype, on query's device, and
    broadcastable to the scores' shape ``target (..., L, S)`` without growing it."""
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool and mask.dtype != query.dtype:
        raise ValueError(f"{name} must have dtype torch.bool or query's {query.dtype}, got {mask.dtype}")
    if mask.device != query.device:
        raise ValueError(f"{name} is on {mask.device}, expected query's device {query.device}")
    fits = 2 <= mask.dim() <= len(target) and all(
        m in (1, t) for m, t in zip(reversed(mask.shape), reversed(target))
    )
    if not fits:
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)}, which cannot broadcast to the scores' shape {target} "
            f"(..., L, S); each of its last dims must be 1 or match"
        )


def _reference_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, scale: float
) -> tuple[Tensor, Tensor]:
    """The textbook formula, every step visible: output ``(..., L, Ev)`` and weights ``(..., L, S)``."""
    scores = q @ k.transpose(-2, -1) * scale  # (..., L, S): one similarity per query-key pair
    if mask is None:
        weights = torch.softmax(scores, dim=-1)  # each row: a distribution over the S keys
    else:
        scores = scores.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else scores + mask
        # A row with every score at -inf has no key to attend: softmax would give 0/0 = NaN. Softmax a
        # harmless row of zeros instead, then zero its weights (masked_fill passes no gradient back).
        empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights


def _fast_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, is_causal: bool, scale: float
) -> Tensor:
    """torch's fused kernel, with fully masked rows made safe on every torch release."""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
    if mask.dtype == torch.bool:
        empty = ~mask.any(dim=-1, keepdim=True)
    else:
        empty = torch.isneginf(mask).all(dim=-1, keepdim=True)
    # Open every key to the empty rows (so no kernel divides by zero), then zero those rows. Done
    # whether or not a row is empty: asking would cost a host-device sync on every call, and with no
    # empty row both steps leave every value as it was.
    safe = mask | empty if mask.dtype == torch.bool else mask.masked_fill(empty, 0.0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=dropout_p, scale=scale)
    return out.masked_fill(empty, 0.0)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
    implementation: str = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(Q K^T * scale + mask) V`` with the semantics of ``F.scaled_dot_product_attention``.

    Shapes: ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)`` -> ``(..., L, Ev)``;
    the batch dims ``...`` must be equal (no implicit broadcasting). ``attn_mask`` (bool: True =
    attend; float: added to the scores) broadcasts to ``(..., L, S)``. ``is_causal`` (top-left
    aligned) cannot be combined with ``attn_mask``. ``scale`` defaults to ``1 / sqrt(E)``. Dropout
    with probability ``dropout_p`` is applied to the weights whenever ``dropout_p > 0``, as in torch.

    ``implementation``: ``"reference"`` runs the readable formula, ``"fast"`` calls torch's fused
    kernel, ``"auto"`` picks ``"fast"`` unless weights are requested. With ``return_weights=True``
    the result is ``(output, weights)``, weights ``(..., L, S)`` taken before dropout.

    Fully masked query rows return zeros, with zero weights and zero gradients (see the module
    docstring for how this compares with torch).
    """
    check_qkv(query, key, value)
    if implementation not in _IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {_IMPLEMENTATIONS}, got {implementation!r}")
    if return_weights and implementation == "fast":
        raise ValueError("implementation='fast' cannot return weights; use 'reference' or 'auto'")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be in [0, 1], got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    if attn_mask is not None:
        if is_causal:
            raise ValueError(
                f"attn_mask (shape {tuple(attn_mask.shape)}) and is_causal=True were both given; expected "
                f"one of them (fold the causal rule into attn_mask with causal_mask({L}, {S}))"
            )
        check_attention_mask("attn_mask", attn_mask, tuple(query.shape[:-2]) + (L, S), query)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if implementation == "fast" or (implementation == "auto" and not return_weights):
        return _fast_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
    mask = causal_mask(L, S, device=query.device) if is_causal else attn_mask
    out, weights = _reference_attention(query, key, value, mask, dropout_p, scale)
    return (out, weights) if return_weights else out
