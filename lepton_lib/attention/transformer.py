"""Transformer blocks (Vaswani et al. 2017, arXiv:1706.03762): feed-forward, encoder and decoder layers.

Each layer wraps its sub-blocks (attention, feed-forward) in a residual connection and a LayerNorm.
Two placements of the norm are in use:

* post-LN (the original paper, ``norm_first=False``): ``H = LN(X + MHA(X))``, ``Y = LN(H + FFN(H))``;
* pre-LN (GPT-2 and most large models, ``norm_first=True``): ``H = X + MHA(LN(X))``,
  ``Y = H + FFN(LN(H))``, which keeps an un-normalised residual path and trains more stably when deep.

Masks follow the ``nn.Transformer*`` modules these mirror, so that one swaps for the other without
flipping a mask: boolean attention masks are True where attending is NOT allowed (the opposite of
``scaled_dot_product_attention``'s), float masks are added to the scores, and ``*_key_padding_mask``
is True at padding positions. Weight exchange with the ``torch.nn`` versions
(for parity tests) lives in ``lepton_lib.interop.torch_modules``; positional encodings in
``lepton_lib.attention.positional``.
"""
from __future__ import annotations

import copy

from torch import Tensor, nn

from lepton_lib.attention.kv_cache import KVCache
from lepton_lib.attention.multi_head import MultiHeadAttention
from lepton_lib.core.checks import check_positive_int

__all__ = [
    "PositionwiseFeedForward",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _check_sizes(**sizes: object) -> None:
    """Layer sizes must be positive ints (a float such as 8.0 would fail deep inside nn.Linear)."""
    for name, size in sizes.items():
        check_positive_int(name, size)


def _sub_block_dropouts(dropout: float, attention_dropout: float | None, ffn_dropout: float | None) -> tuple:
    """``(p on the attention weights, p inside the feed-forward block or None for no dropout module)``."""
    attention_p = dropout if attention_dropout is None else attention_dropout
    if ffn_dropout is None:
        return attention_p, dropout
    return attention_p, (None if ffn_dropout == 0.0 else ffn_dropout)

class PositionwiseFeedForward(nn.Module):
    """``FFN(x) = W_2 dropout(act(W_1 x + b_1)) + b_2``, applied to every position independently.

    ``(..., d_model) -> (..., d_model)`` through a wider hidden layer ``dim_feedforward`` (4x in the
    paper): attention mixes information across positions, this block transforms each position.
    ``dropout=None`` builds no dropout module at all (``nn.Identity``), as BERT's feed-forward block.
    """

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float | None = 0.0,
        activation: str = "relu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, dim_feedforward=dim_feedforward)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.activation = _ACTIVATIONS[activation]()
        self.dropout = nn.Identity() if dropout is None else nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


def _to_batch_first(x: Tensor, batch_first: bool, name: str, d_model: int) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        layout = "(B, T, d_model)" if batch_first else "(T, B, d_model)"
        raise ValueError(f"{name} must have shape {layout} with d_model = {d_model}, got {got}")
    return x if batch_first else x.transpose(0, 1)


class _ResidualAttentionLayer(nn.Module):
    """What the encoder and decoder layers share: their arguments (those of ``nn.Transformer*Layer``)
    and sub-modules, built in torch's order; the decoder adds a cross-attention (``HAS_CROSS_ATTENTION``)."""

    HAS_CROSS_ATTENTION = False

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = True,
        bias: bool = True,
        attention_dropout: float | None = None,
        ffn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward)
        self.d_model, self.norm_first, self.batch_first = d_model, norm_first, batch_first
        attention_p, ffn_p = _sub_block_dropouts(dropout, attention_dropout, ffn_dropout)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=attention_p, bias=bias)
        if self.HAS_CROSS_ATTENTION:  # keys and values from the encoder's output
            self.cross_attn = MultiHeadAttention(d_model, nhead, dropout=attention_p, bias=bias)
        self.ffn = PositionwiseFeedForward(d_model, dim_feedforward, ffn_p, activation, bias)
        # One LayerNorm and one dropout (on the branch, before the residual sum) per sub-block.
        sub_blocks = 3 if self.HAS_CROSS_ATTENTION else 2
        for i in range(1, sub_blocks + 1):
            self.add_module(f"norm{i}", nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        for i in range(1, sub_blocks + 1):
            self.add_module(f"dropout{i}", nn.Dropout(dropout))


class TransformerEncoderLayer(_ResidualAttentionLayer):
    """Self-attention then feed-forward, each with a residual connection and a LayerNorm.

    ``forward(src (B, S, d_model)) -> (B, S, d_model)`` (length-first if ``batch_first=False``).
    ``dropout`` applies to each branch before its residual sum, and by default also to the attention
    weights and inside the feed-forward block; ``attention_dropout`` and ``ffn_dropout`` override those
    two (``ffn_dropout=0.0`` builds no dropout module there, as BERT).
    """

    def _attention_block(
        self, x: Tensor, mask: Tensor | None, padding: Tensor | None, is_causal: bool, kv_cache: KVCache | None
    ) -> Tensor:
        out, _ = self.self_attn(
            x, x, x, key_padding_mask=padding, attn_mask=mask, is_causal=is_causal, kv_cache=kv_cache
        )
        return self.dropout1(out)

    def _feed_forward_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.ffn(x))

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        kv_cache: KVCache | None = None,
    ) -> Tensor:
        """With ``kv_cache``, ``src`` holds only the new positions: see ``MultiHeadAttention.forward``."""
        x = _to_batch_first(src, self.batch_first, "src", self.d_model)
        attention_args = (src_mask, src_key_padding_mask, is_causal, kv_cache)
        if self.norm_first:  # pre-LN: normalise the input of each branch, keep the residual path raw
            x = x + self._attention_block(self.norm1(x), *attention_args)
            x = x + self._feed_forward_block(self.norm2(x))
        else:  # post-LN: normalise after each residual sum
            x = self.norm1(x + self._attention_block(x, *attention_args))
            x = self.norm2(x + self._feed_forward_block(x))
        return x if self.batch_first else x.transpose(0, 1)


