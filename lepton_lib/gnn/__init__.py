"""Graph neural networks (book/gnn): graph operations, message-passing layers and models, their training,
neighbour sampling and graph-based recommendation.
"""
from lepton_lib.gnn import graph_ops, models, recommendation

__all__ = [*graph_ops.__all__, *models.__all__, *recommendation.__all__]

from lepton_lib.gnn.graph_ops import *  # noqa: E402, F403
from lepton_lib.gnn.models import *  # noqa: E402, F403
from lepton_lib.gnn.recommendation import *  # noqa: E402, F403
