"""Count the numbers the book's prose glues and the numbers it types by hand.

    python tools/count_prose_numbers.py            # the working tree
    python tools/count_prose_numbers.py --rev REV  # the book as it was at a git revision
    python tools/count_prose_numbers.py --list     # also list every typed number, page by page

A glued number is a ``{glue:text}`` / ``{glue}`` role. A typed number is a numeral written in a
markdown cell or page outside maths, code, roles, links and headings, that is not a year
(1900-2099), a list or exercise number, or part of a name (BERT-base, GPT-3, L2, ResNet-152).
Many typed numbers are rightly typed (a paper's published result with its citation, a
hyper-parameter the text sets); the count is a map of where to look, not a verdict.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GLUE = re.compile(r"\{glue(?::text)?\}`[^`]+`")
STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code, mermaid, directives
    re.compile(r"\$\$.*?\$\$", re.S),  # display maths
    re.compile(r"\$[^$\n]+\$"),  # inline maths
    re.compile(r"`[^`\n]*`"),  # code spans and the bodies of roles
    re.compile(r"\{[a-z:]+\}"),  # role names
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"<[^>]+>"),  # html tags
    re.compile(r"^#+ .*$", re.M),  # headings
    re.compile(r"^\s*(?:\d+\.|[-*])\s", re.M),  # list markers
    re.compile(r"\b\d{4}\.\d{4,5}\b"),  # arXiv identifiers
    # references into the source documents and the book: "section 4.1", "exercises 2 and 4"
    re.compile(r"(?i)(?:\bsections?|§|\bexercises?|\bsolutions?|\bitems?|\bfigures?|\btables?|"
               r"\bchapters?|\breferences?|\bdocuments?|\bequations?|\beq\.)\s+[\d.]+(?:(?:,\s*|\s+and\s+|-)[\d.]+)*"),
]
NUMERAL = re.compile(r"(?<![\w.\-/])(\d(?:[\d,]*\d)?(?:\.\d+)?)(?![\w\-/])")
YEAR = re.compile(r"^(19|20)\d\d$")


def pages_at(rev: str | None) -> dict[str, str]:
    """Markdown text of every page under book/, at ``rev`` or in the working tree."""
    if rev is None:
        paths = [p for p in (REPO / "book").rglob("*") if p.suffix in (".md", ".ipynb")
                 and ".ipynb_checkpoints" not in p.parts]
        files = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in paths}
    else:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "book"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.split()
        files = {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=REPO, capture_output=True,
                                   text=True, check=True).stdout
                 for n in names if n.endswith((".md", ".ipynb"))}
    result = {}
    for name, text in sorted(files.items()):
        if name.endswith(".ipynb"):
            cells = json.loads(text)["cells"]
            text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        result[name] = text
    return result


def typed_numbers(text: str) -> list[str]:
    for pattern in STRIP:
        text = pattern.sub(" ", text)
    return [n for n in NUMERAL.findall(text) if not YEAR.match(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision (default: the working tree)")
    parser.add_argument("--list", action="store_true", help="list the typed numbers of each page")
    args = parser.parse_args()
    glued, typed = Counter(), Counter()
    for name, text in pages_at(args.rev).items():
        glued[name] = len(GLUE.findall(text))
        numbers = typed_numbers(text)
        typed[name] = len(numbers)
        if args.list and numbers:
            print(f"{name}: {' '.join(numbers)}", flush=True)
    print(f"{args.rev or 'working tree'}: {sum(glued.values())} glued, {sum(typed.values())} typed "
          f"numbers in the prose of {len(glued)} pages")


if __name__ == "__main__":
    main()
