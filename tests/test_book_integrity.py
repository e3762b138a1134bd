"""Book-wide truth checks: citations resolve, references are traceable, nothing is copied.

* Every ``{cite}`` / ``{cite:p}`` / ``{cite:t}`` key used in ``book/**/*.md`` and
  ``book/**/*.ipynb`` exists in ``_references.bib``.
* Every bibliography entry carries a DOI, an arXiv identifier (``eprint``) or a URL,
  and no key is defined twice.
* No sentence of the source documents is copied: a run of 14 or more consecutive CJK
  characters shared between a file in ``book/`` or ``lepton_lib/`` and any
  ``shared/seeds/*.txt`` fails. The term lines of the glossary (the Chinese names of
  terms) are skipped; its definitions are checked like everything else.
* Every notebook in ``book/`` names its kernel (``kernelspec``) and language
  (``language_info``), so JupyterLab and Colab open it with a Python kernel, unmodified.

The checkers are plain functions; the ``test_checker_*`` tests feed them small bad
inputs to show that each check can fail.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
BIB = REPO / "_references.bib"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
GLOSSARY = BOOK / "appendix" / "glossary.md"
COPY_RUN = 14  # shortest shared CJK run that counts as copying

CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
BIB_ENTRY = re.compile(r"^@(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)
# CJK ideographs (basic + extension A + compatibility) and CJK/full-width punctuation.
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
CJK_RUN = re.compile(f"[{CJK}]{{{COPY_RUN},}}")


# ----------------------------------------------------------------------------- readers
def notebook_text(path: Path) -> str:
    """All text a reader can see in a notebook: cell sources and text outputs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts: list[str] = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        parts.append("".join(src) if isinstance(src, list) else src)
        for out in cell.get("outputs", []):
            text = out.get("text")
            if text:
                parts.append("".join(text) if isinstance(text, list) else text)
            for mime in ("text/plain", "text/markdown", "text/html", "text/latex"):
                value = out.get("data", {}).get(mime)
                if value:
                    parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def markdown_text(path: Path) -> str:
    """Markdown cells only (citations live there), for an .md file or a notebook."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)


def book_pages(root: Path = BOOK) -> list[Path]:
    skip = {".ipynb_checkpoints", "_build"}
    return sorted(
        p for p in root.rglob("*") if p.suffix in (".md", ".ipynb") and not skip & set(p.parts)
    )


def drop_glossary_term_lines(text: str) -> str:
    """Remove the unindented term lines inside a ```{glossary} block (keep definitions)."""
    kept, inside = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```{glossary}") or stripped.startswith(":::{glossary}"):
            inside = True
            kept.append(line)
            continue
        if inside and stripped in ("```", ":::"):
            inside = False
        elif inside and line and not line[0].isspace() and not stripped.startswith(":"):
            continue  # a term line such as "Attention — 注意力"
        kept.append(line)
    return "\n".join(kept)


# ----------------------------------------------------------------------------- checkers
def cited_keys(text: str) -> set[str]:
    keys: set[str] = set()
    for group in CITE_ROLE.findall(text):
        keys.update(k.strip() for k in group.split(",") if k.strip())
    return keys


def bib_entries(bib_text: str) -> list[tuple[str, str]]:
    """(key, entry text) for every entry, in file order."""
    matches = list(BIB_ENTRY.finditer(bib_text))
    entries = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(bib_text)
        entries.append((m.group(2), bib_text[m.start():end]))
    return entries


def entries_without_identifier(entries: list[tuple[str, str]]) -> list[str]:
    field = re.compile(r"(?:^|[,{\s])(doi|eprint|url)\s*=\s*[{\"]\s*\S", re.IGNORECASE)
    return [key for key, body in entries if not field.search(body)]


def duplicate_keys(entries: list[tuple[str, str]]) -> list[str]:
    counts = Counter(key for key, _ in entries)
    return sorted(k for k, n in counts.items() if n > 1)


def notebooks_missing_metadata(paths: list[Path]) -> dict[str, list[str]]:
    """For each notebook that lacks them, the metadata fields it is missing (of kernelspec, language_info)."""
    missing = {}
    for path in paths:
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        lacking = [f for f in ("kernelspec", "language_info") if not metadata.get(f, {}).get("name")]
        if lacking:
            missing[str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name] = lacking
    return missing


def seed_windows(seed_texts: list[str], n: int = COPY_RUN) -> set[str]:
    """Every n-character window of every CJK run in the source documents."""
    windows: set[str] = set()
    for text in seed_texts:
        for run in CJK_RUN.findall(text):
            windows.update(run[i : i + n] for i in range(len(run) - n + 1))
    return windows


def copied_runs(text: str, windows: set[str], n: int = COPY_RUN) -> list[str]:
    """The CJK runs of ``text`` that share at least n consecutive characters with a seed."""
    hits = []
    for run in CJK_RUN.findall(text):
        if any(run[i : i + n] in windows for i in range(len(run) - n + 1)):
            hits.append(run)
    return hits


# ----------------------------------------------------------------------------- the book
@pytest.fixture(scope="module")
def bib() -> list[tuple[str, str]]:
    return bib_entries(BIB.read_text(encoding="utf-8"))


def test_every_cited_key_is_in_the_bibliography(bib):
    known = {key for key, _ in bib}
    missing = {}
    for page in book_pages():
        unknown = cited_keys(markdown_text(page)) - known
        if unknown:
            missing[str(page.relative_to(REPO))] = sorted(unknown)
    assert not missing, f"citation keys missing from _references.bib: {missing}"


def test_every_bib_entry_has_a_doi_eprint_or_url(bib):
    assert bib, "_references.bib has no entries"
    assert entries_without_identifier(bib) == []


