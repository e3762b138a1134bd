"""lepton_lib.bert.checkpoint and the resumable pretraining loop (lepton_lib.bert.pretraining, lepton_lib.foundations.schedules).

* Exact resume: 3 steps, a checkpoint, a fresh model and optimizer, 3 more steps give bit-for-bit
  the losses and weights of 6 uninterrupted steps (dropout on, so the random state must be restored).
* Damage: a truncated or corrupted file raises ``CheckpointError`` before anything is loaded; the
  previous checkpoint still loads; ``latest_checkpoint`` skips the damaged one.
* Interrupted saves (an exception, or a process killed mid-write) leave no checkpoint under the
  final name; temporary leftovers are ignored.
* Gradient accumulation, weight-decay groups and the learning-rate schedule.
"""
from __future__ import annotations

import json
import multiprocessing
import os

import pytest
import torch

import lepton_lib.bert.checkpoint as checkpoint_module
from lepton_lib.core import atomic_write_bytes
from lepton_lib.bert import BertConfig, BertForPreTraining
from lepton_lib.bert import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from lepton_lib.bert import PretrainConfig, build_optimizer, pretrain, weight_decay_groups
from lepton_lib.bert import PretrainingBatcher, PretrainingExample
from lepton_lib.foundations import LinearWarmupDecay
from lepton_lib.bert import SPECIAL_TOKENS, WordPieceTokenizer

VOCAB = 60


pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one thread (root conftest.py)


def toy_batcher(n: int = 24, seed: int = 0) -> PretrainingBatcher:
    g = torch.Generator().manual_seed(seed)
    examples = []
    for k in range(n):
        a = torch.randint(5, VOCAB, (int(torch.randint(3, 9, (1,), generator=g)),), generator=g)
        b = torch.randint(5, VOCAB, (int(torch.randint(3, 9, (1,), generator=g)),), generator=g)
        examples.append(PretrainingExample(tuple(a.tolist()), tuple(b.tolist()), k % 2 == 1))
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(VOCAB - 5)])
    return PretrainingBatcher(examples, tokenizer, seed=seed)


def toy_model(dropout: float = 0.1, seed: int = 0) -> BertForPreTraining:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    return BertForPreTraining(config)


def config(tmp_path=None, **overrides) -> PretrainConfig:
    values = dict(steps=6, batch_size=8, lr=1e-3, warmup_steps=2, progress=False, log_every=1)
    if tmp_path is not None:
        values |= dict(checkpoint_every=3, checkpoint_dir=str(tmp_path / "ckpt"))
    return PretrainConfig(**(values | overrides))


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    batcher = toy_batcher()
    full_model = toy_model()
    full = pretrain(full_model, batcher, config())

    first = toy_model()
    pretrain(first, batcher, config(tmp_path), stop_after=3)
    torch.manual_seed(12345)  # scramble the generator: resuming must restore it
    second = toy_model(seed=99)  # different initial weights: resuming must overwrite them
    resumed = pretrain(second, batcher, config(tmp_path), resume_from="latest")

    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step-00000003", "step-00000006"]
    assert resumed.step == full.step == [1, 2, 3, 4, 5, 6]
    assert resumed.loss == full.loss  # exactly, not approximately
    assert resumed.lr == full.lr
    for (name, p), q in zip(full_model.named_parameters(), second.parameters()):
        assert torch.equal(p, q), name


def test_damaged_checkpoints_raise_and_the_previous_one_still_loads(tmp_path):
    batcher = toy_batcher()
    model = toy_model()
    pretrain(model, batcher, config(tmp_path))
    older, newer = list_checkpoints(tmp_path / "ckpt")
    weights = newer / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte inside the tensor data
    weights.write_bytes(bytes(data))
    fresh = toy_model(seed=5)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(CheckpointError, match="does not match its recorded sha256"):
        load_checkpoint(newer, fresh)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())  # nothing was changed
    weights.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(newer, fresh)
    (older / "state.json").write_text((older / "state.json").read_text()[:-40])
    with pytest.raises(CheckpointError, match="state.json is truncated or corrupted"):
        load_checkpoint(older, fresh)
    with pytest.warns(UserWarning, match="skipping the corrupted checkpoint"):
        assert latest_checkpoint(tmp_path / "ckpt") is None


def test_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path):
    model = toy_model()
    pretrain(model, toy_batcher(), config(tmp_path))
    older, newer = list_checkpoints(tmp_path / "ckpt")
    (newer / "optimizer.safetensors").write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match=f"skipping the corrupted checkpoint {newer}"):
        assert latest_checkpoint(tmp_path / "ckpt") == older
    meta = load_checkpoint(older, toy_model(), build_optimizer(model, config()))
    assert meta["step"] == 3 and len(meta["extra"]["log"]["loss"]) == 3


