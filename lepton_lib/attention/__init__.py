"""Attention math (book/attention): scaled dot-product and multi-head attention, tiled attention and the KV
cache, positions, Transformer blocks and tiny models that train on a CPU.
"""
from lepton_lib.attention import multi_head, positional, tiled, tiny_models, transformer

__all__ = [  # every public name of the modules above
    *multi_head.__all__,
    *positional.__all__,
    *tiled.__all__,
    *tiny_models.__all__,
    *transformer.__all__,
]

from lepton_lib.attention.multi_head import *  # noqa: E402, F403
from lepton_lib.attention.positional import *  # noqa: E402, F403
from lepton_lib.attention.tiled import *  # noqa: E402, F403
from lepton_lib.attention.tiny_models import *  # noqa: E402, F403
from lepton_lib.attention.transformer import *  # noqa: E402, F403
