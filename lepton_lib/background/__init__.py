"""Background (book/background): the arithmetic of training and serving large models.
"""
from lepton_lib.background.flops import (
    transformer_training_flops,
    inference_flops_per_token,
    dense_transformer_params,
    TrainingMemory,
    training_memory_bytes,
    gpu_days,
    decode_tokens_per_second,
    serving_cost_per_million_tokens,
)

__all__ = [
    "transformer_training_flops",
    "inference_flops_per_token",
    "dense_transformer_params",
    "TrainingMemory",
    "training_memory_bytes",
    "gpu_days",
    "decode_tokens_per_second",
    "serving_cost_per_million_tokens",
]
