"""Plotting and diagram helpers so every chapter looks the same.

Diagrams are built with mermaid-py's flowchart classes and shown as a plain
```` ```mermaid ```` fence. JupyterLab, GitHub and the built book (through
``sphinxcontrib-mermaid``) all render such a fence in the browser, so no
rendering web service is ever called.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import torch
from mermaid.flowchart import FlowChart, Link, Node

if TYPE_CHECKING:  # IPython is needed only to display, not to build diagrams (scripts, GPU machines)
    from IPython.display import Markdown

__all__ = [
    "PALETTE",
    "use_book_style",
    "flowchart",
    "module_flowchart",
    "mermaid_markdown",
    "show_mermaid",
    "plot_series",
]

# Colour-blind-safe (Okabe & Ito) colours, in the order plots use them.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

_DIRECTIONS = {"LR", "RL", "TB", "TD", "BT"}


def use_book_style() -> None:
    """Apply the book's matplotlib style: fixed size and resolution, light grid."""
    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "legend.frameon": False,
            "font.size": 10,
        }
    )
    plt.close("all")


def _node_id(label: str) -> str:
    return re.sub(r"\W+", "_", label).strip("_") or "node"


def flowchart(
    edges: Iterable[tuple[str, str] | tuple[str, str, str]],
    direction: str = "LR",
    title: str | None = None,
    shapes: dict[str, str] | None = None,
) -> FlowChart:
    """Build a mermaid-py ``FlowChart`` from ``(source, target[, label])`` edges.

    Node ids are derived from the labels, so the same label is the same node.
    ``shapes`` maps a label to a mermaid-py node shape (e.g. ``"round-edge"``,
    ``"rhombus"``, ``"stadium"``).
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")
    shapes = shapes or {}
    nodes: dict[str, Node] = {}

    def node(label: str) -> Node:
        if label not in nodes:
            nodes[label] = Node(_node_id(label) + f"_{len(nodes)}", label, shape=shapes.get(label, "normal"))
        return nodes[label]

    links = []
    for edge in edges:
        if len(edge) not in (2, 3):
            raise ValueError(f"each edge must be (source, target) or (source, target, label), got {edge!r}")
        source, target = node(edge[0]), node(edge[1])
        links.append(Link(source, target, message=edge[2] if len(edge) == 3 else ""))
    return FlowChart(title or "", list(nodes.values()), links, orientation=direction)


def module_flowchart(module: torch.nn.Module, max_depth: int = 2, direction: str = "TB") -> FlowChart:
    """Draw a module tree: each child is linked from its parent, down to ``max_depth``.

    Labels show the attribute name and class, e.g. ``attn: MultiHeadAttention``;
    a ``ModuleList`` of identical blocks is drawn once with a ``×N`` count.
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    edges: list[tuple[str, str]] = []

    def walk(parent: torch.nn.Module, label: str, depth: int) -> None:
        if depth >= max_depth:
            return
        children = list(parent.named_children())
        if isinstance(parent, torch.nn.ModuleList) and children:
            kinds = {type(c).__name__ for _, c in children}
            if len(kinds) == 1:
                first = f"{label}[0..{len(children) - 1}]: {kinds.pop()} ×{len(children)}"
                edges.append((label, first))
                walk(children[0][1], first, depth + 1)
                return
        for name, child in children:
            child_label = f"{label}.{name}: {type(child).__name__}"
            edges.append((label, child_label))
            walk(child, child_label, depth + 1)

    root = type(module).__name__
    walk(module, root, 0)
    if not edges:
        edges.append((root, root + " (no submodules)"))
    return flowchart(edges, direction=direction)


def mermaid_markdown(diagram: FlowChart | str) -> str:
    """Return the diagram as a fenced ```` ```mermaid ```` block."""
    script = diagram if isinstance(diagram, str) else diagram.script
    # mermaid-py always writes a front-matter title block; drop it when empty.
    script = re.sub(r"\A---\ntitle:\s*\n---\n", "", script)
    return "```mermaid\n" + script.strip() + "\n```"


def show_mermaid(diagram: FlowChart | str) -> Markdown:
    """Display a diagram as a mermaid fence (rendered by JupyterLab and the book)."""
    from IPython.display import Markdown

    return Markdown(mermaid_markdown(diagram))


def plot_series(
    series: dict[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logy: bool = False,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Plot named series against their index (e.g. loss per epoch) on one axis."""
    if ax is None:
        _, ax = plt.subplots()
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), list(values), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax
