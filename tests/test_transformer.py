"""lepton_lib.attention.transformer and lepton_lib.attention.positional against torch.nn and against the papers' formulas.

Encoder/decoder layers and stacks must match ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
(post-LN and pre-LN, relu and gelu, eval and train with dropout 0) with the same weights: outputs,
input gradients and every parameter gradient, to 1e-5 in float32 and 1e-10 in float64.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.attention import causal_mask
from lepton_lib.attention import (
    LearnedPositionalEmbedding,
    PositionwiseFeedForward,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    apply_rotary_embedding,
    sinusoidal_positional_encoding,
)
from lepton_lib.interop import copy_weights_from_torch, from_torch
from lepton_lib.core import module_flowchart

from parity import DEVICES, DTYPES, assert_close  # noqa: E402  (tests/ is on sys.path)


pytestmark = pytest.mark.usefixtures("single_thread")


def randn(*shape: int, dtype: torch.dtype = torch.float64, device: str = "cpu", seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


# --- positional encodings --------------------------------------------------------------------------


def test_sinusoidal_encoding_matches_the_paper_formula() -> None:
    length, dim = 50, 16
    table = sinusoidal_positional_encoding(length, dim, dtype=torch.float64)
    expected = [
        [
            math.sin(p / 10000 ** (i / dim)) if i % 2 == 0 else math.cos(p / 10000 ** ((i - 1) / dim))
            for i in range(dim)
        ]
        for p in range(length)
    ]
    assert table.shape == (length, dim) and table.dtype == torch.float64
    torch.testing.assert_close(table, torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)
    assert sinusoidal_positional_encoding(3, 4).dtype == torch.float32


def test_sinusoidal_offset_is_a_fixed_rotation() -> None:
    """PE[p + k] = R_k PE[p] with R_k block-diagonal 2x2 rotations, the same matrix for every p."""
    dim, k = 8, 5
    table = sinusoidal_positional_encoding(40, dim, dtype=torch.float64)
    rotation = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(0, dim, 2):
        angle = k / 10000 ** (i / dim)
        c, s = math.cos(angle), math.sin(angle)
        rotation[i : i + 2, i : i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    torch.testing.assert_close(table[:-k] @ rotation, table[k:], atol=1e-12, rtol=0)


def test_learned_positional_embedding_looks_up_rows_and_rejects_out_of_range() -> None:
    torch.manual_seed(0)
    embedding = LearnedPositionalEmbedding(max_length=6, dim=4)
    positions = torch.tensor([[0, 2, 5], [1, 1, 3]])
    out = embedding(positions)
    assert out.shape == (2, 3, 4)
    torch.testing.assert_close(out, F.embedding(positions, embedding.weight), rtol=0, atol=0)
    out.sum().backward()
    assert embedding.weight.grad[[0, 2, 5, 3]].eq(1).all() and embedding.weight.grad[1].eq(2).all()
    assert embedding.weight.grad[4].eq(0).all()
    with pytest.raises(ValueError, match=r"positions must lie in \[0, 5\], got values in \[0, 6\]"):
        embedding(torch.tensor([0, 6]))
    with pytest.raises(ValueError, match=r"positions must be an integer tensor, got torch.float32"):
        embedding(torch.zeros(3))


def rope_by_complex_numbers(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Su et al.'s formulation: each feature pair is a complex number multiplied by e^{i m theta_j}."""
    D = x.shape[-1]
    theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    phases = torch.polar(torch.ones(len(positions), D // 2, dtype=torch.float64), positions[:, None].double() * theta)
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], D // 2, 2).contiguous())
    return torch.view_as_real(pairs * phases).flatten(-2).to(x.dtype)


def test_rope_matches_complex_formulation_and_keeps_norms() -> None:
    x = randn(2, 3, 7, 8)
    positions = torch.tensor([0, 1, 2, 5, 9, 40, 100])
    rotated = apply_rotary_embedding(x, positions)
    torch.testing.assert_close(rotated, rope_by_complex_numbers(x, positions), atol=1e-12, rtol=0)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-12, rtol=0)
    # Default positions are 0..L-1; a decoder step rotates by its absolute position.
    default = apply_rotary_embedding(x)
    torch.testing.assert_close(default, rope_by_complex_numbers(x, torch.arange(7)), atol=1e-12, rtol=0)
    torch.testing.assert_close(apply_rotary_embedding(x[..., 4:, :], torch.arange(4, 7)), default[..., 4:, :])


