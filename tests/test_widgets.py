"""lepton_lib.core.widgets: a demo precomputed over a grid, switched by jslink-ed stacks."""
from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from lepton_lib.core import SETTING_CLASS, live_demo, precomputed_demo

GRID = {"a": [1, 2, 3], "b": ["x", "y"]}


def text(a, b) -> str:
    return f"a={a} b={b}"


def stored_text(out) -> str:
    return "".join(o["text"] for o in out.outputs if o["output_type"] == "stream").strip()


def test_every_setting_is_computed_once():
    calls = []
    demo = precomputed_demo(lambda a, b: calls.append((a, b)) or text(a, b), GRID)
    assert sorted(calls) == sorted((a, b) for a in GRID["a"] for b in GRID["b"])
    assert len(demo.outputs) == 6
    for (i, j), out in demo.outputs.items():
        assert stored_text(out) == text(GRID["a"][i], GRID["b"][j])
        assert f"{SETTING_CLASS}-{i}-{j}" in out._dom_classes


def test_stacks_follow_the_controls_to_the_right_result():
    demo = precomputed_demo(text, GRID, initial={"a": 2})
    assert demo.controls["a"].value == 2 and isinstance(demo.controls["a"], widgets.SelectionSlider)
    assert isinstance(demo.controls["b"], widgets.Dropdown)
    assert stored_text(demo.shown()) == "a=2 b=x"
    for a in GRID["a"]:
        for b in GRID["b"]:
            index = demo.index_of(a=a, b=b)
            assert index == (GRID["a"].index(a), GRID["b"].index(b))
            # what the links do in the browser: each stack level takes its control's index
            outer = demo.widget.children[-1]
            outer.selected_index = index[0]
            inner = outer.children[index[0]]
            inner.selected_index = index[1]
            assert demo.shown() is demo.outputs[index]
            assert stored_text(demo.shown()) == text(a, b)
    assert len(demo.links) == 3 + 1  # one per inner stack, then the outer one
    sources = [link.source for link in demo.links]
    assert sources == [(demo.controls["b"], "index")] * 3 + [(demo.controls["a"], "index")]
    assert all(link.target[1] == "selected_index" for link in demo.links)
    assert [link.target[0] for link in demo.links] == [*demo.widget.children[-1].children, demo.widget.children[-1]]


def test_slider_values_are_exact():
    demo = precomputed_demo(lambda c: f"{c}", {"c": [2.0 ** (k / 4) for k in range(-8, 1)]}, initial={"c": 0.25},
                            labels={"c": lambda c: f"{c:.3g}"})
    assert demo.controls["c"].value == 0.25
    assert demo.controls["c"].label == "0.25"


