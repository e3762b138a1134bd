"""Graph loaders: counts from the data's SOURCE.md files, equality with PyTorch Geometric's own
Planetoid processing of the same raw files, and a restricted unpickler that refuses to run code."""
from __future__ import annotations

import collections
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch

from lepton_lib.data import ChecksumError, DataUnavailableError, data_dir
from lepton_lib.data.graphs import load_karate_club, load_planetoid, safe_unpickle

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


@pytest.fixture(scope="module")
def planetoid():
    try:
        return {name: load_planetoid(name) for name in ("cora", "citeseer")}
    except DataUnavailableError as err:  # no network and no $LEPTON_DATA_DIR
        pytest.skip(f"Planetoid files are not available: {err}")


# Counts from shared/data/{cora,citeseer}/SOURCE.md: nodes, features, classes, undirected edges,
# labelled training rows (20 per class).
EXPECTED = {"cora": (2708, 1433, 7, 5278, 140), "citeseer": (3327, 3703, 6, 4552, 120)}


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_shapes_counts_and_dtypes(planetoid, name):
    data = planetoid[name]
    nodes, features, classes, undirected, train = EXPECTED[name]
    assert data.x.shape == (nodes, features) and data.x.dtype == torch.float32
    assert data.edge_index.shape == (2, 2 * undirected) and data.edge_index.dtype == torch.int64
    assert data.y.shape == (nodes,) and data.num_classes == classes
    assert set(data.x.unique().tolist()) == {0.0, 1.0}  # binary bag of words
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == [train, 500, 1000]
    assert torch.equal(torch.bincount(data.y[data.train_mask]), torch.full((classes,), 20))


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_masks_are_disjoint_and_edges_clean(planetoid, name):
    data = planetoid[name]
    masks = data.train_mask.int() + data.val_mask.int() + data.test_mask.int()
    assert masks.max() == 1
    ei = data.edge_index
    assert not (ei[0] == ei[1]).any()  # no self-loops
    pairs = set(map(tuple, ei.t().tolist()))
    assert len(pairs) == ei.shape[1]  # no duplicates
    assert all((j, i) in pairs for i, j in pairs)  # both directions


def test_citeseer_missing_test_rows_are_zero_and_unlabelled(planetoid):
    data = planetoid["citeseer"]
    empty = data.x.sum(dim=1) == 0
    assert int(empty.sum()) == 15  # the 15 ids of the test range absent from test.index
    in_any_mask = data.train_mask | data.val_mask | data.test_mask
    assert not in_any_mask[empty].any() and torch.all(data.y[empty] == 0)


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_identical_to_pyg_planetoid_processing(planetoid, name):
    """PyG's ``read_planetoid_data`` is the function its ``Planetoid`` dataset runs on the raw files."""
    pyg_io = pytest.importorskip("torch_geometric.io")
    from lepton_lib.data import fetch

    folder = os.path.dirname(fetch(f"{name}/ind.{name}.x"))
    theirs = pyg_io.read_planetoid_data(folder, name)
    ours = planetoid[name]
    assert torch.equal(ours.x, theirs.x)
    assert torch.equal(ours.y, theirs.y)
    assert torch.equal(ours.edge_index, theirs.edge_index)
    for mask in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(ours, mask), getattr(theirs, mask))


def test_normalized_features_match_pyg_transform(planetoid):
    transforms = pytest.importorskip("torch_geometric.transforms")
    from torch_geometric.data import Data

    ours = load_planetoid("cora", normalize_features=True).x
    theirs = transforms.NormalizeFeatures()(Data(x=planetoid["cora"].x.clone())).x
    assert torch.allclose(ours, theirs, atol=1e-7)
    sums = ours.sum(dim=1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())), atol=1e-5)


def test_pubmed_and_unknown_names_raise_clear_errors():
    with pytest.raises(DataUnavailableError, match="allx"):
        load_planetoid("pubmed")
    with pytest.raises(ValueError, match="name"):
        load_planetoid("reddit")


def test_a_tampered_file_is_rejected_before_unpickling(planetoid, tmp_path, monkeypatch):
    source = data_dir()
    if source is None:
        pytest.skip("needs $LEPTON_DATA_DIR")
    (tmp_path / "cora").mkdir()
    for part in PARTS:
        shutil.copy(source / "cora" / f"ind.cora.{part}", tmp_path / "cora")
    with open(tmp_path / "cora" / "ind.cora.graph", "ab") as f:
        f.write(b"\x00")
    monkeypatch.setenv("LEPTON_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError):
        load_planetoid("cora")


# --- the restricted unpickler -----------------------------------------------------------------

class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_malicious_pickles_raise_instead_of_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCommand(f"touch {marker}"), protocol=2)
    assert b"system" in payload
    with pytest.raises(pickle.UnpicklingError, match="system"):
        safe_unpickle(payload)
    assert not marker.exists()
    for evil in (_CallsEval(), np.load, shutil.rmtree):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            safe_unpickle(pickle.dumps(evil, protocol=2))
    pickle.loads(pickle.dumps(_RunsCommand(f"touch {marker}"), protocol=2))  # control: plain pickle runs it
    assert marker.exists()


def test_the_allowed_types_round_trip():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    graph = collections.defaultdict(list, {0: [1, 2], 2: [0]})
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    matrix = scipy_sparse.csr_matrix(array)
    assert safe_unpickle(pickle.dumps(graph, protocol=2)) == graph
    # Protocol 4: Python 3 writes protocol-2 bytes through _codecs.encode, which is not allowed
    # (the Planetoid files, written by Python 2, never need it).
    assert np.array_equal(safe_unpickle(pickle.dumps(array, protocol=4)), array)
    assert np.array_equal(safe_unpickle(pickle.dumps(matrix, protocol=4)).toarray(), array)


def test_safe_unpickle_reads_the_real_files_like_pickle(planetoid):
    from lepton_lib.data import fetch

    for part in ("graph", "y", "tx"):
        path = fetch(f"cora/ind.cora.{part}")
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SciPy's note that scipy.sparse.csr is deprecated
            reference = pickle.load(f, encoding="latin1")
        ours = safe_unpickle(path)
        if part == "graph":
            assert ours == reference and isinstance(ours, collections.defaultdict)
        elif part == "y":
            assert np.array_equal(ours, reference)
        else:
            assert ours.shape == reference.shape and (ours != reference).nnz == 0


# --- the karate club --------------------------------------------------------------------------

def test_karate_club_matches_networkx():
    nx = pytest.importorskip("networkx")
    data = load_karate_club()
    graph = nx.karate_club_graph()
    assert data.num_nodes == 34 and data.num_edges == 2 * 78
    assert set(map(tuple, data.edge_index.t().tolist())) == {e for u, v in graph.edges() for e in ((u, v), (v, u))}
    assert [data.class_names[int(c)] for c in data.y] == [graph.nodes[i]["club"] for i in range(34)]
    assert data.train_mask.nonzero().view(-1).tolist() == [0, 33] and data.y[[0, 33]].tolist() == [0, 1]
    assert int(data.test_mask.sum()) == 32 and not data.val_mask.any()
    assert torch.equal(data.x, torch.eye(34))
