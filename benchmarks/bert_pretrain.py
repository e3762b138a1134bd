"""Benchmark one BERT pretraining step: lepton_lib's BertForPreTraining against transformers'.

Both models have the identical ``mini`` configuration (4 layers, hidden 256, 4 heads, feed-forward
1024, vocabulary 30,522 as bert-base-uncased), the same weights (copied from the randomly initialised
``transformers.BertForPreTraining``) and train on the same batch (16 sequences of 128 tokens, 15% of
the tokens masked as BERT does, random NSP labels), with AdamW, in fp32 on the CPU. A step is
forward, backward and ``optimizer.step()``; we report the median over ``--repeats`` steps after
``--warmup`` steps, in training tokens per second (16 x 128 tokens per step).

Three variants are timed:

* ``hf``: ``transformers.BertForPreTraining`` (its default SDPA attention), the reference;
* ``ours``: the vocabulary projection only at the masked positions (``predict_masked_only=True``);
* ``ours-all-positions``: the projection at every position, as the reference does; the difference
  between the two isolates that lever.

The losses of all three are checked to agree (dropout off for that check). FLOP count (per
training token, multiply-add = 2 FLOPs, backward = 2 x forward, so training = 3 x forward):
``6 N`` for the N encoder weights (``lepton_lib.background.flops.transformer_training_flops``), plus attention
``3 x 4 L S H`` (scores Q K^T and the weighted sum of V, 2 S H each per layer and token, which the
6N rule omits), plus the MLM head ``3 x 2 (H^2 + V H)`` per *masked* token (the work the loss needs).
"Achieved GFLOP/s" divides this useful work by the measured time, for every variant, and is also
given as a share of a large fp32 matrix product measured on the same machine (``--matmul-size``).
The script also times that matrix product in bfloat16 on the CPU, to show why the training loop
does not autocast to bf16 on CPUs without native bf16 units.

    python benchmarks/bert_pretrain.py                  # 2 threads, 5 repeats
    python benchmarks/bert_pretrain.py --repeats 10 --json out.json
    python benchmarks/bert_pretrain.py --batch 4 --repeats 1 --bf16-step   # bf16 autocast on this CPU
    python benchmarks/bert_pretrain.py --device cuda --precision bf16 --batch 256 --matmul-size 8192

On a GPU (``--device cuda``) the share of the large matrix product is model FLOP utilisation (MFU)
against what this GPU's matrix units deliver in the same precision; ``--precision bf16`` times all
variants under bf16 autocast (the losses are then checked in fp32 first, as on the CPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from lepton_lib.bert import BertConfig, BertForPreTraining  # noqa: E402
from lepton_lib.interop.huggingface import from_hf_state_dict  # noqa: E402
from lepton_lib.bert.pretraining import pretraining_flops  # noqa: E402
from lepton_lib.core import command_line, provenance  # noqa: E402
from lepton_lib.bert import mask_tokens  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mini")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1, help="dropout while timing (BERT's 0.1)")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--bf16-step", action="store_true",
                   help="also time one training step of ours under bf16 autocast (slow on CPUs without bf16 units)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="autocast dtype while timing (bf16 only sensible on GPUs and CPUs with bf16 units)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p.parse_args(argv)


def make_batch(config: BertConfig, batch: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """[CLS] A [SEP] B [SEP] of random ordinary tokens (ids 1000..V-1), BERT-masked."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size, (batch, seq_len), generator=g)
    half = seq_len // 2
    ids[:, 0], ids[:, half], ids[:, -1] = 101, 102, 102  # bert-base-uncased's [CLS] and [SEP]
    types = torch.zeros_like(ids)
    types[:, half + 1 :] = 1
    masked, labels = mask_tokens(ids, special_ids=[0, 100, 101, 102, 103], mask_id=103,
                                 vocab_size=config.vocab_size, generator=g)
    return {"input_ids": masked, "token_type_ids": types, "attention_mask": torch.ones_like(ids),
            "labels": labels, "nsp": torch.randint(0, 2, (batch,), generator=g)}


