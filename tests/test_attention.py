"""lepton_lib.attention (scaled_dot_product, multi_head, tiled, kv_cache) against torch: SDPA, nn.MultiheadAttention, tiling, KV cache.

Forward outputs and backward gradients (inputs and every parameter) must agree to 1e-5 in float32
and 1e-10 in float64. Tests marked ``gpu`` repeat the parity on CUDA (skipped without a GPU).
"""
from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lepton_lib.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from lepton_lib.attention import KVCache, tiled_attention
from lepton_lib.interop import copy_mha_weights_from_torch, copy_mha_weights_to_torch, mha_from_torch

from parity import DEVICES, DTYPES, assert_close  # noqa: E402  (tests/ is on sys.path)


pytestmark = pytest.mark.usefixtures("single_thread")


def randn(*shape: int, dtype: torch.dtype = torch.float64, device: str = "cpu", seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype).to(device).requires_grad_()


def run(fn, inputs: list[torch.Tensor], seed: int = 99) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Output and the gradients of ``inputs`` for a random (fixed) upstream gradient."""
    out = fn(*inputs)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype).to(out.device)
    return out, torch.autograd.grad(out, inputs, grad_out)


def bool_mask(*shape: int, seed: int = 1, device: str = "cpu") -> torch.Tensor:
    """Random boolean mask (True = attend) with at least one allowed key per query row."""
    mask = torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) > 0.4
    mask[..., 0] = True
    return mask.to(device)


def float_mask(*shape: int, dtype: torch.dtype, seed: int = 2, device: str = "cpu") -> torch.Tensor:
    """Random additive mask: finite biases plus some -inf entries, never a whole row of -inf."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.randn(*shape, generator=generator, dtype=dtype)
    mask = mask.masked_fill(torch.rand(*shape, generator=generator) > 0.7, float("-inf"))
    mask[..., 0] = 0.5
    return mask.to(device)


# --- scaled dot-product attention against F.scaled_dot_product_attention --------------------------

SAME = ((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 8))  # query, key, value shapes with L == S
CROSS = ((2, 3, 4, 8), (2, 3, 7, 8), (2, 3, 7, 6))  # L = 4 queries, S = 7 keys, Ev = 6