def test_an_exception_during_save_leaves_no_checkpoint_and_no_temporary_files(tmp_path, monkeypatch):
    model = toy_model()
    save_checkpoint(tmp_path, 1, model)

    def fail_halfway(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]
    load_checkpoint(tmp_path / "step-00000001", toy_model(seed=3))


def _save_and_die(root: str) -> None:
    """Save a checkpoint, but kill the process right after the first file is written."""
    real = checkpoint_module.save_file

    def die(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        os._exit(9)  # like a SIGKILL: no exception handler or cleanup code runs

    checkpoint_module.save_file = die
    save_checkpoint(root, 2, toy_model())


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint_intact(tmp_path):
    save_checkpoint(tmp_path, 1, toy_model())
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    process = multiprocessing.get_context(method).Process(target=_save_and_die, args=(str(tmp_path),))
    process.start()
    process.join()
    assert process.exitcode == 9
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "step-00000001"]
    assert leftovers and all(".tmp-" in name for name in leftovers)  # only a temporary directory
    assert list_checkpoints(tmp_path) == [tmp_path / "step-00000001"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000001"


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = atomic_write_bytes(tmp_path / "state.json", json.dumps({"step": 1}).encode())
    monkeypatch.setattr(checkpoint_module.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b'{"step": 2, "half')
    assert json.loads(target.read_text()) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_gradient_accumulation_equals_one_big_batch():
    batcher = toy_batcher()
    one, two = toy_model(dropout=0.0), toy_model(dropout=0.0)
    log_one = pretrain(one, batcher, config(steps=3, warmup_steps=0))
    log_two = pretrain(two, batcher, config(steps=3, warmup_steps=0, grad_accum_steps=4))
    assert log_one.loss == pytest.approx(log_two.loss, rel=1e-6)
    for p, q in zip(one.parameters(), two.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_weight_decay_skips_biases_and_layer_norms_and_counts_the_tied_matrix_once():
    model = toy_model()
    decay, no_decay = weight_decay_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.dim() == 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} == {n for n, p in model.named_parameters() if p.dim() == 1}
    assert any(names[id(p)].endswith("norm.weight") for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_linear_warmup_then_linear_decay():
    schedule = LinearWarmupDecay(warmup_steps=4, total_steps=12)
    assert [schedule(s) for s in range(13)] == [0, 0.25, 0.5, 0.75, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0]
    with pytest.raises(ValueError, match="warmup_steps <= total_steps"):
        LinearWarmupDecay(10, 5)
    with pytest.raises(ValueError, match="warmup_steps must be an int"):
        PretrainConfig(steps=5, warmup_steps=10)


def test_bf16_autocast_runs_on_request_and_tracks_fp32():
    """precision="bf16" autocasts the forward pass (slow on CPUs without bf16 units: two steps only)."""
    from lepton_lib.bert import autocast_dtype

    assert autocast_dtype(torch.device("cpu"), "auto") is None  # never chosen automatically on a CPU
    assert autocast_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    batcher = toy_batcher()
    fp32 = pretrain(toy_model(dropout=0.0), batcher, config(steps=2, warmup_steps=0))
    bf16 = pretrain(toy_model(dropout=0.0), batcher, config(steps=2, warmup_steps=0, precision="bf16"))
    assert bf16.loss != fp32.loss  # it really ran in lower precision
    assert bf16.loss == pytest.approx(fp32.loss, rel=2e-2)


@pytest.mark.gpu
def test_a_recipe_trains_on_the_gpu_and_saves_cpu_weights(tmp_path):
    # The command-line run on a GPU: the freshly built model must follow its batches to the device
    # before the first held-out evaluation, and the saved weights must load on a CPU-only machine.
    from lepton_lib.bert import load_pretrained
    from lepton_lib.bert.pretraining_recipe import Recipe, run_recipe

    recipe = Recipe(corpora=("wikitext2",), vocab_size=1000, seq_len=64, batch_size=8, steps=3, warmup_steps=1)
    result = run_recipe(recipe, tmp_path, progress=False, device="cuda")
    assert result["machine"]["gpu"]
    assert all(torch.isfinite(torch.tensor(x)) for x in result["log"]["loss"])
    reloaded = load_pretrained(tmp_path / "final", BertForPreTraining)
    assert {p.device.type for p in reloaded.parameters()} == {"cpu"}