class TransformerDecoderLayer(_ResidualAttentionLayer):
    """Causal self-attention, cross-attention to the encoder's ``memory``, then feed-forward.

    ``forward(tgt (B, T, d_model), memory (B, S, d_model)) -> (B, T, d_model)``. Self-attention is
    causal by default (``tgt_is_causal=True``); pass ``tgt_is_causal=False`` to use ``tgt_mask``.
    Dropout arguments as in ``TransformerEncoderLayer`` (``attention_dropout`` covers both attentions).
    """

    HAS_CROSS_ATTENTION = True

    def _self_attention_block(self, x: Tensor, mask: Tensor | None, padding: Tensor | None, causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, key_padding_mask=padding, attn_mask=mask, is_causal=causal)
        return self.dropout1(out)

    def _cross_attention_block(
        self, x: Tensor, memory: Tensor, mask: Tensor | None, padding: Tensor | None, causal: bool
    ) -> Tensor:
        # Queries come from the decoder, keys and values from the encoder's output.
        out, _ = self.cross_attn(x, memory, memory, key_padding_mask=padding, attn_mask=mask, is_causal=causal)
        return self.dropout2(out)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = True,
        memory_is_causal: bool = False,
    ) -> Tensor:
        x = _to_batch_first(tgt, self.batch_first, "tgt", self.d_model)
        mem = _to_batch_first(memory, self.batch_first, "memory", self.d_model)
        masks = (("tgt_mask", tgt_mask, tgt_is_causal), ("memory_mask", memory_mask, memory_is_causal))
        for mask_name, mask, flag in masks:
            if mask is not None and flag:  # name the decoder's arguments, not the attention module's
                causal = mask_name.replace("_mask", "_is_causal")
                raise ValueError(f"{mask_name} (shape {tuple(mask.shape)}) was given with {causal}=True (the default "
                                 f"for tgt); expected one of them: pass {causal}=False to use {mask_name}")
        self_args = (tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        cross_args = (memory_mask, memory_key_padding_mask, memory_is_causal)
        if self.norm_first:
            x = x + self._self_attention_block(self.norm1(x), *self_args)
            x = x + self._cross_attention_block(self.norm2(x), mem, *cross_args)
            x = x + self.dropout3(self.ffn(self.norm3(x)))
        else:
            x = self.norm1(x + self._self_attention_block(x, *self_args))
            x = self.norm2(x + self._cross_attention_block(x, mem, *cross_args))
            x = self.norm3(x + self.dropout3(self.ffn(x)))
        return x if self.batch_first else x.transpose(0, 1)


class _LayerStack(nn.Module):
    """``num_layers`` independent copies of one layer applied in turn, then an optional ``norm``."""

    def __init__(self, layer: nn.Module, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = norm

    def _apply_layers(self, x: Tensor, *args: object, **kwargs: object) -> Tensor:
        for layer in self.layers:
            x = layer(x, *args, **kwargs)
        return x if self.norm is None else self.norm(x)


class TransformerEncoder(_LayerStack):
    """``num_layers`` independent copies of ``encoder_layer`` applied in turn, then an optional ``norm``.

    A pre-LN stack needs the final norm: its residual path is never normalised otherwise.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__(encoder_layer, num_layers, norm)

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        return self._apply_layers(src, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)


class TransformerDecoder(_LayerStack):
    """``num_layers`` copies of ``decoder_layer``, each attending the same ``memory``, then an optional ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__(decoder_layer, num_layers, norm)

    def forward(self, tgt: Tensor, memory: Tensor, *layer_args: object, **layer_kwargs: object) -> Tensor:
        """``tgt (B, T, d_model)``, ``memory (B, S, d_model)``; the masks and causal flags are the
        arguments of ``TransformerDecoderLayer.forward`` (``tgt_mask``, ``memory_mask``,
        ``tgt_key_padding_mask``, ``memory_key_padding_mask``, ``tgt_is_causal``, ``memory_is_causal``),
        passed to every layer."""
        return self._apply_layers(tgt, memory, *layer_args, **layer_kwargs)
