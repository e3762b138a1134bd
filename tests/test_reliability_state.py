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
import multiprocessing
import os
import warnings

import pytest
import torch
from torch import nn

import lepton_lib.bert.checkpoint as checkpoint_module
from lepton_lib.attention import MultiHeadAttention
from lepton_lib.bert import BertConfig, BertModel, load_pretrained, save_pretrained
from lepton_lib.bert import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from lepton_lib.attention import KVCache

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


# --- crash windows of save_checkpoint and save_pretrained ------------------------------------------------


def _fault_at_replace(k: int, crash: bool):
    """An ``os.replace`` whose call number ``k`` fails (an exception) or kills the process right after."""
    real, calls = os.replace, [0]

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == k and not crash:
            raise OSError(f"simulated fault at replace #{k}")
        real(src, dst)
        if calls[0] == k and crash:
            os._exit(9)  # like SIGKILL, right after the rename: no handler or cleanup runs

    return replace


def _in_child(target, *args) -> int:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    process = multiprocessing.get_context(method).Process(target=target, args=args)
    process.start()
    process.join()
    return process.exitcode


def _resave_and_die(root: str, k: int) -> None:
    os.replace = _fault_at_replace(k, crash=True)
    save_checkpoint(root, 1, _net(7))


# save_checkpoint re-saving a step renames three times: state.json into the temporary directory,
# the old step-N aside to step-N.old-<pid>, the temporary directory to step-N.
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_process_killed_at_each_rename_of_save_checkpoint_leaves_a_loadable_checkpoint(tmp_path, k: int) -> None:
    first = _net(0)
    save_checkpoint(tmp_path, 1, first)
    assert _in_child(_resave_and_die, str(tmp_path), k) == 9
    found = latest_checkpoint(tmp_path)
    assert found == tmp_path / "step-00000001"
    model = _net(3)
    load_checkpoint(found, model, restore_rng=False)
    expected = first if k < 3 else _net(7)  # before the last rename: the old checkpoint, after it: the new one
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), expected.parameters()))
    save_checkpoint(tmp_path, 2, _net(0))  # the next save removes every leftover of the dead process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001", "step-00000002"]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_an_exception_at_each_rename_of_save_checkpoint_keeps_the_old_checkpoint(tmp_path, monkeypatch, k) -> None:
    first = _net(0)
    save_checkpoint(tmp_path, 1, first)
    monkeypatch.setattr(checkpoint_module.os, "replace", _fault_at_replace(k, crash=False))
    with pytest.raises(OSError, match="simulated fault"):
        save_checkpoint(tmp_path, 1, _net(7))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"]
    model = _net(3)
    load_checkpoint(latest_checkpoint(tmp_path), model, restore_rng=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), first.parameters()))


def test_latest_warns_naming_each_corrupted_newer_checkpoint_it_skips(tmp_path) -> None:
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, _net(step))
    for step in (2, 3):
        (tmp_path / f"step-{step:08d}" / "model.safetensors").write_bytes(b"garbage")
    with pytest.warns(UserWarning) as caught:
        assert latest_checkpoint(tmp_path) == tmp_path / "step-00000001"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "step-00000003" in messages[0] and "step-00000002" in messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list_checkpoints(tmp_path)[0] == tmp_path / "step-00000001"  # listing alone never warns


def test_a_state_json_without_files_raises_checkpoint_error(tmp_path) -> None:
    path = save_checkpoint(tmp_path, 1, _net(0))
    meta = json.loads((path / "state.json").read_text())
    del meta["files"]
    (path / "state.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="no valid 'files' entry"):
        load_checkpoint(path, _net(1))


def test_only_real_ddp_wrappers_are_unwrapped(tmp_path) -> None:
    class WithModuleAttribute(nn.Module):  # not a wrapper: its own weights are the model
        def __init__(self) -> None:
            super().__init__()
            self.module = nn.Linear(2, 2)
            self.head = nn.Linear(2, 1)

    torch.manual_seed(0)
    model = WithModuleAttribute()
    path = save_checkpoint(tmp_path, 1, model)
    torch.manual_seed(1)
    other = WithModuleAttribute()
    load_checkpoint(path, other, restore_rng=False)
    assert torch.equal(other.head.weight, model.head.weight)
    wrapped = nn.DataParallel(_net(0))
    path = save_checkpoint(tmp_path, 2, wrapped)
    plain = _net(1)
    load_checkpoint(path, plain, restore_rng=False)  # the wrapper's keys carry no "module." prefix
    assert torch.equal(plain[0].weight, wrapped.module[0].weight)


# save_pretrained renames twice: the weights into place, then config.json.
def _bert(layers: int, seed: int) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=layers, num_attention_heads=2,
                                intermediate_size=16, max_position_embeddings=16))


