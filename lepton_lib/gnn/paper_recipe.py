"""The recorded GCN and GAT experiments' settings: each paper's hyper-parameters and stopping rule.

:func:`run_paper_experiment` trains one seed of either model exactly as the book's reproduction
(``book/gnn/reproduction.ipynb``, ``benchmarks/gnn_reproduce.py``) does; the chapters' teaching
code is in :mod:`lepton_lib.gnn.models` and :mod:`lepton_lib.gnn.training`.
"""
from __future__ import annotations

import torch
from torch import nn

from lepton_lib.core.runtime import seeded_torch_rng
from lepton_lib.gnn.models import GAT, GCN
from lepton_lib.gnn.training import TrainResult, train_node_classifier

__all__ = ["PAPER_HYPERPARAMETERS", "run_paper_experiment"]


# The papers' hyper-parameters (Kipf & Welling 2017, sec. 5.2; Velickovic et al. 2018, sec. 3.3
# and their released code). GCN's weight decay applies to the first layer only.
PAPER_HYPERPARAMETERS = {
    "gcn": dict(hidden=16, dropout=0.5, lr=0.01, weight_decay=5e-4, max_epochs=200, stopping="gcn", patience=10),
    "gat": dict(hidden=8, heads=8, output_heads=1, dropout=0.6, lr=0.005, weight_decay=5e-4,
                max_epochs=100_000, stopping="gat", patience=100),
}


def run_paper_experiment(model_name: str, data, seed: int,
                         max_epochs: int | None = None) -> tuple[nn.Module, TrainResult]:
    """Train one seed of GCN or GAT with its paper's hyper-parameters and stopping rule; return
    the model (with the weights that were tested) and its :class:`TrainResult`.

    ``max_epochs`` overrides the paper's limit (200 for GCN; GAT's code allows 100,000 epochs
    and relies on early stopping). Use row-normalised features, as both papers do. GAT trains
    and validates on the 2-hop receptive fields of those nodes (identical outputs, less work).
    """
    if model_name not in PAPER_HYPERPARAMETERS:
        raise ValueError(f"model_name must be 'gcn' or 'gat', got {model_name!r}")
    hp = PAPER_HYPERPARAMETERS[model_name]
    with seeded_torch_rng(seed):  # initial weights and dropout; the caller's random stream is left alone
        if model_name == "gcn":
            model = GCN(data.num_features, hp["hidden"], data.num_classes, dropout=hp["dropout"])
            groups = [dict(params=model.convs[0].parameters(), weight_decay=hp["weight_decay"]),
                      dict(params=model.convs[1].parameters(), weight_decay=0.0)]
        else:
            model = GAT(data.num_features, hp["hidden"], data.num_classes, heads=hp["heads"],
                        dropout=hp["dropout"], output_heads=hp["output_heads"])
            groups = [dict(params=model.parameters(), weight_decay=hp["weight_decay"])]
        optimizer = torch.optim.Adam(groups, lr=hp["lr"])
        num_hops = 2 if model_name == "gat" else None  # never for GCN: see computation_graph
        result = train_node_classifier(model, data, optimizer, max_epochs or hp["max_epochs"], hp["stopping"],
                                       hp["patience"], num_hops=num_hops)
    return model, result