def test_rope_scores_depend_on_relative_position_only() -> None:
    q, k = randn(1, 8, seed=1), randn(1, 8, seed=2)

    def score(m: int, n: int) -> torch.Tensor:
        rq = apply_rotary_embedding(q, torch.tensor([m]))
        rk = apply_rotary_embedding(k, torch.tensor([n]))
        return (rq * rk).sum()

    torch.testing.assert_close(score(3, 1), score(10, 8), atol=1e-12, rtol=0)
    torch.testing.assert_close(score(0, 7), score(20, 27), atol=1e-12, rtol=0)
    assert not torch.isclose(score(3, 1), score(1, 3))  # the offset's sign matters


def test_positional_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"dim must be a positive even int \(features come in sin/cos pairs\), got 7"):
        sinusoidal_positional_encoding(4, 7)
    with pytest.raises(ValueError, match=r"length must be a non-negative int, got -1"):
        sinusoidal_positional_encoding(-1, 8)
    with pytest.raises(ValueError, match=r"x.shape\[-1\] must be a positive even int"):
        apply_rotary_embedding(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"positions must have shape \(3,\) \(one per row of x\), got \(4,\)"):
        apply_rotary_embedding(torch.zeros(3, 4), torch.arange(4))


# --- feed-forward and layers against torch.nn -------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward_is_two_linear_maps_around_the_activation(activation: str) -> None:
    torch.manual_seed(0)
    ffn = PositionwiseFeedForward(6, 10, activation=activation).double()
    x = randn(2, 3, 6)
    hidden = x @ ffn.linear1.weight.T + ffn.linear1.bias
    hidden = hidden.clamp_min(0) if activation == "relu" else 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))
    assert_close(ffn(x), hidden @ ffn.linear2.weight.T + ffn.linear2.bias, torch.float64)


def torch_grads_by_our_names(ours: nn.Module, theirs: nn.Module) -> dict[str, torch.Tensor]:
    """Map every parameter name of ours to the matching gradient of the torch module, checking that
    every torch parameter is used (so no parameter of either side escapes the comparison)."""
    theirs_grads = {name: p.grad for name, p in theirs.named_parameters()}
    mapped, used = {}, set()
    for name, _ in ours.named_parameters():
        their_name = name.replace("ffn.", "").replace("cross_attn.", "multihead_attn.")
        for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):  # torch packs [W_Q; W_K; W_V] in in_proj
            if f".{proj}." in their_name:
                prefix, kind = their_name.split(f".{proj}.")
                their_name = f"{prefix}.in_proj_{kind}"
                mapped[name] = theirs_grads[their_name].chunk(3)[i]
        mapped.setdefault(name, theirs_grads[their_name])
        used.add(their_name)
    assert used == set(theirs_grads)
    return mapped


def check_parity(
    ours: nn.Module,
    theirs: nn.Module,
    inputs: list[torch.Tensor],
    our_kwargs: dict,
    their_kwargs: dict,
    dtype: torch.dtype,
) -> None:
    """Same output, same input gradients and same parameter gradients for a random upstream gradient."""
    inputs = [x.detach().requires_grad_() for x in inputs]
    ours_out = ours(*inputs, **our_kwargs)
    theirs_out = theirs(*inputs, **their_kwargs)
    assert_close(ours_out, theirs_out, dtype)
    grad_out = randn(*ours_out.shape, dtype=dtype, seed=7).to(ours_out.device)
    ours_in = torch.autograd.grad(ours_out, inputs, grad_out, retain_graph=True)
    theirs_in = torch.autograd.grad(theirs_out, inputs, grad_out, retain_graph=True)
    for a, b in zip(ours_in, theirs_in):
        assert_close(a, b, dtype)
    ours_out.backward(grad_out)
    theirs_out.backward(grad_out)
    their_grads = torch_grads_by_our_names(ours, theirs)
    for name, param in ours.named_parameters():
        assert_close(param.grad, their_grads[name], dtype)


def padding_mask(B: int, S: int, device: str) -> torch.Tensor:
    pad = torch.zeros(B, S, dtype=torch.bool, device=device)
    pad[0, S - 2 :] = True
    pad[-1, 1] = True
    return pad


