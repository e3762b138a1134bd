"""The fine-tuning grid behind the book's table: every (task, starting point, seed), written to JSON.

    python -m lepton_lib.bert.fine_tuning_recipe --tasks sst2 mr --pretrained ours=runs/tiny/final \\
        --scratch runs/tiny/final --minilm --seeds 0 1 2 --train-size 1000 --out book/bert/results/finetune_grid.json
    python -m lepton_lib.bert.fine_tuning_recipe --pretrained mlm=runs/tapt-mlm/final --scratch runs/tapt-mlm/final \\
        --lstm --seeds 0 1 2 3 4 --train-size 250 1000 --min-steps 250 --out runs/transfer_grid.json
        # several label budgets; --min-steps: the small ones train for more epochs (at least 250 steps)

The book's grid and the pretraining runs it needs are re-created by ``make reproduce ONLY=finetune_grid``
(see ``tools/results.toml``). ``--dev-size`` evaluates on a seeded subset of the evaluation set, for
quick checks only: the book's grid uses all of it. The training itself is ``lepton_lib.bert.fine_tuning``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path

import torch

from lepton_lib.core.cli import name_and_directory_arg, non_negative_int_arg, positive_int_arg
from lepton_lib.bert.fine_tuning import DEFAULT_LR, build_classifier, finetune_classifier, load_task
from lepton_lib.bert.model import BertForSequenceClassification
from lepton_lib.core.records import command_line, provenance
from lepton_lib.foundations.metrics import mean_interval

__all__ = []  # a command-line module (its main), nothing to import from it

COMMAND = "python -m lepton_lib.bert.fine_tuning_recipe"


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune every starting point on every task with every seed; write the runs and a summary to ``--out``."""
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["sst2", "mr"], choices=["sst2", "mr"])
    p.add_argument("--pretrained", nargs="*", default=[], metavar="NAME=DIR", type=name_and_directory_arg,
                   help="our pretrained models to fine-tune (Hugging Face directories with vocab.txt)")
    p.add_argument("--scratch", default=None, metavar="DIR", help="also train this model's architecture from scratch")
    p.add_argument("--minilm", action="store_true", help="also fine-tune the real all-MiniLM-L6-v2 weights")
    p.add_argument("--lstm", action="store_true",
                   help="also train the LSTM baseline from scratch (on --scratch's vocabulary, else bert-base-uncased's)")
    p.add_argument("--seeds", nargs="+", type=non_negative_int_arg, default=[0, 1, 2])
    p.add_argument("--train-size", type=positive_int_arg, nargs="+", default=[1000],
                   help="labelled training sentences per run; several values: one grid per label budget")
    p.add_argument("--epochs", type=positive_int_arg, default=4)
    p.add_argument("--min-steps", type=non_negative_int_arg, default=0,
                   help="at least this many optimizer steps: small label budgets get more epochs (Zhang et al. 2020)")
    p.add_argument("--pooling", choices=BertForSequenceClassification.POOLINGS, default="cls",
                   help="what the BERT classifiers classify: the pooled [CLS] (BERT's choice) or the mean token")
    p.add_argument("--minilm-epochs", type=positive_int_arg, default=2, help="MiniLM is 25 times larger: fewer epochs")
    p.add_argument("--batch-size", type=positive_int_arg, default=32)
    p.add_argument("--dev-size", type=positive_int_arg, default=None,
                   help="evaluate on this many sentences only (quick checks; default: the whole set)")
    p.add_argument("--threads", type=positive_int_arg, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # before the long run: a bad path fails now

    inits = [(name, "pretrained", directory) for name, directory in args.pretrained]
    inits += [("scratch", "scratch", args.scratch)] if args.scratch else []
    inits += [("minilm", "minilm", None)] if args.minilm else []
    inits += [("lstm", "lstm", args.scratch)] if args.lstm else []
    if not inits:
        raise ValueError("nothing to fine-tune: give --pretrained NAME=DIR, --scratch DIR, --minilm and/or --lstm")
    runs = []
    for task in args.tasks:
        for size in args.train_size:
            for name, init, directory in inits:
                for seed in args.seeds:
                    train, dev = load_task(task, size, seed=seed, dev_size=args.dev_size)
                    model, tokenizer = build_classifier(init, seed, directory, args.pooling)
                    epochs = args.minilm_epochs if init == "minilm" else args.epochs
                    epochs = max(epochs, math.ceil(args.min_steps / math.ceil(len(train) / args.batch_size)))
                    result = finetune_classifier(model, tokenizer, train, dev, epochs, args.batch_size,
                                                 DEFAULT_LR[init], seed=seed, progress=False,
                                                 evaluate_every_epoch=False, fused=True)
                    runs.append({"task": task, "train_size": size, "model": name, "directory": directory,
                                 "seed": seed, "epochs": epochs, "lr": DEFAULT_LR[init]} | asdict(result))
                    print(f"{task:5} {size:6} {name:12} seed {seed}: accuracy {result.dev_accuracy[-1]:.4f}",
                          flush=True)
    # "summary": per task and model (one label budget: the format of the book's first grid); "intervals":
    # per task, budget and model, the mean over seeds and its 95% Student-t interval.
    summary, intervals = {}, {}
    for task in args.tasks:
        for size in args.train_size:
            for name, _, _ in inits:
                accs = [r["dev_accuracy"][-1] for r in runs
                        if r["task"] == task and r["model"] == name and r["train_size"] == size]
                if len(args.train_size) == 1:
                    summary[f"{task}/{name}"] = {"mean": statistics.mean(accs), "n": len(accs), "min": min(accs),
                                                 "max": max(accs),
                                                 "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
                intervals[f"{task}/{size}/{name}"] = (mean_interval(accs)._asdict() if len(accs) > 1 else
                                                      {"mean": accs[0], "low": None, "high": None, "n": 1})
    pretraining = {}  # how each pretrained model was made, from the metrics.json its run wrote
    for name, init, directory in inits:
        if init not in ("pretrained", "scratch") or directory is None:
            continue
        # final/ and steps/step-N/ (a checkpoint of the run, see export_checkpoints) of a run folder
        run = Path(directory).parent.parent if Path(directory).parent.name == "steps" else Path(directory).parent
        metrics = run / "metrics.json"
        if metrics.is_file():
            made = json.loads(metrics.read_text())
            pretraining[name] = {"command": made.get("command"), "recipe": made.get("recipe"),
                                 "heldout_after": made.get("heldout_after")}
    output = {**provenance(command_line(COMMAND, argv)),
              "settings": vars(args) | {"lr": {init: DEFAULT_LR[init] for _, init, _ in inits},
                                        "pretrained": [f"{n}={d}" for n, d in args.pretrained]},
              "pretraining": pretraining,
              "summary": summary, "intervals": intervals, "runs": runs}
    Path(args.out).write_text(json.dumps(output, indent=1))
    return output


if __name__ == "__main__":
    main()
