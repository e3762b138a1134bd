"""Fast decoding for ``TinyTransformer``: a KV cache, batched greedy decoding and the cost arithmetic.

A decoder-only model generates one token per step. Without a cache, step ``t`` reruns the whole
sequence of ``P + t`` tokens (``P`` = prompt length) through every layer, although the keys and values
of the first ``P + t - 1`` tokens are exactly what the previous step computed: causal attention means
an earlier position never looks at a later one, so its hidden states never change. A **KV cache**
keeps each layer's keys and values (``lepton_lib.attention.tiled.KVCache``); the prompt is run once
("prefill") and every later step feeds only the newest token ("decode"). The work of a step then
grows with the sequence only in attention's ``q K^T`` and ``p V`` products, not in the linear layers.

``greedy_decode(model, prompt, n, use_cache=...)`` gives the same tokens either way (the test checks
it token for token), so the cache is a pure speed-up paid for in memory (``kv_cache_bytes``).
Prompts in a batch share one length here (no left padding), as in the book's sequence tasks.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lepton_lib.attention.tiled import KVCache
from lepton_lib.attention.tiny_models import TinyTransformer

__all__ = ["make_kv_caches", "forward_with_cache", "greedy_decode", "kv_cache_bytes", "decode_linear_flops"]


def _check_model(model: object) -> TinyTransformer:
    if not isinstance(model, TinyTransformer):
        raise ValueError(f"model must be a TinyTransformer, got {type(model).__name__}")
    if not model.causal:
        raise ValueError("model must be causal (causal=True) to decode")
    return model


def make_kv_caches(model: TinyTransformer, batch_size: int, max_length: int | None = None) -> list[KVCache]:
    """One empty ``KVCache (B, H, max_length, Dh)`` per layer, with the model's dtype and device."""
    _check_model(model)
    max_length = model.max_length if max_length is None else max_length
    if not isinstance(max_length, int) or not 1 <= max_length <= model.max_length:
        raise ValueError(f"max_length must be an int in [1, {model.max_length}], got {max_length!r}")
    weight = model.token_embedding.weight
    caches = []
    for layer in model.layers:
        attention = layer.self_attn
        caches.append(KVCache(batch_size, attention.num_heads, max_length, attention.head_dim,
                              dtype=weight.dtype, device=weight.device))
    return caches


@torch.no_grad()
def forward_with_cache(model: TinyTransformer, tokens: Tensor, caches: list[KVCache]) -> Tensor:
    """Logits ``(B, T, vocab)`` for ``tokens (B, T)`` that follow the ``caches[0].length`` cached ones.

    Each layer projects only the new tokens, appends their keys and values to its cache, and lets the
    new queries attend every cached position up to their own (``is_causal`` with an offset). This walks
    the same sub-modules as ``TinyTransformer.forward`` in the same order, so the logits agree with a
    full recompute up to float rounding.
    """
    _check_model(model)
    if len(caches) != len(model.layers):
        raise ValueError(f"caches has {len(caches)} entries, expected one per layer ({len(model.layers)})")
    start = caches[0].length
    if not isinstance(tokens, Tensor) or tokens.dim() != 2:
        got = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must have shape (B, T), got {got}")
    if start + tokens.shape[1] > model.max_length:
        raise ValueError(f"{start} cached + {tokens.shape[1]} new tokens exceed max_length = {model.max_length}")
    positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
    x = model.token_embedding(tokens) + model.position_embedding(positions)  # (B, T, d)
    for layer, cache in zip(model.layers, caches):
        if layer.norm_first:  # pre-LN, as TransformerEncoderLayer.forward
            h = layer.norm1(x)
            attended, _ = layer.self_attn(h, h, h, is_causal=True, kv_cache=cache)
            x = x + layer.dropout1(attended)
            x = x + layer._feed_forward_block(layer.norm2(x))
        else:  # post-LN
            attended, _ = layer.self_attn(x, x, x, is_causal=True, kv_cache=cache)
            x = layer.norm1(x + layer.dropout1(attended))
            x = layer.norm2(x + layer._feed_forward_block(x))
    return model.head(model.final_norm(x))


@torch.no_grad()
def greedy_decode(model: nn.Module, prompt: Tensor, num_tokens: int, use_cache: bool = True) -> Tensor:
    """Append the most likely token ``num_tokens`` times to ``prompt (B, P)``; return the new ``(B, num_tokens)``.

    ``use_cache=False`` reruns the whole sequence at every step (``P + t`` tokens at step ``t``);
    ``use_cache=True`` runs the prompt once and then one token per step. Works on a quantized copy of
    the model too (``lepton_lib.scale.compression.quantize_linear_int8`` keeps the module structure).
    """
    model = _check_model(model)
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens < 1:
        raise ValueError(f"num_tokens must be a positive int, got {num_tokens!r}")
    if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.dtype != torch.long or prompt.shape[1] < 1:
        got = f"{tuple(prompt.shape)} {prompt.dtype}" if isinstance(prompt, Tensor) else type(prompt).__name__
        raise ValueError(f"prompt must be an int64 tensor of shape (B, P) with P >= 1, got {got}")
    total = prompt.shape[1] + num_tokens
    # The last generated token is never fed back, so the model sees at most total - 1 positions.
    if total - 1 > model.max_length:
        raise ValueError(f"prompt length {prompt.shape[1]} + num_tokens {num_tokens} - 1 exceeds "
                         f"max_length = {model.max_length}")
    generated = []
    if use_cache:
        caches = make_kv_caches(model, prompt.shape[0], total - 1)
        logits = forward_with_cache(model, prompt, caches)  # prefill: the whole prompt at once
        for step in range(num_tokens):
            next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
            generated.append(next_token)
            if step + 1 < num_tokens:
                logits = forward_with_cache(model, next_token, caches)  # decode: one new token
    else:
        sequence = prompt
        for _ in range(num_tokens):
            next_token = model(sequence)[:, -1].argmax(dim=-1, keepdim=True)
            generated.append(next_token)
            sequence = torch.cat([sequence, next_token], dim=1)
    return torch.cat(generated, dim=1)


def kv_cache_bytes(num_layers: int, batch_size: int, num_heads: int, length: int, head_dim: int,
                   bytes_per_value: int = 4) -> int:
    """Bytes of a full cache: keys and values, ``2 * layers * B * H * length * Dh`` numbers."""
    for name, value in (("num_layers", num_layers), ("batch_size", batch_size), ("num_heads", num_heads),
                        ("length", length), ("head_dim", head_dim), ("bytes_per_value", bytes_per_value)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return 2 * num_layers * batch_size * num_heads * length * head_dim * bytes_per_value


def decode_linear_flops(linear_params: int, prompt_length: int, num_tokens: int, use_cache: bool) -> int:
    """FLOPs spent in the linear layers to generate ``num_tokens`` tokens for one sequence.

    A token passing through linear layers with ``linear_params`` weights costs ``2 * linear_params``
    FLOPs (one multiply-add per weight). Without a cache, step ``t = 0 .. n-1`` processes ``P + t``
    tokens; with it, the prompt's ``P`` tokens once and then one token per later step. Attention's
    own products and the embeddings are left out: they are what the cache does not remove.
    """
    for name, value in (("linear_params", linear_params), ("prompt_length", prompt_length),
                        ("num_tokens", num_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if use_cache:
        tokens = prompt_length + (num_tokens - 1)
    else:
        tokens = sum(prompt_length + t for t in range(num_tokens))
    return 2 * linear_params * tokens
