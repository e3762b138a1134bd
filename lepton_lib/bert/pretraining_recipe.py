"""Pretrain a BERT from the command line: ``python -m lepton_lib.bert.pretraining_recipe --preset mini ...``.

A :class:`Recipe` fixes everything a run depends on (corpus, vocabulary, model size, batch,
schedule, seed). :func:`run_recipe` trains a WordPiece vocabulary on the training documents, builds
NSP pairs (or packed single-segment sequences with ``--no-nsp``), pretrains, evaluates on held-out
documents (every 20th document), and writes into ``--out``::

    final/config.json, final/model.safetensors, final/vocab.txt   (a Hugging Face BERT directory)
    checkpoints/step-XXXXXXXX/                                    (with --checkpoint-every)
    metrics.json                                                  (log, held-out metrics, command, date, machine)

``--record PATH`` also writes ``metrics.json`` to ``PATH`` (the book keeps its long runs' records
under ``book/bert/results/``; ``tools/reproduce.py`` re-creates them so).

Examples::

    python -m lepton_lib.bert.pretraining_recipe --preset tiny --steps 200 --out runs/tiny
    python -m lepton_lib.bert.pretraining_recipe --preset mini --steps 20000 --batch-size 256 --grad-accum 4 \\
        --checkpoint-every 1000 --resume latest --out runs/mini          # on a GPU: bf16 autocast
    torchrun --nproc_per_node 2 -m lepton_lib.bert.pretraining_recipe --preset tiny --steps 200 --out runs/ddp

Under ``torchrun`` every process joins a process group (NCCL on GPUs, Gloo on CPUs), takes its
share of each global batch, and only rank 0 writes files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from lepton_lib.core.cli import non_negative_float_arg, non_negative_int_arg, positive_float_arg, positive_int_arg
from lepton_lib.bert.model import BertConfig, BertForPreTraining, count_parameters
from lepton_lib.bert.saving import save_pretrained
from lepton_lib.data.download import cache_dir
from lepton_lib.data.text import CORPORA, load_corpus
from lepton_lib.bert.pretraining import PretrainConfig, evaluate_pretraining, pretrain
from lepton_lib.bert.pretraining_data import PretrainingBatcher, create_nsp_examples, pack_sequences, tokenize_documents
from lepton_lib.bert.tokenization import WordPieceTokenizer
from lepton_lib.core.records import command_line, provenance
from lepton_lib.core.runtime import seeded_torch_rng

__all__ = [
    "Recipe", "BOOK_RECIPE", "BOOK_RECIPE_NO_NSP", "split_documents", "prepare_data", "build_model", "run_recipe",
    "cached_pretraining",
]


@dataclass(frozen=True)
class Recipe:
    """Everything a pretraining run depends on; two runs of one recipe give the same weights."""

    preset: str = "tiny"
    corpora: tuple[str, ...] = ("wikitext2",)
    vocab_size: int = 8000
    seq_len: int = 128
    batch_size: int = 32
    grad_accum_steps: int = 1
    steps: int = 200
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    nsp: bool = True
    dropout: float = 0.1
    seed: int = 0
    precision: str = "auto"

    def key(self) -> str:
        """A short hash naming the recipe's cache folder."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


# The run the chapter's notebooks share (about two minutes on two CPU cores) and its MLM-only twin.
# Dropout is off: a short run over a small corpus underfits, and dropout would only slow it down.
BOOK_RECIPE = Recipe(preset="tiny", vocab_size=3000, seq_len=64, batch_size=32, steps=300, lr=2e-3,
                     warmup_steps=30, dropout=0.0)
BOOK_RECIPE_NO_NSP = Recipe(**(asdict(BOOK_RECIPE) | {"nsp": False}))


@dataclass
class PreparedData:
    tokenizer: WordPieceTokenizer
    train: PretrainingBatcher
    heldout: PretrainingBatcher
    stats: dict = field(default_factory=dict)


