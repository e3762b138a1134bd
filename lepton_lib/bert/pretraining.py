"""The BERT pretraining loop: AdamW, warm-up and decay, clipping, accumulation, bf16, DDP, checkpoints.

One optimizer step consumes one *global batch* of ``batch_size`` examples (``ExampleStream``). With
``W`` processes and ``A`` accumulation steps, each process runs ``A`` micro-batches of
``batch_size / (W * A)`` examples. The loss of a step is the mean over the *whole* global batch:
the MLM cross-entropy summed over every masked token and divided by the number of masked tokens
in the global batch, plus the NSP cross-entropy averaged over its examples. Each micro-batch
therefore divides its sums by these global counts (known before the forward pass, shared with
``all_reduce``) and multiplies by ``W``, because DDP averages the gradients of the processes.
Averaging per-micro-batch means instead would weigh a masked token in a short micro-batch more
than one in a long micro-batch, and the result would depend on how the batch was split.

Everything random is reproducible: the data order and the masks are functions of the step
(``lepton_lib.bert.pretraining_data``), dropout draws from torch's generator, whose state is saved in
each checkpoint. Resuming from a checkpoint continues with exactly the losses an uninterrupted run
would have produced.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from lepton_lib.attention.tiny_models import IGNORE_INDEX
from lepton_lib.background.flops import transformer_training_flops
from lepton_lib.bert.model import BertConfig, BertForPreTraining
from lepton_lib.bert.checkpoint import capture_rng_state, latest_checkpoint, load_checkpoint, save_checkpoint
from lepton_lib.bert.pretraining_data import ExampleStream, PretrainingBatcher
from lepton_lib.core.checks import check_positive_int
from lepton_lib.core.runtime import distributed_rank_and_world
from lepton_lib.foundations.schedules import linear_warmup_decay_scheduler

__all__ = [
    "PretrainConfig", "TrainLog", "weight_decay_groups", "build_optimizer", "autocast_dtype", "pretrain",
    "evaluate_pretraining", "fill_mask", "pretraining_flops",
]


@dataclass
class PretrainConfig:
    steps: int = 1000  # optimizer steps
    batch_size: int = 32  # examples per optimizer step, summed over processes and accumulation steps
    grad_accum_steps: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_grad_norm: float | None = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 on a GPU that supports it, else fp32), "fp32", "bf16"
    log_every: int = 10
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum_steps", "log_every"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be an int in [0, steps={self.steps}], got {self.warmup_steps!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        for name, positive in (("lr", True), ("eps", True), ("weight_decay", False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or (value <= 0 if positive else value < 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
        norm = self.max_grad_norm
        if norm is not None and (isinstance(norm, bool) or not isinstance(norm, (int, float))
                                 or not math.isfinite(norm) or norm <= 0):
            raise ValueError(f"max_grad_norm must be None or a finite number > 0, got {norm!r}")
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        every = self.checkpoint_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"checkpoint_every must be None or a positive int, got {every!r}")
        if (self.checkpoint_every is None) != (self.checkpoint_dir is None):
            raise ValueError("checkpoint_every and checkpoint_dir must be given together")


@dataclass
class TrainLog:
    """One entry per optimizer step (losses are global-batch means)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    mlm_loss: list[float] = field(default_factory=list)
    nsp_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # non-padding tokens in the step's global batch
    seconds: list[float] = field(default_factory=list)  # wall time of the step (for throughput; not reproducible)

    def as_dict(self) -> dict:
        return asdict(self)


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups: matrices decay; biases and LayerNorm/embedding-norm gains do not.

    Decay pulls a weight towards 0. A LayerNorm gain should stay near 1 and a bias has no reason
    to be small, so for them the pull is arbitrary and BERT excludes them. Embeddings (2-D) decay.
    """
    decay, no_decay = [], []
    norms = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    seen = set()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        (no_decay if parameter.dim() < 2 or id(parameter) in norms else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: PretrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(weight_decay_groups(model, config.weight_decay), lr=config.lr, betas=config.betas,
                             eps=config.eps)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 where the hardware has it (recent NVIDIA GPUs). On a CPU without native bf16 units it is
    emulated and far slower than fp32 (see ``benchmarks/bert_pretrain.py``), so "auto" stays fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _all_reduce(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over processes (unchanged with one process)."""
    if distributed_rank_and_world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _to(batch: dict[str, Tensor], device: torch.device, model: BertForPreTraining) -> dict[str, Tensor]:
    """Move the model's inputs to ``device`` (NSP labels only for a model with an NSP head)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "nsp_labels" or model.use_nsp}


def pretrain(
    model: BertForPreTraining,
    batcher: PretrainingBatcher,
    config: PretrainConfig,
    device: torch.device | str = "cpu",
    resume_from: str | Path | None = None,
    stop_after: int | None = None,
    allow_config_change: bool = False,
) -> TrainLog:
    """Train ``model`` for ``config.steps`` optimizer steps and return the per-step log.

    ``resume_from``: a checkpoint directory, or ``"latest"`` for the newest valid one under
    ``config.checkpoint_dir`` (none found: start from scratch). ``stop_after`` ends the run after
    that many completed steps (as an interruption would), keeping the schedule of ``config.steps``.
    Resuming with a config that differs from the saved one (other than where and how often to log
    and save) raises, since the run would no longer equal an uninterrupted one, unless
    ``allow_config_change=True``. Under ``torchrun`` (``torch.distributed`` initialised) the model is wrapped in DDP.
    """
    device = torch.device(device)
    rank, world = distributed_rank_and_world()
    per_step = config.batch_size // (world * config.grad_accum_steps)
    if per_step * world * config.grad_accum_steps != config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by processes x grad_accum_steps = "
                         f"{world} x {config.grad_accum_steps}")
    model.to(device)
    optimizer = build_optimizer(model, config)
    scheduler = linear_warmup_decay_scheduler(optimizer, config.warmup_steps, config.steps)
    log, start = TrainLog(), 0
    if resume_from == "latest":
        resume_from = latest_checkpoint(config.checkpoint_dir) if config.checkpoint_dir else None
    if resume_from is not None:
        _check_same_config(Path(resume_from), config, allow_config_change)
        meta = load_checkpoint(resume_from, model, optimizer, scheduler, restore_rng=True, rank=rank)
        start, log = meta["step"], TrainLog(**meta["extra"]["log"])
    ddp = None
    if world > 1:
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    runner = ddp or model
    stream = ExampleStream(len(batcher.examples), config.batch_size, config.seed)
    dtype = autocast_dtype(device, config.precision)
    last = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(range(start, last), desc="pretraining", disable=not config.progress or rank != 0,
               initial=start, total=last)
    model.train()
    for step in bar:
        began = time.perf_counter()
        items = stream.batch(step)[rank * per_step * config.grad_accum_steps:][: per_step * config.grad_accum_steps]
        micro = [batcher(items[k : k + per_step]) for k in range(0, len(items), per_step)]
        local = [sum(int((b["mlm_labels"] != IGNORE_INDEX).sum()) for b in micro),  # masked tokens
                 sum(int(b["attention_mask"].sum()) for b in micro),  # real tokens
                 # labelled pairs: batch_size when every example has a pair, fewer with packed ones among them
                 sum(int((b["nsp_labels"] != IGNORE_INDEX).sum()) for b in micro if "nsp_labels" in b)]
        global_masked, global_tokens, global_pairs = _all_reduce([float(v) for v in local], device)
        sums = torch.zeros(2, dtype=torch.float64)
        for k, batch in enumerate(micro):
            batch = _to(batch, device, model)
            sync = contextlib.nullcontext() if ddp is None or k == len(micro) - 1 else ddp.no_sync()
            with sync, torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = runner(**batch)
                loss = out.mlm_loss_sum / max(global_masked, 1.0)
                if out.nsp_loss_sum is not None:
                    loss = loss + out.nsp_loss_sum / max(global_pairs, 1.0)
                (loss * world).backward()  # DDP averages over processes: undo it, we normalised globally
            nsp_sum = 0.0 if out.nsp_loss_sum is None else out.nsp_loss_sum.item()
            sums += torch.tensor([out.mlm_loss_sum.item(), nsp_sum], dtype=torch.float64)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm or float("inf"))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mlm_sum, nsp_sum = _all_reduce(sums.tolist(), device)
        mlm, nsp = mlm_sum / max(global_masked, 1.0), nsp_sum / max(global_pairs, 1.0)
        log.step.append(step + 1)
        log.mlm_loss.append(mlm)
        log.nsp_loss.append(nsp)
        log.loss.append(mlm + nsp)
        log.lr.append(scheduler.get_last_lr()[0])
        log.grad_norm.append(float(grad_norm))
        log.tokens.append(int(global_tokens))
        log.seconds.append(time.perf_counter() - began)
        if (step + 1) % config.log_every == 0 or step + 1 == last:
            recent = slice(-config.log_every, None)
            rate = sum(log.tokens[recent]) / max(sum(log.seconds[recent]), 1e-9)
            bar.set_postfix(loss=f"{log.loss[-1]:.3f}", mlm=f"{mlm:.3f}", tok_s=f"{rate:,.0f}")
        if config.checkpoint_every and ((step + 1) % config.checkpoint_every == 0 or step + 1 == last):
            _save(config, step + 1, model, optimizer, scheduler, log, rank, world)
    bar.close()
    return log


_RUN_ONLY_FIELDS = ("log_every", "checkpoint_every", "checkpoint_dir", "progress")  # change nothing trained


def _check_same_config(path: Path, config: PretrainConfig, allow: bool) -> None:
    """Raise ``ValueError`` if the checkpoint at ``path`` was trained with another config."""
    try:
        saved = json.loads((path / "state.json").read_text())["extra"]["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable config: load_checkpoint reports a damaged checkpoint itself
    current = json.loads(json.dumps(asdict(config)))
    changed = {k: (saved.get(k), v) for k, v in current.items() if k not in _RUN_ONLY_FIELDS and saved.get(k) != v}
    if changed and not allow:
        described = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise ValueError(f"config differs from the one {path} was trained with ({described}); resume with the "
                         f"saved config, or pass allow_config_change=True to continue with the new one")


def _save(config: PretrainConfig, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
          log: TrainLog, rank: int, world: int) -> None:
    """Rank 0 writes the checkpoint, with every process's random state (gathered first)."""
    states = [capture_rng_state()]
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, states[0])
        states = gathered
    if rank == 0:
        extra = {"log": log.as_dict(), "config": asdict(config)}
        save_checkpoint(config.checkpoint_dir, step, model, optimizer, scheduler, extra, rng_states=states)
    if world > 1:
        dist.barrier()


