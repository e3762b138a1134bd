"""GNN layers and graph operations against references: PyTorch Geometric's layers (same
weights -> same outputs and gradients on Cora), dense-matrix formulas, and hand-built graphs."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lepton_lib.data import coalesce, to_undirected
from lepton_lib.gnn import (GAT, GCN, SAGE, GATConv, GCNConv, SAGEConv, computation_graph, dropout_features,
                            sparse_features, train_node_classifier, train_sage_minibatch)
from lepton_lib.gnn import (dense_laplacian, degree, gcn_norm, gcn_propagation_matrix, sample_neighbors,
                            sample_subgraph, scatter_softmax, scatter_sum, to_dense_adjacency)
from lepton_lib.interop.pyg import copy_gat_weights_from_pyg, copy_gcn_weights_from_pyg, copy_sage_weights_from_pyg

pyg_nn = pytest.importorskip("torch_geometric.nn")

TOL = 1e-5  # float32 parity with PyTorch Geometric: outputs and gradients


@pytest.fixture(scope="module")
def cora():
    from lepton_lib.data import DataUnavailableError
    from lepton_lib.data.graphs import load_planetoid

    try:
        return load_planetoid("cora", normalize_features=True)
    except DataUnavailableError as err:  # no network and no $LEPTON_DATA_DIR
        pytest.skip(f"Cora is not available: {err}")


def random_graph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (2, num_edges), generator=g)


def dense_gcn_matrix(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 with A[i, j] = number of edges j -> i, self-loops replaced by one."""
    a = to_dense_adjacency(edge_index, n)
    a.fill_diagonal_(0.0)
    a = a + torch.eye(n)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


# --- graph operations -------------------------------------------------------------------------

def test_degree_matches_bincount():
    ei = random_graph(20, 60, 0)
    assert torch.equal(degree(ei[1], 20, dtype=torch.int64), torch.bincount(ei[1], minlength=20))


def test_scatter_sum_matches_dense_adjacency_product():
    ei, x = random_graph(15, 50, 1), torch.randn(15, 4, dtype=torch.float64)
    expected = to_dense_adjacency(ei, 15).double() @ x
    assert torch.allclose(scatter_sum(x[ei[0]], ei[1], 15), expected, atol=1e-12)


def test_scatter_softmax_sums_to_one_and_matches_masked_dense_softmax():
    n = 12
    ei = coalesce(random_graph(n, 40, 2), n)
    scores = torch.randn(ei.shape[1], 3, dtype=torch.float64) * 10
    alpha = scatter_softmax(scores, ei[1], n)
    sums = scatter_sum(alpha, ei[1], n)
    has_in = degree(ei[1], n) > 0
    assert torch.allclose(sums[has_in], torch.ones_like(sums[has_in]), atol=1e-12)
    assert torch.all(sums[~has_in] == 0)
    for h in range(3):  # reference: softmax over each row of a dense (target, source) score matrix
        dense = torch.full((n, n), float("-inf"), dtype=torch.float64)
        dense[ei[1], ei[0]] = scores[:, h]
        ref = torch.softmax(dense[has_in], dim=1)
        ours = torch.zeros(n, n, dtype=torch.float64)
        ours[ei[1], ei[0]] = alpha[:, h]
        assert torch.allclose(ours[has_in], ref, atol=1e-12)


def test_scatter_softmax_is_stable_for_huge_scores():
    ei = torch.tensor([[0, 1, 2], [1, 1, 1]])
    alpha = scatter_softmax(torch.tensor([1000.0, 1001.0, 999.0]), ei[1], 3)
    assert torch.isfinite(alpha).all() and abs(alpha.sum().item() - 1) < 1e-6


