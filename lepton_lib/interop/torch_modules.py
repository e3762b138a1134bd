"""Weight exchange between this library's attention/Transformer modules and their ``torch.nn`` twins.

The parity tests build a ``torch.nn`` module, copy its weights into ours (or ours into it) and check
that both compute the same thing. Supported pairs:

* ``MultiHeadAttention`` <-> ``nn.MultiheadAttention`` (``copy_mha_weights_from_torch``,
  ``copy_mha_weights_to_torch``, ``mha_from_torch``);
* ``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder`` and
  ``TransformerDecoder`` <- their ``nn.*`` namesakes (``copy_weights_from_torch``, ``from_torch``,
  which also accept a multi-head attention pair).

``nn.MultiheadAttention`` packs ``[W_Q; W_K; W_V]`` into one ``in_proj_weight`` when ``kdim = vdim =
embed_dim``; ours keeps three ``nn.Linear`` layers, so the copy splits (or fills) the packed rows.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lepton_lib.attention.multi_head import MultiHeadAttention
from lepton_lib.attention.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "copy_mha_weights_from_torch",
    "copy_mha_weights_to_torch",
    "mha_from_torch",
    "copy_weights_from_torch",
    "from_torch",
]


# --- MultiHeadAttention <-> nn.MultiheadAttention -----------------------------------------------------


def _check_mha_twins(ours: MultiHeadAttention, other: nn.MultiheadAttention) -> None:
    mine = (ours.embed_dim, ours.num_heads, ours.kdim, ours.vdim, ours.q_proj.bias is not None)
    theirs = (other.embed_dim, other.num_heads, other.kdim, other.vdim, other.in_proj_bias is not None)
    if mine != theirs:
        raise ValueError(f"other has (embed_dim, num_heads, kdim, vdim, bias) = {theirs}, expected {mine}")
    if other.bias_k is not None or other.add_zero_attn:
        raise ValueError("other uses add_bias_kv or add_zero_attn, which this module does not implement")


def _torch_projections(other: nn.MultiheadAttention) -> tuple[list[Tensor], list[Tensor] | None]:
    """``other``'s W_Q, W_K, W_V and biases as views (packed rows [W_Q; W_K; W_V] if kdim = vdim = E)."""
    if other.in_proj_weight is not None:  # packed: kdim = vdim = embed_dim
        weights = list(other.in_proj_weight.split(other.embed_dim))
    else:
        weights = [other.q_proj_weight, other.k_proj_weight, other.v_proj_weight]
    biases = None if other.in_proj_bias is None else list(other.in_proj_bias.split(other.embed_dim))
    return weights, biases


@torch.no_grad()
def copy_mha_weights_from_torch(ours: MultiHeadAttention, other: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy the weights of an ``nn.MultiheadAttention`` of the same shape into ``ours``; return ``ours``."""
    _check_mha_twins(ours, other)
    weights, biases = _torch_projections(other)
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.copy_(weights[i])
        if biases is not None:
            proj.bias.copy_(biases[i])
    ours.out_proj.load_state_dict(other.out_proj.state_dict())
    return ours


@torch.no_grad()
def copy_mha_weights_to_torch(ours: MultiHeadAttention, other: nn.MultiheadAttention) -> nn.MultiheadAttention:
    """Copy the weights of ``ours`` into an ``nn.MultiheadAttention`` of the same shape; return ``other``."""
    _check_mha_twins(ours, other)
    weights, biases = _torch_projections(other)
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        weights[i].copy_(proj.weight)  # the views write through to the packed tensor
        if biases is not None:
            biases[i].copy_(proj.bias)
    other.out_proj.load_state_dict(ours.out_proj.state_dict())
    return other


def mha_from_torch(other: nn.MultiheadAttention) -> MultiHeadAttention:
    """A new ``MultiHeadAttention`` with ``other``'s configuration, dtype, device and weights."""
    bias = other.in_proj_bias is not None
    ours = MultiHeadAttention(
        other.embed_dim, other.num_heads, other.dropout, bias, other.kdim, other.vdim, other.batch_first
    )
    return copy_mha_weights_from_torch(ours.to(other.out_proj.weight), other)


# --- Transformer layers and stacks <- torch.nn ---------------------------------------------------------


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
        "attention_dropout": layer.self_attn.dropout,
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
        "attention_dropout": attn.dropout,
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
        return copy_mha_weights_from_torch(ours, theirs)
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
    copy_mha_weights_from_torch(ours.self_attn, theirs.self_attn)
    if isinstance(ours, TransformerDecoderLayer):
        copy_mha_weights_from_torch(ours.cross_attn, theirs.multihead_attn)
        ours.norm3.load_state_dict(theirs.norm3.state_dict())
    ours.ffn.linear1.load_state_dict(theirs.linear1.state_dict())
    ours.ffn.linear2.load_state_dict(theirs.linear2.state_dict())
    ours.norm1.load_state_dict(theirs.norm1.state_dict())
    ours.norm2.load_state_dict(theirs.norm2.state_dict())
    return ours


def from_torch(theirs: nn.Module) -> nn.Module:
    """Build this library's version of a ``torch.nn`` attention/Transformer module, weights included."""
    if isinstance(theirs, nn.MultiheadAttention):
        return mha_from_torch(theirs)
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
