"""Graph neural networks in plain PyTorch: GCN, GAT and GraphSAGE layers, models and training.

Every layer follows the message-passing pattern of Gilmer et al. (2017) and PyTorch Geometric:
transform node features, build one message per edge (source -> target), and aggregate the
messages at each target node (see :mod:`lepton_lib.gnn.graph_ops`). The layers are checked
against ``torch_geometric.nn`` in ``tests/test_gnn.py``: with the same weights they give the
same outputs and gradients.

- :class:`GCNConv`: H' = D^-1/2 (A + I) D^-1/2 H W + b (Kipf & Welling, 2017).
- :class:`GATConv`: h_i' = sum_j alpha_ij W h_j, alpha_ij = softmax over j in N(i) + {i} of
  LeakyReLU(a_src . W h_j + a_dst . W h_i) (Velickovic et al., 2018).
- :class:`SAGEConv`: h_i' = W_root h_i + W_neigh mean_{j in N(i)} h_j (Hamilton et al., 2017).

Shapes: N nodes, E edges, F input features, H heads, C output features per head.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.gnn.graph_ops import (add_self_loops, check_edge_index, check_node_features, dropout_features, gcn_norm,
                          remove_self_loops, sample_subgraph, scatter_softmax, scatter_sum, sparse_features)

__all__ = [
    "GCNConv", "GATConv", "SAGEConv", "GCN", "GAT", "SAGE",
    "accuracy", "TrainResult", "train_node_classifier",
    "PAPER_HYPERPARAMETERS", "run_paper_experiment", "train_sage_minibatch",
    "copy_gcn_weights_from_pyg", "copy_gat_weights_from_pyg", "copy_sage_weights_from_pyg",
]


def _glorot_(tensor: torch.Tensor) -> None:
    """Glorot/Xavier uniform over the last two dimensions, as Kipf's, Velickovic's and PyG's code."""
    bound = math.sqrt(6.0 / (tensor.size(-2) + tensor.size(-1)))
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


class GCNConv(nn.Module):
    """One graph convolution, H' = D^-1/2 (A + I) D^-1/2 H W + b.

    forward(x (N, F), edge_index (2, E)) -> (N, out_features). The self-loop lets a node keep
    its own features; the symmetric normalisation keeps the scale of H' independent of the
    degrees (without it, a node with 100 neighbours would get a sum 100 times larger).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        _glorot_(self.lin.weight)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        check_node_features(x, self.in_features)
        num_nodes = x.shape[0]
        check_edge_index(edge_index, num_nodes)
        h = self.lin(x)  # transform first: F -> out is usually a reduction, so messages are small
        edge_index, weight = gcn_norm(edge_index, num_nodes, dtype=h.dtype)
        source, target = edge_index
        out = scatter_sum(h.index_select(0, source) * weight.unsqueeze(-1), target, num_nodes)
        return out if self.bias is None else out + self.bias


class GATConv(nn.Module):
    """Graph attention with ``heads`` independent heads.

    For each head: z = W h; the score of edge j -> i is e_ij = LeakyReLU(a_src . z_j + a_dst . z_i)
    (the paper's a^T [z_i || z_j], with a split into its two halves); alpha_ij is the softmax of
    e_ij over the incoming edges of the TARGET i, self-loop included; h_i' = sum_j alpha_ij z_j.
    Heads are concatenated (N, heads * C) or, with ``concat=False``, averaged (N, C).
    ``dropout`` drops attention coefficients during training, as in the paper.
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        self.in_features, self.out_features, self.heads = in_features, out_features, heads
        self.concat, self.negative_slope, self.dropout = concat, negative_slope, dropout
        self.lin = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_features))
        width = heads * out_features if concat else out_features
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None
        for parameter in (self.lin.weight, self.att_src, self.att_dst):
            _glorot_(parameter)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, return_attention: bool = False):
        """-> (N, width), or ``(out, (edge_index_with_loops, alpha (E', heads)))`` with ``return_attention``."""
        check_node_features(x, self.in_features)
        num_nodes, heads, channels = x.shape[0], self.heads, self.out_features
        check_edge_index(edge_index, num_nodes)
        z = self.lin(x).view(num_nodes, heads, channels)
        # a^T [z_i || z_j] = a_dst . z_i + a_src . z_j: score each node once, not each edge.
        score_src = (z * self.att_src).sum(-1)  # (N, H)
        score_dst = (z * self.att_dst).sum(-1)
        edge_index = add_self_loops(remove_self_loops(edge_index), num_nodes)
        source, target = edge_index
        scores = F.leaky_relu(score_src.index_select(0, source) + score_dst.index_select(0, target),
                              self.negative_slope)  # (E', H)
        alpha = scatter_softmax(scores, target, num_nodes)  # sums to 1 over each target's edges
        alpha_used = F.dropout(alpha, self.dropout, self.training)
        out = scatter_sum(z.index_select(0, source) * alpha_used.unsqueeze(-1), target, num_nodes)  # (N, H, C)
        out = out.reshape(num_nodes, heads * channels) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return (out, (edge_index, alpha)) if return_attention else out


