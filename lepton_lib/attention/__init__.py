"""Attention math (book/attention): scaled dot-product and multi-head attention, tiled attention and the KV
cache, positions, Transformer blocks and tiny models that train on a CPU.
"""
from lepton_lib.attention import kv_cache, multi_head, positional, scaled_dot_product, tiled, tiny_models, transformer

__all__ = [  # every public name of the modules above
    *kv_cache.__all__,
    *multi_head.__all__,
    *positional.__all__,
    *scaled_dot_product.__all__,
    *tiled.__all__,
    *tiny_models.__all__,
    *transformer.__all__,
]

from lepton_lib.attention.kv_cache import *  # noqa: E402, F403
from lepton_lib.attention.multi_head import *  # noqa: E402, F403
from lepton_lib.attention.positional import *  # noqa: E402, F403
from lepton_lib.attention.scaled_dot_product import *  # noqa: E402, F403
from lepton_lib.attention.tiled import *  # noqa: E402, F403
from lepton_lib.attention.tiny_models import *  # noqa: E402, F403
from lepton_lib.attention.transformer import *  # noqa: E402, F403
