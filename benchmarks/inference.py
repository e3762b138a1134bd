"""Decoding speed of a small decoder: KV cache vs recompute, fp32 vs int8, batching, eager vs torch.compile.

Also times the MiniLM sentence classifier (the compression chapter's model) in fp32, dynamic int8 and
50%-pruned form, so the book's compression table can quote a measured latency.

    .venv/bin/python benchmarks/inference.py [--threads 2] [--device cpu|cuda] [--repeats 5]
        [--out book/scale/results/inference_benchmark.json]

Every number is the median of ``--repeats`` timed runs after one warm-up run. The decoder is a
``TinyTransformer`` (4 layers, d_model 256, 8 heads, vocabulary 256, random weights: speed does not
depend on what the weights are). "Tokens/s" counts generated tokens over all sequences in the batch.
int8 (``torch.ao`` dynamic quantization) runs on the CPU only, so it is skipped with ``--device cuda``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lepton_lib.scale import magnitude_prune, quantize_linear_int8  # noqa: E402
from lepton_lib.scale import greedy_decode  # noqa: E402
from lepton_lib.core import command_line, provenance  # noqa: E402
from lepton_lib.attention import TinyTransformer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prompt", type=int, default=32, help="prompt length")
    p.add_argument("--new-tokens", type=int, default=128, help="tokens generated per sequence")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile backend (inductor, the default, generates and compiles C++/Triton code; "
                        "eager only captures the graph, for quick checks)")
    p.add_argument("--no-classifier", action="store_true", help="skip the MiniLM classifier timings")
    p.add_argument("--classifier-length", type=int, default=48, help="tokens per sentence for the MiniLM timings")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs, after one untimed warm-up run."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decoder(device: torch.device, max_length: int) -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer(vocab_size=256, max_length=max_length, d_model=256, num_heads=8, num_layers=4).eval().to(device)


def bench_decoding(args: argparse.Namespace, device: torch.device) -> dict:
    model = decoder(device, args.prompt + args.new_tokens)
    prompt = torch.randint(0, 256, (1, args.prompt), generator=torch.Generator().manual_seed(0)).to(device)
    n = args.new_tokens
    out: dict = {}
    for name, use_cache in (("recompute", False), ("kv_cache", True)):
        seconds = median_seconds(lambda: greedy_decode(model, prompt, n, use_cache=use_cache), args.repeats, device)
        out[name] = {"seconds": seconds, "tokens_per_s": n / seconds}
        print(f"batch 1, fp32, {name:9}: {n / seconds:9.1f} tokens/s ({seconds * 1e3:.1f} ms for {n} tokens)")
    out["kv_cache_speedup"] = out["kv_cache"]["tokens_per_s"] / out["recompute"]["tokens_per_s"]
    print(f"KV cache speed-up: {out['kv_cache_speedup']:.2f}x")
    if device.type == "cpu":
        quantized = quantize_linear_int8(model)
        seconds = median_seconds(lambda: greedy_decode(quantized, prompt, n), args.repeats, device)
        out["kv_cache_int8"] = {"seconds": seconds, "tokens_per_s": n / seconds}
        out["int8_speedup"] = out["kv_cache_int8"]["tokens_per_s"] / out["kv_cache"]["tokens_per_s"]
        print(f"batch 1, int8, kv_cache : {n / seconds:9.1f} tokens/s, {out['int8_speedup']:.2f}x fp32")
    return out


def bench_batching(args: argparse.Namespace, device: torch.device) -> list[dict]:
    model = decoder(device, args.prompt + args.new_tokens)
    rows = []
    for batch in args.batch_sizes:
        prompt = torch.randint(0, 256, (batch, args.prompt), generator=torch.Generator().manual_seed(0)).to(device)
        seconds = median_seconds(lambda: greedy_decode(model, prompt, args.new_tokens), args.repeats, device)
        row = {"batch_size": batch, "ms_per_step": seconds / args.new_tokens * 1e3,
               "tokens_per_s": batch * args.new_tokens / seconds}
        rows.append(row)
        print(f"batch {batch:3}: {row['ms_per_step']:7.2f} ms per step, {row['tokens_per_s']:9.1f} tokens/s")
    return rows


def bench_compile(args: argparse.Namespace, device: torch.device) -> dict:
    """A fixed-shape forward pass (a prefill of B=8 sequences of 128 tokens), eager vs torch.compile."""
    model = decoder(device, 128)
    tokens = torch.randint(0, 256, (8, 128), generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        eager = median_seconds(lambda: model(tokens), args.repeats, device)
        try:
            compiled = torch.compile(model, backend=args.compile_backend)
            start = time.perf_counter()
            compiled(tokens)
            _sync(device)
            compile_seconds = time.perf_counter() - start
            fast = median_seconds(lambda: compiled(tokens), args.repeats, device)
            same = torch.allclose(compiled(tokens), model(tokens), atol=1e-4, rtol=1e-4)
        except Exception as error:  # no C++ compiler, unsupported platform...: report, do not crash
            print(f"torch.compile failed: {type(error).__name__}: {error}")
            return {"eager_seconds": eager, "error": f"{type(error).__name__}: {error}"}
    tokens_total = tokens.numel()
    out = {"eager_seconds": eager, "compiled_seconds": fast, "compile_seconds": compile_seconds,
           "eager_tokens_per_s": tokens_total / eager, "compiled_tokens_per_s": tokens_total / fast,
           "speedup": eager / fast, "outputs_match": bool(same)}
    print(f"prefill (8 x 128): eager {eager * 1e3:.1f} ms, compiled {fast * 1e3:.1f} ms "
          f"({out['speedup']:.2f}x), first compiled call {compile_seconds:.1f} s")
    return out


def bench_classifier(args: argparse.Namespace, device: torch.device) -> dict | None:
    """MiniLM (6 layers, 384 wide) classifying 32 sentences of ``--classifier-length`` (48) tokens: fp32, int8,
    50% pruned."""
    try:
        from lepton_lib.bert import build_classifier
        model, _ = build_classifier("minilm", seed=0)
    except ModuleNotFoundError as error:
        print(f"MiniLM timings skipped: {error}")
        return None
    model = model.eval().to(device)
    length = args.classifier_length
    inputs = {"input_ids": torch.randint(1000, 20000, (32, length), generator=torch.Generator().manual_seed(0)).to(device),
              "attention_mask": torch.ones(32, length, dtype=torch.long, device=device)}
    variants = {"fp32": model}
    if device.type == "cpu":
        variants["int8"] = quantize_linear_int8(model)
    import copy
    variants["pruned_50"] = magnitude_prune(copy.deepcopy(model), 0.5, scope="global", skip=["classifier"])
    out = {}
    with torch.no_grad():
        for name, variant in variants.items():
            seconds = median_seconds(lambda: variant(**inputs), args.repeats, device)
            out[name] = {"ms_per_batch": seconds * 1e3}
            print(f"MiniLM, batch 32 x {length} tokens, {name:9}: {seconds * 1e3:7.1f} ms")
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    head = provenance(command_line("python benchmarks/inference.py", argv))
    head["machine"] |= {"load_average": os.getloadavg()}
    print(f"command: {head['command']}")
    print(f"machine: {head['machine']}")
    results = {**head, "settings": vars(args),
               "decoding": bench_decoding(args, device), "batching": bench_batching(args, device)}
    if not args.no_compile:
        results["compile"] = bench_compile(args, device)
    if not args.no_classifier:
        results["classifier"] = bench_classifier(args, device)
    results["load_average_after"] = os.getloadavg()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
