"""The library is laid out like the book: one subpackage per part, one idea per module.

These tests keep the layout from eroding: a part of the book without its subpackage, a module that
grows past ~400 lines, a private name imported across modules, teaching code that imports the
interop converters, or a public name missing from its package's ``__init__`` all fail here.
"""
from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lepton_lib"
MAX_LINES = 420  # "no module over ~400 lines"
SUBPACKAGES = sorted(p.name for p in LIB.iterdir() if (p / "__init__.py").exists())


def _book_parts() -> set[str]:
    """The folders of book/ that hold a part of _toc.yml with chapters (not the preface or appendix)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = set()
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            folder = Path(chapter["file"]).parent
            if folder.parent.name == "book" and folder.name != "appendix":
                parts.add(folder.name)
    return parts


def _library_modules() -> list[Path]:
    return sorted(LIB.rglob("*.py"))


def _tracked_python_sources() -> list[tuple[str, str]]:
    """(file, source) for every tracked .py file and every notebook code cell."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sources = []
    for name in files:
        path = ROOT / name
        if name.endswith(".py") and path.exists():
            sources.append((name, path.read_text()))
        elif name.endswith(".ipynb") and path.exists():
            cells = json.loads(path.read_text())["cells"]
            code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            sources.append((name, code))
    return sources


def test_every_part_of_the_book_has_its_subpackage():
    missing = sorted(_book_parts() - set(SUBPACKAGES))
    assert not missing, f"parts of _toc.yml without a lepton_lib subpackage: {missing}"


def test_no_flat_modules_left_at_the_top():
    flat = sorted(p.name for p in LIB.glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules outside a subpackage: {flat}"


@pytest.mark.parametrize("module", _library_modules(), ids=lambda p: str(p.relative_to(LIB)))
def test_module_size(module: Path):
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.relative_to(ROOT)} has {lines} lines (at most ~400: split it by idea)"


def _is_command_line(module) -> bool:
    """A recipe run with `python -m`: its package does not import it, or `python -m` would warn that the
    module was imported before it ran; chapters import it by its full path."""
    return 'if __name__ == "__main__"' in Path(module.__file__).read_text()


def test_command_lines_are_not_imported_by_their_package():
    imports = "; ".join(f"import lepton_lib.{p}" for p in SUBPACKAGES)
    result = subprocess.run([sys.executable, "-c", f"import sys; {imports}; print(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    for package in SUBPACKAGES:
        for info in pkgutil.iter_modules(importlib.import_module(f"lepton_lib.{package}").__path__):
            name = f"lepton_lib.{package}.{info.name}"
            if _is_command_line(importlib.import_module(name)):
                assert name not in loaded, f"importing lepton_lib.{package} imports the command line {name}"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_package_exports_every_public_name_of_its_modules(package: str):
    pkg = importlib.import_module(f"lepton_lib.{package}")
    exported = set(pkg.__all__)
    assert len(exported) == len(pkg.__all__), f"lepton_lib.{package}.__all__ lists a name twice"
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"lepton_lib.{package}.{info.name}")
        names = getattr(module, "__all__", None)
        if _is_command_line(module):  # recipes are imported by their full path (see below)
            assert names is not None, f"{module.__name__} has no __all__"
            continue
        assert names is not None, f"lepton_lib.{package}.{info.name} has no __all__"
        assert not [n for n in names if n.startswith("_")], f"{module.__name__}.__all__ lists a private name"
        assert set(names) <= exported, f"lepton_lib.{package} does not export {sorted(set(names) - exported)}"
        for name in names:
            assert getattr(pkg, name) is getattr(module, name), f"lepton_lib.{package}.{name} is not {module.__name__}.{name}"


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for name, source in _tracked_python_sources():
        try:
            tree = ast.parse(re.sub(r"(?m)^\s*[%!].*$", "", source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lepton_lib"):
                offenders += [f"{name}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                offenders += [f"{name}: relative import of {a.name}" for a in node.names if a.name.startswith("_")]
    assert not offenders, "private names imported from another module:\n" + "\n".join(offenders)


def test_teaching_code_does_not_import_the_interop_converters():
    """Chapters' code stands on its own; only bert's save/load (whose on-disk format is Hugging Face's) converts."""
    allowed = {"interop", "bert/saving.py"}
    offenders = []
    for module in _library_modules():
        rel = module.relative_to(LIB).as_posix()
        if rel.split("/")[0] in allowed or rel in allowed:
            continue
        if re.search(r"^\s*(from|import) lepton_lib\.interop", module.read_text(), re.M):
            offenders.append(rel)
    assert not offenders, f"teaching modules importing lepton_lib.interop: {offenders}"


def test_data_exports_every_loader():
    data = importlib.import_module("lepton_lib.data")
    loaders = set()
    for info in pkgutil.iter_modules(data.__path__):
        module = importlib.import_module(f"lepton_lib.data.{info.name}")
        loaders |= {n for n in getattr(module, "__all__", []) if n.startswith("load_")}
    missing = sorted(loaders - set(data.__all__))
    assert loaders and not missing, f"lepton_lib.data does not export {missing}"


def test_package_inits_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "write_package_inits.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
