"""Every case study of the "Case studies" chapter over several seeds, for the chapter's closing table.

    LEPTON_DATA_DIR=../shared/data python benchmarks/case_studies.py --out book/cases/results/case_studies.json

Runs ``lepton_lib.cases.pipelines``: credit scoring and diagnosis (5 seeds each, seconds), recommendation
(3 seeds, about a minute each on 2 CPU threads) and sentiment (3 seeds of MiniLM fine-tuning, about
a minute each; the bag of words on all of SST-2 once). Writes means, standard deviations and every
seed's value, with the command, the date and the machine. No timing is recorded: the numbers are
accuracies. The ``--recommendation-*`` and ``--sentiment-*`` options shrink the slow cases for quick checks
(``tests/test_reproduce.py``); the book's table uses their defaults.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from lepton_lib.cases import pipelines as cases
from lepton_lib.core import command_line, provenance


def summarise(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--tabular-seeds", type=int, default=5)
    parser.add_argument("--slow-seeds", type=int, default=3, help="seeds for recommendation and sentiment")
    parser.add_argument("--recommendation-epochs", type=int, default=20, help="BPR epochs of MF and LightGCN")
    parser.add_argument("--recommendation-batch-size", type=int, default=4096, help="BPR triples per step")
    parser.add_argument("--sentiment-train-size", type=int, default=1500,
                        help="SST-2 sentences for the small bag of words and for fine-tuning MiniLM")
    parser.add_argument("--sentiment-max-length", type=int, default=48, help="MiniLM's tokens per sentence")
    parser.add_argument("--no-full-bag-of-words", action="store_true",
                        help="leave out the bag of words on all 67,349 SST-2 sentences (12 s of CPU)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict = {**provenance(command_line("python benchmarks/case_studies.py", argv)), "results": {}}

    tabular = {"credit": (cases.credit_experiment, ("auc", "accuracy", "cost_at_half", "cost_at_threshold")),
               "diagnosis": (cases.diagnosis_experiment, ("auc", "accuracy"))}
    for case, (experiment, keys) in tabular.items():
        runs = [experiment(seed) for seed in range(args.tabular_seeds)]
        out["results"][case] = {
            name: {key: summarise([run["models"][name][key] for run in runs]) for key in keys}
            for name in runs[0]["models"]}
        if case == "diagnosis":
            for name in runs[0]["models"]:
                for i, key in enumerate(("sensitivity_at_threshold", "specificity_at_threshold")):
                    out["results"][case][name][key] = summarise(
                        [run["models"][name]["sens_spec_at_threshold"][i] for run in runs])
        print(case, "done", flush=True)

    runs = [cases.recommendation_experiment(seed, epochs=args.recommendation_epochs,
                                            batch_size=args.recommendation_batch_size)
            for seed in range(args.slow_seeds)]
    out["results"]["recommendation"] = {
        name: {key: summarise([run["models"][name][key] for run in runs]) for key in ("recall", "ndcg")}
        for name in runs[0]["models"]}
    print("recommendation done", flush=True)

    runs = [cases.sentiment_experiment(seed, train_size=args.sentiment_train_size, max_length=args.sentiment_max_length,
                                       full_bag_of_words=(seed == 0 and not args.no_full_bag_of_words))
            for seed in range(args.slow_seeds)]
    sentiment = {}
    for name in runs[0]["models"]:
        values = [run["models"][name]["accuracy"] for run in runs if name in run["models"]]
        sentiment[name] = {"accuracy": summarise(values)}
    out["results"]["sentiment"] = sentiment
    print("sentiment done", flush=True)

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    for case, models in out["results"].items():
        for name, metrics in models.items():
            print(case, name, {k: f"{v['mean']:.4f} ± {v['std']:.4f}" for k, v in metrics.items()})
    return out


if __name__ == "__main__":
    main()
