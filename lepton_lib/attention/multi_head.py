"""Multi-head attention: ``H`` attentions over learned projections of the inputs, side by side.

``head_h = Attention(X_q W_Q^h, X_k W_K^h, X_v W_V^h)``, ``MHA = concat(head_1..head_H) W_O``, where
``Attention`` is ``lepton_lib.attention.scaled_dot_product.scaled_dot_product_attention`` (its module
docstring states the mask conventions and the rule for fully masked rows). With a ``KVCache``
(``lepton_lib.attention.kv_cache``) the module decodes incrementally. Weight exchange with
``nn.MultiheadAttention`` for parity tests is in ``lepton_lib.interop.torch_modules``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lepton_lib.attention.kv_cache import KVCache
from lepton_lib.attention.scaled_dot_product import (
    causal_mask,
    check_attention_mask,
    scaled_dot_product_attention,
)
from lepton_lib.core.checks import check_positive_int

__all__ = ["MultiHeadAttention"]



class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``W_Q``, ``W_K``, ``W_V`` and output projection ``W_O``.

    ``head_h = Attention(X_q W_Q^h, X_k W_K^h, X_v W_V^h)``, ``MHA = concat(head_1..head_H) W_O``.
    Inputs are ``(B, L, E)``, ``(B, S, kdim)``, ``(B, S, vdim)`` (or length-first when
    ``batch_first=False``). Masks: ``key_padding_mask (B, S)``, True = padding (as in
    ``nn.MultiheadAttention``); ``attn_mask`` broadcastable to ``(B, H, L, S)`` with
    ``nn.MultiheadAttention``'s convention, so that the two modules swap without flipping a mask:
    bool True = may NOT attend (the opposite of ``scaled_dot_product_attention``'s), float = added.
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
        check_positive_int("embed_dim", embed_dim)
        check_positive_int("num_heads", num_heads)
        for name, size in (("kdim", kdim), ("vdim", vdim)):
            if size is not None:  # None means embed_dim; keep the message without "or None" as before
                check_positive_int(name, size)
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

    def split_heads(self, x: Tensor) -> Tensor:
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
        q = self.split_heads(self.q_proj(query))  # (B, H, L, Dh)
        k = self.split_heads(self.k_proj(key))  # (B, H, S_new, Dh)
        v = self.split_heads(self.v_proj(value))
        # Every check runs before the cache grows: a refused call must leave the cache as it was.
        offset = 0 if kv_cache is None else kv_cache.length
        S = offset + k.shape[-2]
        mask = None
        if attn_mask is not None:
            if is_causal:
                raise ValueError(
                    f"attn_mask (shape {tuple(attn_mask.shape)}) and is_causal=True were both given; expected one"
                )
            check_attention_mask("attn_mask", attn_mask, (B, self.num_heads, L, S), q)
            mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask  # to SDPA's True = may attend
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