def split_documents(documents: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """(training, held-out) documents: every 20th document is held out, whole."""
    return [d for k, d in enumerate(documents) if k % 20], documents[::20]


def prepare_data(recipe: Recipe) -> PreparedData:
    """Vocabulary from the training documents, then NSP pairs (or packed sequences) for both splits."""
    train_docs, heldout_docs = split_documents([doc for name in recipe.corpora for doc in load_corpus(name)])
    tokenizer = WordPieceTokenizer.train((s for d in train_docs for s in d), recipe.vocab_size)
    splits = {}
    for name, docs in (("train", train_docs), ("heldout", heldout_docs)):
        ids = tokenize_documents(docs, tokenizer)
        if recipe.nsp:
            examples = create_nsp_examples(ids, recipe.seq_len, seed=recipe.seed)
        else:
            examples = pack_sequences(ids, recipe.seq_len, tokenizer.sep_id)
        splits[name] = PretrainingBatcher(examples, tokenizer, seed=recipe.seed)
    stats = {f"{k}_examples": len(b.examples) for k, b in splits.items()}
    stats["train_documents"], stats["heldout_documents"] = len(train_docs), len(heldout_docs)
    return PreparedData(tokenizer, splits["train"], splits["heldout"], stats)


def build_model(recipe: Recipe, vocab_size: int) -> BertForPreTraining:
    """The freshly initialised model of ``recipe`` (seeded: the same weights in every process and run)."""
    config = BertConfig.preset(recipe.preset, vocab_size=vocab_size, hidden_dropout_prob=recipe.dropout,
                               attention_probs_dropout_prob=recipe.dropout,
                               max_position_embeddings=max(512, recipe.seq_len))
    with seeded_torch_rng(recipe.seed):
        return BertForPreTraining(config, use_nsp=recipe.nsp)


def run_recipe(recipe: Recipe, out: str | Path, checkpoint_every: int | None = None, resume: str | None = None,
               progress: bool = True, device: str | None = None, log_every: int = 10,
               command: str | None = None, record: str | Path | None = None) -> dict:
    """Prepare the data, pretrain, evaluate, and write the outputs listed in the module docstring.

    ``record``: also write the metrics to this file (a stored result of the book).
    """
    out = Path(out)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    train_config = PretrainConfig(
        steps=recipe.steps, batch_size=recipe.batch_size, grad_accum_steps=recipe.grad_accum_steps, lr=recipe.lr,
        weight_decay=recipe.weight_decay, warmup_steps=recipe.warmup_steps, seed=recipe.seed,
        precision=recipe.precision, progress=progress, log_every=log_every, checkpoint_every=checkpoint_every,
        checkpoint_dir=str(out / "checkpoints") if checkpoint_every else None,
    )
    data = prepare_data(recipe)
    # Initialised on the CPU (same weights on every device), then moved before the first evaluation.
    model = build_model(recipe, data.tokenizer.vocab_size).to(device)
    before = evaluate_pretraining(model, data.heldout, device=device)
    with seeded_torch_rng(recipe.seed):  # dropout, if the recipe has any; the caller's stream is left alone
        log = pretrain(model, data.train, train_config, device=device, resume_from=resume)
    after = evaluate_pretraining(model, data.heldout, device=device)
    result = {"recipe": asdict(recipe), "parameters": count_parameters(model), "data": data.stats,
              "heldout_before": before, "heldout_after": after, "log": log.as_dict(),
              **provenance(command),
              "world_size": dist.get_world_size() if dist.is_initialized() else 1}
    if rank == 0:
        final = out / "final"
        save_pretrained(model.cpu(), final)
        data.tokenizer.save_vocab(final / "vocab.txt")
        (out / "metrics.json").write_text(json.dumps(result, indent=1))
        if record is not None:
            Path(record).parent.mkdir(parents=True, exist_ok=True)
            Path(record).write_text(json.dumps(result, indent=1))
    return result


def cached_pretraining(recipe: Recipe, root: str | Path | None = None, progress: bool = True) -> Path:
    """The ``final`` directory of ``recipe``'s run, training it first unless a previous run is cached.

    The cache lives under ``root`` (default: the book's cache folder, ``$LEPTON_CACHE_DIR``), in a
    folder named by the recipe's hash; a run is deterministic, so a cached one is what a fresh
    run would produce on the same machine.
    """
    folder = Path(root or cache_dir()) / "bert_pretraining" / f"{recipe.preset}-{recipe.key()}"
    final = folder / "final"
    if not (final / "model.safetensors").is_file():
        run_recipe(recipe, folder, progress=progress, device="cpu")
    return final


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lepton_lib.bert.pretraining_recipe", description=__doc__.split("\n\n")[0])
    d = Recipe()
    p.add_argument("--preset", default=d.preset, choices=["tiny", "mini", "small", "base"])
    p.add_argument("--corpus", nargs="+", default=list(d.corpora), choices=CORPORA)
    p.add_argument("--vocab-size", type=positive_int_arg, default=d.vocab_size)
    p.add_argument("--seq-len", type=positive_int_arg, default=d.seq_len)
    p.add_argument("--batch-size", type=positive_int_arg, default=d.batch_size, help="global batch (all processes)")
    p.add_argument("--grad-accum", type=positive_int_arg, default=d.grad_accum_steps)
    p.add_argument("--steps", type=positive_int_arg, default=d.steps)
    p.add_argument("--lr", type=positive_float_arg, default=d.lr)
    p.add_argument("--warmup", type=non_negative_int_arg, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=non_negative_float_arg, default=d.weight_decay)
    p.add_argument("--no-nsp", action="store_true", help="MLM only, on packed sequences (RoBERTa)")
    p.add_argument("--dropout", type=non_negative_float_arg, default=d.dropout)
    p.add_argument("--seed", type=non_negative_int_arg, default=d.seed)
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=positive_int_arg, default=None, help="torch intra-op threads on the CPU")
    p.add_argument("--checkpoint-every", type=positive_int_arg, default=None)
    p.add_argument("--resume", default=None, help="a checkpoint directory, or 'latest'")
    p.add_argument("--log-every", type=positive_int_arg, default=10)
    p.add_argument("--out", required=True, help="folder for final/, checkpoints/ and metrics.json")
    p.add_argument("--record", default=None, metavar="PATH", help="also write metrics.json to this file")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo")
    recipe = Recipe(
        preset=args.preset, corpora=tuple(args.corpus), vocab_size=args.vocab_size, seq_len=args.seq_len,
        batch_size=args.batch_size, grad_accum_steps=args.grad_accum, steps=args.steps, lr=args.lr,
        warmup_steps=args.warmup, weight_decay=args.weight_decay, nsp=not args.no_nsp, dropout=args.dropout,
        seed=args.seed, precision=args.precision,
    )
    rank = dist.get_rank() if distributed else 0
    command = command_line("python -m lepton_lib.bert.pretraining_recipe", argv)
    try:
        result = run_recipe(recipe, args.out, args.checkpoint_every, args.resume, device=args.device,
                            log_every=args.log_every, command=command, record=args.record)
    finally:
        if distributed:
            dist.destroy_process_group()
    after = result["heldout_after"]
    if rank == 0:
        print(f"held-out MLM loss {after['mlm_loss']:.4f} (perplexity {after['perplexity']:.1f}), "
              f"NSP accuracy {after['nsp_accuracy']:.4f}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