# (name, (query, key, value) shapes, keyword arguments as a function of dtype and device)
SDPA_CASES = [
    ("no mask", SAME, lambda dt, dev: {}),
    ("cross L != S", CROSS, lambda dt, dev: {}),
    ("3-D inputs", ((4, 5, 8), (4, 6, 8), (4, 6, 3)), lambda dt, dev: {}),
    ("2-D inputs", ((5, 8), (6, 8), (6, 3)), lambda dt, dev: {}),
    ("bool mask", CROSS, lambda dt, dev: {"attn_mask": bool_mask(2, 3, 4, 7, device=dev)}),
    ("float mask", CROSS, lambda dt, dev: {"attn_mask": float_mask(2, 3, 4, 7, dtype=dt, device=dev)}),
    ("causal L == S", SAME, lambda dt, dev: {"is_causal": True}),
    ("causal L < S", CROSS, lambda dt, dev: {"is_causal": True}),
    ("causal L > S", ((2, 3, 7, 8), (2, 3, 4, 8), (2, 3, 4, 8)), lambda dt, dev: {"is_causal": True}),
    ("broadcast (L, S)", CROSS, lambda dt, dev: {"attn_mask": bool_mask(4, 7, device=dev)}),
    ("broadcast (H, L, S)", CROSS, lambda dt, dev: {"attn_mask": float_mask(3, 4, 7, dtype=dt, device=dev)}),
    ("broadcast (B, 1, 1, S)", CROSS, lambda dt, dev: {"attn_mask": bool_mask(2, 1, 1, 7, device=dev)}),
    ("broadcast (1, L, 1)", CROSS, lambda dt, dev: {"attn_mask": float_mask(1, 4, 1, dtype=dt, device=dev)}),
    ("custom scale", SAME, lambda dt, dev: {"scale": 0.3}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("implementation", ["reference", "fast"])
@pytest.mark.parametrize("case", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_matches_torch(case, implementation: str, dtype: torch.dtype, device: str) -> None:
    _, shapes, make_kwargs = case
    kwargs = make_kwargs(dtype, device)
    inputs = [randn(*shape, dtype=dtype, device=device, seed=i) for i, shape in enumerate(shapes)]

    def ours_fn(q, k, v):
        return scaled_dot_product_attention(q, k, v, implementation=implementation, **kwargs)

    ours, our_grads = run(ours_fn, inputs)
    theirs, their_grads = run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs), inputs)
    assert ours.shape == shapes[0][:-1] + shapes[2][-1:]
    assert_close(ours, theirs, dtype)
    for ours_g, theirs_g in zip(our_grads, their_grads):
        assert_close(ours_g, theirs_g, dtype)


def test_causal_flag_is_top_left_aligned() -> None:
    """With L < S, query 0 sees key 0 only (torch's convention), so it returns value row 0 exactly."""
    q, k, v = randn(3, 4), randn(6, 4, seed=1), randn(6, 2, seed=2)
    out = scaled_dot_product_attention(q, k, v, is_causal=True, implementation="reference")
    torch.testing.assert_close(out[0], v[0], rtol=0, atol=1e-12)
    assert causal_mask(3, 6).tolist()[0] == [True, False, False, False, False, False]


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_weights_match_fast_path_and_torch_mha(dtype: torch.dtype) -> None:
    q, k, v = (randn(2, 3, n, d, dtype=dtype, seed=i) for i, (n, d) in enumerate(((4, 8), (6, 8), (6, 5))))
    mask = bool_mask(2, 1, 4, 6)
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
    assert_close(out, scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation="fast"), dtype)
    assert_close(weights @ v, out, dtype)
    assert_close(weights.sum(-1), torch.ones(2, 3, 4, dtype=dtype), dtype)
    assert not weights.masked_select(~mask.expand_as(weights)).any()  # blocked keys get weight 0
    # nn.MultiheadAttention computes its per-head weights by its own code path: compare with identity projections.
    mha = nn.MultiheadAttention(8, 1, bias=False, batch_first=True).to(dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(8, dtype=dtype).repeat(3, 1))
    _, their_weights = mha(q[0, :1], k[0, :1], k[0, :1], attn_mask=~mask[0, 0], average_attn_weights=False)
    assert_close(weights[0, :1], their_weights[0], dtype)


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_dropout_is_applied_and_unbiased(implementation: str) -> None:
    """Inverted dropout keeps the expected output: the mean over many draws approaches the p = 0 output."""
    torch.manual_seed(0)
    q, k, v = (t.detach() for t in (randn(3, 4), randn(5, 4, seed=1), randn(5, 2, seed=2)))
    expected = scaled_dot_product_attention(q, k, v)
    draws = 20000
    many = [t.expand(draws, *t.shape) for t in (q, k, v)]
    dropped = scaled_dot_product_attention(*many, dropout_p=0.5, implementation=implementation)
    assert (dropped != expected).any(dim=(-1, -2)).float().mean() > 0.9  # almost every draw differs
    torch.testing.assert_close(dropped.mean(0), expected, atol=0.04, rtol=0)


# --- fully masked rows: the documented rule --------------------------------------------------------


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_fully_masked_rows_give_zero_output_weights_and_gradients(implementation: str, kind: str) -> None:
    q, k, v = randn(2, 5, 4), randn(2, 6, 4, seed=1), randn(2, 6, 3, seed=2)
    allowed = bool_mask(2, 5, 6)
    allowed[0, 1] = False  # query 1 of batch 0 may attend nothing
    allowed[1, 4] = False
    mask = allowed if kind == "bool" else torch.zeros(2, 5, 6, dtype=torch.float64).masked_fill(~allowed, float("-inf"))
    empty = ~allowed.any(-1)
    def attend(q, k, v):
        return scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation=implementation)

    out, (dq, dk, dv) = run(attend, [q, k, v])
    assert out[empty].eq(0).all() and out[~empty].ne(0).all()
    assert all(torch.isfinite(g).all() for g in (dq, dk, dv))
    assert dq[empty].eq(0).all()
    # The empty rows contribute nothing: dk, dv equal those of the same attention without them.
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(99), dtype=out.dtype)
    kept = scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation="reference")
    dk_kept, dv_kept = torch.autograd.grad(kept, [k, v], grad_out.masked_fill(empty[..., None], 0.0))
    assert_close(dk, dk_kept, torch.float64)
    assert_close(dv, dv_kept, torch.float64)
    _, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
    assert weights[empty].eq(0).all()
    # Today's torch (2.5 and later) follows the same rule; compare wherever torch is finite.
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    finite = torch.isfinite(theirs)
    assert_close(out[finite], theirs[finite], torch.float64)


