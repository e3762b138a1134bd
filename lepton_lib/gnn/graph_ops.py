"""Graph operations on an ``edge_index``: the sparse building blocks of every GNN layer.

A graph with N nodes and E directed edges is stored as ``edge_index``, an int64 tensor of
shape (2, E): column ``k`` is the edge ``edge_index[0, k] -> edge_index[1, k]`` (source ->
target). An undirected graph stores each edge twice, once per direction. Messages flow from
source to target, so "the neighbourhood of node i" always means the sources of the edges whose
target is i, and every reduction below (sum, max, softmax) runs over each TARGET node's
incoming edges. This is PyTorch Geometric's convention ("source_to_target"); everything here
is plain PyTorch (``index_add_`` / ``scatter_reduce_``), with no compiled extension. The module
also holds what the layers share about node features: input checks, and sparse storage with
dropout for bag-of-words features; and the neighbour sampler used for mini-batch training.

Shapes: N nodes, E edges, H attention heads, F features.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lepton_lib.core.checks import check_tensor

__all__ = [
    "check_edge_index",
    "check_node_features",
    "sparse_features",
    "dropout_features",
    "degree",
    "remove_self_loops",
    "add_self_loops",
    "coalesce",
    "to_undirected",
    "gcn_norm",
    "gcn_propagation_matrix",
    "scatter_sum",
    "scatter_softmax",
    "to_dense_adjacency",
    "dense_laplacian",
    "sample_neighbors",
    "Subgraph",
    "sample_subgraph",
]


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


def _check_num_nodes(num_nodes: object) -> int:
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"num_nodes must be a positive int, got {num_nodes!r}")
    return num_nodes


def check_node_features(x: object, in_features: int | None = None, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is a floating-point (N, F) tensor, with F == ``in_features`` if given."""
    check_tensor(name, x, shape=(None, in_features))
    assert isinstance(x, torch.Tensor)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def sparse_features(x: torch.Tensor) -> torch.Tensor:
    """The same (N, F) features as a sparse CSR tensor, for fast first layers on bag-of-words data.

    Cora's features are 98.7% zeros: multiplying only the ~49k stored values by W is several
    times faster than the dense (2708 x 1433) product, forward and backward. Every layer here
    accepts either form and gives the same result (``tests/test_gnn.py`` checks this).
    """
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we only use matmul and values
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr()


