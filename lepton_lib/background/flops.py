"""Back-of-the-envelope arithmetic for training and serving large models.

Every function here turns a few published numbers (parameters, tokens, GPU
peak throughput, prices) into the quantities a planner needs: training FLOPs,
parameter counts, memory per GPU, GPU-days and the cost of serving a million
tokens. They are formulas, not measurements, so each docstring states its
convention and its source.

Conventions used throughout:

* A FLOP is one floating-point operation; a multiply-add counts as **2** FLOPs.
* The backward pass costs about **twice** the forward pass, so one training
  step costs about three forward passes (Kaplan et al., 2020, Section 2.1).
* Bytes use the decimal prefixes of the papers (1 GB = 1e9 bytes).
"""
from __future__ import annotations

from dataclasses import dataclass

from lepton_lib.core.checks import check_fraction, check_non_negative_number, check_positive_int, check_positive_number

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

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_HOUR = 3_600.0


# --------------------------------------------------------------------------- #
# Compute                                                                      #
# --------------------------------------------------------------------------- #
def transformer_training_flops(
    n_params: float,
    n_tokens: float,
    n_layers: int | None = None,
    d_model: int | None = None,
    seq_len: int | None = None,
) -> float:
    """Training FLOPs of a dense decoder Transformer: ``6·N·D`` plus attention.

    Kaplan et al. (2020, Table 1) count a forward pass at ``2N + 2·n_layer·n_ctx·d_attn``
    FLOPs per token, where ``N`` is the number of (non-embedding) parameters and the
    second term is the attention-score work that does not touch any parameter. With the
    backward pass at twice the forward pass, training costs per token::

        6·N  +  6·n_layers·seq_len·d_model        (convention: d_attn = d_model)

    and the total is that times the number of training tokens ``D``. The attention term
    is added only when all of ``n_layers``, ``d_model`` and ``seq_len`` are given; with
    none of them the function returns the familiar ``6·N·D``. It counts the full
    ``seq_len × seq_len`` score matrix (no saving for the causal mask), as Kaplan et al. do.

    Args:
        n_params: parameters ``N`` (for a mixture of experts, the *active* parameters
            per token).
        n_tokens: training tokens ``D``.
        n_layers, d_model, seq_len: optional shape, all three or none.

    Returns:
        Total training FLOPs (a float; 3.14e23 for GPT-3).
    """
    n = check_positive_number("n_params", n_params)
    d = check_positive_number("n_tokens", n_tokens)
    shape = {"n_layers": n_layers, "d_model": d_model, "seq_len": seq_len}
    given = [k for k, v in shape.items() if v is not None]
    if given and len(given) != 3:
        missing = sorted(set(shape) - set(given))
        raise ValueError(
            f"the attention term needs n_layers, d_model and seq_len together; got {given}, missing {missing}"
        )
    per_token = 6.0 * n
    if given:
        layers = check_positive_int("n_layers", n_layers)
        width = check_positive_int("d_model", d_model)
        context = check_positive_int("seq_len", seq_len)
        per_token += 6.0 * layers * context * width
    return per_token * d


def inference_flops_per_token(n_params: float) -> float:
    """Forward-pass FLOPs per generated token, ``2·N`` (attention over the cache ignored)."""
    return 2.0 * check_positive_number("n_params", n_params)