def test_figures_are_stored_as_images_and_closed():
    def draw(n):
        fig, ax = plt.subplots(figsize=(2, 1), dpi=40)
        ax.plot(range(n))
        return fig

    before = len(plt.get_fignums())
    demo = precomputed_demo(draw, {"n": [2, 3]})
    assert len(plt.get_fignums()) == before
    pngs = [out.outputs[0]["data"]["image/png"] for out in demo.outputs.values()]
    assert all(pngs) and pngs[0] != pngs[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": {}}, "grid"),
        ({"grid": {"a": []}}, "grid: 'a'"),
        ({"grid": {"a": "abc"}}, "grid: 'a'"),
        ({"grid": {"a": [1, 1]}}, "repeated"),
        ({"grid": {"not a name": [1]}}, "grid: expected keyword"),
        ({"grid": {"a": [1]}, "initial": {"a": 5}}, "initial: a=5"),
        ({"grid": {"a": [1]}, "initial": {"z": 1}}, "initial"),
        ({"grid": {"a": [1]}, "labels": {"z": str}}, "labels"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        precomputed_demo(lambda **s: "", **kwargs)


def test_index_of_refuses_a_setting_off_the_grid():
    demo = precomputed_demo(text, GRID)
    with pytest.raises(ValueError, match="a=4"):
        demo.index_of(a=4, b="x")
    with pytest.raises(ValueError, match="setting"):
        demo.index_of(a=1)


def test_live_demo_computes_any_value_when_moved():
    slider = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.001)
    box = live_demo(lambda c: f"c={c:.3f}", c=slider)
    out = box.children[-1]
    assert out.outputs == ()  # nothing stored until a control moves
    slider.value = 0.123
    assert stored_text(out) == "c=0.123"
    with pytest.raises(ValueError, match="controls"):
        live_demo(text)


# --- the stored notebooks: every control a reader sees in the book drives a precomputed demo ---

BOOK = Path(__file__).resolve().parents[1] / "book"
CONTROL_MODELS = {
    "SelectionSliderModel", "SelectionRangeSliderModel", "DropdownModel", "SelectModel", "IntSliderModel",
    "FloatSliderModel", "FloatLogSliderModel", "IntRangeSliderModel", "FloatRangeSliderModel", "IntTextModel",
    "FloatTextModel", "BoundedIntTextModel", "BoundedFloatTextModel", "TextModel", "CheckboxModel",
    "ToggleButtonModel", "ToggleButtonsModel", "RadioButtonsModel", "ButtonModel", "PlayModel",
}
HIDDEN = {"remove-output", "remove-cell", "hide-output"}


def _ref(value: object) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def shown_controls(notebook: Path) -> list[tuple[str, str]]:
    """(model id, model name) of every control inside a widget output that the book shows."""
    nb = json.loads(notebook.read_text())
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or HIDDEN & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            todo, seen = ([view["model_id"]] if view else []), set()
            while todo:
                model_id = todo.pop()
                if model_id in seen or model_id not in models:
                    continue
                seen.add(model_id)
                model = models[model_id]
                if model["model_name"] in CONTROL_MODELS:
                    found.append((model_id, model["model_name"]))
                todo += [r for r in map(_ref, model["state"].get("children", [])) if r]
    return found


def linked_to_a_stack(notebook: Path) -> set[str]:
    """Model ids of controls whose ``index`` is jslink-ed to a Stack's ``selected_index``."""
    state = json.loads(notebook.read_text())["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    models = state["state"]
    linked = set()
    for model in models.values():
        if model["model_name"] != "LinkModel":
            continue
        (source, source_attr), (target, target_attr) = model["state"]["source"], model["state"]["target"]
        target_model = models.get(_ref(target) or "", {})
        if (source_attr, target_attr) == ("index", "selected_index") and target_model.get("model_name") == "StackModel":
            linked.add(_ref(source))
    return linked


NOTEBOOKS = sorted(BOOK.rglob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[str(p.relative_to(BOOK)) for p in NOTEBOOKS])
def test_every_control_the_book_shows_switches_a_precomputed_result(notebook: Path):
    controls = shown_controls(notebook)
    if not controls:
        return
    dead = [(model_id, name) for model_id, name in controls if model_id not in linked_to_a_stack(notebook)]
    assert not dead, (
        f"{notebook}: controls shown in the book that drive nothing without a kernel: {dead}; "
        "use lepton_lib.core.precomputed_demo, or tag the cell remove-output if it is for a kernel only"
    )


def test_the_check_finds_a_control_that_drives_nothing(tmp_path: Path):
    slider = widgets.IntSlider(value=1)
    state = {"version_major": 2, "version_minor": 0, "state": {
        slider.model_id: {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
                          "model_module_version": "2.0.0", "state": {}}}}
    notebook = tmp_path / "page.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "source": [], "execution_count": 1, "outputs": [
            {"output_type": "display_data", "metadata": {},
             "data": {"application/vnd.jupyter.widget-view+json": {"model_id": slider.model_id}}}]}],
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": state}}, "nbformat": 4, "nbformat_minor": 5}))
    assert shown_controls(notebook) == [(slider.model_id, "IntSliderModel")]
    assert linked_to_a_stack(notebook) == set()
    with pytest.raises(AssertionError, match="drive nothing"):
        test_every_control_the_book_shows_switches_a_precomputed_result(notebook)
