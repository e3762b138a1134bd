"""Data: verified downloads and every dataset loader the book uses.

Loaders read ``$LEPTON_DATA_DIR`` first (CI points it at a prepared copy), then a cache, then
the file's canonical URL, checking every file's sha256 (:func:`fetch`, :data:`REGISTRY`).

- :mod:`~lepton_lib.data.download`, :mod:`~lepton_lib.data.registry`: ``fetch`` and the files it knows.
- :mod:`~lepton_lib.data.digits`: ``load_digits_split`` (scikit-learn's 8x8 digits, split three ways).
- :mod:`~lepton_lib.data.mnist`: ``load_mnist`` (MNIST from its IDX files; says which split it could use).
- :mod:`~lepton_lib.data.tabular`: ``load_german_credit``, ``load_breast_cancer``.
- :mod:`~lepton_lib.data.text`: ``load_corpus`` (WikiText-2, Tiny Shakespeare, docstrings), ``load_sst2``, ``load_mr``.
- :mod:`~lepton_lib.data.graphs`: ``load_planetoid`` (Cora, CiteSeer), ``load_karate_club``, ``GraphData``.
- :mod:`~lepton_lib.data.edges`: checking and cleaning a graph's ``edge_index`` (the loaders and the GNN layers use it).
- :mod:`~lepton_lib.data.movielens`: ``load_movielens_100k``.
- :mod:`~lepton_lib.data.banking77`: ``load_banking77`` (intent detection).

``from lepton_lib.data import load_planetoid`` works for every loader: this file exports every
public name of the modules above.
"""
from lepton_lib.data import banking77, digits, download, edges, graphs, mnist, movielens, registry, tabular, text

__all__ = [*download.__all__, *registry.__all__, *digits.__all__, *mnist.__all__, *tabular.__all__, *text.__all__,
           *graphs.__all__, *edges.__all__, *movielens.__all__, *banking77.__all__]

from lepton_lib.data.banking77 import *  # noqa: E402, F403
from lepton_lib.data.digits import *  # noqa: E402, F403
from lepton_lib.data.download import *  # noqa: E402, F403
from lepton_lib.data.edges import *  # noqa: E402, F403
from lepton_lib.data.graphs import *  # noqa: E402, F403
from lepton_lib.data.mnist import *  # noqa: E402, F403
from lepton_lib.data.movielens import *  # noqa: E402, F403
from lepton_lib.data.registry import *  # noqa: E402, F403
from lepton_lib.data.tabular import *  # noqa: E402, F403
from lepton_lib.data.text import *  # noqa: E402, F403
