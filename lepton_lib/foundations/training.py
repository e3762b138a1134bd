"""A small training loop for classifiers: ``fit``, ``evaluate`` and ``predict``.

The loop is deliberately plain, so that later chapters can read it in one sitting and extend
it (a learning-rate schedule, gradient clipping, mixed precision) by copying
:func:`train_one_epoch` and changing a line. Loaders yield ``(inputs, labels)`` batches; the
model maps inputs to logits of shape (B, C) for C classes, or (B,) / (B, 1) for a binary
classifier trained with ``BCEWithLogitsLoss``; ``loss_fn`` returns the batch *mean*.

Nothing here draws random numbers: call :func:`lepton_lib.core.runtime.set_seed` before building the
model and the loaders, and two runs give identical histories.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Literal, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from lepton_lib.core.checks import check_positive_int

__all__ = ["History", "Evaluation", "MONITORS", "predicted_labels", "train_one_epoch", "evaluate", "predict", "fit"]

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Penalty = Callable[[nn.Module], torch.Tensor]
MONITORS = ("val_loss", "val_accuracy")


@dataclass
class History:
    """What :func:`fit` measured, one entry per completed epoch.

    ``train_loss`` is the mean loss over the epoch's batches while the weights were changing
    (penalty included); ``val_loss`` and ``val_accuracy`` are measured after the epoch (empty
    without a validation loader), and so is ``train_eval_loss``, the loss on ``train_eval_loader``
    in eval mode (empty without one). ``best_epoch`` indexes the lists (0-based) at the best
    value of the monitored metric: the lowest ``val_loss`` unless told otherwise.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    train_eval_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class Evaluation(NamedTuple):
    """Mean loss and accuracy over every example of a loader."""

    loss: float
    accuracy: float


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _unpack(batch: Batch, device: torch.device) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"each batch must be an (inputs, labels) pair, got {type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    inputs, labels = batch
    return inputs.to(device), labels.to(device)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    """Class predictions: argmax over (B, C) logits, or ``logit > 0`` for (B,) or (B, 1)."""
    if logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1):
        return (logits.reshape(-1) > 0).long()
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, C), (B, 1) or (B,), got {tuple(logits.shape)}")
    return logits.argmax(dim=1)