def test_fast_path_guards_against_torch_releases_that_return_nan(monkeypatch) -> None:
    """Before torch 2.5 the fused kernel returned NaN for fully masked rows; emulate that kernel."""

    def kernel_without_safe_softmax(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
        bias = torch.zeros(attn_mask.shape, dtype=q.dtype).masked_fill(~attn_mask, float("-inf"))
        return torch.softmax(q @ k.transpose(-2, -1) * scale + bias, dim=-1) @ v  # 0/0 = NaN rows

    q, k, v = randn(2, 4, 3), randn(2, 5, 3, seed=1), randn(2, 5, 3, seed=2)
    allowed = bool_mask(2, 4, 5)
    allowed[1, 2] = False
    monkeypatch.setattr(F, "scaled_dot_product_attention", kernel_without_safe_softmax)
    assert torch.isnan(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=0.5)).any()
    attend = partial(scaled_dot_product_attention, attn_mask=allowed, implementation="fast")
    out, grads = run(attend, [q, k, v])
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    assert out[1, 2].eq(0).all() and grads[0][1, 2].eq(0).all()
    reference = partial(scaled_dot_product_attention, attn_mask=allowed, implementation="reference")
    ref, ref_grads = run(reference, [q, k, v])
    assert_close(out, ref, torch.float64)
    for a, b in zip(grads, ref_grads):
        assert_close(a, b, torch.float64)


shapes = st.tuples(
    st.lists(st.integers(1, 3), min_size=0, max_size=2),  # batch dims
    st.integers(1, 7),  # L
    st.integers(1, 7),  # S
    st.integers(1, 5),  # E
    st.integers(1, 4),  # Ev
)


@settings(max_examples=25, deadline=None)
@given(shapes=shapes, seed=st.integers(0, 2**16), density=st.floats(0.0, 1.0))
def test_random_bool_masks_never_leak_nan(shapes, seed: int, density: float) -> None:
    batch, L, S, E, Ev = shapes
    q, k, v = (randn(*batch, n, d, seed=seed + i) for i, (n, d) in enumerate(((L, E), (S, E), (S, Ev))))
    allowed = torch.rand(*batch, L, S, generator=torch.Generator().manual_seed(seed)) < density
    empty = ~allowed.any(-1)
    results = []
    for implementation in ("reference", "fast"):
        attend = partial(scaled_dot_product_attention, attn_mask=allowed, implementation=implementation)
        out, grads = run(attend, [q, k, v])
        assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
        assert out[empty].eq(0).all() and grads[0][empty].eq(0).all()
        results.append((out, grads))
    (ref, ref_grads), (fast, fast_grads) = results
    assert_close(fast, ref, torch.float64)
    for a, b in zip(fast_grads, ref_grads):
        assert_close(a, b, torch.float64)


