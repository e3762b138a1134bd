"""Attention: scaled dot-product attention, causal masks and multi-head attention.

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

The tiled (flash-style) pass and the KV cache for decoding live in ``lepton_lib.attention.tiled``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # tiled_attention imports this module's checks: import it for type hints only
    from lepton_lib.attention.tiled import KVCache

__all__ = ["causal_mask", "scaled_dot_product_attention", "MultiHeadAttention"]

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


def _check_qkv(query: Tensor, key: Tensor, value: Tensor) -> None:
    """Check ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)`` agree."""
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


def _check_mask(name: str, mask: object, target: tuple[int, ...], query: Tensor) -> None:
    """A mask must be bool or of query's float dtype and broadcast to ``target`` without growing it."""
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
    if not bool(empty.any()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    # Open every key to the empty rows (so no kernel divides by zero), then zero those rows.
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
    _check_qkv(query, key, value)
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
        _check_mask("attn_mask", attn_mask, tuple(query.shape[:-2]) + (L, S), query)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if implementation == "fast" or (implementation == "auto" and not return_weights):
        return _fast_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
    mask = causal_mask(L, S, device=query.device) if is_causal else attn_mask
    out, weights = _reference_attention(query, key, value, mask, dropout_p, scale)
    return (out, weights) if return_weights else out


# --- Multi-head attention ---------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``W_Q``, ``W_K``, ``W_V`` and output projection ``W_O``.

    ``head_h = Attention(X_q W_Q^h, X_k W_K^h, X_v W_V^h)``, ``MHA = concat(head_1..head_H) W_O``.
    Inputs are ``(B, L, E)``, ``(B, S, kdim)``, ``(B, S, vdim)`` (or length-first when
    ``batch_first=False``). Masks: ``key_padding_mask (B, S)``, True = padding (as in
    ``nn.MultiheadAttention``); ``attn_mask`` broadcastable to ``(B, H, L, S)`` with the
    ``scaled_dot_product_attention`` convention (bool True = MAY attend, the opposite of
    ``nn.MultiheadAttention``'s boolean ``attn_mask``; float = added).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        for name, size in (("embed_dim", embed_dim), ("num_heads", num_heads), ("kdim", kdim), ("vdim", vdim)):
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
                raise ValueError(f"{name} must be a positive int, got {size!r}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)  # W_Q, all heads side by side
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)  # W_K
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)  # W_V
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)  # W_O mixes the heads

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, T, E) -> (B, H, T, Dh): each head gets its own slice of the features."""
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = False,
        is_causal: bool = False,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Return ``(output (B, L, E), weights (B, H, L, S) per head or None)``.

        With ``kv_cache`` the new keys/values are appended (after every input has been checked, so a
        refused call leaves the cache unchanged) and the queries attend every cached position;
        ``is_causal`` then means query ``i`` (absolute position ``cached + i``) sees keys up to its own
        position, and ``key_padding_mask`` must cover all ``S`` cached positions.
        """
        if not self.batch_first:
            query, key, value = (
                x.transpose(0, 1) if isinstance(x, Tensor) and x.dim() == 3 else x for x in (query, key, value)
            )
        expected = {"query": self.embed_dim, "key": self.kdim, "value": self.vdim}
        for (name, dim), x in zip(expected.items(), (query, key, value)):
            if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != dim:
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                order = "(B, T, " if self.batch_first else "(T, B, "
                raise ValueError(f"{name} must have shape {order}{dim}), got {got}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"key {tuple(key.shape)} and value {tuple(value.shape)} must share batch and length, "
                f"and the batch of query {tuple(query.shape)}"
            )
        B, L, _ = query.shape
        q = self._split_heads(self.q_proj(query))  # (B, H, L, Dh)
        k = self._split_heads(self.k_proj(key))  # (B, H, S_new, Dh)
        v = self._split_heads(self.v_proj(value))
        # Every check runs before the cache grows: a refused call must leave the cache as it was.
        offset = 0 if kv_cache is None else kv_cache.length
        S = offset + k.shape[-2]
        mask = None
        if attn_mask is not None:
            if is_causal:
                raise ValueError(
                    f"attn_mask (shape {tuple(attn_mask.shape)}) and is_causal=True were both given; expected one"
                )
            _check_mask("attn_mask", attn_mask, (B, self.num_heads, L, S), q)
            mask = attn_mask
        if key_padding_mask is not None:
            got = getattr(key_padding_mask, "dtype", type(key_padding_mask))
            if got != torch.bool or key_padding_mask.device != q.device:
                raise ValueError(f"key_padding_mask must be a bool tensor on {q.device} (True = padding), got {got}")
            if tuple(key_padding_mask.shape) != (B, S):
                shape = tuple(key_padding_mask.shape)
                raise ValueError(f"key_padding_mask has shape {shape}, expected (B, S) = {(B, S)}")
            padding = key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
            if mask is None:
                mask = ~padding
            elif mask.dtype == torch.bool:
                mask = mask & ~padding
            else:
                mask = torch.where(padding, -math.inf, mask)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)  # validates its own inputs before writing anything
        if is_causal and (mask is not None or offset > 0):  # torch's is_causal flag cannot express these
            causal = causal_mask(L, S, offset=offset, device=q.device)
            mask = causal if mask is None else mask & causal
            is_causal = False
        dropout_p = self.dropout if self.training else 0.0
        result = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, return_weights=need_weights
        )
        out, weights = result if need_weights else (result, None)
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))  # concat heads, apply W_O
        return (out if self.batch_first else out.transpose(0, 1)), weights

    # --- weight exchange with torch.nn.MultiheadAttention (for parity tests) ---

    def _check_torch_twin(self, other: nn.MultiheadAttention) -> None:
        ours = (self.embed_dim, self.num_heads, self.kdim, self.vdim, self.q_proj.bias is not None)
        theirs = (other.embed_dim, other.num_heads, other.kdim, other.vdim, other.in_proj_bias is not None)
        if ours != theirs:
            raise ValueError(f"other has (embed_dim, num_heads, kdim, vdim, bias) = {theirs}, expected {ours}")
        if other.bias_k is not None or other.add_zero_attn:
            raise ValueError("other uses add_bias_kv or add_zero_attn, which this module does not implement")

    def _torch_projections(self, other: nn.MultiheadAttention) -> tuple[list[Tensor], list[Tensor] | None]:
        """``other``'s W_Q, W_K, W_V and biases as views (packed rows [W_Q; W_K; W_V] if kdim = vdim = E)."""
        if other._qkv_same_embed_dim:
            weights = list(other.in_proj_weight.split(self.embed_dim))
        else:
            weights = [other.q_proj_weight, other.k_proj_weight, other.v_proj_weight]
        biases = None if other.in_proj_bias is None else list(other.in_proj_bias.split(self.embed_dim))
        return weights, biases

    @torch.no_grad()
    def copy_from_torch(self, other: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` of the same shape into this module."""
        self._check_torch_twin(other)
        weights, biases = self._torch_projections(other)
        for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            proj.weight.copy_(weights[i])
            if biases is not None:
                proj.bias.copy_(biases[i])
        self.out_proj.load_state_dict(other.out_proj.state_dict())
        return self

    @torch.no_grad()
    def copy_to_torch(self, other: nn.MultiheadAttention) -> nn.MultiheadAttention:
        """Copy this module's weights into an ``nn.MultiheadAttention`` of the same shape."""
        self._check_torch_twin(other)
        weights, biases = self._torch_projections(other)
        for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            weights[i].copy_(proj.weight)  # the views write through to the packed tensor
            if biases is not None:
                biases[i].copy_(proj.bias)
        other.out_proj.load_state_dict(self.out_proj.state_dict())
        return other

    @classmethod
    def from_torch(cls, other: nn.MultiheadAttention) -> MultiHeadAttention:
        """A new module with ``other``'s configuration and weights."""
        bias = other.in_proj_bias is not None
        ours = cls(other.embed_dim, other.num_heads, other.dropout, bias, other.kdim, other.vdim, other.batch_first)
        return ours.to(other.out_proj.weight).copy_from_torch(other)
