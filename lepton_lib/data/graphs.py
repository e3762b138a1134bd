"""Graph datasets: the Planetoid citation graphs (Cora, CiteSeer) and Zachary's karate club.

The Planetoid files (Yang et al. 2016) are Python-2 pickles. Unpickling runs code named
inside the file, so a tampered file could run anything. Two guards: :func:`~lepton_lib.data.fetch`
checks every file's sha256 before we open it, and :class:`RestrictedUnpickler` refuses every
class except the handful of NumPy/SciPy/collections classes these files contain.

The split is the standard one (Kipf & Welling 2017, PyG's ``Planetoid``): the first
20 x classes nodes train, the next 500 validate, the 1,000 nodes of ``test.index`` test.
"""
from __future__ import annotations

import collections
import importlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .download import DataError, DataUnavailableError, fetch
from .edges import coalesce, remove_self_loops, to_undirected

__all__ = ["GraphData", "RestrictedUnpickler", "safe_unpickle", "load_planetoid", "load_karate_club"]

PLANETOID_NAMES = ("cora", "citeseer", "pubmed")
NUM_VALIDATION = 500


@dataclass(frozen=True)
class GraphData:
    """One graph for node classification.

    ``x`` (N, F) float32 features; ``edge_index`` (2, E) int64, both directions of every edge,
    no duplicates or self-loops, sorted by target then source; ``y`` (N,) int64 labels;
    ``train_mask``/``val_mask``/``test_mask`` (N,) bool, pairwise disjoint.
    """

    name: str
    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    class_names: tuple[str, ...] | None = None

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_features(self) -> int:
        return self.x.shape[1]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    @property
    def num_edges(self) -> int:
        """Directed edges, i.e. twice the number of undirected ones."""
        return self.edge_index.shape[1]


def _numpy_reconstruct():
    # NumPy 2 moved numpy.core to numpy._core; old pickles still name numpy.core.multiarray.
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("cannot find numpy's multiarray._reconstruct")


def _csr_matrix():
    import scipy.sparse  # imported lazily: only the Planetoid loader needs SciPy

    return scipy.sparse.csr_matrix


# (module, name) as written in the pickle -> how to get the object. Nothing else is allowed.
_ALLOWED = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    # SciPy < 1.8 pickled csr_matrix as scipy.sparse.csr; SciPy 2 removes that module.
    ("scipy.sparse.csr", "csr_matrix"): _csr_matrix,
    ("scipy.sparse._csr", "csr_matrix"): _csr_matrix,
    ("scipy.sparse", "csr_matrix"): _csr_matrix,
    ("collections", "defaultdict"): lambda: collections.defaultdict,
    ("__builtin__", "list"): lambda: list,  # Python 2's name for builtins
    ("builtins", "list"): lambda: list,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds the NumPy arrays, SciPy CSR matrices and
    ``defaultdict(list)`` adjacency lists of the Planetoid files; any other global (such as
    ``os.system`` in a malicious file) raises ``pickle.UnpicklingError`` before it is called."""

    def find_class(self, module: str, name: str):
        getter = _ALLOWED.get((module, name))
        if getter is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only {sorted(f'{m}.{n}' for m, n in _ALLOWED)} are allowed"
            )
        return getter()


def safe_unpickle(source: Path | str | bytes) -> object:
    """Unpickle a file path or bytes with :class:`RestrictedUnpickler` (Python-2 strings as Latin-1)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def _read(name: str, part: str) -> object:
    path = fetch(f"{name}/ind.{name}.{part}")  # sha256 verified before anything is unpickled
    if part == "test.index":
        return np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
    return safe_unpickle(path)


