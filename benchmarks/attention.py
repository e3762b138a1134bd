"""Benchmark lepton_lib's attention against torch: time, throughput and peak memory.

Compared, on the same inputs (B=8, H=12, head dim 64, fp32 by default):

* attention kernels on ``(B, H, L, d)`` tensors: torch's ``F.scaled_dot_product_attention`` (the
  baseline), our fast path (which dispatches to it), our reference path (the textbook formula that
  materialises the ``L x L`` weights) and our tiled path (online softmax over key blocks);
* multi-head attention modules on ``(B, L, H*d)`` inputs: ``nn.MultiheadAttention`` (the baseline)
  and our ``MultiHeadAttention`` with the same weights.

Each case runs in two modes: ``fwd`` (forward under ``torch.no_grad()``, i.e. inference) and
``fwd+bwd`` (forward, then backward of a fixed upstream gradient). Times are medians over
``--repeats`` runs after ``--warmup`` runs. FLOP counting rule: the attention forward is two batched
matmuls of ``2*B*H*L*S*d`` flops each, so ``4*B*H*L*S*d``; the backward is counted as twice the forward
(four matmuls), so ``fwd+bwd = 3 x fwd``. Causal masks, softmax and recomputation (the tiled backward
redoes the forward matmul) are not counted: GFLOP/s is nominal work over measured time. For the
modules, the four ``E x E`` projections add ``8*B*L*E^2`` flops to the forward (times 3 likewise).
Peak memory is the growth of the resident set during one call (Linux ``VmHWM`` after resetting it,
read in a fresh subprocess per case with glibc's mmap threshold fixed, so that memory kept from
earlier calls cannot hide it) or, with ``--device cuda``, ``torch.cuda.max_memory_allocated`` above
what was allocated before the call.

    python benchmarks/attention.py                      # L in 128 512 1024, 10 repeats
    python benchmarks/attention.py --lengths 128 --repeats 3
    python benchmarks/attention.py --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from lepton_lib.attention import scaled_dot_product_attention  # noqa: E402
from lepton_lib.attention import tiled_attention  # noqa: E402
from lepton_lib.interop import mha_from_torch  # noqa: E402

KERNELS = ["sdpa", "ours-fast", "ours-reference", "ours-tiled"]
MODULES = ["torch-mha", "ours-mha"]
BASELINE = {name: "sdpa" for name in KERNELS} | {name: "torch-mha" for name in MODULES}
MODES = ["fwd", "fwd+bwd"]
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024], help="sequence lengths L (= S)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=128, help="key block of the tiled path")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--impls", nargs="+", default=KERNELS + MODULES, choices=KERNELS + MODULES)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--measure-one", nargs=3, metavar=("IMPL", "L", "MODE"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_case(impl: str, length: int, mode: str, args: argparse.Namespace):
    """Build inputs and return a zero-argument function that runs one forward (and backward)."""
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    B, H, d = args.batch, args.heads, args.head_dim
    generator = torch.Generator().manual_seed(0)
    grad = mode == "fwd+bwd"
    if impl in KERNELS:
        inputs = [
            torch.randn(B, H, length, d, generator=generator).to(device, dtype).requires_grad_(grad) for _ in range(3)
        ]
        fn = {
            "sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
            "ours-fast": lambda q, k, v: scaled_dot_product_attention(q, k, v, implementation="fast"),
            "ours-reference": lambda q, k, v: scaled_dot_product_attention(q, k, v, implementation="reference"),
            "ours-tiled": lambda q, k, v: tiled_attention(q, k, v, block_size=args.block_size),
        }[impl]
        params: list[torch.Tensor] = []
    else:
        torch.manual_seed(0)
        theirs = nn.MultiheadAttention(H * d, H, batch_first=True).to(device, dtype).eval()
        module = theirs if impl == "torch-mha" else mha_from_torch(theirs).eval()
        x = torch.randn(B, length, H * d, generator=generator).to(device, dtype).requires_grad_(grad)
        inputs = [x]
        fn = lambda x: module(x, x, x, need_weights=False)[0]  # noqa: E731
        params = list(module.parameters())
    out_shape = (B, H, length, d) if impl in KERNELS else (B, length, H * d)
    grad_out = torch.randn(out_shape, generator=generator).to(device, dtype)

    def run_once() -> torch.Tensor:
        """One call; in fwd+bwd mode the gradients it leaves are freed by the next call."""
        if not grad:
            with torch.no_grad():
                return fn(*inputs)
        for t in inputs + params:
            t.grad = None
        out = fn(*inputs)
        out.backward(grad_out)
        return out.detach()

    run_once.leaves = inputs + params  # the tensors whose .grad a call fills
    return run_once


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_cases(cases: dict[str, object], args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per call of each case. The cases take turns call by call (the order rotating
    every round), so a change in the machine's load or clock during the run hits them all alike."""
    for run_once in cases.values():
        for _ in range(args.warmup):
            run_once()
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            synchronize(args.device)
            start = time.perf_counter()
            cases[name]()
            synchronize(args.device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def measure_peak_memory(impl: str, length: int, mode: str, args: argparse.Namespace) -> tuple[float, str]:
    """Peak memory (MiB) one call adds above what its inputs and module already hold."""
    run_once = make_case(impl, length, mode, args)
    run_once()  # first call: lazy initialisation (thread pools, kernels) is not the algorithm's memory
    for t in run_once.leaves:
        t.grad = None  # so the measured call's gradients count as new memory
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run_once()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20, "cuda max_memory_allocated"
    before = _rss_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        run_once()
        return (_rss_kib("VmHWM") - before) / 1024, "VmHWM after reset"
    except OSError:
        import resource  # ru_maxrss never resets: after the warm-up run this undercounts, say so

        run_once()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, "ru_maxrss (lower bound)"


def memory_in_subprocess(impl: str, length: int, mode: str, args: argparse.Namespace) -> tuple[float, str]:
    argv = [sys.executable, __file__, "--measure-one", impl, str(length), mode]
    for name in ("batch", "heads", "head_dim", "block_size", "threads", "device", "dtype"):
        argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    # A fixed mmap threshold makes glibc hand every large block back to the OS when it is freed, so
    # memory freed by the warm-up call cannot be silently reused by the measured one.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return record["mib"], record["method"]


def nominal_gflop(impl: str, length: int, mode: str, args: argparse.Namespace) -> float:
    B, H, d = args.batch, args.heads, args.head_dim
    flops = 4 * B * H * length * length * d
    if impl in MODULES:
        flops += 8 * B * length * (H * d) ** 2
    return flops * (3 if mode == "fwd+bwd" else 1) / 1e9


def describe_machine(args: argparse.Namespace) -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
    lines = [
        f"command : python {' '.join(shlex.quote(a) for a in sys.argv)}",
        f"machine : {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"software: python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads",
    ]
    if hasattr(os, "getloadavg"):
        lines.append(f"load    : {os.getloadavg()[0]:.2f} (1-min average at start; other jobs distort timings)")
    if args.device == "cuda":
        lines.append(f"device  : {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but torch sees no CUDA device")
    if args.measure_one:  # worker process: one memory measurement, printed as JSON
        impl, length, mode = args.measure_one
        mib, method = measure_peak_memory(impl, int(length), mode, args)
        print(json.dumps({"mib": mib, "method": method}))
        return
    print("\n".join(describe_machine(args)))
    print(
        f"shapes  : B={args.batch}, H={args.heads}, d={args.head_dim}, {args.dtype} on {args.device}; "
        f"tiled block {args.block_size}; median of {args.repeats} runs after {args.warmup} warm-up runs"
    )
    print("flops   : attention fwd = 4*B*H*L^2*d, modules add 8*B*L*E^2; fwd+bwd = 3 x fwd (nominal)\n")
    header = (
        f"{'L':>5} {'mode':<8} {'impl':<15} {'median ms':>10} {'x baseline':>10} {'GFLOP/s':>8} "
        f"{'peak MiB':>9} {'max|diff|':>9}"
    )
    print(header)
    print("-" * len(header))
    results: dict[tuple[int, str, str], dict] = {}
    memory_method = None
    for length in args.lengths:
        for mode in args.modes:
            wanted = set(args.impls) | {BASELINE[i] for i in args.impls}  # a ratio needs its baseline
            impls = [i for i in KERNELS + MODULES if i in wanted]  # each baseline comes first in its group
            run_cases: dict[str, object] = {}
            median_seconds: dict[str, float] = {}
            reference_outputs: dict[str, torch.Tensor] = {}
            for group in (KERNELS, MODULES):  # kernels against SDPA, modules against nn.MultiheadAttention
                cases = {impl: make_case(impl, length, mode, args) for impl in impls if impl in group}
                median_seconds.update(time_cases(cases, args) if cases else {})
                run_cases.update(cases)
            for impl in impls:
                run_once = run_cases[impl]
                seconds = median_seconds[impl]
                out = run_once()
                baseline = BASELINE[impl]
                reference_outputs.setdefault(baseline, out)  # the baseline runs first in each group
                diff = (out - reference_outputs[baseline]).abs().max().item()
                mib = float("nan")
                if not args.no_memory:
                    mib, memory_method = memory_in_subprocess(impl, length, mode, args)
                base_seconds = results.get((length, mode, baseline), {}).get("seconds", seconds)
                results[(length, mode, impl)] = {"seconds": seconds, "mib": mib}
                print(
                    f"{length:>5} {mode:<8} {impl:<15} {seconds * 1e3:>10.2f} {seconds / base_seconds:>10.3f} "
                    f"{nominal_gflop(impl, length, mode, args) / seconds:>8.1f} {mib:>9.1f} {diff:>9.1e}",
                    flush=True,
                )
    print(f"\nbaselines: {sorted(set(BASELINE.values()))}; peak memory by {memory_method or 'not measured'}")
    print("goal: ours-fast within 1.05x of sdpa; ours-tiled memory linear in L, ours-reference quadratic")
    if args.repeats < 5:
        print(f"  (only {args.repeats} repeats: the time ratios below are noise-level, not a verdict)")
    for mode in args.modes:
        for length in args.lengths:
            fast, sdpa = results.get((length, mode, "ours-fast")), results.get((length, mode, "sdpa"))
            if fast and sdpa:
                ratio = fast["seconds"] / sdpa["seconds"]
                verdict = "met" if ratio <= 1.05 else "NOT met"
                print(f"  {mode:<8} L={length:<5} ours-fast / sdpa = {ratio:.3f} ({verdict})")
        if len(args.lengths) > 1 and not args.no_memory:
            short, long = min(args.lengths), max(args.lengths)
            for impl in ("ours-reference", "ours-tiled", "sdpa"):
                a, b = results.get((short, mode, impl)), results.get((long, mode, impl))
                if a and b and a["mib"] > 0:
                    print(
                        f"  {mode:<8} {impl:<15} peak memory x{b['mib'] / a['mib']:.1f} from L={short} to L={long} "
                        f"(linear: x{long / short:.0f}, quadratic: x{(long / short) ** 2:.0f})"
                    )


if __name__ == "__main__":
    main()
