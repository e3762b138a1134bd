"""Label the bibliography by author and year, as the text cites it.

The text cites author-year (``bibtex_reference_style: author_year``: "Vaswani *et al.*, 2017"),
while pybtex's built-in styles label the bibliography's entries [1], [2], ... or [VSP+17]. This
extension registers the pybtex style ``lepton_author_year`` (``bibtex_default_style`` in
``_config.yml``): the entries and their order are those of pybtex's ``plain`` style (sorted by
author, year, title), and each label is the author-year text the citation shows, "Vaswani et al.,
2017", with a, b, ... after the year where two entries would otherwise share a label. Pages with a
bibliography get a small stylesheet that sets these wider labels on a line of their own.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from docutils.nodes import citation
from pybtex.database import Entry
from pybtex.plugin import find_plugin, register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx

STYLE = "lepton_author_year"
STATIC = Path(__file__).resolve().parent / "static"
CSS = "lepton-bibliography.css"


def author_year(entry: Entry) -> str:
    """ "Vaswani et al., 2017": the names and year that an author-year citation of ``entry`` shows.

    Last names as sphinxcontrib-bibtex's author_year citations write them: one author by name, two
    joined by "and", three or more as the first one and "et al."; the editors when there is no
    author, the title when there is neither.
    """
    persons = entry.persons.get("author") or entry.persons.get("editor")
    if persons:
        last = find_plugin("pybtex.style.names", "last")()
        names = [last.format(person, True).format().render_as("text") for person in persons]
        who = " and ".join(names) if len(names) <= 2 else f"{names[0]} et al."
    else:
        who = entry.rich_fields["title"].render_as("text") if "title" in entry.fields else entry.key
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """pybtex label style: :func:`author_year` labels, made unique with a, b, ... after the year."""

    def format_labels(self, sorted_entries: Iterable[Entry]) -> Iterator[str]:
        labels = [author_year(entry) for entry in sorted_entries]
        shared = {label for label, n in Counter(labels).items() if n > 1}
        seen: Counter = Counter()
        for label in labels:
            if label in shared:
                seen[label] += 1
                label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style (entries sorted by author, year, title) with author-year labels."""

    default_label_style = STYLE


register_plugin("pybtex.style.labels", STYLE, AuthorYearLabels)
register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)


def _add_static_path(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))


def _add_css(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:  # noqa: ANN001
    # By now sphinxcontrib-bibtex has replaced the bibliography directive by docutils citations.
    if doctree is not None and doctree.next_node(citation) is not None:
        app.add_css_file(CSS)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _add_static_path)
    app.connect("html-page-context", _add_css)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
