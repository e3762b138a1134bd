"""Scale and deployment (book/scale): activation memory, fast decoding, compression, privacy,
interpretability and data-parallel training.
"""
from lepton_lib.scale import compression, ddp_demo, inference, interpretability, memory, privacy

__all__ = [  # every public name of the modules above
    *compression.__all__,
    *ddp_demo.__all__,
    *inference.__all__,
    *interpretability.__all__,
    *memory.__all__,
    *privacy.__all__,
]

from lepton_lib.scale.compression import *  # noqa: E402, F403
from lepton_lib.scale.ddp_demo import *  # noqa: E402, F403
from lepton_lib.scale.inference import *  # noqa: E402, F403
from lepton_lib.scale.interpretability import *  # noqa: E402, F403
from lepton_lib.scale.memory import *  # noqa: E402, F403
from lepton_lib.scale.privacy import *  # noqa: E402, F403
