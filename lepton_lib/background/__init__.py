"""Background (book/background): the arithmetic of training and serving large models.
"""
from lepton_lib.background import flops

__all__ = [  # every public name of the modules above
    *flops.__all__,
]

from lepton_lib.background.flops import *  # noqa: E402, F403
