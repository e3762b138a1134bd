"""lepton_lib.core.runtime and lepton_lib.core.plotting: devices, seeds, argument checks, diagrams."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lepton_lib.core import check_tensor, get_device, make_reproducible, set_seed
from lepton_lib.core import flowchart, mermaid_markdown, module_flowchart, show_mermaid


def test_get_device_prefers_explicit_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.delenv("LEPTON_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    device = get_device()
    if expected:
        assert device.type == expected
    else:
        assert device.type in {"cpu", "mps"}


def test_set_seed_makes_every_generator_repeat() -> None:
    def draw() -> tuple[float, float, torch.Tensor]:
        return random.random(), float(np.random.rand()), torch.rand(3)

    set_seed(123)
    first = draw()
    set_seed(123)
    second = draw()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    set_seed(124)
    assert draw()[0] != first[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        set_seed(bad)  # type: ignore[arg-type]


def test_make_reproducible_fixes_threads() -> None:
    before = torch.get_num_threads()
    try:
        make_reproducible(seed=0, threads=1)
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="threads"):
            make_reproducible(threads=0)
    finally:
        torch.set_num_threads(before)
        torch.set_printoptions(profile="default")
        np.set_printoptions(precision=8, suppress=False)


def test_check_tensor_messages_name_argument_and_shapes() -> None:
    x = torch.zeros(2, 3, 4)
    assert check_tensor("x", x, shape=("B", None, 4)) is x
    with pytest.raises(ValueError, match=r"query must have 2 dimensions \(B, E\), got shape \(2, 3, 4\)"):
        check_tensor("query", x, shape=("B", "E"))
    with pytest.raises(ValueError, match=r"key has shape \(2, 3, 4\), expected \(\*, \*, 5\)"):
        check_tensor("key", x, shape=(None, None, 5))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\), expected \(N, N\)"):
        check_tensor("mask", torch.zeros(3, 4), shape=("N", "N"))
    with pytest.raises(ValueError, match="value must have dtype torch.float64, got torch.float32"):
        check_tensor("value", x, dtype=torch.float64)
    with pytest.raises(ValueError, match="must be a torch.Tensor, got list"):
        check_tensor("ids", [1, 2])


def test_flowchart_renders_as_mermaid_fence() -> None:
    text = mermaid_markdown(flowchart([("input x", "hidden h", "W1"), ("hidden h", "output y")], direction="LR"))
    lines = text.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```"
    assert lines[1] == "flowchart LR"  # the empty title block is dropped
    assert sum("-->" in line for line in lines) == 2
    assert '|"W1"|' in text
    assert show_mermaid("flowchart TB\n a --> b").data.startswith("```mermaid\nflowchart TB")


def test_flowchart_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="direction"):
        flowchart([("a", "b")], direction="left to right")
    with pytest.raises(ValueError, match="edge"):
        flowchart([("a",)])  # type: ignore[list-item]


def test_module_flowchart_collapses_repeated_blocks() -> None:
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(3)])
    )
    text = module_flowchart(model, max_depth=3).script
    assert "Linear ×3" in text
    assert text.count("-->") == 3  # root→Linear, root→ModuleList, ModuleList→collapsed block
