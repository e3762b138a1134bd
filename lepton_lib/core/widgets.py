"""Widget demos that respond in the static book as well as in a kernel.

A demo's result is computed by the real code, when the notebook runs, for every
setting of a small grid of control values. Each result is stored in its own
``ipywidgets.Output``; the outputs sit in nested ``ipywidgets.Stack`` widgets (one
level per control) whose ``selected_index`` is ``jslink``-ed to the control's
``index``. Front-end links are part of the saved widget state, so in the HTML
book, with no kernel and no network, moving a control switches the shown result.

:func:`live_demo` is the kernel's side: the same ``render`` for any value of
free controls, computed when a control moves.

ipywidgets is imported inside the functions, so importing ``lepton_lib.core``
does not need it (scripts, GPU machines).
"""
from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["SETTING_CLASS", "PrecomputedDemo", "live_demo", "precomputed_demo"]

# Every stored result carries the CSS class SETTING_CLASS + "-i-j-k" (the index of
# each control's value), so a test can tell which setting the page shows.
SETTING_CLASS = "lepton-setting"


def _show(out, result: object) -> None:
    """Put one rendered result into an Output widget: text as a stream, anything else as display data."""
    if isinstance(result, str):
        out.append_stdout(result if result.endswith("\n") else result + "\n")
        return
    if type(result).__module__.startswith("matplotlib"):
        # As the inline backend draws it (tight box, the figure's dpi), but without needing a kernel.
        import matplotlib.pyplot as plt
        from IPython.core.pylabtools import print_figure
        from IPython.display import Image

        png = print_figure(result, "png", bbox_inches="tight")
        plt.close(result)
        result = Image(data=png, format="png")
    out.append_display_data(result)


def _control(name: str, values: Sequence, label: Callable[[Any], str], initial: object):
    import ipywidgets as widgets

    options = [(label(v), v) for v in values]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    kind = widgets.SelectionSlider if numeric and len(values) > 1 else widgets.Dropdown
    return kind(options=options, index=list(values).index(initial), description=name,
                style={"description_width": "initial"})


class PrecomputedDemo:
    """The controls, the stacks and one stored result per grid setting (displayed as ``widget``)."""

    def __init__(self, grid: dict[str, list], controls: dict, outputs: dict, links: list, widget) -> None:
        self.grid = grid
        self.links = links  # one jslink per stack: (control, "index") -> (stack, "selected_index")
        self.controls = controls
        self.outputs = outputs  # index tuple -> Output
        self.widget = widget

    def index_of(self, **setting: object) -> tuple[int, ...]:
        """The index of each control's value for a setting (every grid name must be given)."""
        if set(setting) != set(self.grid):
            raise ValueError(f"setting: expected values for {sorted(self.grid)}, got {sorted(setting)}")
        index = []
        for name, values in self.grid.items():
            if setting[name] not in values:
                raise ValueError(f"setting: {name}={setting[name]!r} is not on the grid {values}")
            index.append(values.index(setting[name]))
        return tuple(index)

    def shown(self):
        """The Output that the stacks select now (follows the ``selected_index`` of each level)."""
        node = self.widget.children[-1]
        while not hasattr(node, "outputs"):
            node = node.children[node.selected_index]
        return node

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(values)} values" for name, values in self.grid.items())
        return f"PrecomputedDemo({sizes})"

    def _repr_mimebundle_(self, **kwargs):
        # The widget's own text/plain lists every option at full precision; a reader without a widget
        # front end (and the stored notebook) gets this short summary instead.
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and "text/plain" in bundle:
            bundle = {**bundle, "text/plain": repr(self)}
        return bundle


def precomputed_demo(
    render: Callable[..., object],
    grid: Mapping[str, Sequence],
    *,
    labels: Mapping[str, Callable[[Any], str]] | None = None,
    initial: Mapping[str, object] | None = None,
) -> PrecomputedDemo:
    """Compute ``render(**setting)`` for every setting of ``grid`` and switch between them in the page.

    ``grid`` maps each keyword of ``render`` to its list of values (numbers get a
    ``SelectionSlider``, anything else a ``Dropdown``; values are exact, so a slider
    starts on the number the prose names). ``render`` returns a matplotlib figure
    (shown as an image, then closed), a string (shown as text) or anything IPython
    can display. ``labels`` maps a name to a function that formats its values
    (default ``str``); ``initial`` maps a name to its starting value (default: the
    first). Every setting is computed once, now; nothing is printed.
    """
    import ipywidgets as widgets

    if not callable(render):
        raise TypeError(f"render: expected a callable, got {type(render).__name__}")
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid: expected a non-empty dict of name -> list of values, got {grid!r}")
    checked: dict[str, list] = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid: expected keyword names, got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid: {name!r} needs a non-empty list of values, got {values!r}")
        values = list(values)
        if any(values.count(v) > 1 for v in values):
            raise ValueError(f"grid: {name!r} has a repeated value in {values}")
        checked[name] = values
    labels = dict(labels or {})
    initial = dict(initial or {})
    for arg, given in (("labels", labels), ("initial", initial)):
        unknown = sorted(set(given) - set(checked))
        if unknown:
            raise ValueError(f"{arg}: {unknown} are not grid names {sorted(checked)}")
    for name, value in initial.items():
        if value not in checked[name]:
            raise ValueError(f"initial: {name}={value!r} is not on the grid {checked[name]}")

    controls = {
        name: _control(name, values, labels.get(name, str), initial.get(name, values[0]))
        for name, values in checked.items()
    }
    names = list(checked)
    outputs: dict[tuple[int, ...], Any] = {}
    links: list = []
    for index in itertools.product(*(range(len(v)) for v in checked.values())):
        out = widgets.Output()
        out.add_class(SETTING_CLASS + "-" + "-".join(map(str, index)))
        _show(out, render(**{n: checked[n][i] for n, i in zip(names, index)}))
        outputs[index] = out

    def stack(prefix: tuple[int, ...]):
        """The Stack for one level: its children are the next level (or the outputs)."""
        level = len(prefix)
        control = controls[names[level]]
        children = [
            outputs[prefix + (i,)] if level == len(names) - 1 else stack(prefix + (i,))
            for i in range(len(checked[names[level]]))
        ]
        node = widgets.Stack(children=children, selected_index=control.index)
        links.append(widgets.jslink((control, "index"), (node, "selected_index")))
        return node

    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                        stack(())])
    return PrecomputedDemo(checked, controls, outputs, links, box)


def live_demo(render: Callable[..., object], **controls):
    """Free controls for a kernel: ``render(**values)`` is recomputed whenever a control moves.

    Nothing is computed until a control moves, so a stored run keeps no result
    (and the static book, which cannot compute, should hide this cell's output).
    """
    import ipywidgets as widgets

    if not callable(render):
        raise TypeError(f"render: expected a callable, got {type(render).__name__}")
    if not controls:
        raise ValueError("controls: expected at least one name=widget")
    out = widgets.Output()

    def update(_change=None) -> None:
        out.outputs = ()
        _show(out, render(**{name: control.value for name, control in controls.items()}))

    for control in controls.values():
        control.observe(update, names="value")
    return widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")), out])
