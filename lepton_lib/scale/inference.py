"""Fast decoding for ``TinyTransformer``: a KV cache, batched greedy decoding and the cost arithmetic.

A decoder-only model generates one token per step. Without a cache, step ``t`` reruns the whole
sequence of ``P + t`` tokens (``P`` = prompt length) through every layer, although the keys and values
of the first ``P + t - 1`` tokens are exactly what the previous step computed: causal attention means
an earlier position never looks at a later one, so its hidden states never change. A **KV cache**
keeps each layer's keys and values (``lepton_lib.attention.kv_cache.KVCache``); the prompt is run once
("prefill") and every later step feeds only the newest token ("decode"). The work of a step then
grows with the sequence only in attention's ``q K^T`` and ``p V`` products, not in the linear layers.

``greedy_decode(model, prompt, n, use_cache=...)`` gives the same tokens either way (the test checks
it token for token), so the cache is a pure speed-up paid for in memory
(``lepton_lib.attention.kv_cache.kv_cache_bytes``).
Prompts in a batch share one length here (no left padding), as in the book's sequence tasks.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lepton_lib.attention.kv_cache import KVCache
from lepton_lib.attention.tiny_models import TinyTransformer
from lepton_lib.core.checks import check_positive_int

__all__ = ["make_kv_caches", "forward_with_cache", "greedy_decode", "decode_linear_flops"]


def _check_model(model: object) -> TinyTransformer:
    if not isinstance(model, TinyTransformer):
        raise ValueError(f"model must be a TinyTransformer, got {type(model).__name__}")
    if not model.causal:
        raise ValueError("model must be causal (causal=True) to decode")
    return model


def make_kv_caches(model: TinyTransformer, batch_size: int, max_length: int | None = None) -> list[KVCache]:
    """One empty ``KVCache (B, H, max_length, Dh)`` per layer, with the model's dtype and device."""
    return _check_model(model).make_kv_caches(batch_size, max_length)


@torch.no_grad()
def forward_with_cache(model: TinyTransformer, tokens: Tensor, caches: list[KVCache]) -> Tensor:
    """Logits ``(B, T, vocab)`` for ``tokens (B, T)`` that follow the ``caches[0].length`` cached ones.

    Each layer projects only the new tokens, appends their keys and values to its cache, and lets the
    new queries attend every cached position up to their own (``is_causal`` with an offset). This walks
    the same sub-modules as ``TinyTransformer.forward`` in the same order, so the logits agree with a
    full recompute up to float rounding. The walk itself is ``TinyTransformer.forward(tokens, kv_caches)``.
    """
    return _check_model(model)(tokens, kv_caches=caches)


def greedy_decode(model: nn.Module, prompt: Tensor, num_tokens: int, use_cache: bool = True) -> Tensor:
    """Append the most likely token ``num_tokens`` times to ``prompt (B, P)``; return the new ``(B, num_tokens)``.

    ``use_cache=False`` reruns the whole sequence at every step (``P + t`` tokens at step ``t``);
    ``use_cache=True`` runs the prompt once and then one token per step. Works on a quantized copy of
    the model too (``lepton_lib.scale.compression.quantize_linear_int8`` keeps the module structure).
    The decoder is ``TinyTransformer.generate``; this function checks the model and picks the cache.
    """
    return _check_model(model).generate(prompt, num_tokens, use_cache=use_cache)


def decode_linear_flops(linear_params: int, prompt_length: int, num_tokens: int, use_cache: bool) -> int:
    """FLOPs spent in the linear layers to generate ``num_tokens`` tokens for one sequence.

    A token passing through linear layers with ``linear_params`` weights costs ``2 * linear_params``
    FLOPs (one multiply-add per weight). Without a cache, step ``t = 0 .. n-1`` processes ``P + t``
    tokens; with it, the prompt's ``P`` tokens once and then one token per later step. Attention's
    own products and the embeddings are left out: they are what the cache does not remove.
    """
    for name, value in (("linear_params", linear_params), ("prompt_length", prompt_length),
                        ("num_tokens", num_tokens)):
        check_positive_int(name, value)
    if use_cache:
        tokens = prompt_length + (num_tokens - 1)
    else:
        tokens = sum(prompt_length + t for t in range(num_tokens))
    return 2 * linear_params * tokens