def test_gcn_norm_matches_dense_formula_with_duplicates_and_self_loops():
    n = 10
    ei = torch.cat([random_graph(n, 30, 3), torch.tensor([[4, 4, 2], [4, 5, 7]])], dim=1)  # a loop, dupes
    ei = torch.cat([ei, ei[:, :5]], dim=1)
    loops_ei, w = gcn_norm(ei, n)
    got = torch.zeros(n, n).index_put_((loops_ei[1], loops_ei[0]), w, accumulate=True)
    assert torch.allclose(got, dense_gcn_matrix(ei, n), atol=1e-6)


def test_gcn_propagation_matrix_is_the_dense_normalised_adjacency():
    n = 12
    ei = to_undirected(random_graph(n, 30, 6), n)
    assert torch.allclose(gcn_propagation_matrix(ei, n).to_dense(), dense_gcn_matrix(ei, n), atol=1e-6)


def test_to_undirected_and_coalesce():
    ei = torch.tensor([[0, 0, 1, 2, 2], [1, 1, 2, 0, 0]])
    und = to_undirected(ei, 3)
    pairs = set(map(tuple, und.t().tolist()))
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)} and und.shape[1] == 6
    assert torch.equal(und[1], und[1].sort().values)  # sorted by target


def test_laplacians_on_a_path():
    ei = to_undirected(torch.tensor([[0, 1], [1, 2]]), 3)
    lap = dense_laplacian(ei, 3)
    assert torch.equal(lap, torch.tensor([[1.0, -1, 0], [-1, 2, -1], [0, -1, 1]]))
    sym = dense_laplacian(ei, 3, normalized=True)
    assert torch.allclose(torch.linalg.eigvalsh(sym)[[0, -1]], torch.tensor([0.0, 2.0]), atol=1e-6)


# --- parity with PyTorch Geometric on Cora ----------------------------------------------------

def _compare_outputs_and_grads(ours, theirs, x, edge_index, pairs):
    """Same loss on both layers; compare outputs, input gradients and named parameter gradients."""
    ours.eval(), theirs.eval()
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out1, out2 = ours(x1, edge_index), theirs(x2, edge_index)
    assert out1.shape == out2.shape
    assert (out1 - out2).abs().max().item() < TOL
    probe = torch.randn(out1.shape, generator=torch.Generator().manual_seed(0))
    (out1 * probe).sum().backward()
    (out2 * probe).sum().backward()
    assert (x1.grad - x2.grad).abs().max().item() < TOL
    for a, b in pairs:
        assert (a.grad - b.grad).abs().max().item() < TOL


def test_gcnconv_matches_pyg_on_cora(cora):
    torch.manual_seed(0)
    theirs = pyg_nn.GCNConv(cora.num_features, 16)
    with torch.no_grad():
        theirs.bias.normal_()  # PyG initialises the bias to zero; make it count
    ours = GCNConv(cora.num_features, 16)
    copy_gcn_weights_from_pyg(ours, theirs)
    _compare_outputs_and_grads(ours, theirs, cora.x, cora.edge_index,
                               [(ours.lin.weight, theirs.lin.weight), (ours.bias, theirs.bias)])


@pytest.mark.parametrize("heads,concat", [(8, True), (1, False), (3, False)])
def test_gatconv_matches_pyg_on_cora(cora, heads, concat):
    torch.manual_seed(1)
    theirs = pyg_nn.GATConv(cora.num_features, 8, heads=heads, concat=concat)
    with torch.no_grad():
        theirs.bias.normal_()
    ours = GATConv(cora.num_features, 8, heads=heads, concat=concat)
    copy_gat_weights_from_pyg(ours, theirs)
    _compare_outputs_and_grads(ours, theirs, cora.x, cora.edge_index, [
        (ours.lin.weight, theirs.lin.weight), (ours.att_src, theirs.att_src),
        (ours.att_dst, theirs.att_dst), (ours.bias, theirs.bias)])
    with torch.no_grad():  # the attention coefficients themselves, edge by edge
        _, (ei1, a1) = ours(cora.x, cora.edge_index, return_attention=True)
        _, (ei2, a2) = theirs(cora.x, cora.edge_index, return_attention_weights=True)
    assert torch.equal(ei1, ei2) and (a1 - a2).abs().max().item() < TOL


