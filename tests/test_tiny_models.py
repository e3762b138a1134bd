"""lepton_lib.attention.tiny_models: the synthetic tasks, causality, attention maps and the patch embedding.

References: ``torch.sort`` / ``torch.flip`` for the tasks, ``nn.Conv2d`` (kernel = stride = patch) for the
patch embedding, ``F.scaled_dot_product_attention``'s causal rule for the decoder, and the model's own
``forward`` for the layer walk that collects attention maps.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lepton_lib.attention import IGNORE_INDEX, PatchEmbedding, TinyTransformer, TinyViT, make_sequence_task


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_sequence_task_layout(task: str) -> None:
    inputs, targets = make_sequence_task(task, 50, 6, 7, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (50, 12) and inputs.dtype == torch.long
    prompt, separator = inputs[:, :6], inputs[:, 6]
    assert separator.eq(7).all() and prompt.max() < 7 and prompt.min() >= 0
    assert targets[:, :6].eq(IGNORE_INDEX).all()  # nothing to learn inside the prompt
    answer = targets[:, 6:]
    expected = {"copy": prompt, "reverse": torch.flip(prompt, dims=[1]), "sort": torch.sort(prompt, dim=1).values}
    assert torch.equal(answer, expected[task])
    assert torch.equal(inputs[:, 7:], answer[:, :-1])  # teacher forcing: the input is the target shifted right
    again, _ = make_sequence_task(task, 50, 6, 7, torch.Generator().manual_seed(0))
    assert torch.equal(inputs, again)


def test_sequence_task_validation() -> None:
    with pytest.raises(ValueError, match=r"task must be one of \('copy', 'reverse', 'sort'\), got 'shuffle'"):
        make_sequence_task("shuffle", 4, 3, 5)
    with pytest.raises(ValueError, match=r"length must be a positive int, got 0"):
        make_sequence_task("copy", 4, 0, 5)


def test_causal_model_ignores_the_future_and_bidirectional_does_not() -> None:
    torch.manual_seed(0)
    tokens = torch.randint(0, 11, (3, 10))
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 11  # edit position 6 only
    for causal in (True, False):
        model = TinyTransformer(11, 10, d_model=16, num_heads=2, num_layers=2, causal=causal).eval()
        with torch.no_grad():
            diff = (model(tokens) - model(changed)).abs().amax(dim=(0, 2))  # (T,) largest change per position
        if causal:
            assert diff[:6].eq(0).all() and diff[6:].gt(0).all()
        else:
            assert diff.gt(0).all()


@pytest.mark.parametrize("norm_first", [True, False])
def test_attention_maps_are_distributions_and_causal(norm_first: bool) -> None:
    torch.manual_seed(0)
    model = TinyTransformer(11, 8, d_model=16, num_heads=4, num_layers=3, norm_first=norm_first).eval()
    tokens = torch.randint(0, 11, (2, 8))
    maps = model.attention_maps(tokens)
    assert maps.shape == (3, 2, 4, 8, 8)
    torch.testing.assert_close(maps.sum(-1), torch.ones(3, 2, 4, 8))
    assert maps.triu(diagonal=1).eq(0).all()  # no position reads a later one
    # The first layer's weights recomputed by hand from its own projections.
    layer = model.layers[0]
    x = model.token_embedding(tokens) + model.position_embedding(torch.arange(8))
    h = layer.norm1(x) if norm_first else x
    q = layer.self_attn.q_proj(h).unflatten(-1, (4, 4)).transpose(1, 2)
    k = layer.self_attn.k_proj(h).unflatten(-1, (4, 4)).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1) / 2.0).masked_fill(~torch.ones(8, 8, dtype=torch.bool).tril(), float("-inf"))
    torch.testing.assert_close(maps[0], scores.softmax(-1).detach())


def test_generate_matches_teacher_forced_argmax() -> None:
    torch.manual_seed(0)
    model = TinyTransformer(11, 12, d_model=16, num_heads=2, num_layers=2).eval()
    prompt = torch.randint(0, 11, (4, 5))
    generated = model.generate(prompt, 4)
    assert generated.shape == (4, 4)
    with torch.no_grad():
        logits = model(torch.cat([prompt, generated], dim=1))
    # Every generated token is the argmax at the position before it, given the tokens so far.
    assert torch.equal(logits[:, 4:8].argmax(-1), generated)
    assert torch.equal(model.generate(prompt, 4, use_cache=True), generated)  # the KV cache changes no token


def test_forward_with_kv_caches_continues_the_positions() -> None:
    torch.manual_seed(0)
    model = TinyTransformer(11, 12, d_model=16, num_heads=2, num_layers=2).eval()
    tokens = torch.randint(0, 11, (3, 7))
    torch.testing.assert_close(model.embed(tokens[:, 4:], start=4), model.embed(tokens)[:, 4:])
    caches = model.make_kv_caches(batch_size=3)
    with torch.no_grad():
        pieces = [model(tokens[:, :4], kv_caches=caches), model(tokens[:, 4:], kv_caches=caches)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), model(tokens), atol=1e-5, rtol=1e-5)
    assert caches[0].length == 7
    with pytest.raises(ValueError, match=r"7 cached \+ 6 new tokens exceed max_length = 12"):
        model.embed(torch.zeros(1, 6, dtype=torch.long), start=7)
    with pytest.raises(ValueError, match=r"kv_caches has 1 entries, expected one per layer \(2\)"):
        model(tokens, kv_caches=caches[:1])


def test_tiny_transformer_validation() -> None:
    model = TinyTransformer(5, 6, d_model=8, num_heads=2, num_layers=1)
    with pytest.raises(ValueError, match=r"tokens must be an int64 tensor of shape \(B, T\), got \(6,\) torch.int64"):
        model(torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens has length 7, expected at most max_length = 6"):
        model(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 4\], got values in \[0, 5\]"):
        model(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match=r"generate needs a causal model"):
        TinyTransformer(5, 6, d_model=8, num_heads=2, causal=False).generate(torch.zeros(1, 2, dtype=torch.long), 1)


def test_patch_embedding_equals_a_strided_convolution() -> None:
    torch.manual_seed(0)
    embed = PatchEmbedding(image_size=8, patch_size=4, in_channels=3, dim=5)
    conv = nn.Conv2d(3, 5, kernel_size=4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(embed.proj.weight.reshape(5, 3, 4, 4))  # rows of proj: (channel, row, column)
        conv.bias.copy_(embed.proj.bias)
    images = torch.randn(2, 3, 8, 8)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, 5, 2, 2) -> (B, 4 patches, 5) in row-major order
    torch.testing.assert_close(embed(images), expected)
    # Patch 1 is the top-right 4 x 4 square of every channel.
    torch.testing.assert_close(embed.patches(images)[:, 1], images[:, :, :4, 4:].flatten(1))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 8, 8\), got \(2, 1, 8, 8\)"):
        embed(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"patch_size \(3\) must divide image_size \(8\)"):
        PatchEmbedding(8, 3, 1, 4)


def test_vit_shapes_and_class_token_readout() -> None:
    torch.manual_seed(0)
    vit = TinyViT(image_size=8, patch_size=2, num_classes=10, d_model=16, num_heads=2, num_layers=2).eval()
    images = torch.randn(3, 1, 8, 8)
    assert vit(images).shape == (3, 10)
    maps = vit.attention_maps(images)
    assert maps.shape == (2, 3, 2, 17, 17)  # 16 patches + the class token
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 2, 17))
    # Position embeddings make the model see where a patch is: moving patches changes the logits.
    shifted = images.roll(shifts=2, dims=3)
    with torch.no_grad():
        assert not torch.allclose(vit(images), vit(shifted))
