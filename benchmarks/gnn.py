"""Epoch time of our GCN and GAT against PyTorch Geometric's, same model, same hyper-parameters.

One epoch = zero_grad + forward + cross-entropy on the training nodes + backward + Adam step,
full batch, as in the papers. Both implementations get the same input tensors, the same
architecture (GCN: 16 hidden units, dropout 0.5; GAT: 8 heads x 8 units, one output head,
dropout 0.6) and the same optimiser settings; our model starts from a copy of PyG's weights.
Runs alternate between the two implementations in short blocks so that a change in the
machine's load affects both alike; the median over all timed epochs is reported. With
``--features sparse`` both get the same CSR feature matrix and the same input dropout
(``dropout_features``, which drops the stored values; ``F.dropout`` cannot take CSR input).

    python benchmarks/gnn.py                      # Cora and CiteSeer, 2 threads
    python benchmarks/gnn.py --threads 1 --features sparse
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.data import load_planetoid
from lepton_lib.gnn import GAT, GCN, dropout_features, sparse_features
from lepton_lib.interop.pyg import copy_gat_weights_from_pyg, copy_gcn_weights_from_pyg

try:
    import torch_geometric
    import torch_geometric.nn as pyg_nn
except ImportError:  # pragma: no cover
    sys.exit("this benchmark needs torch_geometric (pip install torch_geometric)")


class PygGCN(nn.Module):
    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.dropout = dropout
        self.conv1 = pyg_nn.GCNConv(in_features, hidden)
        self.conv2 = pyg_nn.GCNConv(hidden, num_classes)

    def forward(self, x, edge_index):
        x = F.relu(self.conv1(dropout_features(x, self.dropout, self.training), edge_index))  # F.dropout for dense x
        return self.conv2(F.dropout(x, self.dropout, self.training), edge_index)


class PygGAT(nn.Module):
    def __init__(self, in_features: int, hidden: int, num_classes: int, heads: int = 8, dropout: float = 0.6):
        super().__init__()
        self.dropout = dropout
        self.conv1 = pyg_nn.GATConv(in_features, hidden, heads=heads, dropout=dropout)
        self.conv2 = pyg_nn.GATConv(heads * hidden, num_classes, heads=1, concat=False, dropout=dropout)

    def forward(self, x, edge_index):
        x = F.elu(self.conv1(dropout_features(x, self.dropout, self.training), edge_index))  # F.dropout for dense x
        return self.conv2(F.dropout(x, self.dropout, self.training), edge_index)


def build(model_name: str, data) -> tuple[nn.Module, nn.Module, dict]:
    """(ours, PyG's, optimiser settings), ours initialised with a copy of PyG's weights."""
    torch.manual_seed(0)
    if model_name == "gcn":
        theirs = PygGCN(data.num_features, 16, data.num_classes)
        ours = GCN(data.num_features, 16, data.num_classes, dropout=0.5)
        copy_gcn_weights_from_pyg(ours.convs[0], theirs.conv1)
        copy_gcn_weights_from_pyg(ours.convs[1], theirs.conv2)
        return ours, theirs, dict(lr=0.01, weight_decay=5e-4)
    theirs = PygGAT(data.num_features, 8, data.num_classes)
    ours = GAT(data.num_features, 8, data.num_classes, heads=8, dropout=0.6)
    copy_gat_weights_from_pyg(ours.conv1, theirs.conv1)
    copy_gat_weights_from_pyg(ours.conv2, theirs.conv2)
    return ours, theirs, dict(lr=0.005, weight_decay=5e-4)


def epoch_times(model: nn.Module, optimizer: torch.optim.Optimizer, data, epochs: int) -> list[float]:
    times = []
    model.train()
    for _ in range(epochs):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        if data.x.is_cuda:
            torch.cuda.synchronize()  # GPU kernels run asynchronously: time finished work only
        times.append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"], choices=["cora", "citeseer"])
    parser.add_argument("--models", nargs="+", default=["gcn", "gat"], choices=["gcn", "gat"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--features", choices=["dense", "sparse"], default="dense",
                        help="feed both implementations dense features or the same sparse CSR tensor")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks per implementation")
    parser.add_argument("--epochs", type=int, default=15, help="timed epochs per block")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}")
    print(f"software: Python {platform.python_version()}, torch {torch.__version__}, "
          f"torch_geometric {torch_geometric.__version__}; {torch.get_num_threads()} threads")
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    print("command: python " + " ".join(sys.argv))
    print(f"figures: median milliseconds per full-batch training epoch over {args.rounds} x {args.epochs} epochs, "
          f"{args.features} features; indicative only (shared machine)\n")
    print(f"{'model':5s} {'dataset':9s} {'ours (ms)':>10s} {'PyG (ms)':>10s} {'ours/PyG':>9s}")
    for name in args.datasets:
        data = load_planetoid(name, normalize_features=True)
        if args.features == "sparse":
            data = dataclasses.replace(data, x=sparse_features(data.x))
        data = dataclasses.replace(data, **{f.name: getattr(data, f.name).to(args.device)
                                            for f in dataclasses.fields(data) if isinstance(getattr(data, f.name), torch.Tensor)})
        for model_name in args.models:
            ours, theirs, settings = build(model_name, data)
            ours, theirs = ours.to(args.device), theirs.to(args.device)
            optimizers = {id(m): torch.optim.Adam(m.parameters(), **settings) for m in (ours, theirs)}
            timings = {id(ours): [], id(theirs): []}
            for model in (ours, theirs):  # warm-up: allocator, caches, lazy initialisation
                epoch_times(model, optimizers[id(model)], data, 3)
            for round_ in range(args.rounds):
                order = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
                for model in order:
                    timings[id(model)] += epoch_times(model, optimizers[id(model)], data, args.epochs)
            ours_ms = 1000 * statistics.median(timings[id(ours)])
            theirs_ms = 1000 * statistics.median(timings[id(theirs)])
            print(f"{model_name:5s} {name:9s} {ours_ms:10.2f} {theirs_ms:10.2f} {ours_ms / theirs_ms:9.2f}", flush=True)


if __name__ == "__main__":
    main()
