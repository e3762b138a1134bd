"""Foundations (book/foundations): a NumPy MLP with backpropagation by hand, gradient checks, optimizers,
learning-rate schedules, a training loop and classification metrics.
"""
from lepton_lib.foundations import arrays, curves, gradcheck, metrics, mnist_models, numpy_mlp, optimizers, schedules, surfaces, training

__all__ = [  # every public name of the modules above
    *arrays.__all__,
    *curves.__all__,
    *gradcheck.__all__,
    *metrics.__all__,
    *mnist_models.__all__,
    *numpy_mlp.__all__,
    *optimizers.__all__,
    *schedules.__all__,
    *surfaces.__all__,
    *training.__all__,
]

from lepton_lib.foundations.arrays import *  # noqa: E402, F403
from lepton_lib.foundations.curves import *  # noqa: E402, F403
from lepton_lib.foundations.gradcheck import *  # noqa: E402, F403
from lepton_lib.foundations.metrics import *  # noqa: E402, F403
from lepton_lib.foundations.mnist_models import *  # noqa: E402, F403
from lepton_lib.foundations.numpy_mlp import *  # noqa: E402, F403
from lepton_lib.foundations.optimizers import *  # noqa: E402, F403
from lepton_lib.foundations.schedules import *  # noqa: E402, F403
from lepton_lib.foundations.surfaces import *  # noqa: E402, F403
from lepton_lib.foundations.training import *  # noqa: E402, F403
