"""Attention math (book/attention): scaled dot-product and multi-head attention, tiled attention and the KV
cache, positions, Transformer blocks and tiny models that train on a CPU.
"""
from lepton_lib.attention.multi_head import causal_mask, scaled_dot_product_attention, MultiHeadAttention
from lepton_lib.attention.positional import (
    sinusoidal_positional_encoding,
    LearnedPositionalEmbedding,
    apply_rotary_embedding,
)
from lepton_lib.attention.tiled import tiled_attention, KVCache
from lepton_lib.attention.tiny_models import (
    IGNORE_INDEX,
    SEQUENCE_TASKS,
    make_sequence_task,
    TinyTransformer,
    PatchEmbedding,
    TinyViT,
)
from lepton_lib.attention.transformer import (
    PositionwiseFeedForward,
    TransformerEncoderLayer,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerDecoder,
    copy_weights_from_torch,
    from_torch,
)

__all__ = [
    "causal_mask",
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "sinusoidal_positional_encoding",
    "LearnedPositionalEmbedding",
    "apply_rotary_embedding",
    "tiled_attention",
    "KVCache",
    "IGNORE_INDEX",
    "SEQUENCE_TASKS",
    "make_sequence_task",
    "TinyTransformer",
    "PatchEmbedding",
    "TinyViT",
    "PositionwiseFeedForward",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "copy_weights_from_torch",
    "from_torch",
]
