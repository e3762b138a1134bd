"""Edge lists: the checks and clean-ups a graph's ``edge_index`` needs before any model sees it.

A graph with N nodes and E directed edges is stored as ``edge_index``, an int64 tensor of
shape (2, E): column ``k`` is the edge ``edge_index[0, k] -> edge_index[1, k]`` (source ->
target). An undirected graph stores each edge twice, once per direction. This is PyTorch
Geometric's convention ("source_to_target"). The loaders (:mod:`lepton_lib.data.graphs`) clean
their graphs with these functions, and the GNN layers (:mod:`lepton_lib.gnn`) check and add
self-loops with them; everything here is plain PyTorch.

Shapes: N nodes, E edges.
"""
from __future__ import annotations

import torch

from lepton_lib.core.checks import check_positive_int, check_tensor

__all__ = ["check_edge_index", "remove_self_loops", "add_self_loops", "coalesce", "to_undirected"]


def check_edge_index(edge_index: object, num_nodes: int, name: str = "edge_index") -> torch.Tensor:
    """Check that ``edge_index`` is an int64 (2, E) tensor whose ids lie in ``[0, num_nodes)``."""
    check_tensor(name, edge_index, shape=(2, None), dtype=torch.int64)
    assert isinstance(edge_index, torch.Tensor)
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} contains node id {bad}, but the graph has {num_nodes} nodes "
                f"(ids must lie in [0, {num_nodes - 1}]); do x and {name} describe the same graph?"
            )
    return edge_index


def remove_self_loops(edge_index: torch.Tensor) -> torch.Tensor:
    """Drop every edge i -> i. (2, E) -> (2, E')"""
    return edge_index[:, edge_index[0] != edge_index[1]]


def add_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Append one edge i -> i for every node, after the existing edges. (2, E) -> (2, E + N)

    Existing self-loops are kept, so call :func:`remove_self_loops` first for exactly one loop
    per node (what GCN's A + I and GAT's "i attends to itself" both mean).
    """
    loops = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    return torch.cat([edge_index, loops.unsqueeze(0).repeat(2, 1)], dim=1)


def coalesce(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Remove duplicate edges and sort by target, then source (PyG's order). (2, E) -> (2, E')"""
    check_positive_int("num_nodes", num_nodes)
    check_edge_index(edge_index, num_nodes)  # an id outside [0, N) would merge with another edge's key
    key = torch.unique(edge_index[1] * num_nodes + edge_index[0])  # unique() also sorts
    return torch.stack([key % num_nodes, key // num_nodes])


def to_undirected(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Both directions of every edge, without duplicates, sorted as :func:`coalesce`."""
    check_edge_index(edge_index, num_nodes)
    return coalesce(torch.cat([edge_index, edge_index.flip(0)], dim=1), num_nodes)
