"""PyTorch Geometric parity helpers: copy ``torch_geometric.nn`` layers' weights into ours.

With the same weights, :mod:`lepton_lib.gnn.layers` gives the same outputs and gradients as
PyG's layers; ``tests/test_gnn.py`` and ``benchmarks/gnn.py`` check and time them that way.
PyG itself is imported by the callers, not here.
"""
from __future__ import annotations

import torch

from lepton_lib.gnn.layers import GATConv, GCNConv, SAGEConv

__all__ = ["copy_gcn_weights_from_pyg", "copy_gat_weights_from_pyg", "copy_sage_weights_from_pyg"]


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
