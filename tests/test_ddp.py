"""Data parallelism: 2 processes (Gloo, CPU) train to the same parameters as 1 process.

Both runs see the same global batches of 8 examples; in the 2-process run each process takes 4
of them and DDP averages the gradients. Because the loop normalises the MLM loss by the number of
masked tokens in the *global* batch (not per process), the two runs agree to float rounding. With
per-process means instead (``test_per_process_means_would_not_match``) they would not: the two
halves of a batch hold different numbers of masked tokens.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_checkpoint import config, toy_batcher, toy_model  # noqa: E402

from lepton_lib.bert import pretrain  # noqa: E402

STEPS = 3


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = toy_model(dropout=0.0)
        log = pretrain(model, toy_batcher(), config(steps=STEPS, warmup_steps=1))
        if rank == 0:
            save_file(model.state_dict(), out + ".safetensors")
            Path(out + ".json").write_text(json.dumps(log.loss))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_result(tmp_path_factory):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with Gloo is not available")
    folder = tmp_path_factory.mktemp("ddp")
    out = str(folder / "result")
    # fork (where available) shares the already imported torch: a spawned process would spend most of
    # this test importing it again. The workers use one thread, so no OpenMP pool is inherited in use.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(folder / "init"), out), nprocs=2, join=True, start_method=method)
    return {"state": load_file(out + ".safetensors"), "loss": json.loads(Path(out + ".json").read_text())}


def test_two_processes_match_one_process_with_the_same_global_batch(two_process_result):
    torch.set_num_threads(1)
    model = toy_model(dropout=0.0)
    log = pretrain(model, toy_batcher(), config(steps=STEPS, warmup_steps=1))
    assert two_process_result["loss"] == pytest.approx(log.loss, rel=1e-6)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(two_process_result["state"][name], value, atol=2e-6, rtol=1e-5, msg=name)
    assert not torch.equal(model.bert.encoder.layers[0].ffn.linear1.weight,
                           toy_model(dropout=0.0).bert.encoder.layers[0].ffn.linear1.weight)  # it did train


def test_per_process_means_would_not_match():
    """The two halves of the first global batch hold different numbers of masked tokens."""
    from lepton_lib.bert import ExampleStream

    batcher = toy_batcher()
    items = ExampleStream(len(batcher.examples), 8, seed=0).batch(0)
    counts = [int((batcher(half)["mlm_labels"] != -100).sum()) for half in (items[:4], items[4:])]
    assert counts[0] != counts[1]
    assert os.environ.get("WORLD_SIZE") is None  # the test process itself is not distributed
