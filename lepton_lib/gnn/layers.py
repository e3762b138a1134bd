"""Message-passing layers in plain PyTorch: GCN, GAT and GraphSAGE convolutions.

Every layer follows the message-passing pattern of Gilmer et al. (2017) and PyTorch Geometric:
transform node features, build one message per edge (source -> target), and aggregate the
messages at each target node (see :mod:`lepton_lib.gnn.graph_ops`). The layers are checked
against ``torch_geometric.nn`` in ``tests/test_gnn.py``: with the same weights
(:mod:`lepton_lib.interop.pyg` copies them) they give the same outputs and gradients.

- :class:`GCNConv`: H' = D^-1/2 (A + I) D^-1/2 H W + b (Kipf & Welling, 2017).
- :class:`GATConv`: h_i' = sum_j alpha_ij W h_j, alpha_ij = softmax over j in N(i) + {i} of
  LeakyReLU(a_src . W h_j + a_dst . W h_i) (Velickovic et al., 2018).
- :class:`SAGEConv`: h_i' = W_root h_i + W_neigh mean_{j in N(i)} h_j (Hamilton et al., 2017).

Shapes: N nodes, E edges, F input features, H heads, C output features per head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.core.checks import check_positive_int
from lepton_lib.data.edges import add_self_loops, remove_self_loops
from lepton_lib.gnn.graph_ops import check_graph_inputs, degree, gcn_norm, scatter_softmax, scatter_sum

__all__ = ["GCNConv", "GATConv", "SAGEConv"]


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
        num_nodes = check_graph_inputs(x, edge_index, self.in_features)
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
        check_positive_int("heads", heads)
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
        num_nodes = check_graph_inputs(x, edge_index, self.in_features)
        heads, channels = self.heads, self.out_features
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
        num_nodes = check_graph_inputs(x, edge_index, self.in_features)
        source, target = edge_index
        h = F.linear(x, self.lin_neighbors.weight)  # W_neigh x_j for every node; the bias comes after the mean
        count = degree(target, num_nodes, dtype=h.dtype)  # incoming edges per node, on the input's device
        mean = scatter_sum(h.index_select(0, source), target, num_nodes) / count.clamp(min=1).unsqueeze(-1)
        if self.lin_neighbors.bias is not None:
            mean = mean + self.lin_neighbors.bias
        return mean + self.lin_root(x)
