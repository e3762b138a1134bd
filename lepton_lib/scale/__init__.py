"""Scale and deployment (book/scale): activation memory, fast decoding, compression, privacy,
interpretability and data-parallel training.
"""
from lepton_lib.scale.compression import (
    quantize_linear_int8,
    prunable_linears,
    magnitude_prune,
    sparsity,
    state_dict_bytes,
    sparse_state_dict_bytes,
    distillation_loss,
    predict_logits,
    train_student,
)
from lepton_lib.scale.ddp_demo import build_model, train
from lepton_lib.scale.inference import (
    make_kv_caches,
    forward_with_cache,
    greedy_decode,
    kv_cache_bytes,
    decode_linear_flops,
)
from lepton_lib.scale.interpretability import integrated_gradients, TokenAttribution, bert_token_attributions
from lepton_lib.scale.memory import saved_activation_bytes, checkpointed_logits
from lepton_lib.scale.privacy import (
    dirichlet_label_split,
    local_sgd,
    average_states,
    fedavg,
    per_example_gradients,
    clip_per_example,
    noisy_average,
    dp_sgd,
    dp_epsilon,
)

__all__ = [
    "quantize_linear_int8",
    "prunable_linears",
    "magnitude_prune",
    "sparsity",
    "state_dict_bytes",
    "sparse_state_dict_bytes",
    "distillation_loss",
    "predict_logits",
    "train_student",
    "build_model",
    "train",
    "make_kv_caches",
    "forward_with_cache",
    "greedy_decode",
    "kv_cache_bytes",
    "decode_linear_flops",
    "integrated_gradients",
    "TokenAttribution",
    "bert_token_attributions",
    "saved_activation_bytes",
    "checkpointed_logits",
    "dirichlet_label_split",
    "local_sgd",
    "average_states",
    "fedavg",
    "per_example_gradients",
    "clip_per_example",
    "noisy_average",
    "dp_sgd",
    "dp_epsilon",
]
