"""Graph neural networks (book/gnn): graph operations, message-passing layers and models, their training,
neighbour sampling and graph-based recommendation.
"""
from lepton_lib.gnn import graph_ops, layers, models, paper_recipe, recommendation, sampling, training

__all__ = [  # every public name of the modules above
    *graph_ops.__all__,
    *layers.__all__,
    *models.__all__,
    *paper_recipe.__all__,
    *recommendation.__all__,
    *sampling.__all__,
    *training.__all__,
]

from lepton_lib.gnn.graph_ops import *  # noqa: E402, F403
from lepton_lib.gnn.layers import *  # noqa: E402, F403
from lepton_lib.gnn.models import *  # noqa: E402, F403
from lepton_lib.gnn.paper_recipe import *  # noqa: E402, F403
from lepton_lib.gnn.recommendation import *  # noqa: E402, F403
from lepton_lib.gnn.sampling import *  # noqa: E402, F403
from lepton_lib.gnn.training import *  # noqa: E402, F403
