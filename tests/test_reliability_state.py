"""A rejected call leaves every object it was given exactly as it was (issue 16, items 1 and 3).

* ``MultiHeadAttention`` with a ``KVCache``: a bad mask is refused before the cache grows, and a
  correct retry equals a run that never saw the bad call.
* ``load_checkpoint``: an optimizer whose parameter groups do not fit is refused with
  ``CheckpointError`` before the model or the optimizer changes.
* Crash windows of ``save_checkpoint`` and ``save_pretrained``: a fault at any step leaves a
  loadable previous state, and ``latest_checkpoint`` finds it.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lepton_lib.attention import MultiHeadAttention
from lepton_lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lepton_lib.tiled_attention import KVCache

pytestmark = pytest.mark.usefixtures("single_thread")


def _cache_snapshot(cache: KVCache) -> tuple[int, torch.Tensor, torch.Tensor]:
    return cache.length, cache.keys.clone(), cache.values.clone()


def _assert_same_cache(cache: KVCache, snapshot: tuple[int, torch.Tensor, torch.Tensor]) -> None:
    length, keys, values = snapshot
    assert cache.length == length
    assert torch.equal(cache.keys, keys) and torch.equal(cache.values, values)


BAD_CALLS = {
    "padding mask shape": dict(key_padding_mask=torch.zeros(2, 1, dtype=torch.bool)),
    "padding mask dtype": dict(key_padding_mask=torch.zeros(2, 4)),
    "attn mask shape": dict(attn_mask=torch.ones(3, 5, dtype=torch.bool)),
    "attn mask dtype": dict(attn_mask=torch.ones(1, 4, dtype=torch.int64)),
    "attn mask with is_causal": dict(attn_mask=torch.ones(1, 4, dtype=torch.bool), is_causal=True),
}


@pytest.mark.parametrize("bad", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_a_rejected_call_leaves_the_kv_cache_unchanged_and_a_retry_is_exact(bad: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 4, 8)
    cache = KVCache(2, 2, max_length=6, head_dim=4)
    fresh = KVCache(2, 2, max_length=6, head_dim=4)
    with torch.no_grad():
        mha(x[:, :3], x[:, :3], x[:, :3], kv_cache=cache)
        mha(x[:, :3], x[:, :3], x[:, :3], kv_cache=fresh)
        before = _cache_snapshot(cache)
        step = x[:, 3:]
        with pytest.raises(ValueError):
            mha(step, step, step, kv_cache=cache, **BAD_CALLS[bad])
        _assert_same_cache(cache, before)
        retry, _ = mha(step, step, step, kv_cache=cache, is_causal=True)
        expected, _ = mha(step, step, step, kv_cache=fresh, is_causal=True)
    assert torch.equal(retry, expected)
    assert cache.length == fresh.length == 4


def test_a_kv_cache_of_the_wrong_batch_size_is_refused_unchanged() -> None:
    mha = MultiHeadAttention(8, 2).eval()
    cache = KVCache(3, 2, max_length=6, head_dim=4)
    before = _cache_snapshot(cache)
    x = torch.randn(2, 1, 8)
    with torch.no_grad(), pytest.raises(ValueError, match="key must have shape"):
        mha(x, x, x, kv_cache=cache)
    _assert_same_cache(cache, before)


# --- load_checkpoint with an optimizer that does not fit ----------------------------------------------


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _trained_adam(model: nn.Module, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW(groups or model.parameters(), lr=1e-2)
    model(torch.randn(5, 4)).square().sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return optimizer


def _optimizer_snapshot(optimizer: torch.optim.Optimizer) -> dict:
    state = optimizer.state_dict()
    tensors = {(i, k): v.clone() for i, s in state["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    return {"tensors": tensors, "groups": json.dumps(state["param_groups"], sort_keys=True, default=str)}


def _assert_untouched(model: nn.Module, weights: dict, optimizer: torch.optim.Optimizer, snapshot: dict) -> None:
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    after = _optimizer_snapshot(optimizer)
    assert after["groups"] == snapshot["groups"]
    assert after["tensors"].keys() == snapshot["tensors"].keys()
    assert all(torch.equal(after["tensors"][k], v) for k, v in snapshot["tensors"].items())


def test_load_checkpoint_refuses_an_optimizer_with_other_parameter_groups_before_changing_anything(tmp_path):
    saved = _net(0)
    path = save_checkpoint(tmp_path, 1, saved, _trained_adam(saved))
    model = _net(1)
    first, second = list(model.parameters())[:2], list(model.parameters())[2:]
    optimizer = _trained_adam(model, [{"params": first}, {"params": second, "weight_decay": 0.0}])
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    snapshot = _optimizer_snapshot(optimizer)
    with pytest.raises(CheckpointError, match="parameter groups"):
        load_checkpoint(path, model, optimizer, restore_rng=False)
    _assert_untouched(model, weights, optimizer, snapshot)


def test_load_checkpoint_refuses_an_optimizer_with_other_parameter_sizes(tmp_path):
    saved = _net(0)
    path = save_checkpoint(tmp_path, 1, saved, _trained_adam(saved))
    model = _net(1)
    other = nn.Linear(4, 4)  # same number of parameters in one group, other shapes
    optimizer = _trained_adam(model, [{"params": list(model.parameters())[:3] + [other.bias]}])
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    snapshot = _optimizer_snapshot(optimizer)
    with pytest.raises(CheckpointError, match="optimizer"):
        load_checkpoint(path, model, optimizer, restore_rng=False)
    _assert_untouched(model, weights, optimizer, snapshot)


def test_load_checkpoint_still_restores_a_fitting_optimizer_exactly(tmp_path):
    saved = _net(0)
    saved_optimizer = _trained_adam(saved)
    path = save_checkpoint(tmp_path, 1, saved, saved_optimizer)
    model = _net(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    load_checkpoint(path, model, optimizer, restore_rng=False)
    for p, q in zip(saved.parameters(), model.parameters()):
        assert torch.equal(p, q)
    _assert_untouched(model, saved.state_dict(), optimizer, _optimizer_snapshot(saved_optimizer))
