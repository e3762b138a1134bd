"""Attention over key blocks: the online softmax of FlashAttention.

``tiled_attention`` computes exact attention one block of keys at a time, keeping per query a
running max and a running sum of exponentials (Milakov & Gimelshein 2018, arXiv:1805.02867;
Dao et al. 2022, arXiv:2205.14135), so neither forward nor backward stores the ``L x S`` weights.
``TiledAttentionFunction`` is the autograd function behind it (its forward and backward are the
algorithm). The KV cache for decoding, the other way of not recomputing, is in
``lepton_lib.attention.kv_cache``.

Shapes, mask conventions and the rule for fully masked rows (zero output, zero gradients) are those
of ``lepton_lib.attention.scaled_dot_product``, whose input checks are reused here.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lepton_lib.attention.scaled_dot_product import causal_mask, check_qkv
from lepton_lib.core.checks import check_positive_int

__all__ = ["tiled_attention", "TiledAttentionFunction"]


def _block_scores(
    q: Tensor, k_block: Tensor, start: int, padding: Tensor | None, is_causal: bool, scale: float
) -> Tensor:
    """Scores ``(..., L, Bk)`` of every query against keys ``start .. start+Bk``, masked with -inf."""
    scores = q @ k_block.transpose(-2, -1) * scale
    blocked = None
    if is_causal:
        blocked = ~causal_mask(q.shape[-2], k_block.shape[-2], offset=-start, device=q.device)
    if padding is not None:
        pad = padding[..., start : start + k_block.shape[-2]].unsqueeze(-2)  # (..., 1, Bk)
        blocked = pad if blocked is None else blocked | pad
    return scores if blocked is None else scores.masked_fill(blocked, -math.inf)


class TiledAttentionFunction(torch.autograd.Function):
    """Forward and backward both walk over key blocks, so nothing of size L x S is ever stored.

    Call it through ``tiled_attention``, which checks the inputs; ``apply(q, k, v, padding, is_causal,
    scale, block_size)`` takes ``padding`` already broadcastable to ``(..., S)`` (True = padding).
    """

    @staticmethod
    def forward(ctx, q, k, v, padding, is_causal, scale, block_size):  # noqa: ANN001, ANN205
        L, S = q.shape[-2], k.shape[-2]
        running_max = q.new_full(q.shape[:-1], -math.inf)  # (..., L) largest score seen so far
        running_sum = q.new_zeros(q.shape[:-1])  # (..., L) sum of exp(score - running_max)
        acc = q.new_zeros(q.shape[:-1] + v.shape[-1:])  # (..., L, Ev) unnormalised output
        for start in range(0, S, block_size):
            if is_causal and start >= L:  # every later key lies in every query's future
                break
            k_block = k[..., start : start + block_size, :]
            scores = _block_scores(q, k_block, start, padding, is_causal, scale)
            new_max = torch.maximum(running_max, scores.amax(dim=-1))
            # Rows that have seen only -inf keep max = -inf; subtract 0 there so exp gives 0, not NaN.
            shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)
            p = torch.exp(scores - shift.unsqueeze(-1))
            correction = torch.exp(running_max - shift)  # rescales what was summed under the old max
            running_sum = running_sum * correction + p.sum(dim=-1)
            acc = acc * correction.unsqueeze(-1) + p @ v[..., start : start + block_size, :]
            running_max = new_max
        empty = running_sum == 0  # fully masked rows: acc is 0 there, and so is the output
        out = acc / running_sum.masked_fill(empty, 1.0).unsqueeze(-1)
        # log-sum-exp per row lets backward recompute each block's weights exactly: p = exp(s - lse).
        lse = torch.where(empty, torch.zeros_like(running_max), running_max + torch.log(running_sum))
        ctx.save_for_backward(q, k, v, padding, out, lse)
        ctx.is_causal, ctx.scale, ctx.block_size = is_causal, scale, block_size
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205
        q, k, v, padding, out, lse = ctx.saved_tensors
        L, S, block = q.shape[-2], k.shape[-2], ctx.block_size
        # d(softmax) needs sum_j p_ij dP_ij = sum_e dO_ie O_ie, one number per row.
        row_dot = (grad_out * out).sum(dim=-1, keepdim=True)
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for start in range(0, S, block):
            if ctx.is_causal and start >= L:
                break
            k_block, v_block = k[..., start : start + block, :], v[..., start : start + block, :]
            scores = _block_scores(q, k_block, start, padding, ctx.is_causal, ctx.scale)
            p = torch.exp(scores - lse.unsqueeze(-1))  # this block's softmax weights, recomputed
            dv[..., start : start + block, :] = p.transpose(-2, -1) @ grad_out
            d_scores = p * (grad_out @ v_block.transpose(-2, -1) - row_dot)
            dq += d_scores @ k_block * ctx.scale
            dk[..., start : start + block, :] = d_scores.transpose(-2, -1) @ q * ctx.scale
        return dq, dk, dv, None, None, None, None


def tiled_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    block_size: int = 128,
    is_causal: bool = False,
    key_padding_mask: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """Exact attention computed one block of ``block_size`` keys at a time (online softmax).

    The idea of FlashAttention (Dao et al. 2022, arXiv:2205.14135) with the online softmax of
    Milakov & Gimelshein (2018, arXiv:1805.02867): keep, per query, a running max ``m`` and running
    sum ``l`` of ``exp(score - m)``; when a new block raises the max to ``m'``, rescale the sum and
    the partial output by ``exp(m - m')``. Forward and backward store O(L + S) per row instead of the
    L x S weight matrix (the backward recomputes each block's weights from the saved log-sum-exp).
    Written for teaching: it is slower than torch's kernel but equal to the reference path.

    Shapes as in ``scaled_dot_product_attention``. ``key_padding_mask`` (True = padding) has shape
    ``(..., S)`` matching query's batch dims, or ``(B, S)`` with ``B = query.shape[0]`` (then shared by
    the middle dims, e.g. heads). Fully masked rows give zeros, as everywhere in this module.
    """
    check_qkv(query, key, value)
    check_positive_int("block_size", block_size)
    batch, S = tuple(query.shape[:-2]), key.shape[-2]
    padding = key_padding_mask
    if padding is not None:
        if not isinstance(padding, Tensor) or padding.dtype != torch.bool or padding.device != query.device:
            got = f"{padding.dtype} on {padding.device}" if isinstance(padding, Tensor) else type(padding)
            raise ValueError(f"key_padding_mask must be a bool tensor on {query.device}, got {got}")
        shape = tuple(padding.shape)
        if shape == batch[:1] + (S,) and len(batch) > 1:
            padding = padding.reshape(batch[:1] + (1,) * (len(batch) - 1) + (S,))
        elif shape != batch + (S,):
            raise ValueError(
                f"key_padding_mask has shape {shape}, expected {batch + (S,)} or {batch[:1] + (S,)}"
            )
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return TiledAttentionFunction.apply(query, key, value, padding, is_causal, scale, block_size)