def dropout_features(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout that also accepts sparse (CSR or COO) features: it drops the stored entries only.

    Dropout leaves zeros at zero, so dropping the stored values of a sparse matrix gives the same
    distribution of outputs as dropping every entry of its dense form (Kipf & Welling's code
    does the same with its ``sparse_dropout``).
    """
    if x.layout == torch.strided:
        return F.dropout(x, p, training)
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        values = F.dropout(x.values(), p, training)
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), values, x.shape, check_invariants=False)
    x = x.coalesce()  # a no-op for the already coalesced tensor that ``to_sparse()`` returns
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, training), x.shape, check_invariants=False)


def degree(index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How often each node id occurs in ``index`` (E,): pass ``edge_index[1]`` for in-degrees. (N,)"""
    ones = torch.ones(index.numel(), dtype=dtype, device=index.device)
    return torch.zeros(num_nodes, dtype=dtype, device=index.device).index_add_(0, index, ones)


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
    _check_num_nodes(num_nodes)
    check_edge_index(edge_index, num_nodes)  # an id outside [0, N) would merge with another edge's key
    key = torch.unique(edge_index[1] * num_nodes + edge_index[0])  # unique() also sorts
    return torch.stack([key % num_nodes, key // num_nodes])


def to_undirected(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Both directions of every edge, without duplicates, sorted as :func:`coalesce`."""
    check_edge_index(edge_index, num_nodes)
    return coalesce(torch.cat([edge_index, edge_index.flip(0)], dim=1), num_nodes)


def gcn_norm(edge_index: torch.Tensor, num_nodes: int, dtype: torch.dtype = torch.float32,
             add_loops: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of A + I and their weights 1 / sqrt(d_i d_j): the matrix D^-1/2 (A + I) D^-1/2.

    Returns ``(edge_index, weight)`` with shapes (2, E') and (E',). Degrees count incoming edges
    including the self-loop, so d_i >= 1 and no division by zero can occur (an isolated node
    keeps its own features with weight 1). A duplicated edge counts twice, in its weight and
    in the degrees, exactly as PyG's ``gcn_norm`` does.
    """
    if add_loops:
        edge_index = add_self_loops(remove_self_loops(edge_index), num_nodes)
    source, target = edge_index
    deg = degree(target, num_nodes, dtype=dtype)
    inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)  # only reachable with add_loops=False
    return edge_index, inv_sqrt.index_select(0, source) * inv_sqrt.index_select(0, target)


def gcn_propagation_matrix(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 as a sparse CSR (N, N) matrix, rows indexed by target.

    ``matrix @ h`` is one GCN propagation without weights. For wide features (Cora's 1,433
    words) one sparse product is much faster than gathering an (E, F) tensor of messages.
    """
    loop_index, weight = gcn_norm(edge_index, num_nodes)
    matrix = torch.sparse_coo_tensor(loop_index.flip(0), weight, (num_nodes, num_nodes), check_invariants=True)
    matrix = matrix.coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we only multiply with it
        warnings.simplefilter("ignore", UserWarning)
        return matrix.to_sparse_csr()


def scatter_sum(src: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Sum the rows of ``src`` (E, *) that share a target id in ``index`` (E,). -> (N, *)

    Nodes that receive nothing get zeros. ``index_add_`` is differentiable; its backward pass
    is a gather, so gradients flow back to every edge.
    """
    out = src.new_zeros((num_nodes, *src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_softmax(scores: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Softmax of edge ``scores`` (E,) or (E, H) over the edges that share a target node.

    For each target i, the weights of its incoming edges sum to 1 (per head). The per-node
    maximum is subtracted first, so large scores cannot overflow ``exp``; it is detached
    because softmax does not depend on the shift.
    """
    expanded = index.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    node_max = scores.new_full((num_nodes, *scores.shape[1:]), float("-inf"))
    node_max = node_max.scatter_reduce(0, expanded, scores.detach(), reduce="amax", include_self=True)
    exp = (scores - node_max.index_select(0, index)).exp()
    return exp / scatter_sum(exp, index, num_nodes).index_select(0, index)


def to_dense_adjacency(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """The (N, N) matrix with A[i, j] = number of edges j -> i (1 for a simple graph).

    Rows are targets, so ``A @ x`` sums each node's incoming neighbours, matching
    :func:`scatter_sum`. For an undirected graph A is symmetric and the order does not matter.
    """
    check_edge_index(edge_index, num_nodes)
    adjacency = torch.zeros(num_nodes, num_nodes)
    ones = torch.ones(edge_index.shape[1])
    return adjacency.index_put_((edge_index[1], edge_index[0]), ones, accumulate=True)


def dense_laplacian(edge_index: torch.Tensor, num_nodes: int, normalized: bool = False) -> torch.Tensor:
    """The graph Laplacian L = D - A, or I - D^-1/2 A D^-1/2 when ``normalized``. (N, N)"""
    adjacency = to_dense_adjacency(edge_index, num_nodes)
    deg = adjacency.sum(dim=1)
    if not normalized:
        return torch.diag(deg) - adjacency
    inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return torch.eye(num_nodes) - inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


def sample_neighbors(edge_index: torch.Tensor, nodes: torch.Tensor, fanout: int,
                     generator: torch.Generator | None = None, num_nodes: int | None = None) -> torch.Tensor:
    """For each node in ``nodes`` (B,), keep at most ``fanout`` incoming edges, drawn uniformly.

    Sampling is without replacement: a node with ``deg <= fanout`` keeps all its edges, a node
    with more keeps a uniformly random subset of size ``fanout`` (GraphSAGE's sampler,
    Hamilton et al. 2017). Returns the kept edges, (2, E'), with global node ids. Each
    candidate edge draws a random key and the ``fanout`` smallest keys per node win, so the
    whole batch is sampled with one sort instead of a Python loop.
    """
    if num_nodes is None:
        check_tensor("edge_index", edge_index, shape=(2, None), dtype=torch.int64)
        if edge_index.numel() == 0:
            raise ValueError("num_nodes must be given when edge_index has no edges (it cannot be inferred)")
        num_nodes = int(edge_index.max()) + 1
    check_edge_index(edge_index, num_nodes)
    check_tensor("nodes", nodes, shape=(None,), dtype=torch.int64)
    if isinstance(fanout, bool) or not isinstance(fanout, int) or fanout < 1:
        raise ValueError(f"fanout must be a positive int, got {fanout!r}")
    if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(f"nodes must lie in [0, {num_nodes - 1}], got ids in "
                         f"[{int(nodes.min())}, {int(nodes.max())}]")
    # Group edges by target (a CSR view): edges into node t are order[ptr[t]:ptr[t + 1]].
    order = torch.argsort(edge_index[1], stable=True)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(degree(edge_index[1], num_nodes, dtype=torch.int64), 0)
    counts = ptr[nodes + 1] - ptr[nodes]  # (B,) in-degree of each requested node
    owner = torch.repeat_interleave(torch.arange(nodes.numel()), counts)  # candidate -> batch slot
    first = torch.repeat_interleave(ptr[nodes], counts)
    offset = torch.arange(owner.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    candidates = order[first + offset]  # (sum of degrees,) edge ids
    keys = torch.rand(candidates.numel(), generator=generator, dtype=torch.float64)  # in [0, 1)
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
    _check_num_nodes(num_nodes)
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= num_nodes):
        raise ValueError(f"seeds must lie in [0, {num_nodes - 1}], got ids in [{int(seeds.min())}, {int(seeds.max())}]")
    unique, counts = torch.unique(seeds, return_counts=True)
    if bool((counts > 1).any()):  # a repeated seed would get one local id and leave a row unmapped
        raise ValueError(f"seeds must not repeat a node, got {int(unique[counts > 1][0])} twice or more")
    local = torch.full((num_nodes,), -1, dtype=torch.int64)  # global id -> local id
    local[seeds] = torch.arange(seeds.numel())
    node_ids, frontier, edges = [seeds], seeds, []
    for fanout in fanouts:
        sampled = sample_neighbors(edge_index, frontier, fanout, generator, num_nodes)
        edges.append(sampled)
        new = torch.unique(sampled[0][local[sampled[0]] < 0])
        local[new] = torch.arange(new.numel()) + sum(ids.numel() for ids in node_ids)
        node_ids.append(new)
        frontier = new
    sub_edges = torch.cat(edges, dim=1)
    return Subgraph(torch.cat(node_ids), local[sub_edges], seeds.numel())
