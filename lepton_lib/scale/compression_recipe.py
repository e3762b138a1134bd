"""The compression chapter's experiment: fine-tune MiniLM on SST-2, compress it, distil it; write JSON.

    python -m lepton_lib.scale.compression_recipe --out book/scale/results/compression.json

The teacher (all-MiniLM-L6-v2 fine-tuned on SST-2) is quantized to int8 and pruned at several
sparsities, each variant timed and scored; then BERT-tiny students are trained on the labels alone
or distilled from the teacher's logits. The methods themselves are ``lepton_lib.scale.compression``.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from lepton_lib.core.cli import non_negative_int_arg, positive_int_arg
from lepton_lib.bert.fine_tuning import build_classifier, finetune_classifier, load_task
from lepton_lib.bert.model import BertConfig, BertForSequenceClassification, count_parameters
from lepton_lib.core.records import command_line, provenance
from lepton_lib.core.runtime import seeded_torch_rng
from lepton_lib.scale.compression import (magnitude_prune, predict_logits, quantize_linear_int8,
                                          sparse_state_dict_bytes, sparsity, state_dict_bytes, train_student)

__all__ = ["median_milliseconds"]  # and main, the command line

COMMAND = "python -m lepton_lib.scale.compression_recipe"


def median_milliseconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, in milliseconds, after one untimed warm-up call."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune MiniLM on SST-2, compress it (int8, pruning) and distil it into BERT-tiny; write JSON."""
    p = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    p.add_argument("--train-size", type=positive_int_arg, default=2000, help="labelled SST-2 sentences")
    p.add_argument("--transfer-size", type=positive_int_arg, default=8000, help="sentences the teacher labels for distillation")
    p.add_argument("--teacher-epochs", type=positive_int_arg, default=2)
    p.add_argument("--student-epochs", type=positive_int_arg, default=5)
    p.add_argument("--max-length", type=positive_int_arg, default=48)
    p.add_argument("--seeds", type=non_negative_int_arg, nargs="+", default=[0, 1, 2])
    p.add_argument("--dev-size", type=positive_int_arg, default=None,
                   help="evaluate on this many SST-2 dev sentences only (quick checks; default: all 872)")
    p.add_argument("--repeats", type=positive_int_arg, default=3, help="timed runs per latency (median, after one warm-up)")
    p.add_argument("--threads", type=positive_int_arg, default=2)
    p.add_argument("--teacher-cache", default=None, help="save the fine-tuned teacher here (safetensors), or load it if present")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # before the long run: a bad path fails now
    length = args.max_length
    transfer, dev = load_task("sst2", args.transfer_size, seed=0, dev_size=args.dev_size)
    train = transfer.subset(args.train_size, seed=0)  # the labelled part of the transfer set
    dev_labels = torch.tensor(dev.labels)

    def accuracy(model: nn.Module) -> float:
        return (predict_logits(model, tokenizer, dev.texts, max_length=length).argmax(-1) == dev_labels).float().mean().item()

    teacher, tokenizer = build_classifier("minilm", seed=0)
    if args.teacher_cache and Path(args.teacher_cache).is_file():
        load_model(teacher, args.teacher_cache)  # safetensors: loading never runs pickled code
    else:
        finetune_classifier(teacher, tokenizer, train, dev, epochs=args.teacher_epochs, lr=5e-5, max_length=length,
                            seed=0, progress=False, evaluate_every_epoch=False)
        if args.teacher_cache:
            save_model(teacher, args.teacher_cache)
    teacher.eval()
    timing_inputs = tokenizer.encode_batch(dev.texts[:32], max_length=length, truncation=True)
    variants = {"fp32": teacher, "int8 (dynamic)": quantize_linear_int8(teacher)}
    for amount in (0.3, 0.5, 0.7):
        variants[f"pruned {amount:.0%} (global)"] = magnitude_prune(copy.deepcopy(teacher), amount, "global",
                                                                   skip=["classifier"])
    variants["pruned 50% (per layer)"] = magnitude_prune(copy.deepcopy(teacher), 0.5, "layer", skip=["classifier"])
    table = []
    for name, model in variants.items():
        with torch.no_grad():
            latency = median_milliseconds(lambda: model(**timing_inputs), args.repeats)
        is_quantized = name.startswith("int8")
        table.append({"variant": name, "dev_accuracy": accuracy(model), "state_dict_bytes": state_dict_bytes(model),
                      "sparse_bytes": None if is_quantized else sparse_state_dict_bytes(model),
                      "linear_sparsity": None if is_quantized else sparsity(model, skip=["classifier"]),
                      "ms_per_batch_32": latency})
        print(f"{name:24} accuracy {table[-1]['dev_accuracy']:.4f}  {latency:7.1f} ms", flush=True)

    teacher_logits = predict_logits(teacher, tokenizer, transfer.texts, max_length=length)
    print("teacher logits done", flush=True)
    in_train = {text: i for i, text in enumerate(transfer.texts)}
    train_rows = torch.tensor([in_train[t] for t in train.texts])
    config = BertConfig.preset("tiny", vocab_size=teacher.config.vocab_size)
    students = []
    for seed in args.seeds:
        setups = {"alone (labels, {n})": (train.texts, train.labels, None, 0.0),
                  "distilled (soft + labels, {n})": (train.texts, train.labels, teacher_logits[train_rows], 0.5),
                  "distilled (soft only, {n})": (transfer.texts, teacher_logits.argmax(-1).tolist(), teacher_logits, 1.0)}
        for name, (texts, labels, logits, alpha) in setups.items():
            with seeded_torch_rng(seed):
                student = BertForSequenceClassification(config)
            # The same number of optimizer steps for every student: fewer epochs on the larger set.
            epochs = max(1, round(args.student_epochs * args.train_size / len(texts)))
            train_student(student, tokenizer, texts, labels, logits, epochs=epochs, lr=1e-3, max_length=length,
                          temperature=2.0, alpha=alpha, seed=seed)
            students.append({"setup": name.format(n=len(texts)), "seed": seed, "epochs": epochs,
                             "dev_accuracy": accuracy(student)})
            print(f"seed {seed} {students[-1]['setup']:36} accuracy {students[-1]['dev_accuracy']:.4f}", flush=True)
    output = {**provenance(command_line(COMMAND, argv)), "settings": vars(args),
              "teacher": {"model": "all-MiniLM-L6-v2", "parameters": count_parameters(teacher)},
              "student": {"config": "BERT-tiny (2 layers, 128 wide, 2 heads)", "parameters": count_parameters(student)},
              "compression": table, "distillation": students}
    Path(args.out).write_text(json.dumps(output, indent=1))
    return output


if __name__ == "__main__":
    main()
