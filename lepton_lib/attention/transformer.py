"""Transformer blocks (Vaswani et al. 2017, arXiv:1706.03762): feed-forward, encoder and decoder layers.

Each layer wraps its sub-blocks (attention, feed-forward) in a residual connection and a LayerNorm.
Two placements of the norm are in use:

* post-LN (the original paper, ``norm_first=False``): ``H = LN(X + MHA(X))``, ``Y = LN(H + FFN(H))``;
* pre-LN (GPT-2 and most large models, ``norm_first=True``): ``H = X + MHA(LN(X))``,
  ``Y = H + FFN(LN(H))``, which keeps an un-normalised residual path and trains more stably when deep.

Masks follow ``lepton_lib.attention.multi_head``: boolean attention masks are True where attending is ALLOWED
(the opposite of ``nn.Transformer*``'s boolean masks), float masks are added to the scores, and
``*_key_padding_mask`` is True at padding positions. ``copy_weights_from_torch`` / ``from_torch``
move weights from the ``torch.nn`` versions for parity tests. Positional encodings live in
``lepton_lib.attention.positional`` and are re-exported here.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lepton_lib.attention.multi_head import MultiHeadAttention

__all__ = [
    "PositionwiseFeedForward",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "copy_weights_from_torch",
    "from_torch",
]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}



def _check_sizes(**sizes: object) -> None:
    """Layer sizes must be positive ints (a float such as 8.0 would fail deep inside nn.Linear)."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name} must be a positive int, got {size!r}")

class PositionwiseFeedForward(nn.Module):
    """``FFN(x) = W_2 dropout(act(W_1 x + b_1)) + b_2``, applied to every position independently.

    ``(..., d_model) -> (..., d_model)`` through a wider hidden layer ``dim_feedforward`` (4x in the
    paper): attention mixes information across positions, this block transforms each position.
    """

    def __init__(
        self, d_model: int, dim_feedforward: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, dim_feedforward=dim_feedforward)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.activation = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


def _to_batch_first(x: Tensor, batch_first: bool, name: str, d_model: int) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != d_model:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        layout = "(B, T, d_model)" if batch_first else "(T, B, d_model)"
        raise ValueError(f"{name} must have shape {layout} with d_model = {d_model}, got {got}")
    return x if batch_first else x.transpose(0, 1)