LAYER_CASES = [(nf, act, mode) for nf in (False, True) for act in ("relu", "gelu") for mode in ("eval", "train")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first, activation, mode", LAYER_CASES)
def test_encoder_layer_matches_torch(norm_first: bool, activation: str, mode: str, dtype, device: str) -> None:
    torch.manual_seed(0)
    config = {"dropout": 0.0, "activation": activation, "norm_first": norm_first, "batch_first": True}
    theirs = nn.TransformerEncoderLayer(8, 2, 16, **config)
    theirs = theirs.to(dtype).to(device).train(mode == "train")
    ours = from_torch(theirs).train(mode == "train")
    B, S = 3, 5
    allowed = torch.rand(S, S, generator=torch.Generator().manual_seed(3)) > 0.3
    allowed.fill_diagonal_(True)
    masks = {"src_mask": ~allowed.to(device), "src_key_padding_mask": padding_mask(B, S, device)}
    # The same bool masks for both (True = blocked, torch's convention): a drop-in swap flips nothing.
    check_parity(ours, theirs, [randn(B, S, 8, dtype=dtype, device=device)], masks, masks, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first, activation, mode", LAYER_CASES)
def test_decoder_layer_matches_torch(norm_first: bool, activation: str, mode: str, dtype, device: str) -> None:
    torch.manual_seed(0)
    config = {"dropout": 0.0, "activation": activation, "norm_first": norm_first, "batch_first": True}
    theirs = nn.TransformerDecoderLayer(8, 2, 16, **config)
    theirs = theirs.to(dtype).to(device).train(mode == "train")
    ours = from_torch(theirs).train(mode == "train")
    B, T, S = 3, 4, 6  # cross-attention with T != S
    pad, memory_pad = padding_mask(B, T, device), padding_mask(B, S, device)
    check_parity(
        ours, theirs, [randn(B, T, 8, dtype=dtype, device=device), randn(B, S, 8, dtype=dtype, device=device, seed=1)],
        {"tgt_key_padding_mask": pad, "memory_key_padding_mask": memory_pad},  # causal by default
        {
            "tgt_mask": nn.Transformer.generate_square_subsequent_mask(T, device=device, dtype=dtype),
            "tgt_is_causal": True,
            "tgt_key_padding_mask": torch.zeros(B, T, dtype=dtype, device=device).masked_fill(pad, float("-inf")),
            "memory_key_padding_mask": memory_pad,
        },
        dtype,
    )


def test_decoder_layer_memory_mask_and_length_first_layout() -> None:
    torch.manual_seed(0)
    theirs = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=False).double()
    ours = from_torch(theirs)
    assert not ours.batch_first
    T, S, B = 4, 6, 2
    allowed = torch.rand(T, S, generator=torch.Generator().manual_seed(4)) > 0.3
    allowed[:, 0] = True
    check_parity(
        ours, theirs, [randn(T, B, 8), randn(S, B, 8, seed=1)],
        {"memory_mask": ~allowed, "tgt_is_causal": False},  # the same bool mask as torch's, True = blocked
        {"memory_mask": ~allowed},
        torch.float64,
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_and_decoder_stacks_match_torch(norm_first: bool) -> None:
    torch.manual_seed(0)
    enc_layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, batch_first=True)
    their_encoder = nn.TransformerEncoder(enc_layer, 3, norm=nn.LayerNorm(8), enable_nested_tensor=False).double()
    dec_layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, batch_first=True)
    their_decoder = nn.TransformerDecoder(dec_layer, 2, norm=nn.LayerNorm(8)).double()
    # torch's stacks deep-copy one layer, so make the copies differ before comparing.
    with torch.no_grad():
        for p in list(their_encoder.parameters()) + list(their_decoder.parameters()):
            p.add_(0.1 * torch.randn_like(p))
    our_encoder, our_decoder = from_torch(their_encoder), from_torch(their_decoder)
    assert isinstance(our_encoder, TransformerEncoder) and isinstance(our_decoder, TransformerDecoder)
    src, tgt = randn(2, 5, 8), randn(2, 4, 8, seed=1)
    pad = padding_mask(2, 5, "cpu")
    padding = {"src_key_padding_mask": pad}
    check_parity(our_encoder, their_encoder, [src], padding, padding, torch.float64)
    causal = nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    check_parity(
        our_decoder, their_decoder, [tgt, src],
        {"memory_key_padding_mask": pad},
        {"tgt_mask": causal, "tgt_is_causal": True, "memory_key_padding_mask": pad},
        torch.float64,
    )


