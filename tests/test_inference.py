"""KV-cache decoding gives the recompute decoder's tokens and logits; the cost formulas by counting."""
from __future__ import annotations

import pytest
import torch

from lepton_lib.scale import quantize_linear_int8
from lepton_lib.scale import (
    decode_linear_flops,
    forward_with_cache,
    greedy_decode,
    make_kv_caches,
)
from lepton_lib.attention import TinyTransformer, kv_cache_bytes

pytestmark = pytest.mark.usefixtures("single_thread")


def _model(norm_first: bool = True, seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    model = TinyTransformer(vocab_size=13, max_length=40, d_model=32, num_heads=4, num_layers=3,
                            norm_first=norm_first).eval()
    with torch.no_grad():  # larger logits than at initialisation, so the argmax is not decided by rounding
        model.head.weight.mul_(20.0)
    return model


@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_logits_equal_full_forward(norm_first):
    model = _model(norm_first)
    tokens = torch.randint(0, 13, (3, 17), generator=torch.Generator().manual_seed(1))
    full = model(tokens)
    caches = make_kv_caches(model, 3)
    pieces = [forward_with_cache(model, tokens[:, :5], caches)]  # a prefill of 5 tokens
    pieces += [forward_with_cache(model, tokens[:, t : t + 1], caches) for t in range(5, 17)]  # then one by one
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert caches[0].length == 17


@pytest.mark.parametrize("norm_first", [True, False])
def test_kv_cache_decoding_equals_recompute_token_for_token(norm_first):
    model = _model(norm_first, seed=2)
    prompt = torch.randint(0, 13, (4, 6), generator=torch.Generator().manual_seed(3))
    cached = greedy_decode(model, prompt, 30, use_cache=True)
    recomputed = greedy_decode(model, prompt, 30, use_cache=False)
    assert torch.equal(cached, recomputed)
    assert torch.equal(recomputed, model.generate(prompt, 30))  # the model's own decoder
    assert len(set(cached.flatten().tolist())) > 1  # not a degenerate constant output


def test_batched_decoding_equals_one_sequence_at_a_time():
    model = _model(seed=4)
    prompt = torch.randint(0, 13, (5, 4), generator=torch.Generator().manual_seed(5))
    batched = greedy_decode(model, prompt, 12)
    one_by_one = torch.cat([greedy_decode(model, prompt[i : i + 1], 12) for i in range(5)])
    assert torch.equal(batched, one_by_one)


def test_cache_decoding_runs_on_an_int8_model():
    model = _model(seed=6)
    prompt = torch.randint(0, 13, (2, 5), generator=torch.Generator().manual_seed(7))
    quantized = quantize_linear_int8(model)
    assert torch.equal(greedy_decode(quantized, prompt, 10, use_cache=True),
                       greedy_decode(quantized, prompt, 10, use_cache=False))


def test_decode_checks_its_arguments():
    model = _model()
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(model, torch.zeros(1, 30, dtype=torch.long), 12)  # 30 + 12 - 1 > 40
    greedy_decode(model, torch.zeros(1, 30, dtype=torch.long), 11)  # exactly fits
    with pytest.raises(ValueError, match="prompt"):
        greedy_decode(model, torch.zeros(1, 3), 2)
    with pytest.raises(ValueError, match="causal"):
        greedy_decode(TinyTransformer(5, 8, causal=False), torch.zeros(1, 2, dtype=torch.long), 2)


def test_cache_size_and_flop_counts():
    model = _model()
    caches = make_kv_caches(model, batch_size=2, max_length=40)
    allocated = sum(c.keys.numel() * 4 + c.values.numel() * 4 for c in caches)
    assert kv_cache_bytes(3, 2, 4, 40, 8) == allocated
    # without the cache: 3 + 4 + 5 tokens pass through the layers; with it: 3 + 1 + 1
    assert decode_linear_flops(10, 3, 3, use_cache=False) == 2 * 10 * 12
    assert decode_linear_flops(10, 3, 3, use_cache=True) == 2 * 10 * 5