def dense_transformer_params(
    n_layers: int,
    d_model: int,
    vocab: int,
    d_ff: int | None = None,
    max_positions: int = 0,
    n_heads: int | None = None,
    n_kv_heads: int | None = None,
    bias: bool = True,
    gated_ffn: bool = False,
    tied_embeddings: bool = True,
    norm: str = "layernorm",
) -> int:
    """Exact parameter count of a standard decoder-only Transformer.

    Covers the two common families with a few switches:

    * GPT-2 style (defaults): learned positions (``max_positions``), biases, LayerNorm,
      a 2-matrix MLP with ``d_ff = 4·d_model``, output head tied to the token embedding.
    * Llama style: ``max_positions=0`` (rotary), ``bias=False``, ``norm="rmsnorm"``,
      ``gated_ffn=True`` (SwiGLU: three ``d_model × d_ff`` matrices), untied head,
      grouped-query attention via ``n_kv_heads < n_heads``.

    Per layer: attention ``W_q, W_k, W_v, W_o`` (K and V shrink to ``n_kv_heads`` heads
    under GQA), the MLP, and two norms; then one final norm, the embeddings and the head.

    Returns:
        The number of parameters as an int (124,439,808 for GPT-2 small).
    """
    layers = check_positive_int("n_layers", n_layers)
    d = check_positive_int("d_model", d_model)
    v = check_positive_int("vocab", vocab)
    ff = 4 * d if d_ff is None else check_positive_int("d_ff", d_ff)
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions < 0:
        raise ValueError(f"max_positions must be an int >= 0 (0 for rotary/none), got {max_positions!r}")
    if norm not in ("layernorm", "rmsnorm"):
        raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {norm!r}")

    kv_dim = d  # width of the K and V projections
    if n_kv_heads is not None and n_heads is None:
        raise ValueError("n_kv_heads needs n_heads (to know the head size)")
    if n_heads is not None:
        heads = check_positive_int("n_heads", n_heads)
        if d % heads:
            raise ValueError(f"d_model={d} is not divisible by n_heads={heads}")
        if n_kv_heads is not None:
            kv_heads = check_positive_int("n_kv_heads", n_kv_heads)
            if heads % kv_heads:
                raise ValueError(f"n_heads={heads} is not divisible by n_kv_heads={kv_heads}")
            kv_dim = kv_heads * (d // heads)

    b = 1 if bias else 0
    attention = (d * d + b * d) * 2 + (d * kv_dim + b * kv_dim) * 2  # W_q, W_o and W_k, W_v
    if gated_ffn:
        mlp = 3 * d * ff + b * (2 * ff + d)  # gate and up (d -> ff), down (ff -> d)
    else:
        mlp = 2 * d * ff + b * (ff + d)
    norm_params = 2 * d if norm == "layernorm" else d  # scale (+ shift for LayerNorm)
    per_layer = attention + mlp + 2 * norm_params

    embeddings = v * d + max_positions * d
    head = 0 if tied_embeddings else v * d
    return layers * per_layer + norm_params + embeddings + head


# --------------------------------------------------------------------------- #
# Memory                                                                       #
# --------------------------------------------------------------------------- #
# Bytes per parameter for (weights, gradients, optimizer states), following the
# accounting of Rajbhandari et al. (2020, Section 3.1). "mixed" keeps fp16/bf16
# weights and gradients plus an fp32 master copy of the weights, which is stored
# with the optimizer states (that is what ZeRO shards at stage 1).
_OPTIMIZER_STATE_BYTES_FP32 = {"sgd": 0, "sgd_momentum": 4, "adam": 8, "adamw": 8}
_PRECISIONS = ("fp32", "mixed")


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of memory one GPU holds during training, by kind."""

    weights: float
    gradients: float
    optimizer_states: float
    activations: float

    @property
    def model_states(self) -> float:
        """Weights + gradients + optimizer states (what ZeRO partitions)."""
        return self.weights + self.gradients + self.optimizer_states

    @property
    def total(self) -> float:
        return self.model_states + self.activations


def training_memory_bytes(
    n_params: float,
    optimizer: str = "adam",
    precision: str = "mixed",
    n_gpus: int = 1,
    zero_stage: int = 0,
    activation_bytes: float = 0.0,
) -> TrainingMemory:
    """Memory per GPU for weights, gradients and optimizer states (+ activations).

    With mixed precision and Adam each parameter costs 2 (fp16 weight) + 2 (fp16
    gradient) + 12 (fp32 master weight, momentum and variance) = **16 bytes**
    (Rajbhandari et al., 2020, the ``(2 + 2 + K)·Ψ`` with ``K = 12``). In fp32 the
    weights and gradients take 4 bytes each and Adam's two moments 8.

    Data-parallel training over ``n_gpus`` replicates all of this on every GPU unless
    ZeRO shards it: stage 1 splits the optimizer states, stage 2 also the gradients,
    stage 3 also the weights (each sharded part is divided by ``n_gpus``). PyTorch's
    FSDP with full sharding corresponds to stage 3.

    Args:
        n_params: number of parameters Ψ.
        optimizer: ``"sgd"``, ``"sgd_momentum"``, ``"adam"`` or ``"adamw"``.
        precision: ``"fp32"`` or ``"mixed"`` (fp16/bf16 compute, fp32 master weights).
        n_gpus: data-parallel degree.
        zero_stage: 0 (plain data parallelism) to 3.
        activation_bytes: activation memory *per GPU*, which depends on batch size,
            sequence length and checkpointing; ZeRO does not shard it.

    Returns:
        A :class:`TrainingMemory` with the bytes of each kind on one GPU.
    """
    psi = check_positive_number("n_params", n_params)
    if optimizer not in _OPTIMIZER_STATE_BYTES_FP32:
        raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZER_STATE_BYTES_FP32)}, got {optimizer!r}")
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {list(_PRECISIONS)}, got {precision!r}")
    gpus = check_positive_int("n_gpus", n_gpus)
    if isinstance(zero_stage, bool) or zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    activations = check_non_negative_number("activation_bytes", activation_bytes)

    if precision == "mixed":
        weight_b, grad_b = 2.0, 2.0
        state_b = 4.0 + _OPTIMIZER_STATE_BYTES_FP32[optimizer]  # fp32 master copy + moments
    else:
        weight_b, grad_b = 4.0, 4.0
        state_b = float(_OPTIMIZER_STATE_BYTES_FP32[optimizer])

    shard = 1.0 / gpus
    return TrainingMemory(
        weights=psi * weight_b * (shard if zero_stage >= 3 else 1.0),
        gradients=psi * grad_b * (shard if zero_stage >= 2 else 1.0),
        optimizer_states=psi * state_b * (shard if zero_stage >= 1 else 1.0),
        activations=activations,
    )


# --------------------------------------------------------------------------- #
# Time and money                                                               #
# --------------------------------------------------------------------------- #
def gpu_days(flops: float, peak_flops: float, utilization: float) -> float:
    """GPU-days needed to perform ``flops`` at a fraction of one GPU's peak.

    ``utilization`` is the model FLOPs utilisation (MFU): useful FLOPs per second
    divided by the accelerator's peak, typically 0.3-0.6 for large training runs.
    Divide by the number of GPUs for wall-clock days.

    Args:
        flops: total FLOPs of the job.
        peak_flops: peak FLOP/s of one GPU at the precision used (e.g. 312e12 for
            an A100 in bf16 dense).
        utilization: fraction of peak actually achieved, in (0, 1].
    """
    work = check_positive_number("flops", flops)
    peak = check_positive_number("peak_flops", peak_flops)
    mfu = check_fraction("utilization", utilization)
    return work / (peak * mfu) / SECONDS_PER_DAY


def decode_tokens_per_second(
    n_params: float,
    batch_size: int,
    memory_bandwidth: float,
    peak_flops: float,
    bytes_per_param: float = 2.0,
) -> float:
    """Upper bound on generated tokens per second for one GPU (a simple roofline).

    Generating one token per sequence reads every weight once from memory and does
    ``2·N`` FLOPs per sequence. With ``batch_size`` sequences decoded together the
    weights are read once for the whole batch, so the step takes at least
    ``max(N·bytes_per_param / bandwidth, batch_size·2N / peak_flops)`` seconds and
    produces ``batch_size`` tokens. Small batches are limited by memory bandwidth,
    large ones by compute. The KV cache, attention and kernel overheads are ignored,
    so real throughput is lower.

    Args:
        n_params: parameters ``N`` read per token (active parameters for an MoE).
        batch_size: sequences decoded together.
        memory_bandwidth: bytes per second the GPU reads from its memory.
        peak_flops: peak FLOP/s at the serving precision.
        bytes_per_param: 2 for fp16/bf16 weights, 1 for 8-bit, 0.5 for 4-bit.
    """
    n = check_positive_number("n_params", n_params)
    batch = check_positive_int("batch_size", batch_size)
    bandwidth = check_positive_number("memory_bandwidth", memory_bandwidth)
    peak = check_positive_number("peak_flops", peak_flops)
    weight_bytes = check_positive_number("bytes_per_param", bytes_per_param)
    step_seconds = max(n * weight_bytes / bandwidth, batch * 2.0 * n / peak)
    return batch / step_seconds


def serving_cost_per_million_tokens(
    gpu_hour_price: float, tokens_per_second: float, utilization: float
) -> float:
    """Dollars (or any currency) per million generated tokens on rented GPUs.

    A GPU rented for one hour produces ``tokens_per_second · 3600 · utilization``
    tokens, where ``tokens_per_second`` is the throughput at full load (summed over
    all concurrent requests) and ``utilization`` the fraction of the paid hour the GPU
    is busy. The price per million tokens is the hourly price divided by that, times
    one million.
    """
    price = check_positive_number("gpu_hour_price", gpu_hour_price)
    rate = check_positive_number("tokens_per_second", tokens_per_second)
    busy = check_fraction("utilization", utilization)
    tokens_per_hour = rate * SECONDS_PER_HOUR * busy
    return price / tokens_per_hour * 1e6