def load_planetoid(name: str, normalize_features: bool = False) -> GraphData:
    """Load Cora or CiteSeer with the standard Planetoid split, exactly as PyG's ``Planetoid``.

    ``normalize_features`` divides each feature row by its sum (Kipf & Welling's preprocessing;
    all-zero rows stay zero). CiteSeer has 15 nodes in the test id range without features
    (isolated nodes missing from ``tx``): they get zero features and label 0, as in Kipf's
    and PyG's loaders, and belong to none of the three masks.

    PubMed raises :class:`~lepton_lib.data.DataUnavailableError`: the features of its
    18,657 unlabelled training-pool nodes live in ``ind.pubmed.allx``, which the book's data
    copy lacks, and no honest substitute exists.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in PLANETOID_NAMES:
        raise ValueError(f"name must be one of 'cora', 'citeseer' (or 'pubmed'), got {name!r}")
    if key == "pubmed":
        raise DataUnavailableError(
            "PubMed cannot be loaded: ind.pubmed.allx (features of nodes 60..18,716, over 4 MiB) is not in "
            "the book's data registry, so 18,657 of the 19,717 nodes would have no features. Use Cora or CiteSeer."
        )
    x, tx, allx, y, ty, ally, graph, test_index = (
        _read(key, part) for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
    )
    sorted_test = np.sort(test_index)
    num_train, num_pool = y.shape[0], allx.shape[0]
    if sorted_test[0] != num_pool or len(graph) != sorted_test[-1] + 1:
        raise DataError(f"{key}: test ids {sorted_test[0]}..{sorted_test[-1]} do not follow the "
                        f"{num_pool} rows of allx up to the {len(graph)} graph nodes")
    # tx/ty row k belongs to node test_index[k]. Rows for ids in the test range that are not in
    # test.index (CiteSeer's isolated nodes) stay zero.
    num_nodes = len(graph)
    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    features[:num_pool] = allx.toarray()
    features[test_index] = tx.toarray()
    onehot = np.zeros((num_nodes, ally.shape[1]), dtype=np.float32)
    onehot[:num_pool] = ally
    onehot[test_index] = ty
    labels = torch.from_numpy(onehot.argmax(axis=1)).long()

    sources = [source for source, targets in graph.items() for _ in targets]
    targets = [target for _, neighbours in graph.items() for target in neighbours]
    edge_index = torch.tensor([sources, targets], dtype=torch.int64)
    edge_index = to_undirected(remove_self_loops(edge_index), num_nodes)

    features_t = torch.from_numpy(features)
    if normalize_features:
        features_t = features_t / features_t.sum(dim=1, keepdim=True).clamp(min=1e-12)

    def mask(index: np.ndarray | range) -> torch.Tensor:
        out = torch.zeros(num_nodes, dtype=torch.bool)
        out[torch.as_tensor(np.asarray(index), dtype=torch.int64)] = True
        return out

    return GraphData(
        name=key, x=features_t, edge_index=edge_index, y=labels,
        train_mask=mask(range(num_train)),
        val_mask=mask(range(num_train, num_train + NUM_VALIDATION)),
        test_mask=mask(test_index),
    )


def load_karate_club() -> GraphData:
    """Zachary's karate club (34 members, 78 friendships) from networkx, which ships it.

    Labels are the two factions after the split: 0 = "Mr. Hi" (the instructor, node 0),
    1 = "Officer" (the club's officers, led by the administrator, node 33). Features are the
    identity matrix (each member is only its own one-hot id, as in Kipf & Welling's
    demonstration). The semi-supervised task: ``train_mask`` holds only the two leaders,
    ``test_mask`` the other 32 members; ``val_mask`` is empty.
    """
    import networkx as nx  # imported lazily: only this loader needs networkx

    graph = nx.karate_club_graph()
    num_nodes = graph.number_of_nodes()
    class_names = ("Mr. Hi", "Officer")
    y = torch.tensor([class_names.index(graph.nodes[i]["club"]) for i in range(num_nodes)])
    edges = torch.tensor(list(graph.edges()), dtype=torch.int64).t()
    edge_index = coalesce(torch.cat([edges, edges.flip(0)], dim=1), num_nodes)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    train_mask[[0, num_nodes - 1]] = True
    return GraphData(
        name="karate", x=torch.eye(num_nodes), edge_index=edge_index, y=y,
        train_mask=train_mask, val_mask=torch.zeros(num_nodes, dtype=torch.bool), test_mask=~train_mask,
        class_names=class_names,
    )
