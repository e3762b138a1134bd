"""Load each heavy script only on the pages that use it, and never render-blocking.

A plain page of the book should cost its reader little more than its own text (issue 19:
under 1.5 MB on first load, tests/browser/test_presentation.py). Left to themselves, the
theme and extensions put on every page:

* MathJax (1.2 MB), because jupyter-book sets Sphinx's asset policy to "always": here it
  stays only on pages with math (a ``math`` element or TeX delimiters) or with widgets
  (whose labels may hold math);
* the widget manager (3.6 MB) and require.js, added by myst-nb on pages with widget state,
  in ``<head>`` without ``defer``: here they are deferred (``_ext/lepton_offline.py``
  configures require.js so that this works);
* fontawesome.js (1.5 MB) and the search index (0.3 MB): see ``_ext/templates/layout.html``.
  The icons come from the Font Awesome web fonts in the theme's stylesheet instead, and the
  index loads only on the search page, where the search box sends its query.

Mermaid is added per page, deferred, by ``_ext/lepton_offline.py``. This extension also adds
the book's presentation stylesheet (diagrams, print).
"""
from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).resolve().parent / "static"
CSS = "lepton-presentation.css"
WIDGET_MANAGER = "html-manager/dist/embed-amd.js"
# Scripts that may be deferred: none of them is needed before the page is parsed.
DEFERRED = ("requirejs/require.js", WIDGET_MANAGER, "vendor/mermaid/dist/mermaid.min.js")
# What MathJax typesets: Sphinx's math elements, or TeX delimiters in cell outputs.
MATH = re.compile(r'class="[^"]*\bmath\b|\\\(|\\\[|\$\$')


def _filename(script) -> str:
    return str(getattr(script, "filename", script) or "")


def _needs_mathjax(body: str, scripts: list) -> bool:
    return bool(MATH.search(body)) or any(_filename(s).endswith(WIDGET_MANAGER) for s in scripts)


def _trim_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    from sphinx.builders.html._assets import _JavaScript

    scripts = context.get("script_files")
    if scripts is None:
        return
    mathjax = app.config.mathjax_path
    keep_math = _needs_mathjax(context.get("body", ""), scripts)
    kept = []
    for script in scripts:
        name = _filename(script)
        body = str(getattr(script, "attributes", {}).get("body", ""))
        if not keep_math and (name.split("?")[0].endswith(mathjax) or body.startswith("window.MathJax")):
            continue
        attributes = dict(getattr(script, "attributes", {}))
        if name.endswith(DEFERRED) and "defer" not in attributes and "async" not in attributes:
            attributes["defer"] = "defer"
            script = _JavaScript(script.filename, priority=script.priority, **attributes)
        kept.append(script)
    scripts[:] = kept  # in place: the template reads this same list


def _add_static(app: Sphinx) -> None:
    if str(STATIC) not in map(str, app.config.html_static_path):
        app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _add_static)
    app.add_css_file(CSS)
    # Last: after myst-nb (500) and _ext/lepton_offline.py (600) have added their scripts.
    app.connect("html-page-context", _trim_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