@torch.no_grad()
def evaluate_pretraining(model: BertForPreTraining, batcher: PretrainingBatcher, indices: list[int] | None = None,
                         batch_size: int = 64, device: torch.device | str = "cpu") -> dict[str, float]:
    """MLM loss (mean over masked tokens), perplexity ``exp(loss)``, MLM top-1 accuracy, NSP (or SOP) accuracy
    over the examples that have a pair.

    Masks are those of epoch 0, so the numbers are the same at every call.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    indices = list(range(len(batcher.examples))) if indices is None else indices
    mlm_sum, masked, correct, nsp_correct, pairs = 0.0, 0, 0, 0, 0
    for k in range(0, len(indices), batch_size):
        batch = _to(batcher([(0, i) for i in indices[k : k + batch_size]]), device, model)
        out = model(**batch)
        targets = batch["mlm_labels"][batch["mlm_labels"] != IGNORE_INDEX]
        logits = out.mlm_logits if model.predict_masked_only else out.mlm_logits[batch["mlm_labels"] != IGNORE_INDEX]
        mlm_sum += out.mlm_loss_sum.item()
        masked += out.num_masked
        correct += int((logits.argmax(-1) == targets).sum())
        if out.nsp_logits is not None and "nsp_labels" in batch:
            labelled = batch["nsp_labels"] != IGNORE_INDEX  # examples without a pair are not scored
            nsp_correct += int((out.nsp_logits.argmax(-1) == batch["nsp_labels"])[labelled].sum())
            pairs += int(labelled.sum())
    model.train(was_training)
    loss = mlm_sum / max(masked, 1)
    return {"mlm_loss": loss, "perplexity": float(torch.tensor(loss).exp()), "mlm_accuracy": correct / max(masked, 1),
            "nsp_accuracy": nsp_correct / max(pairs, 1) if model.use_nsp and batcher.has_pairs else float("nan")}


@torch.no_grad()
def fill_mask(model: BertForPreTraining, tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` in ``text``: the ``top_k`` most probable tokens and their probabilities."""
    encoding = tokenizer.encode(text)
    ids = torch.tensor([encoding.ids], device=next(model.parameters()).device)
    positions = (ids[0] == tokenizer.mask_id).nonzero().squeeze(1)
    if len(positions) == 0:
        raise ValueError(f"text must contain {tokenizer.id_to_token[tokenizer.mask_id]}, got {text!r}")
    was_training = model.training
    model.eval()
    hidden = model.bert(ids).last_hidden_state[0, positions]  # (M, H)
    probs = model.mlm_logits(hidden).softmax(-1)
    model.train(was_training)
    top = probs.topk(top_k, dim=-1)
    return [[(tokenizer.id_to_token[i], round(p, 4)) for i, p in zip(row_ids.tolist(), row_p.tolist())]
            for row_ids, row_p in zip(top.indices, top.values)]


