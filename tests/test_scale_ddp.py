"""lepton_lib.scale.ddp_demo: 2 Gloo processes, 1 process and 1 process with gradient accumulation agree.

The processes are started with ``torch.multiprocessing`` (as ``tests/test_ddp.py`` does for BERT) and
run the demo's own ``train``; the script's ``torchrun`` entry point is exercised by the book's
distributed-training notebook.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lepton_lib.scale.ddp_demo import build_model, train

STEPS = 8


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, losses = train(steps=STEPS, global_batch=32)
        if rank == 0:
            state = {k: v.tolist() for k, v in model.state_dict().items()}
            Path(out).write_text(json.dumps({"losses": losses, "state": state}))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with Gloo is not available")
    folder = tmp_path_factory.mktemp("scale_ddp")
    out = folder / "result.json"
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(folder / "init"), str(out)), nprocs=2, join=True, start_method=method)
    result = json.loads(out.read_text())
    return result["losses"], {k: torch.tensor(v) for k, v in result["state"].items()}


def _one_process(accumulation_steps: int = 1):
    torch.set_num_threads(1)
    return train(steps=STEPS, global_batch=32, accumulation_steps=accumulation_steps)


def test_two_processes_equal_one_process(two_processes):
    losses, state = two_processes
    model, reference_losses = _one_process()
    assert losses == pytest.approx(reference_losses, rel=1e-5)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(state[name], value, atol=1e-6, rtol=1e-5, msg=name)
    assert not torch.equal(model[0].weight, build_model()[0].weight)  # it trained
    assert reference_losses[-1] < reference_losses[0]


def test_gradient_accumulation_equals_the_full_batch():
    model, losses = _one_process(accumulation_steps=4)
    reference, reference_losses = _one_process()
    assert losses == pytest.approx(reference_losses, rel=1e-5)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_batch_must_split_evenly():
    with pytest.raises(ValueError, match="global_batch"):
        train(steps=1, global_batch=30, accumulation_steps=4)


# --- activation memory and checkpointing (lepton_lib.scale.memory) -------------------------------------
def test_saved_bytes_count_what_autograd_keeps():
    from lepton_lib.scale import saved_activation_bytes

    x = torch.randn(10, 20, requires_grad=True)
    # relu saves its output (800 bytes); exp saves its output (800); x * 3 saves nothing of x's size
    # that is a tensor (the scalar 3 is a Python number)
    saved, out = saved_activation_bytes(lambda: (x * 3).relu().exp().sum())
    assert saved == 2 * 10 * 20 * 4
    layer = torch.nn.Linear(20, 5)
    saved, _ = saved_activation_bytes(lambda: layer(x).sum(), layer.parameters())
    assert saved == 10 * 20 * 4  # the input only; the weight is a parameter


def test_checkpointing_keeps_gradients_and_saves_memory():
    from lepton_lib.scale import checkpointed_logits, saved_activation_bytes
    from lepton_lib.attention import TinyTransformer

    torch.manual_seed(0)
    model = TinyTransformer(50, 32, d_model=32, num_heads=4, num_layers=3)
    tokens = torch.randint(0, 50, (4, 32))
    plain_bytes, plain = saved_activation_bytes(lambda: model(tokens).pow(2).mean(), model.parameters())
    plain.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ckpt_bytes, ckpt = saved_activation_bytes(lambda: checkpointed_logits(model, tokens).pow(2).mean(),
                                              model.parameters())
    ckpt.backward()
    torch.testing.assert_close(ckpt, plain)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)
    assert ckpt_bytes < plain_bytes / 2