def _save_pretrained_and_die(directory: str, k: int, layers: int) -> None:
    os.replace = _fault_at_replace(k, crash=True)
    save_pretrained(_bert(layers, 7), directory)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("crash", [True, False], ids=["killed", "exception"])
@pytest.mark.parametrize("k", [1, 2])
def test_a_fault_at_each_step_of_save_pretrained_never_pairs_a_new_config_with_old_weights(
        tmp_path, monkeypatch, k: int, crash: bool) -> None:
    save_pretrained(_bert(1, 0), tmp_path)
    if crash:
        assert _in_child(_save_pretrained_and_die, str(tmp_path), k, 1) == 9
    else:
        monkeypatch.setattr(os, "replace", _fault_at_replace(k, crash=False))
        with pytest.raises(OSError, match="simulated fault"):
            save_pretrained(_bert(1, 7), tmp_path)
        monkeypatch.undo()
    loaded = load_pretrained(tmp_path)  # same architecture: always loadable, the old or the new weights
    renamed = k if crash else k - 1  # renames done: a killed process dies after call k, an exception stops it
    assert _same_weights(loaded, _bert(1, 7) if renamed >= 1 else _bert(1, 0))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "config.json", "model.safetensors"]
    # With a new architecture, the new config.json is never next to the old weights.
    save_pretrained(_bert(1, 0), tmp_path)
    if crash:
        _in_child(_save_pretrained_and_die, str(tmp_path), k, 2)
    else:
        monkeypatch.setattr(os, "replace", _fault_at_replace(k, crash=False))
        with pytest.raises(OSError):
            save_pretrained(_bert(2, 7), tmp_path)
        monkeypatch.undo()
    config = BertConfig.from_dict(json.loads((tmp_path / "config.json").read_text()))
    if config.num_hidden_layers == 2:  # the new config was written: the new weights must be there already
        assert _same_weights(load_pretrained(tmp_path), _bert(2, 7))
    else:
        assert renamed < 2
    # Whatever the fault, the directory loads as one whole state, the old or the new (never a mix).
    if renamed == 1:  # new weights beside the old config.json: the config stored in the weights decides
        with pytest.warns(UserWarning, match="does not describe .*model.safetensors"):
            loaded = load_pretrained(tmp_path)
        assert _same_weights(loaded, _bert(2, 7))
    else:
        assert _same_weights(load_pretrained(tmp_path), _bert(2, 7) if renamed == 2 else _bert(1, 0))


# --- resuming with another config --------------------------------------------------------------------


def _tiny_pretraining():
    from lepton_lib.bert import BertForPreTraining
    from lepton_lib.bert import PretrainingBatcher, PretrainingExample
    from lepton_lib.bert import SPECIAL_TOKENS, WordPieceTokenizer

    g = torch.Generator().manual_seed(0)
    examples = [PretrainingExample(tuple(torch.randint(5, 30, (4,), generator=g).tolist()),
                                   tuple(torch.randint(5, 30, (3,), generator=g).tolist()), k % 2 == 1)
                for k in range(16)]
    batcher = PretrainingBatcher(examples, WordPieceTokenizer(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(25)]))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32)
    return batcher, lambda: BertForPreTraining(config)


def test_resuming_with_another_config_is_refused_unless_allowed(tmp_path) -> None:
    from lepton_lib.bert import PretrainConfig, pretrain

    batcher, build = _tiny_pretraining()
    settings = dict(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, progress=False, log_every=1,
                    checkpoint_every=2, checkpoint_dir=str(tmp_path))
    pretrain(build(), batcher, PretrainConfig(**settings), stop_after=2)
    model = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"config differs .*batch_size: 4 -> 8.*allow_config_change=True"):
        pretrain(model, batcher, PretrainConfig(**settings | dict(batch_size=8)), resume_from="latest")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    step2 = tmp_path / "step-00000002"
    assert pretrain(build(), batcher, PretrainConfig(**settings | dict(log_every=2)), resume_from=step2).step[-1] == 4
    changed = PretrainConfig(**settings | dict(batch_size=8))
    assert pretrain(model, batcher, changed, resume_from=step2, allow_config_change=True).step[-1] == 4