def test_sageconv_matches_pyg_on_cora(cora):
    torch.manual_seed(2)
    theirs = pyg_nn.SAGEConv(cora.num_features, 16, aggr="mean")
    ours = SAGEConv(cora.num_features, 16)
    copy_sage_weights_from_pyg(ours, theirs)
    _compare_outputs_and_grads(ours, theirs, cora.x, cora.edge_index, [
        (ours.lin_neighbors.weight, theirs.lin_l.weight), (ours.lin_root.weight, theirs.lin_r.weight)])


def test_layers_match_pyg_with_duplicate_edges_and_isolated_nodes():
    n = 30
    ei = torch.cat([random_graph(25, 80, 4), random_graph(25, 10, 4)], dim=1)  # nodes 25..29 isolated
    x = torch.randn(n, 5)
    for ours, theirs, copy in [(GCNConv(5, 4), pyg_nn.GCNConv(5, 4), copy_gcn_weights_from_pyg),
                               (GATConv(5, 4, heads=2), pyg_nn.GATConv(5, 4, heads=2), copy_gat_weights_from_pyg)]:
        copy(ours, theirs)
        out = ours(x, ei)
        assert torch.isfinite(out).all()
        assert (out - theirs(x, ei)).abs().max().item() < TOL


def test_isolated_node_keeps_its_own_transformed_features():
    x, ei = torch.randn(4, 3), torch.tensor([[0, 1], [1, 0]])  # nodes 2 and 3 have no edges
    gcn, gat = GCNConv(3, 2), GATConv(3, 2, heads=2)
    assert torch.allclose(gcn(x, ei)[2:], gcn.lin(x[2:]) + gcn.bias, atol=1e-6)
    assert torch.allclose(gat(x, ei)[2:], gat.lin(x[2:]) + gat.bias, atol=1e-6)  # alpha = 1 on the loop


def test_sparse_features_give_the_same_outputs_and_gradients(cora):
    torch.manual_seed(3)
    for layer in (GCNConv(cora.num_features, 8), GATConv(cora.num_features, 4, heads=2)):
        dense_out = layer(cora.x, cora.edge_index)
        dense_out.square().sum().backward()
        grad = layer.lin.weight.grad.clone()
        layer.zero_grad()
        sparse_out = layer(sparse_features(cora.x), cora.edge_index)
        sparse_out.square().sum().backward()
        assert (dense_out - sparse_out).abs().max().item() < TOL
        assert (grad - layer.lin.weight.grad).abs().max().item() < 1e-4 * grad.abs().max().item()


def test_sparse_dropout_drops_stored_values_only():
    x = torch.zeros(50, 40)
    x[torch.arange(50), torch.arange(50) % 40] = 1.0
    for sparse in (sparse_features(x), x.to_sparse()):
        assert dropout_features(sparse, 0.5, training=False) is sparse
        dropped = dropout_features(sparse, 0.5, training=True).to_dense()
        assert torch.all(dropped[x == 0] == 0)
        kept = dropped[x == 1]
        assert set(kept.unique().tolist()) <= {0.0, 2.0} and 0 < (kept == 0).sum() < 50


# --- input validation -------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [GCNConv(3, 2), GATConv(3, 2, heads=2), SAGEConv(3, 2)])
def test_bad_inputs_raise_value_errors_naming_the_argument(layer):
    x, ei = torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]])
    cases = [
        (x, torch.tensor([[0, 1], [1, 4]]), "edge_index"),         # id 4 but only 4 nodes
        (x, torch.tensor([[0, -1], [1, 2]]), "edge_index"),        # negative id
        (x, ei.float(), "edge_index"),                             # wrong dtype
        (x, ei.to(torch.int32), "edge_index"),
        (x, torch.tensor([[0, 1], [1, 2], [2, 3]]), "edge_index"),  # shape (3, E)
        (x, ei[0], "edge_index"),                                  # 1-D
        (torch.randn(4, 5), ei, "x"),                              # wrong feature count
        (torch.randn(4), ei, "x"),                                 # 1-D features
        (torch.ones(4, 3, dtype=torch.int64), ei, "x"),            # integer features
        (torch.randn(3, 3), ei, "edge_index"),                     # graph larger than x
    ]
    for bad_x, bad_ei, name in cases:
        with pytest.raises(ValueError, match=name):
            layer(bad_x, bad_ei)