class SAGEConv(nn.Module):
    """GraphSAGE with mean aggregation: h_i' = W_root h_i + W_neigh mean_{j in N(i)} h_j + b.

    A node without incoming edges gets a zero neighbour mean. Because the layer only averages,
    it works unchanged on a sampled subgraph in which each node keeps a few neighbours. The mean
    is linear, so we transform before averaging: each edge then carries ``out_features``
    numbers instead of ``in_features`` (32 instead of 1,433 on Cora), with the same result.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.lin_neighbors = nn.Linear(in_features, out_features, bias=bias)
        self.lin_root = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        check_node_features(x, self.in_features)
        num_nodes = x.shape[0]
        check_edge_index(edge_index, num_nodes)
        source, target = edge_index
        h = F.linear(x, self.lin_neighbors.weight)  # W_neigh x_j for every node; the bias comes after the mean
        count = torch.zeros(num_nodes, dtype=h.dtype).index_add_(0, target, torch.ones_like(target, dtype=h.dtype))
        mean = scatter_sum(h.index_select(0, source), target, num_nodes) / count.clamp(min=1).unsqueeze(-1)
        if self.lin_neighbors.bias is not None:
            mean = mean + self.lin_neighbors.bias
        return mean + self.lin_root(x)


class _LayerStack(nn.Module):
    """``num_layers`` layers ``conv(in, out)``, dropout before each and ReLU between them."""

    def __init__(self, conv: type, in_features: int, hidden: int, num_classes: int, num_layers: int, dropout: float):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        sizes = [in_features] + [hidden] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(conv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(dropout_features(x, self.dropout, self.training), edge_index)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class GCN(_LayerStack):
    """Kipf & Welling's model: dropout -> GCNConv -> ReLU -> dropout -> GCNConv -> logits.

    ``num_layers`` > 2 inserts more hidden GCNConv(hidden, hidden) layers (for the
    over-smoothing experiment); the paper's model has two.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float = 0.5, num_layers: int = 2):
        super().__init__(GCNConv, in_features, hidden, num_classes, num_layers, dropout)


