"""Training GNNs for node classification: full-batch with the papers' stopping rules, and
mini-batch with neighbour sampling.

:func:`train_node_classifier` trains on ``data.train_mask`` of a
:class:`~lepton_lib.data.graphs.GraphData` and selects the model on ``data.val_mask`` with
Kipf & Welling's or Velickovic et al.'s early-stopping rule; :func:`train_sage_minibatch` trains
on sampled subgraphs (:mod:`lepton_lib.gnn.sampling`), as GraphSAGE does.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.foundations import metrics
from lepton_lib.gnn.sampling import computation_graph, sample_subgraph

__all__ = ["accuracy", "TrainResult", "train_node_classifier", "train_sage_minibatch"]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits (N, C)`` whose argmax equals ``labels (N,)``; N must be > 0.

    The class predictions are scored by :func:`lepton_lib.foundations.metrics.accuracy`; this
    function only checks the node-classification shapes (which would otherwise broadcast) and
    takes the argmax. The fraction is rounded to float32, the precision in which the book's
    recorded GNN results were computed, so every recorded number stays the same.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(logits.shape[:1])} "
                         f"(one per row of logits {tuple(logits.shape)}, which must be (N, C))")
    if len(labels) == 0:
        raise ValueError(f"no nodes to score: logits has shape {tuple(logits.shape)} (is the mask empty?)")
    return float(np.float32(metrics.accuracy(labels, logits.argmax(dim=-1))))


@dataclass
class TrainResult:
    """What :func:`train_node_classifier` measured. ``test_accuracy`` is that of the model kept
    by the stopping rule; the lists hold one entry per epoch run."""

    test_accuracy: float
    val_accuracy: float
    epochs_run: int
    tested_epoch: int  # 1-based epoch whose weights were tested
    stopped_early: bool
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def train_node_classifier(model: nn.Module, data, optimizer: torch.optim.Optimizer, max_epochs: int,
                          stopping: str | None = None, patience: int = 10,
                          record_validation: bool = True, num_hops: int | None = None) -> TrainResult:
    """Full-batch training on ``data.train_mask``; model selection on ``data.val_mask``.

    The validation loss and accuracy are measured after every epoch (an extra forward pass)
    unless ``record_validation`` is False and no stopping rule needs them. ``num_hops`` (the
    number of layers of a GAT or GraphSAGE model, never a GCN) runs the training and validation
    passes on the training and validation nodes' receptive fields only: the same outputs for
    those nodes at a fraction of the cost. The test accuracy always uses the whole graph.

    ``stopping`` picks the rule of one of the papers:

    - ``None``: run ``max_epochs`` and test the final model.
    - ``"gcn"`` (Kipf & Welling's code): stop once the validation loss exceeds the mean of the
      previous ``patience`` epochs' losses; test the final model.
    - ``"gat"`` (Velickovic et al.'s code): reset a counter whenever the validation accuracy
      reaches a new maximum OR the loss a new minimum, stop after ``patience`` epochs without
      either; test the weights saved at the last epoch that improved BOTH at once.
    """
    if stopping not in (None, "gcn", "gat"):
        raise ValueError(f"stopping must be None, 'gcn' or 'gat', got {stopping!r}")
    if not bool(data.test_mask.any()):
        raise ValueError("data.test_mask is empty: there is no node to test on")
    has_val = bool(data.val_mask.any())
    if stopping is not None and not has_val:
        raise ValueError(f"stopping={stopping!r} needs validation nodes, but data.val_mask is empty")
    validate_each_epoch = has_val and (record_validation or stopping is not None)
    train_x, train_edges, train_rows, train_y = computation_graph(data, data.train_mask, num_hops)
    if validate_each_epoch:
        val_x, val_edges, val_rows, val_y = computation_graph(data, data.val_mask, num_hops)
    result = TrainResult(0.0, 0.0, 0, 0, False)
    best_acc, best_loss, waited, saved = 0.0, math.inf, 0, None
    for epoch in range(max_epochs):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(train_x, train_edges)[train_rows], train_y)
        loss.backward()
        optimizer.step()
        model.eval()
        val_loss = val_acc = math.nan
        if validate_each_epoch:
            with torch.no_grad():
                logits = model(val_x, val_edges)[val_rows]
                val_loss = F.cross_entropy(logits, val_y).item()
                val_acc = accuracy(logits, val_y)
        result.train_loss.append(loss.item())
        result.val_loss.append(val_loss)
        result.val_acc.append(val_acc)
        result.epochs_run = result.tested_epoch = epoch + 1
        if stopping == "gcn" and epoch > patience and val_loss > sum(result.val_loss[-patience - 1:-1]) / patience:
            result.stopped_early = True
            break
        if stopping == "gat":
            if val_acc >= best_acc or val_loss <= best_loss:
                if val_acc >= best_acc and val_loss <= best_loss:
                    saved, saved_epoch = copy.deepcopy(model.state_dict()), epoch + 1
                best_acc, best_loss, waited = max(val_acc, best_acc), min(val_loss, best_loss), 0
            else:
                waited += 1
                if waited == patience:
                    result.stopped_early = True
                    break
    if saved is not None:
        model.load_state_dict(saved)
        result.tested_epoch = saved_epoch
    model.eval()
    with torch.no_grad():
        logits = model(data.x, data.edge_index)
    result.test_accuracy = accuracy(logits[data.test_mask], data.y[data.test_mask])
    result.val_accuracy = accuracy(logits[data.val_mask], data.y[data.val_mask]) if has_val else math.nan
    return result


def train_sage_minibatch(model: nn.Module, data, optimizer: torch.optim.Optimizer, epochs: int,
                         fanouts: list[int], batch_size: int, generator: torch.Generator) -> list[float]:
    """Mini-batch training with neighbour sampling; returns the mean training loss per epoch.

    Each step takes ``batch_size`` training nodes (the seeds), samples ``fanouts[k]`` incoming
    neighbours per node at hop k+1 (:func:`~lepton_lib.gnn.sampling.sample_subgraph`), runs the
    model on that small subgraph only and computes the loss on the seeds. Memory per step
    depends on ``batch_size * prod(fanouts)``, not on the size of the graph.
    """
    train_nodes = data.train_mask.nonzero().view(-1)
    losses = []
    for _ in range(epochs):
        model.train()
        # Drawn on the generator's device, used on the data's: the same order on CPU and GPU.
        perm = torch.randperm(train_nodes.numel(), generator=generator, device=generator.device)
        order = train_nodes[perm.to(train_nodes.device)]
        total = 0.0
        for start in range(0, order.numel(), batch_size):
            seeds = order[start:start + batch_size]
            sub = sample_subgraph(data.edge_index, seeds, fanouts, data.x.shape[0], generator)
            optimizer.zero_grad()
            logits = model(data.x[sub.node_ids], sub.edge_index)[: sub.num_seeds]
            loss = F.cross_entropy(logits, data.y[seeds])
            loss.backward()
            optimizer.step()
            total += loss.item() * seeds.numel()
        losses.append(total / train_nodes.numel())
    return losses
