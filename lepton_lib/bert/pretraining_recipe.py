"""Pretrain a BERT from the command line: ``python -m lepton_lib.bert.pretraining_recipe --preset mini ...``.

A :class:`Recipe` fixes everything a run depends on (corpus, vocabulary, model size, batch,
schedule, seed). :func:`run_recipe` trains a WordPiece vocabulary on the training documents (or
reads bert-base-uncased's with ``--vocabulary bert-base-uncased``), builds NSP pairs (SOP pairs
with ``--pairs sop``, packed single-segment sequences with ``--pairs none``), pretrains, evaluates
on held-out documents (every 20th document), and writes into ``--out``::

    final/config.json, final/model.safetensors, final/vocab.txt   (a Hugging Face BERT directory)
    checkpoints/step-XXXXXXXX/                                    (with --checkpoint-every)
    steps/step-XXXXXXXX/                 each checkpoint's weights as a Hugging Face BERT directory
    metrics.json                                                  (log, held-out metrics, command, date, machine)

``--record PATH`` also writes ``metrics.json`` to ``PATH`` (the book keeps its long runs' records
under ``book/bert/results/``; ``tools/reproduce.py`` re-creates them so).

Examples::

    python -m lepton_lib.bert.pretraining_recipe --preset tiny --steps 200 --out runs/tiny
    python -m lepton_lib.bert.pretraining_recipe --corpus tapt --vocabulary bert-base-uncased --pairs sop \\
        --mask-pair-labels --seq-len 128 --out runs/tapt-sop      # the task-adaptive corpus, ALBERT's SOP
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
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist

from lepton_lib.core.cli import non_negative_float_arg, non_negative_int_arg, positive_float_arg, positive_int_arg
from lepton_lib.bert.checkpoint import list_checkpoints, load_checkpoint
from lepton_lib.bert.model import BertConfig, BertForPreTraining, count_parameters
from lepton_lib.bert.saving import save_pretrained
from lepton_lib.data.download import cache_dir
from lepton_lib.data.text import CORPORA, load_corpus, unlabelled_pretraining_text
from lepton_lib.bert.fine_tuning import minilm_directory
from lepton_lib.bert.pretraining import PretrainConfig, evaluate_pretraining, pretrain
from lepton_lib.bert.pretraining_data import (
    PretrainingBatcher, PretrainingExample, create_nsp_examples, create_sop_examples, pack_sequences,
    tokenize_documents,
)
from lepton_lib.bert.tokenization import WordPieceTokenizer
from lepton_lib.core.records import command_line, provenance
from lepton_lib.core.runtime import seeded_torch_rng

__all__ = [
    "CORPUS_CHOICES", "PAIR_TASKS", "VOCABULARIES", "Recipe", "BOOK_RECIPE", "BOOK_RECIPE_NO_NSP", "split_documents",
    "recipe_documents", "build_tokenizer", "build_examples", "prepare_data", "build_model", "run_recipe",
    "export_checkpoints", "cached_pretraining",
]

# "tapt": unlabelled_pretraining_text(), i.e. WikiText-2, Tiny Shakespeare and the SST-2/MR training sentences
# (task-adaptive pretraining, Gururangan et al. 2020, arXiv:2004.10964) with every evaluation sentence held out.
CORPUS_CHOICES = (*CORPORA, "tapt")
PAIR_TASKS = ("nsp", "sop")  # BERT's next-sentence prediction; ALBERT's sentence-order prediction (arXiv:1909.11942)
VOCABULARIES = ("trained", "bert-base-uncased")  # WordPiece trained on the corpus; the 30,522 pieces BERT shipped
# Fields added after runs were cached: at their defaults they are left out of key(), repr() and the records, so a
# recipe that does not use them keeps its cache folder, its printed form and its stored record.
_LATER_FIELDS = ("pair_task", "vocabulary", "mask_pair_labels", "max_documents")


@dataclass(frozen=True, repr=False)
class Recipe:
    """Everything a pretraining run depends on; two runs of one recipe give the same weights.

    ``nsp``: train the 2-way pair head on sentence pairs (False: MLM only, on packed sequences), and
    ``pair_task`` says which pairs: ``"nsp"`` (B follows A, or comes from another document) or ``"sop"``
    (A and B consecutive, in order or swapped). ``pair_objective`` reads both as "nsp", "sop" or "none".
    ``corpora``: names from ``CORPUS_CHOICES``; ``"tapt"`` stands alone. ``vocabulary``: ``"trained"``
    (``vocab_size`` pieces learnt from the training documents) or ``"bert-base-uncased"`` (its 30,522
    pieces; ``vocab_size`` is then unused). ``mask_pair_labels``: documents of one sentence (the TAPT
    snippets) are packed into single-segment MLM examples whose pair label is ignored (-100), instead of
    being cut in two to make a pair; only documents of two or more sentences give pairs.
    ``max_documents``: a seeded sample of that many documents of the corpus, in their order (0: all),
    for quick checks.
    """

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
    pair_task: str = "nsp"
    vocabulary: str = "trained"
    mask_pair_labels: bool = False
    max_documents: int = 0

    def __post_init__(self) -> None:
        corpora = tuple(self.corpora)
        if not corpora or not set(corpora) <= set(CORPUS_CHOICES) or ("tapt" in corpora and len(corpora) > 1):
            raise ValueError(f"corpora (--corpus) must be names from {CORPUS_CHOICES}, 'tapt' alone (it holds "
                             f"wikitext2 and tiny_shakespeare already), got {corpora!r}")
        if self.pair_task not in PAIR_TASKS:
            raise ValueError(f"pair_task (--pairs) must be one of {PAIR_TASKS}, got {self.pair_task!r}")
        if self.vocabulary not in VOCABULARIES:
            raise ValueError(f"vocabulary (--vocabulary) must be one of {VOCABULARIES}, got {self.vocabulary!r}")
        if not isinstance(self.mask_pair_labels, bool):
            raise ValueError(f"mask_pair_labels must be a bool, got {self.mask_pair_labels!r}")
        if isinstance(self.max_documents, bool) or not isinstance(self.max_documents, int) or self.max_documents < 0:
            raise ValueError(f"max_documents (--max-documents) must be an int >= 0 (0: all), "
                             f"got {self.max_documents!r}")
        if not self.nsp and (self.pair_task != "nsp" or self.mask_pair_labels):
            raise ValueError(f"pair_task={self.pair_task!r} and mask_pair_labels={self.mask_pair_labels} need a pair "
                             f"head, but nsp=False (--pairs none); leave them at 'nsp' and False for an MLM-only run")

    @property
    def pair_objective(self) -> str:
        """``"nsp"``, ``"sop"`` or ``"none"`` (MLM only)."""
        return self.pair_task if self.nsp else "none"

    def record(self) -> dict:
        """The recipe as a dict, without the later fields (``_LATER_FIELDS``) that are at their defaults."""
        defaults = {f.name: f.default for f in fields(self) if f.name in _LATER_FIELDS}
        return {k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]}

    def key(self) -> str:
        """A short hash naming the recipe's cache folder (of :meth:`record`: older recipes keep their key)."""
        return hashlib.sha256(json.dumps(self.record(), sort_keys=True).encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Recipe({', '.join(f'{k}={getattr(self, k)!r}' for k in self.record())})"


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


def recipe_documents(recipe: Recipe) -> list[list[str]]:
    """The corpus of ``recipe``: documents of sentences (a seeded sample of ``max_documents`` of them, if set)."""
    if tuple(recipe.corpora) == ("tapt",):
        documents = unlabelled_pretraining_text().documents
    else:
        documents = [doc for name in recipe.corpora for doc in load_corpus(name)]
    if 0 < recipe.max_documents < len(documents):
        chosen = sorted(random.Random(recipe.seed).sample(range(len(documents)), recipe.max_documents))
        documents = [documents[i] for i in chosen]
    return documents


def build_tokenizer(recipe: Recipe, train_documents: list[list[str]]) -> WordPieceTokenizer:
    """WordPiece trained on the training documents, or bert-base-uncased's vocabulary (shipped with MiniLM)."""
    if recipe.vocabulary == "bert-base-uncased":
        return WordPieceTokenizer.from_vocab_file(minilm_directory() / "vocab.txt")
    return WordPieceTokenizer.train((s for d in train_documents for s in d), recipe.vocab_size)


def build_examples(recipe: Recipe, documents: list[list[list[int]]], sep_id: int) -> list[PretrainingExample]:
    """Pairs for ``recipe.pair_task``, or packed sequences; with ``mask_pair_labels``, one-sentence
    documents are packed (the batcher labels them -100) and the others give pairs."""
    if not recipe.nsp:
        return pack_sequences(documents, recipe.seq_len, sep_id)
    make_pairs = create_sop_examples if recipe.pair_task == "sop" else create_nsp_examples
    if not recipe.mask_pair_labels:
        return make_pairs(documents, recipe.seq_len, seed=recipe.seed)
    singles, longer = [d for d in documents if len(d) == 1], [d for d in documents if len(d) > 1]
    pairs = make_pairs(longer, recipe.seq_len, seed=recipe.seed) if longer else []
    return pairs + (pack_sequences(singles, recipe.seq_len, sep_id) if singles else [])


def prepare_data(recipe: Recipe) -> PreparedData:
    """Vocabulary (trained on the training documents, or read), then pairs or packed sequences for both splits."""
    train_docs, heldout_docs = split_documents(recipe_documents(recipe))
    tokenizer = build_tokenizer(recipe, train_docs)
    splits = {}
    for name, docs in (("train", train_docs), ("heldout", heldout_docs)):
        examples = build_examples(recipe, tokenize_documents(docs, tokenizer), tokenizer.sep_id)
        splits[name] = PretrainingBatcher(examples, tokenizer, seed=recipe.seed)
    stats = {f"{k}_examples": len(b.examples) for k, b in splits.items()}
    stats["train_documents"], stats["heldout_documents"] = len(train_docs), len(heldout_docs)
    if recipe.mask_pair_labels:  # how many examples carry a pair label
        stats |= {f"{k}_pairs": sum(1 for e in b.examples if e.tokens_b) for k, b in splits.items()}
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
    result = {"recipe": recipe.record(), "parameters": count_parameters(model), "data": data.stats,
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
        if checkpoint_every:
            export_checkpoints(out)
    return result


def export_checkpoints(out: str | Path) -> list[Path]:
    """Write every checkpoint of the run in ``out`` as a Hugging Face directory ``out/steps/step-XXXXXXXX``.

    The weights a checkpoint holds mid-run, with the final model's config and vocabulary: what a
    learning curve (downstream accuracy against pretraining steps) fine-tunes.
    """
    out = Path(out)
    final = out / "final"
    if not (final / "config.json").is_file() or not (out / "metrics.json").is_file():
        raise FileNotFoundError(f"out must hold a finished run (final/config.json, metrics.json), not found in {out}")
    config = BertConfig.from_dict(json.loads((final / "config.json").read_text()))
    use_nsp = json.loads((out / "metrics.json").read_text())["recipe"]["nsp"]  # MLM-only runs have no pair head
    exported = []
    for checkpoint in list_checkpoints(out / "checkpoints"):
        model = BertForPreTraining(config, use_nsp=use_nsp)
        load_checkpoint(checkpoint, model, restore_rng=False)
        target = out / "steps" / checkpoint.name
        save_pretrained(model, target)
        (target / "vocab.txt").write_bytes((final / "vocab.txt").read_bytes())
        exported.append(target)
    return exported


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
    p.add_argument("--corpus", nargs="+", default=list(d.corpora), choices=CORPUS_CHOICES,
                   help="'tapt': WikiText-2, Tiny Shakespeare, SST-2/MR training text, evaluation sentences held out")
    p.add_argument("--max-documents", type=non_negative_int_arg, default=d.max_documents,
                   help="a seeded sample of this many documents (0: all)")
    p.add_argument("--vocabulary", default=d.vocabulary, choices=VOCABULARIES)
    p.add_argument("--vocab-size", type=positive_int_arg, default=d.vocab_size, help="with --vocabulary trained")
    p.add_argument("--seq-len", type=positive_int_arg, default=d.seq_len)
    p.add_argument("--batch-size", type=positive_int_arg, default=d.batch_size, help="global batch (all processes)")
    p.add_argument("--grad-accum", type=positive_int_arg, default=d.grad_accum_steps)
    p.add_argument("--steps", type=positive_int_arg, default=d.steps)
    p.add_argument("--lr", type=positive_float_arg, default=d.lr)
    p.add_argument("--warmup", type=non_negative_int_arg, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=non_negative_float_arg, default=d.weight_decay)
    pairs = p.add_mutually_exclusive_group()
    pairs.add_argument("--pairs", default=None, choices=[*PAIR_TASKS, "none"],
                       help="the pair objective besides MLM (default nsp; none: MLM only, on packed sequences)")
    pairs.add_argument("--no-nsp", action="store_true", help="the same as --pairs none")
    p.add_argument("--mask-pair-labels", action="store_true",
                   help="pack one-sentence documents as MLM-only examples (pair label ignored) instead of pairs")
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
    parser = _parser()
    args = parser.parse_args(argv)
    objective = "none" if args.no_nsp else (args.pairs or "nsp")
    try:
        recipe = Recipe(
            preset=args.preset, corpora=tuple(args.corpus), vocab_size=args.vocab_size, seq_len=args.seq_len,
            batch_size=args.batch_size, grad_accum_steps=args.grad_accum, steps=args.steps, lr=args.lr,
            warmup_steps=args.warmup, weight_decay=args.weight_decay, nsp=objective != "none", dropout=args.dropout,
            seed=args.seed, precision=args.precision, pair_task="nsp" if objective == "none" else objective,
            vocabulary=args.vocabulary, mask_pair_labels=args.mask_pair_labels, max_documents=args.max_documents,
        )
    except ValueError as error:  # a combination of flags no recipe has; the message names them
        parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo")
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
              f"{recipe.pair_task.upper()} accuracy {after['nsp_accuracy']:.4f}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
