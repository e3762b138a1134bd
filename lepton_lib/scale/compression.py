"""Model compression: dynamic int8 quantization, magnitude pruning, size on disk and distillation.

Three ways to make a trained network cheaper to keep and to run:

* **Dynamic int8 quantization** (``quantize_linear_int8``) stores every ``nn.Linear`` weight as 8-bit
  integers with one fp32 scale per tensor and quantizes each activation on the fly, batch by batch,
  from its observed range. No calibration data is needed, which is why it is the usual first step for
  Transformers on CPUs, whose cost sits in their linear layers. It wraps PyTorch's
  ``torch.ao.quantization.quantize_dynamic``.
* **Magnitude pruning** (``magnitude_prune``) zeroes the weights of smallest absolute value, either
  per layer (each layer loses the same fraction) or globally (one threshold for all layers, so layers
  with many small weights lose more). It uses ``torch.nn.utils.prune`` (``l1_unstructured`` /
  ``global_unstructured``) and then makes the masks permanent, so the result is a plain module whose
  weights contain exact zeros. Zeros save nothing by themselves: the dense tensor keeps its size
  (``state_dict_bytes``) until it is stored in a sparse format (``sparse_state_dict_bytes``) or run
  with sparse kernels.
* **Knowledge distillation** (``distillation_loss``, Hinton et al. 2015, arXiv:1503.02531) trains a
  small student on a large teacher's temperature-softened output distribution as well as on the labels.

The chapter's experiment (fine-tune MiniLM, compress it, distil it) is ``lepton_lib.scale.compression_recipe``.
"""
from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import prune

from lepton_lib.bert.fine_tuning import train_on_batches
from lepton_lib.core.runtime import seeded_torch_rng

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
]


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers compute with int8 weights (dynamic quantization).

    The original model is left untouched. Weights are quantized once, per tensor, symmetric around
    zero; activations are quantized per batch at run time, so the output of each layer is fp32 again
    and the rest of the network (embeddings, LayerNorm, softmax) is unchanged. Runs on CPU only.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear layer to quantize")
    source = copy.deepcopy(model).cpu().eval()
    # torch 2.10+ warns that the eager quantization API moves to the separate torchao package; the
    # function still works in this torch, and the warning would only clutter the book's outputs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(source, {nn.Linear}, dtype=torch.qint8)


def prunable_linears(model: nn.Module, skip: Iterable[str] = ()) -> list[tuple[str, nn.Linear]]:
    """``(name, module)`` for every ``nn.Linear`` in ``model`` whose name does not start with a ``skip`` prefix."""
    skip = tuple(skip)
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not (skip and name.startswith(skip))]


def magnitude_prune(model: nn.Module, amount: float, scope: str = "global",
                    skip: Iterable[str] = ()) -> nn.Module:
    """Zero the fraction ``amount`` of smallest-magnitude weights of the ``nn.Linear`` layers, in place.

    ``scope="layer"`` prunes each layer's weight matrix by ``amount``; ``scope="global"`` ranks the
    weights of all layers together. Biases are kept (they are few and matter). Layers whose name
    starts with a prefix in ``skip`` (e.g. a classifier head) are left dense. The pruning masks are
    made permanent with ``prune.remove``, so the returned module is an ordinary one. Returns ``model``.
    """
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    layers = prunable_linears(model, skip)
    if not layers:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear layer to prune (skip={tuple(skip)})")
    if amount == 0.0:
        return model
    if scope == "global":
        prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                                  amount=float(amount))
    else:
        for _, m in layers:
            prune.l1_unstructured(m, "weight", amount=float(amount))
    for _, m in layers:
        prune.remove(m, "weight")  # weight_orig * weight_mask -> a plain parameter with zeros
    return model


