"""Fill-in-the-blank probes of pretrained BERTs: the ``top_k`` tokens each model puts in a ``[MASK]``.

    python benchmarks/fill_mask_probes.py --models nsp=_build/reproduce/pretrain_long_nsp/final \\
        no_nsp=_build/reproduce/pretrain_long_no_nsp/final --out book/bert/results/pretrain_long_probes.json

Each ``NAME=DIR`` is a Hugging Face BERT directory written by ``python -m lepton_lib.bert.pretraining_recipe`` (its
``final/`` folder, with ``vocab.txt``). For every probe sentence and model, ``lepton_lib.bert.pretraining.fill_mask``
gives the ``--top-k`` most probable tokens and their probabilities (rounded to 4 decimals), as the
pretraining chapter does for its two-minute model. The JSON also keeps, for each model, the command that
pretrained it (from the ``metrics.json`` next to ``DIR``), with this command, the date and the machine.
Not a timing: the numbers are probabilities.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from lepton_lib.bert import BertForPreTraining, load_pretrained  # noqa: E402
from lepton_lib.core import command_line, provenance  # noqa: E402
from lepton_lib.bert import fill_mask  # noqa: E402
from lepton_lib.bert import WordPieceTokenizer  # noqa: E402

# The pretraining chapter's probes: a year, a country, a sea and a role, each one word masked.
PROBES = ["the film was released in [MASK] 2009.", "he was born in the united [MASK].",
          "the river flows into the [MASK] sea.", "she played the role of the [MASK] in the series."]


def probe(directory: str | Path, probes: list[str], top_k: int) -> list[list[list]]:
    """For each probe, the ``[token, probability]`` pairs of its (single) ``[MASK]``, most probable first."""
    directory = Path(directory)
    tokenizer = WordPieceTokenizer.from_vocab_file(directory / "vocab.txt")
    model = load_pretrained(directory, BertForPreTraining).eval()
    out = []
    for text in probes:
        masks = fill_mask(model, tokenizer, text, top_k=top_k)
        if len(masks) != 1:
            raise ValueError(f"each probe must contain exactly one [MASK], got {len(masks)} in {text!r}")
        out.append([[token, p] for token, p in masks[0]])
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=DIR", help="pretrained BERT directories")
    p.add_argument("--probes", nargs="+", default=PROBES, help="sentences with one [MASK] each")
    p.add_argument("--top-k", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {}
    for item in args.models:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            raise ValueError(f"--models takes NAME=DIR, got {item!r}")
        metrics = Path(directory).parent / "metrics.json"
        made_by = json.loads(metrics.read_text()).get("command") if metrics.is_file() else None
        models[name] = {"directory": directory, "command": made_by,
                        "predictions": probe(directory, args.probes, args.top_k)}
        for text, guesses in zip(args.probes, models[name]["predictions"]):
            print(f"{name:8} {text:<50} {', '.join(f'{t} {q:.4f}' for t, q in guesses)}", flush=True)
    output = {**provenance(command_line("python benchmarks/fill_mask_probes.py", argv)), "probes": args.probes,
              "models": models}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(output, indent=1))
    return output


if __name__ == "__main__":
    main()