# --- tiled (flash-style) attention -----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    shapes=shapes,
    block_size=st.integers(1, 8),
    is_causal=st.booleans(),
    padding=st.sampled_from(["none", "full", "first-dim"]),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_reference(shapes, block_size: int, is_causal: bool, padding: str, seed: int) -> None:
    batch, L, S, E, Ev = shapes
    q, k, v = (randn(*batch, n, d, seed=seed + i) for i, (n, d) in enumerate(((L, E), (S, E), (S, Ev))))
    generator = torch.Generator().manual_seed(seed)
    pad, allowed = None, torch.ones(*batch, L, S, dtype=torch.bool)
    if padding == "full":
        pad = torch.rand(*batch, S, generator=generator) < 0.4
        allowed = allowed & ~pad[..., None, :]
    elif padding == "first-dim" and batch:  # (B, S) shared by the other batch dims
        pad = torch.rand(batch[0], S, generator=generator) < 0.4
        allowed = allowed & ~pad.reshape(batch[0], *[1] * (len(batch) - 1), 1, S)
    if is_causal:
        allowed = allowed & causal_mask(L, S)
    tiled, tiled_grads = run(lambda q, k, v: tiled_attention(q, k, v, block_size, is_causal, pad), [q, k, v])
    reference = partial(scaled_dot_product_attention, attn_mask=allowed, implementation="reference")
    ref, ref_grads = run(reference, [q, k, v])
    assert torch.isfinite(tiled).all() and all(torch.isfinite(g).all() for g in tiled_grads)
    assert tiled[~allowed.any(-1)].eq(0).all()
    assert_close(tiled, ref, torch.float64)
    for a, b in zip(tiled_grads, ref_grads):
        assert_close(a, b, torch.float64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tiled_matches_torch_and_passes_gradcheck(dtype: torch.dtype, device: str) -> None:
    inputs = [randn(2, 3, 40, 16, dtype=dtype, device=device, seed=i) for i in range(3)]
    for is_causal in (False, True):
        tiled, tiled_grads = run(lambda q, k, v: tiled_attention(q, k, v, block_size=16, is_causal=is_causal), inputs)
        theirs, their_grads = run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=is_causal), inputs)
        assert_close(tiled, theirs, dtype)
        for a, b in zip(tiled_grads, their_grads):
            assert_close(a, b, dtype)
    if dtype == torch.float64:  # finite differences check the hand-written backward directly
        small = [randn(2, 5, 3, device=device, seed=i) for i in range(3)]
        pad = torch.tensor([[False, False, True, False, True], [True] * 5], device=device)
        assert torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k, v, 2, True, pad), small)


# --- multi-head attention against nn.MultiheadAttention ----------------------------------------------


def torch_mha_grads(theirs: nn.MultiheadAttention) -> dict[str, torch.Tensor]:
    """Gradients of ``theirs`` under our parameter names (the packed in_proj split into W_Q, W_K, W_V)."""
    E = theirs.embed_dim
    if theirs._qkv_same_embed_dim:
        weights = theirs.in_proj_weight.grad.split(E)
    else:
        weights = (theirs.q_proj_weight.grad, theirs.k_proj_weight.grad, theirs.v_proj_weight.grad)
    grads = {f"{p}_proj.weight": w for p, w in zip("qkv", weights)}
    grads["out_proj.weight"] = theirs.out_proj.weight.grad
    if theirs.in_proj_bias is not None:
        grads.update({f"{p}_proj.bias": b for p, b in zip("qkv", theirs.in_proj_bias.grad.split(E))})
        grads["out_proj.bias"] = theirs.out_proj.bias.grad
    return grads