def test_explicit_causal_mask_equals_the_causal_flag() -> None:
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0).double()
    x = randn(2, 5, 8)
    blocked = ~causal_mask(5, 5)  # src_mask follows nn.TransformerEncoderLayer: True = may NOT attend
    assert_close(layer(x, is_causal=True), layer(x, src_mask=blocked), torch.float64)
    assert not torch.allclose(layer(x, is_causal=True), layer(x))


def test_module_flowchart_shows_the_layer_structure() -> None:
    script = module_flowchart(TransformerDecoderLayer(8, 2, 16)).script
    for label in ("self_attn: MultiHeadAttention", "cross_attn: MultiHeadAttention", "ffn: PositionwiseFeedForward"):
        assert label in script


def test_transformer_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"activation must be one of \['gelu', 'relu'\], got 'tanh'"):
        TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"embed_dim \(8\) must be divisible by num_heads \(3\)"):
        TransformerEncoderLayer(8, 3)
    with pytest.raises(ValueError, match=r"src must have shape \(B, T, d_model\) with d_model = 8, got \(2, 5, 6\)"):
        TransformerEncoderLayer(8, 2)(torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match=r"memory must have shape \(T, B, d_model\) with d_model = 8, got \(2, 5\)"):
        TransformerDecoderLayer(8, 2, batch_first=False)(torch.zeros(4, 2, 8), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"tgt_mask \(shape \(4, 4\)\) was given with tgt_is_causal=True"):
        TransformerDecoderLayer(8, 2)(torch.zeros(2, 4, 8), torch.zeros(2, 5, 8), tgt_mask=torch.ones(4, 4).bool())
    with pytest.raises(ValueError, match=r"num_layers must be >= 1, got 0"):
        TransformerEncoder(TransformerEncoderLayer(8, 2), 0)
    with pytest.raises(ValueError, match=r"theirs has configuration .*'nhead': 4.*, expected .*'nhead': 2"):
        theirs = nn.TransformerEncoderLayer(8, 4, 16, batch_first=True)
        copy_weights_from_torch(TransformerEncoderLayer(8, 2, 16), theirs)
    with pytest.raises(ValueError, match=r"cannot copy a TransformerDecoderLayer into a TransformerEncoderLayer"):
        copy_weights_from_torch(TransformerEncoderLayer(8, 2), nn.TransformerDecoderLayer(8, 2))
    with pytest.raises(ValueError, match=r"only relu and exact gelu are supported"):
        from_torch(nn.TransformerEncoderLayer(8, 2, activation=nn.Tanh()))


def test_sub_block_dropouts_override_the_layer_dropout() -> None:
    # attention_dropout / ffn_dropout replace what BERT used to do by editing a built layer.
    torch.manual_seed(0)
    old_style = TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation="gelu")
    old_style.self_attn.dropout = 0.2
    old_style.ffn.dropout = nn.Identity()
    torch.manual_seed(0)
    new_style = TransformerEncoderLayer(
        16, 4, 32, dropout=0.1, activation="gelu", attention_dropout=0.2, ffn_dropout=0.0
    )
    assert repr(new_style) == repr(old_style) and new_style.self_attn.dropout == 0.2
    assert isinstance(new_style.ffn.dropout, nn.Identity)
    assert list(new_style.state_dict()) == list(old_style.state_dict())
    for ours, theirs in zip(new_style.state_dict().values(), old_style.state_dict().values()):
        assert torch.equal(ours, theirs)
    x = randn(2, 5, 16, dtype=torch.float32)
    torch.manual_seed(1)
    expected = old_style.train()(x)
    torch.manual_seed(1)
    assert torch.equal(new_style.train()(x), expected)  # same random numbers drawn in the same order
    # None keeps the layer's dropout; a non-zero ffn_dropout keeps a Dropout module.
    default = TransformerDecoderLayer(16, 4, 32, dropout=0.3, ffn_dropout=0.05)
    assert default.self_attn.dropout == default.cross_attn.dropout == 0.3
    assert isinstance(default.ffn.dropout, nn.Dropout) and default.ffn.dropout.p == 0.05
