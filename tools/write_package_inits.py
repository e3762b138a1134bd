"""Write each lepton_lib subpackage's ``__init__.py`` from its modules' ``__all__`` lists.

    python tools/write_package_inits.py          # rewrite the __init__ files
    python tools/write_package_inits.py --check  # exit 1 if one is out of date (tests run this)

A package exports every public name of its teaching modules, so a chapter writes
``from lepton_lib.bert import BertModel`` and never needs to know which module defines it. Command
lines (modules with a ``__main__`` block: the recipes) are left out: ``python -m`` warns when the
module it runs was imported by its package first, and chapters import recipes by their full path.
``lepton_lib.data``'s ``__init__`` is written by hand (it documents the loaders' search order).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lepton_lib"
DOCS = {
    "core": "What every chapter uses: argument checks, devices and seeds, atomic files and checksums, the provenance of\n"
            "stored results, the plot style and diagrams, and the glue between computed numbers and the prose.",
    "foundations": "Foundations (book/foundations): a NumPy MLP with backpropagation by hand, gradient checks, optimizers,\n"
                   "learning-rate schedules, a training loop and classification metrics.",
    "attention": "Attention math (book/attention): scaled dot-product and multi-head attention, tiled attention and the KV\n"
                 "cache, positions, Transformer blocks and tiny models that train on a CPU.",
    "bert": "BERT pretraining (book/bert): WordPiece, pretraining data, the model, the pretraining loop and its\n"
            "checkpoints, fine-tuning. The recorded runs' recipes: lepton_lib.bert.pretraining_recipe and\n"
            "lepton_lib.bert.fine_tuning_recipe.",
    "gnn": "Graph neural networks (book/gnn): graph operations, message-passing layers and models, their training,\n"
           "neighbour sampling and graph-based recommendation.",
    "cases": "Case studies (book/cases): the pipelines behind each case, group fairness rates, calibration and route\n"
             "optimisation.",
    "background": "Background (book/background): the arithmetic of training and serving large models; BLEU, CLIP's\n"
                  "contrastive loss and REINFORCE.",
    "interop": "Converters between this library's modules and torch's, Hugging Face's and PyTorch Geometric's: the\n"
               "parity tests and weight loading use them; the chapters' teaching code does not.",
    "scale": "Scale and deployment (book/scale): activation memory, fast decoding, compression, privacy and\n"
             "interpretability. Command lines: lepton_lib.scale.compression_recipe and lepton_lib.scale.ddp_demo.",
}


def is_command_line(path: Path) -> bool:
    return 'if __name__ == "__main__"' in path.read_text()


def init_text(package: str) -> str:
    modules = []
    for path in sorted((LIB / package).glob("*.py")):
        if path.name == "__init__.py" or is_command_line(path):
            continue
        tree = ast.parse(path.read_text())
        if not any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets)
                   for n in tree.body):
            raise SystemExit(f"lepton_lib/{package}/{path.name} has no __all__")
        modules.append(path.stem)
    lines = [f'"""{DOCS[package]}\n"""']
    if modules:
        lines.append(f"from lepton_lib.{package} import " + ", ".join(modules))
        lines += ["", "__all__ = [  # every public name of the modules above"]
        lines += [f"    *{m}.__all__," for m in modules]
        lines += ["]", ""]
        lines += [f"from lepton_lib.{package}.{m} import *  # noqa: E402, F403" for m in modules]
    else:
        lines += ["", "__all__: list[str] = []"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report __init__ files that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for package in DOCS:
        target = LIB / package / "__init__.py"
        text = init_text(package)
        if not target.exists() or target.read_text() != text:
            stale.append(str(target.relative_to(LIB.parent)))
            if not args.check:
                target.write_text(text)
    if args.check and stale:
        print("out of date (run python tools/write_package_inits.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
