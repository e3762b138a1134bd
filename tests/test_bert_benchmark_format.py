"""benchmarks/bert_pretrain.py's ``times_faster``: a speed ratio in words, at its edges.

The benchmark once printed a bf16 matmul at 523 GFLOP/s against 191 in fp32 as "0x slower" (issue 17).
``tests/test_reproduce.py`` checks the recorded cases; this file checks the boundaries of the wording.
"""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "bert_pretrain.py"
times_faster = runpy.run_path(str(BENCHMARK), run_name="bert_pretrain_benchmark")["times_faster"]


@pytest.mark.parametrize(("rate", "reference", "expected"), [
    (523.0, 191.0, "2.7x faster"),  # the AVX-512 EPYC's bf16 vs fp32 512^3 matmul (GFLOP/s)
    (191.0, 523.0, "2.7x slower"),  # the same pair the other way round: symmetric
    (1.27, 73.86, "58x slower"),  # a CPU without bf16 units
    (9.94, 1.0, "9.9x faster"),
    (9.96, 1.0, "10x faster"),  # rounds to 10.0: written without the decimal, as every factor >= 10
    (1.0, 9.96, "10x slower"),
    (1.04, 1.0, "as fast"),
    (1.0, 1.04, "as fast"),
    (1.06, 1.0, "1.1x faster"),
    (1, 2, "2.0x slower"),  # ints are rates too
])
def test_ratio_in_words(rate, reference, expected):
    assert times_faster(rate, reference) == expected


@pytest.mark.parametrize(("rate", "reference"), [(0.0, 1.0), (1.0, -2.0), (float("nan"), 1.0), (1.0, float("inf"))])
def test_a_rate_that_is_not_positive_and_finite_is_refused_by_name(rate, reference):
    with pytest.raises(ValueError, match=r"rates must be positive finite numbers, got rate=.* and reference="):
        times_faster(rate, reference)