def test_no_bib_key_is_defined_twice(bib):
    assert duplicate_keys(bib) == []


def test_every_notebook_has_a_kernelspec_and_language_info():
    notebooks = [p for p in book_pages() if p.suffix == ".ipynb"]
    assert notebooks, f"no notebooks found under {BOOK}"
    missing = notebooks_missing_metadata(notebooks)
    assert not missing, f"notebooks without kernel metadata (field: what is missing): {missing}"


def test_every_notebook_names_the_kernel_ipykernel_installs():
    """JupyterLab rewrites a notebook's kernelspec to the running kernel's on open, marking it modified
    before the reader did anything; naming ipykernel's own spec keeps a notebook unmodified when opened."""
    from ipykernel.kernelspec import get_kernel_dict

    installed = get_kernel_dict()
    expected = {"display_name": installed["display_name"], "language": installed["language"], "name": "python3"}
    other = {str(p.relative_to(BOOK)): json.loads(p.read_text(encoding="utf-8"))["metadata"].get("kernelspec")
             for p in book_pages() if p.suffix == ".ipynb"}
    other = {name: spec for name, spec in other.items() if spec != expected}
    assert not other, f"notebooks whose kernelspec is not {expected}: {other}"


def test_no_source_sentence_is_copied():
    if not SEEDS.is_dir():
        pytest.skip(f"source documents not found at {SEEDS} (they live beside the repository)")
    windows = seed_windows([p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))])
    assert windows, f"no CJK text found in {SEEDS}"
    files = book_pages() + sorted((REPO / "lepton_lib").rglob("*.py"))
    copies = {}
    for path in files:
        text = notebook_text(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
        if path == GLOSSARY:
            text = drop_glossary_term_lines(text)
        hits = copied_runs(text, windows)
        if hits:
            copies[str(path.relative_to(REPO))] = hits[:3]
    assert not copies, f"runs of >= {COPY_RUN} CJK characters copied from the source documents: {copies}"


# ----------------------------------------------------------------------------- the checkers can fail
def test_checker_finds_a_bad_cite_key(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("As shown {cite:p}`vaswani2017attention, nosuchkey2099` and {cite}`another1999x`.\n")
    bib_text = "@article{vaswani2017attention,\n  title = {x},\n  eprint = {1706.03762}\n}\n"
    known = {k for k, _ in bib_entries(bib_text)}
    assert cited_keys(markdown_text(page)) - known == {"nosuchkey2099", "another1999x"}


def test_checker_reads_citations_from_notebook_markdown_only(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["See {cite:t}`good2020a`."], "metadata": {}},
            {"cell_type": "code", "source": "x = '{cite}`notacitation`'", "metadata": {}, "outputs": []},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps(nb))
    assert cited_keys(markdown_text(path)) == {"good2020a"}


def test_checker_finds_entries_without_identifier_and_duplicates():
    bib_text = (
        "@book{a2000, title = {A}, url = {https://example.org}}\n"
        "@article{b2001,\n  title = {B},\n  year = {2001}\n}\n"
        "@misc{a2000, title = {again}, doi = {10.1/xyz}}\n"
    )
    entries = bib_entries(bib_text)
    assert entries_without_identifier(entries) == ["b2001"]
    assert duplicate_keys(entries) == ["a2000"]


def test_checker_finds_notebooks_without_kernel_metadata(tmp_path):
    def write(name: str, metadata: dict) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}))
        return path

    python = {"name": "python", "version": "3.11.7"}
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    good = write("good.ipynb", {"kernelspec": kernel, "language_info": python})
    no_kernel = write("no_kernel.ipynb", {"language_info": python})
    bare = write("bare.ipynb", {})
    missing = notebooks_missing_metadata([good, no_kernel, bare])
    assert missing == {"no_kernel.ipynb": ["kernelspec"], "bare.ipynb": ["kernelspec", "language_info"]}


def test_checker_finds_copied_cjk_runs():
    seed = "前言。这是一个用于测试的很长的中文句子它一共有二十多个汉字。结束"
    windows = seed_windows([seed])
    copied = "The book says: 这是一个用于测试的很长的中文句子它一共 (copied)."
    paraphrase = "这是一个测试。很长的句子，不同的措辞。"
    assert copied_runs(copied, windows) == ["这是一个用于测试的很长的中文句子它一共"]
    assert copied_runs(paraphrase, windows) == []
    # 13 shared characters is below the threshold.
    assert copied_runs("这是一个用于测试的很长的中", windows) == []


def test_checker_skips_only_glossary_term_lines():
    text = "```{glossary}\nAttention — 注意力\n  这是一个用于测试的很长的中文句子它一共有\n```\n"
    kept = drop_glossary_term_lines(text)
    assert "注意力" not in kept and "这是一个用于测试的很长的中文句子它一共有" in kept


def test_every_notebook_installs_what_it_imports_on_colab():
    """The first code cell installs lepton_lib with the ``book`` extra on Colab (every notebook imports myst_nb's
    glue, the widget pages ipywidgets); the extra must hold them."""
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["book"]
    names = {re.split(r"[<>=\[ ]", req, maxsplit=1)[0].lower() for req in extra}
    assert {"myst-nb", "ipywidgets"} <= names, f"pyproject's [book] extra lacks myst-nb or ipywidgets: {extra}"
    wrong = []
    for path in sorted(BOOK.rglob("*.ipynb")):
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        if '"lepton_lib[book] @ git+' not in "".join(first["source"]) or "google.colab" not in "".join(first["source"]):
            wrong.append(str(path.relative_to(REPO)))
    assert wrong == [], f"first code cell does not install lepton_lib[book] on Colab only: {wrong[:5]}"
