"""Scale and deployment (book/scale): activation memory, fast decoding, compression, privacy and
interpretability. Command lines: lepton_lib.scale.compression_recipe and lepton_lib.scale.ddp_demo.
"""
from lepton_lib.scale import compression, inference, interpretability, memory, privacy

__all__ = [  # every public name of the modules above
    *compression.__all__,
    *inference.__all__,
    *interpretability.__all__,
    *memory.__all__,
    *privacy.__all__,
]

from lepton_lib.scale.compression import *  # noqa: E402, F403
from lepton_lib.scale.inference import *  # noqa: E402, F403
from lepton_lib.scale.interpretability import *  # noqa: E402, F403
from lepton_lib.scale.memory import *  # noqa: E402, F403
from lepton_lib.scale.privacy import *  # noqa: E402, F403
