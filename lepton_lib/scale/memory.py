"""Activation memory, counted exactly, and activation checkpointing for ``TinyTransformer``.

Backpropagation needs some of the forward pass's intermediate tensors (a ReLU its output, a linear
layer its input...). Autograd keeps them in the graph until ``backward`` runs; for large models these
*activations* rather than the weights fill the accelerator's memory. ``saved_activation_bytes``
counts them with ``torch.autograd.graph.saved_tensors_hooks``, which sees every tensor the graph
saves: a deterministic figure, unlike a process's resident memory.

Activation checkpointing (Chen et al. 2016, arXiv:1604.06174) keeps only each block's *input* and
reruns the block's forward pass during ``backward`` to get the rest back: roughly one extra forward
pass of compute for memory that no longer grows with the depth of each block.
``checkpointed_logits`` applies it layer by layer with ``torch.utils.checkpoint``.

The memory of weights, gradients and optimizer states, and how ZeRO / FSDP shard them over GPUs, is
the arithmetic of ``lepton_lib.background.flops.training_memory_bytes``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lepton_lib.attention.tiny_models import TinyTransformer

__all__ = ["saved_activation_bytes", "checkpointed_logits"]


def saved_activation_bytes(forward: Callable[[], Tensor], parameters: Iterable[Tensor] = ()) -> tuple[int, Tensor]:
    """Run ``forward()`` and return ``(bytes autograd saved for backward, forward's output)``.

    Tensors that share storage with one of ``parameters`` are not counted (a linear layer saves its
    weight too, but the weight is in memory anyway). A tensor saved twice counts twice, as autograd
    holds a reference per use; that is an upper bound when two uses share one storage.
    """
    parameter_storages = {p.untyped_storage().data_ptr() for p in parameters}
    total = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal total
        if tensor.untyped_storage().data_ptr() not in parameter_storages:
            total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = forward()
    return total, output


def checkpointed_logits(model: TinyTransformer, tokens: Tensor) -> Tensor:
    """``model(tokens)``, with each Transformer layer wrapped in ``torch.utils.checkpoint``.

    Same logits and gradients as the plain forward pass; during the forward pass only each layer's
    input ``(B, T, d)`` is kept, and the layer's inside is recomputed in ``backward``.
    """
    if not isinstance(model, TinyTransformer):
        raise ValueError(f"model must be a TinyTransformer, got {type(model).__name__}")
    x = model.embed(tokens)

    def run_layer(layer: nn.Module, h: Tensor) -> Tensor:
        return layer(h, is_causal=model.causal)

    for layer in model.layers:
        # use_reentrant=False is the recommended implementation: it works with inputs that do not
        # require grad and with torch.autograd.grad, and it is what saved_tensors_hooks can observe.
        x = checkpoint(run_layer, layer, x, use_reentrant=False)
    return model.head(model.final_norm(x))
