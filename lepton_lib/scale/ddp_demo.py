"""Data-parallel training you can launch: an MLP on the digits, DDP over Gloo on the CPU.

Run it with one process, or with several through ``torchrun``::

    python -m lepton_lib.scale.ddp_demo --out runs/ddp_1.json
    torchrun --standalone --nproc_per_node 2 -m lepton_lib.scale.ddp_demo --out runs/ddp_2.json
    python -m lepton_lib.scale.ddp_demo --accumulation-steps 2 --out runs/ddp_accum.json

Every run walks through the same sequence of *global* batches of ``--global-batch`` examples. With
``W`` processes each takes its own contiguous ``1/W`` of every global batch, computes the mean loss
on it, and DDP all-reduces (averages) the gradients during ``backward``. Because the shares are
equal, the average of the shares' mean gradients is the mean gradient of the global batch, so the
``W``-process run follows the one-process run step for step, up to float rounding. Gradient
accumulation reaches the same global batch on fewer devices: a process splits its share into
``--accumulation-steps`` micro-batches, scales each loss by ``1 / steps`` and steps the optimizer
once (under DDP, ``no_sync()`` skips the all-reduce for all but the last micro-batch).

Rank 0 writes a JSON file with the loss of every step, the final parameters' checksum and norm, and
the parameters themselves, which is what the book and ``tests/test_scale_ddp.py`` compare.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lepton_lib.core.cli import non_negative_int_arg, positive_float_arg, positive_int_arg
from lepton_lib.core.runtime import distributed_rank_and_world, seeded_torch_rng
from lepton_lib.data.digits import load_digits_split

__all__ = ["build_model", "train"]


def build_model(seed: int = 0) -> nn.Module:
    """A 64-64-10 MLP, initialised from ``seed`` (the same on every process)."""
    with seeded_torch_rng(seed):
        return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def train(steps: int = 20, global_batch: int = 64, accumulation_steps: int = 1, lr: float = 0.05,
          seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Train on this process's share of each global batch; return the (unwrapped) model and global losses."""
    rank, world = distributed_rank_and_world()
    if global_batch % (world * accumulation_steps):
        raise ValueError(f"global_batch ({global_batch}) must be divisible by world size ({world}) "
                         f"times accumulation_steps ({accumulation_steps})")
    data = load_digits_split(seed=0)
    x, y = data.x_train, data.y_train
    model = build_model(seed)
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    share, micro = global_batch // world, global_batch // world // accumulation_steps
    losses = []
    for step in range(steps):
        start = (step * global_batch) % (len(x) - global_batch)
        batch = order[start : start + global_batch][rank * share : (rank + 1) * share]  # this process's share
        optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros(())
        for m in range(accumulation_steps):
            piece = batch[m * micro : (m + 1) * micro]
            last = m == accumulation_steps - 1
            # Only the last micro-batch all-reduces; the others just add to the local .grad.
            sync = contextlib.nullcontext() if (last or world == 1) else wrapped.no_sync()
            with sync:
                loss = F.cross_entropy(wrapped(x[piece]), y[piece]) / accumulation_steps
                loss.backward()
            step_loss += loss.detach()
        if world > 1:  # report the global batch's loss: the mean of the processes' equal shares
            dist.all_reduce(step_loss)
            step_loss /= world
        optimizer.step()
        losses.append(step_loss.item())
    return model, losses


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m lepton_lib.scale.ddp_demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=positive_int_arg, default=20)
    p.add_argument("--global-batch", type=positive_int_arg, default=64)
    p.add_argument("--accumulation-steps", type=positive_int_arg, default=1)
    p.add_argument("--lr", type=positive_float_arg, default=0.05)
    p.add_argument("--seed", type=non_negative_int_arg, default=0)
    p.add_argument("--out", required=True, help="JSON file rank 0 writes")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # several processes share a few cores
    launched = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    if launched:  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
        dist.init_process_group("gloo")
    try:
        model, losses = train(args.steps, args.global_batch, args.accumulation_steps, args.lr, args.seed)
        rank, world = distributed_rank_and_world()
        result = {"world_size": world, "accumulation_steps": args.accumulation_steps, "losses": losses,
                  "parameters": {k: v.flatten().tolist() for k, v in model.state_dict().items()}}
        if rank == 0:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result))
        return result
    finally:
        if launched:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