# (kdim, vdim, bias, batch_first, masks): every mask kind once, every configuration at least twice.
MHA_CASES = [
    (None, None, True, True, "none"),
    (None, None, True, True, "padding"),
    (None, None, True, True, "bool"),
    (None, None, False, False, "float"),
    (None, None, True, True, "padding+bool"),
    (5, 3, True, True, "padding+float"),
    (5, 3, False, False, "per-head"),
    (5, 3, True, False, "causal"),
    (5, 3, True, True, "padding+bool"),
    (None, None, False, False, "causal"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: "kdim{}-vdim{}-bias{}-batch_first{}-{}".format(*c))
def test_multihead_attention_matches_torch(case, dtype: torch.dtype, device: str) -> None:
    kdim, vdim, bias, batch_first, masks = case
    B, L, S, E, H = 2, 4, 6, 8, 2
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first).to(dtype).to(device)
    ours = mha_from_torch(theirs)
    layout = (lambda b, t, d: (b, t, d)) if batch_first else (lambda b, t, d: (t, b, d))
    sizes = ((L, E), (S, kdim or E), (S, vdim or E))
    inputs = [randn(*layout(B, n, d), dtype=dtype, device=device, seed=i) for i, (n, d) in enumerate(sizes)]
    our_kwargs, their_kwargs = {}, {}
    if "padding" in masks:
        pad = torch.zeros(B, S, dtype=torch.bool, device=device)
        pad[0, 4:], pad[1, 1] = True, True
        our_kwargs["key_padding_mask"] = their_kwargs["key_padding_mask"] = pad
    if masks.endswith("bool"):
        blocked = ~bool_mask(L, S, device=device)  # the same tensor for both: a drop-in swap flips nothing
        our_kwargs["attn_mask"] = their_kwargs["attn_mask"] = blocked
    elif masks.endswith("float"):
        our_kwargs["attn_mask"] = their_kwargs["attn_mask"] = float_mask(L, S, dtype=dtype, device=device)
        if "padding" in masks:  # torch deprecates mixing a bool padding mask with a float attn_mask
            float_pad = torch.zeros(B, S, dtype=dtype, device=device).masked_fill(pad, float("-inf"))
            their_kwargs["key_padding_mask"] = float_pad
    elif masks == "per-head":  # ours broadcasts (B, H, L, S); torch wants (B * H, L, S)
        blocked = ~bool_mask(B, H, L, S, device=device)
        our_kwargs["attn_mask"], their_kwargs["attn_mask"] = blocked, blocked.reshape(B * H, L, S)
    elif masks == "causal":
        our_kwargs["is_causal"] = True
        their_kwargs["attn_mask"] = ~causal_mask(L, S, device=device)
    out_w = {}

    def call(module, kwargs, **extra):
        def fn(q, k, v):
            out, out_w[module] = module(q, k, v, need_weights=True, **kwargs, **extra)
            return out
        return fn

    ours_out, ours_in_grads = run(call(ours, our_kwargs), inputs)
    theirs_out, theirs_in_grads = run(call(theirs, their_kwargs, average_attn_weights=False), inputs)
    assert_close(ours_out, theirs_out, dtype)
    assert_close(out_w[ours], out_w[theirs], dtype)
    for a, b in zip(ours_in_grads, theirs_in_grads):
        assert_close(a, b, dtype)
    # Parameter gradients: backpropagate the same upstream gradient through both modules.
    grad_out = torch.randn(ours_out.shape, generator=torch.Generator().manual_seed(5), dtype=dtype).to(device)
    ours(*inputs, **our_kwargs)[0].backward(grad_out)
    theirs(*inputs, **their_kwargs)[0].backward(grad_out)
    their_grads = torch_mha_grads(theirs)
    assert set(their_grads) == {name for name, _ in ours.named_parameters()}
    for name, param in ours.named_parameters():
        assert_close(param.grad, their_grads[name], dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_multihead_attention_matches_torch_inference_fast_path(device: str) -> None:
    """In eval mode without grad, nn.MultiheadAttention runs its fused native kernel: compare with it too."""
    theirs = nn.MultiheadAttention(8, 2, batch_first=True).to(device).eval()
    ours = mha_from_torch(theirs).eval()
    x = randn(3, 5, 8, dtype=torch.float32, device=device).detach()
    pad = torch.zeros(3, 5, dtype=torch.bool, device=device)
    pad[1, 3:] = True
    with torch.no_grad():
        assert_close(ours(x, x, x, key_padding_mask=pad)[0], theirs(x, x, x, key_padding_mask=pad)[0], torch.float32)


@pytest.mark.parametrize("kdim_vdim", [(None, None), (5, 3)])
def test_copy_to_torch_round_trip(kdim_vdim) -> None:
    torch.manual_seed(1)
    ours = MultiHeadAttention(8, 2, kdim=kdim_vdim[0], vdim=kdim_vdim[1]).double()
    blank = nn.MultiheadAttention(8, 2, kdim=kdim_vdim[0], vdim=kdim_vdim[1], batch_first=True).double()
    theirs = copy_mha_weights_to_torch(ours, blank)
    q, k, v = randn(2, 4, 8), randn(2, 3, kdim_vdim[0] or 8, seed=1), randn(2, 3, kdim_vdim[1] or 8, seed=2)
    assert_close(ours(q, k, v)[0], theirs(q, k, v)[0], torch.float64)


def test_fully_padded_sequence_gives_bias_only_output_not_nan() -> None:
    """nn.MultiheadAttention returns NaN for a sequence whose keys are all padding; ours returns W_O 0 + b_O."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2)
    x = randn(2, 3, 8, dtype=torch.float32)
    pad = torch.tensor([[False, True, False], [True, True, True]])
    out, grads = run(lambda x: ours(x, x, x, key_padding_mask=pad)[0], [x])
    assert torch.isfinite(out).all() and torch.isfinite(grads[0]).all()
    assert_close(out[1], ours.out_proj.bias.detach().expand(3, 8), torch.float32)


# --- KV cache ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kv_cache_decoding_equals_full_causal_attention(dtype: torch.dtype, device: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).to(dtype).to(device).eval()
    x = randn(2, 9, 16, dtype=dtype, device=device).detach()
    full, _ = mha(x, x, x, is_causal=True)
    cache = KVCache(2, 4, max_length=12, head_dim=4, dtype=dtype, device=device)
    with torch.no_grad():
        steps = [mha(*[x[:, t : t + 1]] * 3, is_causal=True, kv_cache=cache)[0] for t in range(9)]
        assert cache.length == 9
        assert_close(torch.cat(steps, dim=1), full, dtype)
        cache.reset()  # chunks of several tokens need the offset causal mask inside each chunk
        chunks = [mha(*[x[:, a:b]] * 3, is_causal=True, kv_cache=cache)[0] for a, b in ((0, 3), (3, 4), (4, 9))]
    assert_close(torch.cat(chunks, dim=1), full, dtype)


def test_kv_cache_append_reset_and_errors() -> None:
    cache = KVCache(1, 2, max_length=3, head_dim=4, value_dim=5, dtype=torch.float64)
    k, v = torch.randn(1, 2, 2, 4, dtype=torch.float64), torch.randn(1, 2, 2, 5, dtype=torch.float64)
    keys, values = cache.append(k, v)
    assert cache.length == 2 and torch.equal(keys, k) and torch.equal(values, v)
    with pytest.raises(ValueError, match=r"KVCache overflow: it holds 2 of 3 positions, cannot append 2 more"):
        cache.append(k, v)
    assert cache.length == 2  # a refused append changes nothing
    cache.reset()
    assert cache.length == 0 and cache.append(k, v)[0].shape == (1, 2, 2, 4)
    with pytest.raises(ValueError, match=r"key must have shape \(1, 2, 'T', 4\), got \(1, 3, 2, 4\)"):
        cache.append(torch.randn(1, 3, 2, 4, dtype=torch.float64), v)
    with pytest.raises(ValueError, match=r"value has dtype torch.float32 on cpu, expected torch.float64"):
        cache.append(k[:, :, :1], torch.randn(1, 2, 1, 5))
    with pytest.raises(ValueError, match=r"key requires grad; KVCache is for inference"):
        cache.append(k[:, :, :1].requires_grad_(), v[:, :, :1])


# --- validation messages -----------------------------------------------------------------------------


BAD_MASK_DTYPE = r"attn_mask must have dtype torch.bool or query's torch.float32, got "


def _qkv(q=(2, 4, 8), k=(2, 5, 8), v=(2, 5, 8), **kwargs):
    return [torch.zeros(q, **kwargs), torch.zeros(k), torch.zeros(v)]


@pytest.mark.parametrize(
    "inputs, kwargs, message",
    [
        (_qkv(q=(8,)), {}, r"query must be a tensor of shape \(\.\.\., length, features\), got \(8,\)"),
        (_qkv(k=(1, 2, 5, 8)), {}, r"key has shape \(1, 2, 5, 8\), expected \(2, 'S', 8\)"),
        (_qkv(k=(3, 5, 8)), {}, r"key has shape \(3, 5, 8\), expected \(2, 'S', 8\): the batch dimensions"),
        (_qkv(v=(3, 5, 8)), {}, r"value has shape \(3, 5, 8\), expected \(2, 5, 'Ev'\)"),
        (_qkv(k=(2, 5, 7)), {}, r"key has shape \(2, 5, 7\), expected \(2, 'S', 8\) \(E of query\)"),
        (_qkv(v=(2, 6, 8)), {}, r"value has shape \(2, 6, 8\), expected \(2, 5, 'Ev'\) \(S of key\)"),
        (_qkv(q=(2, 4, 8), dtype=torch.float64), {}, r"key has torch.float32 on cpu, expected query's torch.float64"),
        (_qkv(k=(2, 0, 8), v=(2, 0, 8)), {}, r"key must hold at least one position, got shape \(2, 0, 8\)"),
        (
            _qkv(),
            {"attn_mask": torch.ones(3, 5, dtype=torch.bool)},
            r"attn_mask has shape \(3, 5\), which cannot broadcast to the scores' shape \(2, 4, 5\)",
        ),
        (_qkv(), {"attn_mask": torch.ones(5, dtype=torch.bool)}, r"attn_mask has shape \(5,\), which cannot broadcast"),
        (_qkv(), {"attn_mask": torch.ones(3, 2, 4, 5, dtype=torch.bool)}, r"attn_mask has shape \(3, 2, 4, 5\), which"),
        (_qkv(), {"attn_mask": torch.ones(4, 5, dtype=torch.int64)}, BAD_MASK_DTYPE + "torch.int64"),
        (_qkv(), {"attn_mask": torch.ones(4, 5, dtype=torch.float64)}, BAD_MASK_DTYPE + "torch.float64"),
        (
            _qkv(),
            {"attn_mask": torch.ones(4, 5, dtype=torch.bool), "is_causal": True},
            r"attn_mask \(shape \(4, 5\)\) and is_causal=True were both given",
        ),
        (_qkv(), {"implementation": "flash"}, r"implementation must be one of \('auto', 'fast', 'reference'\), got"),
        (_qkv(), {"implementation": "fast", "return_weights": True}, r"implementation='fast' cannot return weights"),
        (_qkv(), {"dropout_p": 1.5}, r"dropout_p must be in \[0, 1\], got 1.5"),
    ],
)
def test_sdpa_validation_messages(inputs, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(*inputs, **kwargs)


def test_sdpa_rejects_mismatched_devices() -> None:
    q, k, v = torch.zeros(2, 4, 8), torch.zeros(2, 5, 8, device="meta"), torch.zeros(2, 5, 8)
    with pytest.raises(ValueError, match=r"key has torch.float32 on meta, expected query's torch.float32 on cpu"):
        scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=r"attn_mask is on meta, expected query's device cpu"):
        scaled_dot_product_attention(q, v, v, attn_mask=torch.ones(4, 5, dtype=torch.bool, device="meta"))


def test_tiled_validation_messages() -> None:
    q, k, v = _qkv(q=(2, 3, 4, 8), k=(2, 3, 5, 8), v=(2, 3, 5, 8))
    with pytest.raises(ValueError, match=r"block_size must be a positive int, got 0"):
        tiled_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(3, 5\), expected \(2, 3, 5\) or \(2, 5\)"):
        tiled_attention(q, k, v, key_padding_mask=torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must be a bool tensor on cpu, got torch.float32"):
        tiled_attention(q, k, v, key_padding_mask=torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"key has shape \(2, 3, 5, 7\), expected \(2, 3, 'S', 8\)"):
        tiled_attention(q, torch.zeros(2, 3, 5, 7), v)


def test_multihead_attention_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"):
        MultiHeadAttention(10, 4)
    mha = MultiHeadAttention(8, 2, kdim=5)
    x, kv = torch.zeros(2, 4, 8), torch.zeros(2, 6, 5)
    with pytest.raises(ValueError, match=r"query must have shape \(B, T, 8\), got \(2, 4, 7\)"):
        mha(torch.zeros(2, 4, 7), kv, torch.zeros(2, 6, 8))
    with pytest.raises(ValueError, match=r"key must have shape \(B, T, 5\), got \(2, 6, 8\)"):
        mha(x, torch.zeros(2, 6, 8), torch.zeros(2, 6, 8))
    with pytest.raises(ValueError, match=r"key \(2, 6, 5\) and value \(2, 7, 8\) must share batch and length"):
        mha(x, kv, torch.zeros(2, 7, 8))
    with pytest.raises(ValueError, match=r"and the batch of query \(3, 4, 8\)"):
        mha(torch.zeros(3, 4, 8), kv, torch.zeros(2, 6, 8))
    v = torch.zeros(2, 6, 8)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 4\), expected \(B, S\) = \(2, 6\)"):
        mha(x, kv, v, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must be a bool tensor on cpu \(True = padding\), got"):
        mha(x, kv, v, key_padding_mask=torch.zeros(2, 6))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(4, 4\), which cannot broadcast to .* \(2, 2, 4, 6\)"):
        mha(x, kv, v, attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"attn_mask \(shape \(4, 6\)\) and is_causal=True were both given"):
        mha(x, kv, v, attn_mask=torch.ones(4, 6, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"kdim, vdim, bias\) = \(8, 2, 8, 8, True\), expected \(8, 2, 5, 8, True\)"):
        copy_mha_weights_from_torch(mha, nn.MultiheadAttention(8, 2))