def sparsity(model: nn.Module, skip: Iterable[str] = ()) -> float:
    """Fraction of exactly-zero entries among the weights of the (not skipped) ``nn.Linear`` layers."""
    layers = prunable_linears(model, skip)
    if not layers:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear layer")
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    total = sum(m.weight.numel() for _, m in layers)
    return zeros / total


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the checkpoint on disk.

    Works for quantized models too (their packed int8 weights are saved as such), which
    ``safetensors`` cannot store.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def sparse_state_dict_bytes(model: nn.Module) -> int:
    """Bytes of the tensors' data if every 2-D float tensor were stored in CSR form.

    CSR keeps the non-zero values, one int64 column index per value and ``rows + 1`` int64 row
    pointers; other tensors count at their dense size. With int64 indices a matrix only gets smaller
    once fewer than about a third of its fp32 entries are non-zero, which is why pruning at low
    sparsity does not shrink a checkpoint.
    """
    total = 0
    for tensor in model.state_dict().values():
        if tensor.is_floating_point() and tensor.dim() == 2:
            # what tensor.to_sparse_csr() would hold, counted without building it
            nonzero = int(torch.count_nonzero(tensor))
            total += nonzero * (tensor.element_size() + 8) + (tensor.shape[0] + 1) * 8
        else:
            total += tensor.numel() * tensor.element_size()
    return total


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                      temperature: float = 2.0, alpha: float = 0.5) -> Tensor:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, labels)``.

    ``p^T = softmax(logits / T)``. Dividing the logits by a temperature ``T > 1`` softens both
    distributions, so the student also learns how the teacher ranks the wrong classes. The gradient of
    the soft term scales like ``1 / T^2``; multiplying by ``T^2`` keeps its weight comparable to the hard
    term's when ``T`` changes (Section 2 of the paper). Shapes: logits ``(B, C)``, labels ``(B,)``
    int64. The KL divergence is averaged over the batch, like the cross-entropy. The teacher's logits
    are detached: no gradient flows into the teacher.
    """
    if not isinstance(student_logits, Tensor) or student_logits.dim() != 2:
        got = tuple(student_logits.shape) if isinstance(student_logits, Tensor) else type(student_logits).__name__
        raise ValueError(f"student_logits must have shape (B, C), got {got}")
    if not isinstance(teacher_logits, Tensor) or teacher_logits.shape != student_logits.shape:
        got = tuple(teacher_logits.shape) if isinstance(teacher_logits, Tensor) else type(teacher_logits).__name__
        raise ValueError(f"teacher_logits must have the student's shape {tuple(student_logits.shape)}, got {got}")
    if (not isinstance(labels, Tensor) or labels.dtype != torch.long
            or tuple(labels.shape) != (student_logits.shape[0],)):
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be int64 of shape ({student_logits.shape[0]},), got {got}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    T = float(temperature)
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * T * T
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard


@torch.no_grad()
def predict_logits(model: nn.Module, tokenizer, texts: list[str], batch_size: int = 128,
                   max_length: int = 64) -> Tensor:
    """Logits ``(N, C)`` of a sentence classifier (``model(**tokenizer.encode_batch(...))``) in eval mode."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer.encode_batch(texts[start : start + batch_size], max_length=max_length, truncation=True)
        chunks.append(model(**inputs))
    model.train(was_training)
    return torch.cat(chunks)


def train_student(student: nn.Module, tokenizer, texts: list[str], labels: list[int],
                  teacher_logits: Tensor | None = None, epochs: int = 3, lr: float = 1e-3, batch_size: int = 32,
                  max_length: int = 64, temperature: float = 2.0, alpha: float = 0.5, seed: int = 0) -> list[float]:
    """Train a sentence classifier with AdamW on ``labels`` alone, or distilled from ``teacher_logits (N, C)``.

    Without teacher logits the loss is the cross-entropy; with them it is ``distillation_loss``. The
    examples are reshuffled every epoch by a generator seeded with ``seed``; dropout is seeded too.
    No warm-up, decay or clipping: the plain loop of ``lepton_lib.bert.fine_tuning.train_on_batches``.
    Returns the loss of every step.
    """
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels must be equally long, got {len(texts)} and {len(labels)}")
    if teacher_logits is not None and (teacher_logits.dim() != 2 or teacher_logits.shape[0] != len(texts)):
        raise ValueError(f"teacher_logits must have shape ({len(texts)}, C), got {tuple(teacher_logits.shape)}")
    generator = torch.Generator().manual_seed(seed)
    targets = torch.tensor(labels)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr)
    if teacher_logits is None:
        loss_fn = F.cross_entropy
    else:  # the targets of a batch are (labels, teacher logits)
        def loss_fn(logits: Tensor, batch_targets: tuple[Tensor, Tensor]) -> Tensor:
            return distillation_loss(logits, batch_targets[1], batch_targets[0], temperature, alpha)
    student.train()
    losses = []
    with seeded_torch_rng(seed):  # dropout; the caller's random stream is left alone
        for _ in range(epochs):
            order = torch.randperm(len(texts), generator=generator)
            batches = []
            for start in range(0, len(texts), batch_size):
                chunk = order[start : start + batch_size]
                inputs = tokenizer.encode_batch([texts[i] for i in chunk], max_length=max_length, truncation=True)
                batch_targets = targets[chunk] if teacher_logits is None else (targets[chunk], teacher_logits[chunk])
                batches.append((inputs, batch_targets))
            losses += train_on_batches(student, optimizer, batches, loss_fn)
    return losses
