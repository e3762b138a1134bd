"""Graph operations on an ``edge_index``: the sparse building blocks of every GNN layer.

A graph with N nodes and E directed edges is stored as ``edge_index``, an int64 tensor of
shape (2, E): column ``k`` is the edge ``edge_index[0, k] -> edge_index[1, k]`` (source ->
target); :mod:`lepton_lib.data.edges` checks and cleans such edge lists. Messages flow from
source to target, so "the neighbourhood of node i" always means the sources of the edges whose
target is i, and every reduction below (sum, max, softmax) runs over each TARGET node's
incoming edges. This is PyTorch Geometric's convention ("source_to_target"); everything here
is plain PyTorch (``index_add_`` / ``scatter_reduce_``), with no compiled extension. The module
also holds what the layers share about node features: input checks, and sparse storage with
dropout for bag-of-words features. The neighbour sampler is in :mod:`lepton_lib.gnn.sampling`.

Shapes: N nodes, E edges, H attention heads, F features.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from lepton_lib.core.checks import check_tensor, should_check_values
from lepton_lib.data.edges import add_self_loops, check_edge_index, remove_self_loops

__all__ = [
    "check_node_features",
    "check_edges",
    "check_graph_inputs",
    "sparse_features",
    "dropout_features",
    "degree",
    "gcn_norm",
    "gcn_propagation_matrix",
    "scatter_sum",
    "scatter_softmax",
    "to_dense_adjacency",
    "dense_laplacian",
]


def check_node_features(x: object, in_features: int | None = None, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is a floating-point (N, F) tensor, with F == ``in_features`` if given."""
    check_tensor(name, x, shape=(None, in_features))
    assert isinstance(x, torch.Tensor)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def check_edges(edge_index: object, num_nodes: int, device: torch.device | None = None) -> torch.Tensor:
    """Check an int64 (2, E) ``edge_index`` (on ``device`` if given) without a host-device sync.

    Shape, dtype and device are checked always (free). The ids are checked against ``[0, num_nodes)``
    by :func:`lepton_lib.data.edges.check_edge_index` where
    :func:`~lepton_lib.core.checks.should_check_values` allows it: always on the CPU, and on a GPU
    only with ``LEPTON_CHECK_VALUES=1``, because reading ``edge_index.max()`` stalls the device.
    """
    check_tensor("edge_index", edge_index, shape=(2, None), dtype=torch.int64)
    assert isinstance(edge_index, torch.Tensor)
    if device is not None and edge_index.device != device:
        raise ValueError(f"edge_index is on {edge_index.device}, expected x's device {device}")
    if should_check_values(edge_index):
        check_edge_index(edge_index, num_nodes)
    return edge_index


def check_graph_inputs(x: object, edge_index: object, in_features: int | None = None) -> int:
    """The checks of every layer's ``forward(x (N, F), edge_index (2, E))``; returns N.

    :func:`check_node_features` on ``x``, then :func:`check_edges` with ``x``'s node count and device.
    """
    x = check_node_features(x, in_features)
    check_edges(edge_index, x.shape[0], device=x.device)
    return x.shape[0]


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
    check_edges(edge_index, num_nodes)
    adjacency = torch.zeros(num_nodes, num_nodes, device=edge_index.device)
    ones = torch.ones(edge_index.shape[1], device=edge_index.device)
    return adjacency.index_put_((edge_index[1], edge_index[0]), ones, accumulate=True)


def dense_laplacian(edge_index: torch.Tensor, num_nodes: int, normalized: bool = False) -> torch.Tensor:
    """The graph Laplacian L = D - A, or I - D^-1/2 A D^-1/2 when ``normalized``. (N, N)"""
    adjacency = to_dense_adjacency(edge_index, num_nodes)
    deg = adjacency.sum(dim=1)
    if not normalized:
        return torch.diag(deg) - adjacency
    inv_sqrt = deg.pow(-0.5).masked_fill_(deg == 0, 0.0)
    return torch.eye(num_nodes, device=adjacency.device) - inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]
