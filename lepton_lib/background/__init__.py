"""Background (book/background): the arithmetic of training and serving large models; BLEU, CLIP's
contrastive loss and REINFORCE.
"""
from lepton_lib.background import bleu, contrastive, flops, policy_gradient

__all__ = [  # every public name of the modules above
    *bleu.__all__,
    *contrastive.__all__,
    *flops.__all__,
    *policy_gradient.__all__,
]

from lepton_lib.background.bleu import *  # noqa: E402, F403
from lepton_lib.background.contrastive import *  # noqa: E402, F403
from lepton_lib.background.flops import *  # noqa: E402, F403
from lepton_lib.background.policy_gradient import *  # noqa: E402, F403