def test_models_give_finite_logits_of_the_right_shape(cora):
    for model in (GCN(cora.num_features, 16, 7), GAT(cora.num_features, 8, 7), SAGE(cora.num_features, 16, 7),
                  GCN(cora.num_features, 16, 7, num_layers=5)):
        model.eval()
        out = model(cora.x, cora.edge_index)
        assert out.shape == (cora.num_nodes, 7) and torch.isfinite(out).all()


# --- neighbour sampling -----------------------------------------------------------------------

def test_sample_neighbors_keeps_min_of_fanout_and_degree_real_edges():
    n = 40
    ei = coalesce(random_graph(n, 300, 5), n)
    nodes = torch.arange(0, n, 3)
    sampled = sample_neighbors(ei, nodes, 4, torch.Generator().manual_seed(0), n)
    existing = set(map(tuple, ei.t().tolist()))
    assert set(map(tuple, sampled.t().tolist())) <= existing
    assert len(set(map(tuple, sampled.t().tolist()))) == sampled.shape[1]  # without replacement
    in_deg = degree(ei[1], n, dtype=torch.int64)
    got = degree(sampled[1], n, dtype=torch.int64)
    assert torch.equal(got[nodes], in_deg[nodes].clamp(max=4))
    assert got.sum() == got[nodes].sum()  # only the requested targets


def test_sample_neighbors_is_uniform():
    ei = torch.stack([torch.arange(1, 11), torch.zeros(10, dtype=torch.int64)])  # a star into node 0
    trials = 4000  # node 0 requested 4000 times in one batch: 4000 independent draws
    sampled = sample_neighbors(ei, torch.zeros(trials, dtype=torch.int64), 3, torch.Generator().manual_seed(0), 11)
    assert sampled.shape == (2, 3 * trials)
    freq = torch.bincount(sampled[0], minlength=11)[1:] / trials  # each neighbour: probability 3/10
    assert torch.all((freq - 0.3).abs() < 4 * math.sqrt(0.3 * 0.7 / trials))


def test_sample_subgraph_puts_seeds_first_and_uses_local_ids(cora):
    seeds = torch.tensor([0, 5, 9])
    sub = sample_subgraph(cora.edge_index, seeds, [5, 3], cora.num_nodes, torch.Generator().manual_seed(0))
    assert torch.equal(sub.node_ids[:3], seeds) and sub.num_seeds == 3
    assert sub.node_ids.unique().numel() == sub.node_ids.numel()
    assert sub.edge_index.min() >= 0 and sub.edge_index.max() < sub.node_ids.numel()
    glob = set(map(tuple, cora.edge_index.t().tolist()))
    assert set(map(tuple, sub.node_ids[sub.edge_index].t().tolist())) <= glob
    assert degree(sub.edge_index[1], sub.node_ids.numel())[:3].max() <= 5


# --- training ---------------------------------------------------------------------------------

