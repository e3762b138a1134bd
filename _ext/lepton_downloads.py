"""The whole book as downloads, linked from the intro: every notebook in one zip, and one PDF.

The zip is written with every HTML build (a second or two), into the root of the built book as
``lepton-book-notebooks.zip``: the notebooks in the folders of ``book/``, with the files a reader
needs to run them (``requirements.txt``, ``pyproject.toml`` and the ``lepton_lib`` package).
The PDF, ``lepton-book.pdf`` beside it, is printed by ``make pdf`` (``_ext/print_book.py``),
which takes minutes, so it is not part of every build.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from sphinx.application import Sphinx

NOTEBOOKS_ZIP = "lepton-book-notebooks.zip"
PDF = "lepton-book.pdf"
# Beside the notebooks: what `pip install -e .` needs to run them.
EXTRA = ("requirements.txt", "pyproject.toml", "README.md")
PACKAGE = "lepton_lib"


def write_notebooks_zip(root: Path, target: Path) -> int:
    """Write every notebook under ``root/book`` (and the package they import) to ``target``;
    return the number of notebooks."""
    notebooks = sorted(p for p in (root / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks under {root / 'book'}: expected the book's .ipynb files")
    package = sorted(p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)
    extra = [root / name for name in EXTRA if (root / name).is_file()]
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in [*notebooks, *package, *extra]:
            zf.write(path, Path("lepton-book") / path.relative_to(root))
    tmp.replace(target)
    return len(notebooks)


def _write_downloads(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    write_notebooks_zip(Path(app.srcdir), Path(app.outdir) / NOTEBOOKS_ZIP)


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _write_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