def pretraining_flops(config: BertConfig, tokens: int, seq_len: int, masked: int) -> float:
    """Useful training FLOPs of MLM pretraining: ``tokens`` token slots in sequences of ``seq_len``, ``masked``
    of them predicted (a multiply-add is 2 FLOPs; backward = 2 x forward, so training = 3 x forward).

    ``6 N`` per token for the N encoder weights, the attention scores and their weighted sum
    (``3 x 4 L S H`` per token, bidirectional: every query sees all S keys), and the MLM head
    (transform and vocabulary projection) on the masked positions only, as ``BertForPreTraining``
    computes it. Embedding look-ups are free; the NSP head is negligible.
    """
    for name, value in (("tokens", tokens), ("seq_len", seq_len)):
        check_positive_int(name, value)
    if not (isinstance(masked, int) and 0 <= masked <= tokens):
        raise ValueError(f"masked must be an int in [0, tokens={tokens}], got {masked!r}")
    layers, hidden, vocab = config.num_hidden_layers, config.hidden_size, config.vocab_size
    inter = config.intermediate_size
    encoder_params = layers * (4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter)  # + biases, norms
    return (transformer_training_flops(encoder_params, tokens) + 3 * 4 * layers * seq_len * hidden * tokens
            + 3 * 2 * (hidden * hidden + vocab * hidden) * masked)
