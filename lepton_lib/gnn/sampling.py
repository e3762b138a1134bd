"""Neighbour sampling: the small computation graphs that make mini-batch GNN training scale.

An L-layer GNN computes a node's output from its L-hop incoming neighbourhood only. GraphSAGE
(Hamilton et al. 2017) samples a few neighbours per node and hop (:func:`sample_neighbors`,
:func:`sample_subgraph`), so the cost of a step depends on the batch and the fanouts, not on the
size of the graph; :func:`computation_graph` keeps the whole neighbourhood instead (exact outputs,
less work than the whole graph). Edges use the ``edge_index`` convention of
:mod:`lepton_lib.data.edges` (source -> target).

Shapes: N nodes, E edges, B requested nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lepton_lib.core.checks import check_positive_int, check_tensor
from lepton_lib.data.edges import check_edge_index
from lepton_lib.gnn.graph_ops import degree, sparse_features

__all__ = ["sample_neighbors", "Subgraph", "sample_subgraph", "computation_graph"]


def sample_neighbors(edge_index: torch.Tensor, nodes: torch.Tensor, fanout: int,
                     generator: torch.Generator | None = None, num_nodes: int | None = None) -> torch.Tensor:
    """For each node in ``nodes`` (B,), keep at most ``fanout`` incoming edges, drawn uniformly.

    Sampling is without replacement: a node with ``deg <= fanout`` keeps all its edges, a node
    with more keeps a uniformly random subset of size ``fanout`` (GraphSAGE's sampler,
    Hamilton et al. 2017). Returns the kept edges, (2, E'), with global node ids. Each
    candidate edge draws a random key and the ``fanout`` smallest keys per node win, so the
    whole batch is sampled with one sort instead of a Python loop. The keys are drawn by
    ``generator`` on its own device and moved to ``edge_index``'s, so a CPU generator samples the
    same edges whether the graph lives on the CPU or on a GPU.
    """
    if num_nodes is None:
        check_tensor("edge_index", edge_index, shape=(2, None), dtype=torch.int64)
        if edge_index.numel() == 0:
            raise ValueError("num_nodes must be given when edge_index has no edges (it cannot be inferred)")
        num_nodes = int(edge_index.max()) + 1
    check_edge_index(edge_index, num_nodes)
    check_tensor("nodes", nodes, shape=(None,), dtype=torch.int64, device=edge_index.device)
    check_positive_int("fanout", fanout)
    if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(f"nodes must lie in [0, {num_nodes - 1}], got ids in "
                         f"[{int(nodes.min())}, {int(nodes.max())}]")
    # Group edges by target (a CSR view): edges into node t are order[ptr[t]:ptr[t + 1]].
    order = torch.argsort(edge_index[1], stable=True)
    device = edge_index.device
    ptr = torch.zeros(num_nodes + 1, dtype=torch.int64, device=device)
    ptr[1:] = torch.cumsum(degree(edge_index[1], num_nodes, dtype=torch.int64), 0)
    counts = ptr[nodes + 1] - ptr[nodes]  # (B,) in-degree of each requested node
    owner = torch.repeat_interleave(torch.arange(nodes.numel(), device=device), counts)  # candidate -> batch slot
    first = torch.repeat_interleave(ptr[nodes], counts)
    offset = torch.arange(owner.numel(), device=device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    candidates = order[first + offset]  # (sum of degrees,) edge ids
    # Drawn where the generator lives, then moved: a CPU generator gives the same edges on every device.
    keys = torch.rand(candidates.numel(), generator=generator, dtype=torch.float64,
                      device=device if generator is None else generator.device).to(device)  # in [0, 1)
    ranked = torch.argsort(owner + keys)  # grouped by batch slot (as owner is), random inside
    return edge_index[:, candidates[ranked[offset < fanout]]]  # offset = rank inside the group


@dataclass(frozen=True)
class Subgraph:
    """A sampled computation graph: ``node_ids`` (n,) global ids with the ``num_seeds`` seed
    nodes first, and ``edge_index`` (2, e) in local ids (positions in ``node_ids``)."""

    node_ids: torch.Tensor
    edge_index: torch.Tensor
    num_seeds: int


def sample_subgraph(edge_index: torch.Tensor, seeds: torch.Tensor, fanouts: list[int], num_nodes: int,
                    generator: torch.Generator | None = None) -> Subgraph:
    """Sample ``len(fanouts)`` hops of incoming neighbours around ``seeds``, as PyG's NeighborLoader.

    Hop 1 samples up to ``fanouts[0]`` edges into each seed, hop 2 up to ``fanouts[1]`` edges
    into each node first reached at hop 1, and so on. An L-layer GNN run on the returned
    subgraph computes every seed's output from at most ``prod(fanouts)`` leaves, whatever the
    size of the full graph: this is what makes mini-batch training scale.
    """
    check_tensor("seeds", seeds, shape=(None,), dtype=torch.int64)
    if not fanouts:
        raise ValueError("fanouts must list at least one hop, got []")
    check_positive_int("num_nodes", num_nodes)
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= num_nodes):
        raise ValueError(f"seeds must lie in [0, {num_nodes - 1}], got ids in [{int(seeds.min())}, {int(seeds.max())}]")
    unique, counts = torch.unique(seeds, return_counts=True)
    if bool((counts > 1).any()):  # a repeated seed would get one local id and leave a row unmapped
        raise ValueError(f"seeds must not repeat a node, got {int(unique[counts > 1][0])} twice or more")
    local = torch.full((num_nodes,), -1, dtype=torch.int64, device=seeds.device)  # global id -> local id
    local[seeds] = torch.arange(seeds.numel(), device=seeds.device)
    node_ids, frontier, edges = [seeds], seeds, []
    for fanout in fanouts:
        sampled = sample_neighbors(edge_index, frontier, fanout, generator, num_nodes)
        edges.append(sampled)
        new = torch.unique(sampled[0][local[sampled[0]] < 0])
        local[new] = torch.arange(new.numel(), device=new.device) + sum(ids.numel() for ids in node_ids)
        node_ids.append(new)
        frontier = new
    sub_edges = torch.cat(edges, dim=1)
    return Subgraph(torch.cat(node_ids), local[sub_edges], seeds.numel())


def computation_graph(data, mask: torch.Tensor, num_hops: int | None = None):
    """``(x, edge_index, rows, labels)``: the inputs that the outputs of the ``mask`` nodes depend on.

    ``data`` is a :class:`~lepton_lib.data.graphs.GraphData` and ``mask`` (N,) bool selects the
    nodes whose outputs we want. ``model(x, edge_index)[rows]`` are then those nodes' outputs and
    ``labels`` their labels, in the same order.

    Without ``num_hops``, the whole graph. With it, only the nodes and edges within ``num_hops``
    incoming hops of the masked nodes (all of them: the fanout E never samples). That is all
    their outputs depend on when a layer updates node i from i's incoming edges alone, as GAT and
    GraphSAGE do; GCN does not (its weight 1/sqrt(d_i d_j) needs the full degree of every source
    j), so never pass ``num_hops`` for a GCN.
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
