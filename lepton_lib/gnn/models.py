"""Graph neural networks for node classification: GCN, GAT and GraphSAGE models.

Each model stacks the layers of :mod:`lepton_lib.gnn.layers` as its paper does: dropout on
every layer's input, a nonlinearity between layers, and class logits (N, num_classes) at the
end. :mod:`lepton_lib.gnn.training` trains them; :mod:`lepton_lib.gnn.paper_recipe` holds the
papers' hyper-parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.core.checks import check_positive_int
from lepton_lib.gnn.graph_ops import dropout_features
from lepton_lib.gnn.layers import GATConv, GCNConv, SAGEConv

__all__ = ["GCN", "GAT", "SAGE"]


class _LayerStack(nn.Module):
    """``num_layers`` layers ``conv(in, out)``, dropout before each and ReLU between them."""

    def __init__(self, conv: type, in_features: int, hidden: int, num_classes: int, num_layers: int, dropout: float):
        super().__init__()
        check_positive_int("num_layers", num_layers)
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