class GAT(nn.Module):
    """Velickovic et al.'s transductive model: two GAT layers with ELU between them.

    Layer 1: ``heads`` heads of ``hidden_per_head`` features, concatenated. Layer 2:
    ``output_heads`` heads of ``num_classes`` features, averaged (1 head on Cora and CiteSeer,
    8 on PubMed). Dropout ``dropout`` on both layers' inputs and on the attention coefficients.
    """

    def __init__(self, in_features: int, hidden_per_head: int, num_classes: int, heads: int = 8,
                 dropout: float = 0.6, output_heads: int = 1):
        super().__init__()
        self.dropout = dropout
        self.conv1 = GATConv(in_features, hidden_per_head, heads=heads, dropout=dropout)
        self.conv2 = GATConv(heads * hidden_per_head, num_classes, heads=output_heads, concat=False, dropout=dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.elu(self.conv1(dropout_features(x, self.dropout, self.training), edge_index))
        return self.conv2(F.dropout(x, self.dropout, self.training), edge_index)


class SAGE(_LayerStack):
    """A stack of mean-aggregation :class:`SAGEConv` layers with ReLU and dropout between them."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, num_layers: int = 2, dropout: float = 0.5):
        super().__init__(SAGEConv, in_features, hidden, num_classes, num_layers, dropout)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits (N, C)`` whose argmax equals ``labels (N,)``; N must be > 0."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(logits.shape[:1])} "
                         f"(one per row of logits {tuple(logits.shape)}, which must be (N, C))")
    if len(labels) == 0:
        raise ValueError(f"no nodes to score: logits has shape {tuple(logits.shape)} (is the mask empty?)")
    return (logits.argmax(dim=-1) == labels).float().mean().item()


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


def _computation_graph(data, mask: torch.Tensor, num_hops: int | None):
    """(x, edge_index, rows, labels): where to compute the outputs of the ``mask`` nodes.

    Without ``num_hops``, the whole graph. With it, only the nodes and edges within
    ``num_hops`` incoming hops of the masked nodes (all of them: the fanout E never samples).
    That is all their outputs depend on when a layer updates node i from i's incoming edges
    alone, as GAT and GraphSAGE do; GCN does not (its weight 1/sqrt(d_i d_j) needs the full
    degree of every source j), so never pass ``num_hops`` for a GCN.
    """
    if num_hops is None:
        return data.x, data.edge_index, mask, data.y[mask]
    seeds = mask.nonzero().view(-1)
    num_edges, num_nodes = data.edge_index.shape[1], data.x.shape[0]
    sub = sample_subgraph(data.edge_index, seeds, [num_edges] * num_hops, num_nodes)
    if data.x.layout == torch.sparse_csr:  # CSR tensors cannot be row-indexed
        x = sparse_features(data.x.to_dense()[sub.node_ids])
    else:
        x = data.x[sub.node_ids]
    return x, sub.edge_index, slice(0, sub.num_seeds), data.y[seeds]


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
    train_x, train_edges, train_rows, train_y = _computation_graph(data, data.train_mask, num_hops)
    if validate_each_epoch:
        val_x, val_edges, val_rows, val_y = _computation_graph(data, data.val_mask, num_hops)
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
    torch.manual_seed(seed)
    if model_name == "gcn":
        model = GCN(data.num_features, hp["hidden"], data.num_classes, dropout=hp["dropout"])
        groups = [dict(params=model.convs[0].parameters(), weight_decay=hp["weight_decay"]),
                  dict(params=model.convs[1].parameters(), weight_decay=0.0)]
    else:
        model = GAT(data.num_features, hp["hidden"], data.num_classes, heads=hp["heads"],
                    dropout=hp["dropout"], output_heads=hp["output_heads"])
        groups = [dict(params=model.parameters(), weight_decay=hp["weight_decay"])]
    optimizer = torch.optim.Adam(groups, lr=hp["lr"])
    num_hops = 2 if model_name == "gat" else None  # never for GCN: see _computation_graph
    result = train_node_classifier(model, data, optimizer, max_epochs or hp["max_epochs"], hp["stopping"],
                                   hp["patience"], num_hops=num_hops)
    return model, result


def train_sage_minibatch(model: nn.Module, data, optimizer: torch.optim.Optimizer, epochs: int,
                         fanouts: list[int], batch_size: int, generator: torch.Generator) -> list[float]:
    """Mini-batch training with neighbour sampling; returns the mean training loss per epoch.

    Each step takes ``batch_size`` training nodes (the seeds), samples ``fanouts[k]`` incoming
    neighbours per node at hop k+1 (:func:`~lepton_lib.gnn.graph_ops.sample_subgraph`), runs the
    model on that small subgraph only and computes the loss on the seeds. Memory per step
    depends on ``batch_size * prod(fanouts)``, not on the size of the graph.
    """
    train_nodes = data.train_mask.nonzero().view(-1)
    losses = []
    for _ in range(epochs):
        model.train()
        order = train_nodes[torch.randperm(train_nodes.numel(), generator=generator)]
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


@torch.no_grad()
def copy_gcn_weights_from_pyg(ours: GCNConv, theirs) -> None:
    """Copy a ``torch_geometric.nn.GCNConv``'s weights into ours (for the parity tests)."""
    ours.lin.weight.copy_(theirs.lin.weight)
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias)


@torch.no_grad()
def copy_gat_weights_from_pyg(ours: GATConv, theirs) -> None:
    """Copy a ``torch_geometric.nn.GATConv``'s weights (lin, att_src, att_dst, bias) into ours."""
    ours.lin.weight.copy_(theirs.lin.weight)
    ours.att_src.copy_(theirs.att_src)
    ours.att_dst.copy_(theirs.att_dst)
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias)


@torch.no_grad()
def copy_sage_weights_from_pyg(ours: SAGEConv, theirs) -> None:
    """Copy a mean-aggregation ``torch_geometric.nn.SAGEConv``'s weights (lin_l, lin_r) into ours."""
    ours.lin_neighbors.weight.copy_(theirs.lin_l.weight)
    if ours.lin_neighbors.bias is not None:
        ours.lin_neighbors.bias.copy_(theirs.lin_l.bias)
    ours.lin_root.weight.copy_(theirs.lin_r.weight)