def _loss_input(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A (B, 1) binary logit is flattened to match (B,) labels, as ``BCEWithLogitsLoss`` needs."""
    if logits.dim() == 2 and logits.shape[1] == 1 and labels.dim() == 1:
        return logits.reshape(-1)
    return logits


def train_one_epoch(
    model: nn.Module, loader: Iterable[Batch], optimizer: torch.optim.Optimizer, loss_fn: LossFn,
    device: torch.device,
) -> float:
    """One pass over ``loader`` with a gradient step per batch; returns the mean training loss."""
    model.train()
    total_loss, total_examples = 0.0, 0
    for batch in loader:
        inputs, labels = _unpack(batch, device)
        logits = model(inputs)
        loss = loss_fn(_loss_input(logits, labels), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # loss is a batch mean: weight it by the batch size so a short last batch counts less.
        total_loss += loss.item() * len(labels)
        total_examples += len(labels)
    if total_examples == 0:
        raise ValueError("train_loader yielded no batches")
    return total_loss / total_examples


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Batch], device: torch.device | None = None) -> Batch:
    """Logits and labels for every example of ``loader``, concatenated on the CPU.

    Returns ``(logits, labels)`` of shapes (N, C) (or whatever the model outputs per example)
    and (N,). The model runs in eval mode (dropout off) and is put back in its previous mode.
    """
    device = device or _model_device(model)
    was_training = model.training
    model.eval()
    all_logits, all_labels = [], []
    for batch in loader:
        inputs, labels = _unpack(batch, device)
        all_logits.append(model(inputs).cpu())
        all_labels.append(labels.cpu())
    model.train(was_training)
    if not all_logits:
        raise ValueError("loader yielded no batches")
    return torch.cat(all_logits), torch.cat(all_labels)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], loss_fn: LossFn,
             device: torch.device | None = None) -> Evaluation:
    """Mean loss (weighted by batch size, so it is the mean over examples) and accuracy."""
    device = device or _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, total_examples = 0.0, 0, 0
    for batch in loader:
        inputs, labels = _unpack(batch, device)
        logits = model(inputs)
        predicted = predicted_labels(logits)
        if labels.shape != predicted.shape:  # (B, 1) labels would broadcast against (B,) predictions to (B, B)
            raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(predicted.shape)}: "
                             f"one class index per example of the batch (logits {tuple(logits.shape)})")
        total_loss += loss_fn(_loss_input(logits, labels), labels).item() * len(labels)
        correct += (predicted == labels.long()).sum().item()
        total_examples += len(labels)
    model.train(was_training)
    if total_examples == 0:
        raise ValueError("loader yielded no batches")
    return Evaluation(total_loss / total_examples, correct / total_examples)


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    val_loader: Iterable[Batch] | None,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    epochs: int,
    device: torch.device | str | None = None,
    early_stopping_patience: int | None = None,
    progress: bool = True,
    *,
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss",
    penalty: Penalty | None = None,
    train_eval_loader: Iterable[Batch] | None = None,
) -> History:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`History`.

    After each epoch the model is evaluated on ``val_loader`` (and on ``train_eval_loader``,
    if given, for the training loss the final weights of the epoch reach, dropout off). With
    ``early_stopping_patience=p``, training stops once ``p`` epochs in a row have not improved
    the ``monitor`` metric (lowered ``"val_loss"`` or raised ``"val_accuracy"``), and the
    weights of the best epoch are copied back into ``model`` (also when all epochs ran), so
    the returned model is the one the history calls best. ``penalty(model)``, if given, is added
    to every training batch's loss (an L1 penalty on the weights, say): it is minimised and
    counted in ``train_loss``, never in an evaluation. ``device=None`` keeps the model where it
    is; otherwise the model is moved there first.
    """
    check_positive_int("epochs", epochs)
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    if check_positive_int("early_stopping_patience", early_stopping_patience, allow_none=True) is not None:
        if val_loader is None:
            raise ValueError("early_stopping_patience needs a val_loader to watch; got val_loader=None")
    if device is not None:
        model.to(device)
    device = _model_device(model)

    train_loss_fn = loss_fn
    if penalty is not None:
        def train_loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return loss_fn(logits, labels) + penalty(model)

    history = History()
    # The monitored score is minimised: the loss itself, or minus the accuracy (negation is exact).
    best_score, best_state, epochs_without_improvement = float("inf"), None, 0
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        history.train_loss.append(train_one_epoch(model, train_loader, optimizer, train_loss_fn, device))
        if train_eval_loader is not None:
            history.train_eval_loss.append(evaluate(model, train_eval_loader, loss_fn, device).loss)
        if val_loader is None:
            bar.set_postfix(train_loss=f"{history.train_loss[-1]:.4f}")
            continue
        val = evaluate(model, val_loader, loss_fn, device)
        history.val_loss.append(val.loss)
        history.val_accuracy.append(val.accuracy)
        bar.set_postfix(train_loss=f"{history.train_loss[-1]:.4f}", val_loss=f"{val.loss:.4f}",
                        val_acc=f"{val.accuracy:.4f}")
        score = val.loss if monitor == "val_loss" else -val.accuracy
        if score < best_score:
            best_score, history.best_epoch, epochs_without_improvement = score, epoch, 0
            if early_stopping_patience is not None:  # a copy, not a view: training goes on changing the weights
                best_state = copy.deepcopy(model.state_dict())
        else:
            epochs_without_improvement += 1
            if early_stopping_patience is not None and epochs_without_improvement >= early_stopping_patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