def step_fn(model, batch, ours: bool, autocast_bf16: bool = False):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    device_type = batch["input_ids"].device.type

    def step() -> float:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast_bf16):
            return _step()

    def _step() -> float:
        if ours:
            loss = model(**inputs, mlm_labels=batch["labels"], nsp_labels=batch["nsp"]).loss
        else:
            loss = model(**inputs, labels=batch["labels"], next_sentence_label=batch["nsp"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # GPU work is asynchronous: time only what has finished


def median_seconds(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(n: int, dtype: torch.dtype, repeats: int = 5, device: str = "cpu") -> float:
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    seconds = median_seconds(lambda: torch.mm(a, b), repeats, 1)
    return 2 * n**3 / seconds / 1e9


def times_faster(rate: float, reference: float) -> str:
    """``rate`` against ``reference`` (both higher-is-better) in words: "2.7x faster", "42x slower", "as fast".

    The ratio is always written as a number at least 1 with the direction in words, with one decimal below
    10 (so 523 vs 191 GFLOP/s reads "2.7x faster", never "0x slower"); a factor that rounds to 10.0 is
    written "10x", and one that rounds to 1.0 "as fast".
    """
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (rate, reference)):
        raise ValueError(f"rates must be positive finite numbers, got rate={rate!r} and reference={reference!r}")
    ratio = rate / reference
    factor, word = (ratio, "faster") if ratio >= 1 else (1 / ratio, "slower")
    text = f"{factor:.1f}" if round(factor, 1) < 10 else f"{factor:.0f}"
    return "as fast" if text == "1.0" else f"{text}x {word}"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    device = torch.device(args.device)
    import transformers

    config = BertConfig.preset(args.preset, hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(transformers.BertConfig(**config.to_dict()))
    models = {"hf": hf}
    for name, masked_only in (("ours", True), ("ours-all-positions", False)):
        ours = BertForPreTraining(config, predict_masked_only=masked_only)
        if from_hf_state_dict(ours, hf.state_dict()):
            raise RuntimeError("weights did not copy completely")
        models[name] = ours
    models = {name: model.to(device) for name, model in models.items()}
    batch = {k: v.to(device) for k, v in make_batch(config, args.batch, args.seq_len).items()}
    n_masked = int((batch["labels"] != -100).sum())

    # 1. Same weights, same batch: the losses agree (dropout off for this check).
    losses = {}
    with torch.no_grad():
        for name, model in models.items():
            model.eval()
            inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
            out = (model(**inputs, mlm_labels=batch["labels"], nsp_labels=batch["nsp"]) if name != "hf"
                   else model(**inputs, labels=batch["labels"], next_sentence_label=batch["nsp"]))
            losses[name] = out.loss.item()
            model.train()

    # 2. Training steps per second.
    bf16 = args.precision == "bf16"
    seconds = {name: median_seconds(step_fn(model, batch, name != "hf", autocast_bf16=bf16), args.repeats, args.warmup)
               for name, model in models.items()}
    tokens = args.batch * args.seq_len
    useful_flops = pretraining_flops(config, tokens, args.seq_len, n_masked)
    peak = matmul_gflops(args.matmul_size, torch.bfloat16 if bf16 else torch.float32, device=args.device)
    bf16_small = matmul_gflops(min(args.matmul_size, 512), torch.bfloat16, repeats=2, device=args.device)
    fp32_small = matmul_gflops(min(args.matmul_size, 512), torch.float32, device=args.device)
    bf16_step = None
    if args.bf16_step:  # one step each, after one warm-up step: enough to see the order of magnitude
        fp32_s = median_seconds(step_fn(models["ours"], batch, True), 1, 1)
        bf16_s = median_seconds(step_fn(models["ours"], batch, True, autocast_bf16=True), 1, 1)
        bf16_step = {"fp32_seconds": fp32_s, "bf16_autocast_seconds": bf16_s, "slowdown": bf16_s / fp32_s}
    rows = {name: {"seconds_per_step": s, "tokens_per_s": tokens / s, "gflops": useful_flops / s / 1e9,
                   "share_of_matmul": useful_flops / s / 1e9 / peak, "loss": losses[name],
                   "speedup_vs_hf": seconds["hf"] / s} for name, s in seconds.items()}
    head = provenance(command_line("python benchmarks/bert_pretrain.py", argv))
    head["machine"] |= {"load_average_1min": os.getloadavg()[0], "platform": platform.platform()}
    result = {
        **head,
        "transformers": transformers.__version__, "preset": args.preset, "batch": args.batch, "seq_len": args.seq_len,
        "threads": args.threads, "device": args.device, "precision": args.precision,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "dropout_while_timing": args.dropout, "masked_tokens": n_masked,
        "useful_flops_per_step": useful_flops, "matmul_fp32_gflops": peak,
        "matmul_512_fp32_gflops": fp32_small, "matmul_512_bf16_gflops": bf16_small, "bf16_training_step": bf16_step,
        "results": rows,
    }
    print(f"# {result['command']}")
    where = result['machine']['gpu'] if args.device == "cuda" else f"{result['machine']['cpu']}, {args.threads} threads"
    print(f"# {where}, {args.precision}, torch {result['machine']['torch']}, "
          f"transformers {result['transformers']}, load average {result['machine']['load_average_1min']:.2f}")
    print(f"# {args.preset}: batch {args.batch} x {args.seq_len} tokens, {n_masked} masked; "
          f"{useful_flops / 1e9:.1f} useful GFLOP per step; large {args.precision} matmul "
          f"({args.matmul_size}^3) {peak:.1f} GFLOP/s")
    print(f"{'variant':<20} {'s/step':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'of matmul':>9} {'x hf':>6} {'loss':>9}")
    for name, r in rows.items():
        print(f"{name:<20} {r['seconds_per_step']:8.3f} {r['tokens_per_s']:9.0f} {r['gflops']:8.1f} "
              f"{r['share_of_matmul']:9.1%} {r['speedup_vs_hf']:6.2f} {r['loss']:9.5f}")
    if args.device == "cpu":
        print(f"# bf16 on this CPU: a 512x512 matmul runs at {bf16_small:.2f} GFLOP/s vs {fp32_small:.1f} in fp32 "
              f"({times_faster(bf16_small, fp32_small)})")
    if bf16_step:  # steps per second: the inverse of the seconds per step
        print(f"# one training step of ours under bf16 autocast: {bf16_step['bf16_autocast_seconds']:.2f} s vs "
              f"{bf16_step['fp32_seconds']:.2f} s in fp32 "
              f"({times_faster(1 / bf16_step['bf16_autocast_seconds'], 1 / bf16_step['fp32_seconds'])})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