class TransformerEncoderLayer(nn.Module):
    """Self-attention then feed-forward, each with a residual connection and a LayerNorm.

    ``forward(src (B, S, d_model)) -> (B, S, d_model)`` (length-first if ``batch_first=False``).
    """

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
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward)
        self.d_model, self.norm_first, self.batch_first = d_model, norm_first, batch_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.ffn = PositionwiseFeedForward(d_model, dim_feedforward, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)  # on the attention branch, before the residual sum
        self.dropout2 = nn.Dropout(dropout)  # on the feed-forward branch

    def _attention_block(self, x: Tensor, mask: Tensor | None, padding: Tensor | None, is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, key_padding_mask=padding, attn_mask=mask, is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.ffn(x))

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = _to_batch_first(src, self.batch_first, "src", self.d_model)
        if self.norm_first:  # pre-LN: normalise the input of each branch, keep the residual path raw
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._feed_forward_block(self.norm2(x))
        else:  # post-LN: normalise after each residual sum
            x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._feed_forward_block(x))
        return x if self.batch_first else x.transpose(0, 1)


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder's ``memory``, then feed-forward.

    ``forward(tgt (B, T, d_model), memory (B, S, d_model)) -> (B, T, d_model)``. Self-attention is
    causal by default (``tgt_is_causal=True``); pass ``tgt_is_causal=False`` to use ``tgt_mask``.
    """

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
    ) -> None:
        super().__init__()
        _check_sizes(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward)
        self.d_model, self.norm_first, self.batch_first = d_model, norm_first, batch_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.ffn = PositionwiseFeedForward(d_model, dim_feedforward, dropout, activation, bias)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

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


class TransformerEncoder(nn.Module):
    """``num_layers`` independent copies of ``encoder_layer`` applied in turn, then an optional ``norm``.

    A pre-LN stack needs the final norm: its residual path is never normalised otherwise.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(nn.Module):
    """``num_layers`` copies of ``decoder_layer``, each attending the same ``memory``, then an optional ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.norm = norm

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
        """Arguments as in ``TransformerDecoderLayer.forward``, passed to every layer."""
        x = tgt
        for layer in self.layers:
            x = layer(
                x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                tgt_is_causal, memory_is_causal,
            )
        return x if self.norm is None else self.norm(x)


# --- weight exchange with torch.nn (for parity tests) ------------------------------------------------


def _torch_activation_name(layer: nn.Module) -> str:
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    raise ValueError(f"the torch layer uses activation {act!r}; only relu and exact gelu are supported")


def _torch_layer_config(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> dict:
    return {
        "d_model": layer.self_attn.embed_dim,
        "nhead": layer.self_attn.num_heads,
        "dim_feedforward": layer.linear1.out_features,
        "dropout": layer.dropout.p,
        "activation": _torch_activation_name(layer),
        "norm_first": layer.norm_first,
        "layer_norm_eps": layer.norm1.eps,
        "batch_first": layer.self_attn.batch_first,
        "bias": layer.linear1.bias is not None,
    }


def _our_layer_config(layer: TransformerEncoderLayer | TransformerDecoderLayer) -> dict:
    attn = layer.self_attn
    return {
        "d_model": layer.d_model,
        "nhead": attn.num_heads,
        "dim_feedforward": layer.ffn.linear1.out_features,
        "dropout": layer.dropout1.p,
        "activation": "relu" if isinstance(layer.ffn.activation, nn.ReLU) else "gelu",
        "norm_first": layer.norm_first,
        "layer_norm_eps": layer.norm1.eps,
        "batch_first": layer.batch_first,
        "bias": layer.ffn.linear1.bias is not None,
    }


@torch.no_grad()
def copy_weights_from_torch(ours: nn.Module, theirs: nn.Module) -> nn.Module:
    """Copy ``theirs`` (an ``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``,
    ``nn.TransformerDecoderLayer``, ``nn.TransformerEncoder`` or ``nn.TransformerDecoder``) into the
    matching module of this library, after checking that both have the same configuration."""
    pairs = {
        MultiHeadAttention: nn.MultiheadAttention,
        TransformerEncoderLayer: nn.TransformerEncoderLayer,
        TransformerDecoderLayer: nn.TransformerDecoderLayer,
        TransformerEncoder: nn.TransformerEncoder,
        TransformerDecoder: nn.TransformerDecoder,
    }
    if type(ours) not in pairs or not isinstance(theirs, pairs[type(ours)]):
        raise ValueError(f"cannot copy a {type(theirs).__name__} into a {type(ours).__name__}")
    if isinstance(ours, MultiHeadAttention):
        return ours.copy_from_torch(theirs)
    if isinstance(ours, (TransformerEncoder, TransformerDecoder)):
        if len(ours.layers) != len(theirs.layers) or (ours.norm is None) != (theirs.norm is None):
            raise ValueError(
                f"theirs has {len(theirs.layers)} layers (final norm: {theirs.norm is not None}), "
                f"expected {len(ours.layers)} (final norm: {ours.norm is not None})"
            )
        for our_layer, their_layer in zip(ours.layers, theirs.layers):
            copy_weights_from_torch(our_layer, their_layer)
        if ours.norm is not None:
            ours.norm.load_state_dict(theirs.norm.state_dict())
        return ours
    if _our_layer_config(ours) != _torch_layer_config(theirs):
        raise ValueError(f"theirs has configuration {_torch_layer_config(theirs)}, expected {_our_layer_config(ours)}")
    ours.self_attn.copy_from_torch(theirs.self_attn)
    if isinstance(ours, TransformerDecoderLayer):
        ours.cross_attn.copy_from_torch(theirs.multihead_attn)
        ours.norm3.load_state_dict(theirs.norm3.state_dict())
    ours.ffn.linear1.load_state_dict(theirs.linear1.state_dict())
    ours.ffn.linear2.load_state_dict(theirs.linear2.state_dict())
    ours.norm1.load_state_dict(theirs.norm1.state_dict())
    ours.norm2.load_state_dict(theirs.norm2.state_dict())
    return ours


def from_torch(theirs: nn.Module) -> nn.Module:
    """Build this library's version of a ``torch.nn`` attention/Transformer module, weights included."""
    if isinstance(theirs, nn.MultiheadAttention):
        return MultiHeadAttention.from_torch(theirs)
    if isinstance(theirs, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        cls = TransformerEncoderLayer if isinstance(theirs, nn.TransformerEncoderLayer) else TransformerDecoderLayer
        ours = cls(**_torch_layer_config(theirs))
    elif isinstance(theirs, (nn.TransformerEncoder, nn.TransformerDecoder)):
        cls = TransformerEncoder if isinstance(theirs, nn.TransformerEncoder) else TransformerDecoder
        norm = copy.deepcopy(theirs.norm)
        ours = cls(from_torch(theirs.layers[0]), len(theirs.layers), norm=norm)
    else:
        raise ValueError(f"from_torch does not know {type(theirs).__name__}")
    return copy_weights_from_torch(ours.to(next(theirs.parameters())), theirs)