def test_minibatch_sage_training_reduces_the_loss(cora):
    torch.manual_seed(0)
    model = SAGE(cora.num_features, 16, cora.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = train_sage_minibatch(model, cora, opt, 6, [5, 5], 35, torch.Generator().manual_seed(0))
    assert losses[-1] < 0.5 * losses[0]


def test_receptive_field_training_sees_exactly_the_full_graph_outputs(cora):
    """For GAT and GraphSAGE the 2-hop computation graph of a node set gives the same outputs for
    those nodes as the whole graph; for GCN it cannot (the sources' full degrees are missing)."""
    x, edges, rows, labels = computation_graph(cora, cora.val_mask, num_hops=2)
    assert torch.equal(labels, cora.y[cora.val_mask]) and x.shape[0] < cora.num_nodes
    torch.manual_seed(0)
    for model, exact in ((GAT(cora.num_features, 8, 7), True), (SAGE(cora.num_features, 16, 7), True),
                         (GCN(cora.num_features, 16, 7), False)):
        model.eval()
        with torch.no_grad():
            full = model(cora.x, cora.edge_index)[cora.val_mask]
            restricted = model(x, edges)[rows]
        assert ((full - restricted).abs().max().item() < TOL) == exact
    sparse_x, _, _, _ = computation_graph(dataclasses.replace(cora, x=sparse_features(cora.x)), cora.val_mask, 2)
    assert torch.equal(sparse_x.to_dense(), x)


def random_labels_graph(seed: int = 0):
    """300 nodes with random features and random labels: a GCN overfits the 60 training nodes
    quickly, so the validation loss soon rises and both stopping rules have something to do."""
    from lepton_lib.data.graphs import GraphData

    g = torch.Generator().manual_seed(seed)
    n = 300
    mask = lambda lo, hi: (torch.arange(n) >= lo) & (torch.arange(n) < hi)  # noqa: E731
    return GraphData("random", torch.randn(n, 20, generator=g), to_undirected(random_graph(n, 600, seed), n),
                     torch.randint(0, 3, (n,), generator=g), mask(0, 60), mask(60, 160), mask(160, 300))


def test_stopping_rules_follow_their_definitions():
    data = random_labels_graph()
    torch.manual_seed(0)
    model = GCN(data.num_features, 32, 3, dropout=0.0)
    res = train_node_classifier(model, data, torch.optim.Adam(model.parameters(), lr=0.05), 300, "gcn", 10)
    assert res.stopped_early and res.epochs_run < 300 and res.tested_epoch == res.epochs_run
    assert res.val_loss[-1] > sum(res.val_loss[-11:-1]) / 10
    assert all(res.val_loss[e] <= sum(res.val_loss[e - 10:e]) / 10 for e in range(11, res.epochs_run - 1))

    torch.manual_seed(0)
    model = GCN(data.num_features, 32, 3, dropout=0.0)
    res = train_node_classifier(model, data, torch.optim.Adam(model.parameters(), lr=0.05), 300, "gat", 20)
    acc, loss = res.val_acc, res.val_loss
    assert res.stopped_early  # the last 20 epochs improved neither the best accuracy nor the best loss
    assert max(acc[-20:]) < max(acc[:-20]) and min(loss[-20:]) > min(loss[:-20])
    t = res.tested_epoch - 1  # the tested weights improved both at once, and no later epoch did
    assert acc[t] >= max(acc[:t], default=0) and loss[t] <= min(loss[:t], default=math.inf)
    assert not any(acc[e] >= max(acc[:e]) and loss[e] <= min(loss[:e]) for e in range(t + 1, len(acc)))
    assert abs(res.val_accuracy - acc[t]) < 1e-6  # and they are the weights that were restored


def test_gcn_learns_the_karate_club_from_two_labels():
    from lepton_lib.data.graphs import load_karate_club

    data = load_karate_club()
    torch.manual_seed(0)
    model = GCN(data.num_features, 8, 2, dropout=0.0)
    res = train_node_classifier(model, data, torch.optim.Adam(model.parameters(), lr=0.05), 100)
    assert res.epochs_run == 100 and math.isnan(res.val_accuracy)  # the karate club has no validation set
    assert res.test_accuracy > 0.8  # chance is 0.5; both factions are learnt from their leaders alone
    with pytest.raises(ValueError, match="val_mask"):
        train_node_classifier(model, data, torch.optim.Adam(model.parameters()), 10, "gcn")
