"""Serve the book's diagrams, math and widgets from its own static files.

sphinxcontrib-mermaid loads mermaid as an ES module, which browsers refuse to
import from ``file://`` pages: a book unzipped and opened from disk would lose
its diagrams. This extension replaces that loader with mermaid's classic
(UMD) build plus a small start-up script, both under ``_static/vendor``
(fetched by ``tools/fetch_web_assets.py``). MathJax and the widget manager are
pointed at the same folder in ``_config.yml``.
"""
from __future__ import annotations

from sphinx.application import Sphinx

MERMAID_JS = "vendor/mermaid/dist/mermaid.min.js"

# Render every diagram once the page is parsed; draw in the theme's colours and
# redraw when the reader flips the light/dark switch.
MERMAID_START = """
document.addEventListener("DOMContentLoaded", function () {
  var blocks = Array.prototype.slice.call(document.querySelectorAll("pre.mermaid"));
  blocks.forEach(function (el) { el.dataset.source = el.textContent; });
  function draw() {
    var dark = document.documentElement.dataset.theme === "dark";
    mermaid.initialize({ startOnLoad: false, theme: dark ? "dark" : "default", securityLevel: "strict" });
    blocks.forEach(function (el) { el.removeAttribute("data-processed"); el.textContent = el.dataset.source; });
    return mermaid.run({ nodes: blocks });
  }
  draw();
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
});
"""


def _add_mermaid(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:  # noqa: ANN001
    from sphinxcontrib.mermaid import mermaid

    if doctree is None or doctree.next_node(mermaid) is None:
        return
    app.add_js_file(MERMAID_JS)
    app.add_js_file(None, body=MERMAID_START)


def _drop_module_loader(app: Sphinx) -> None:
    from sphinxcontrib.mermaid import install_js

    for listener in list(app.events.listeners["html-page-context"]):
        if listener.handler is install_js:
            app.disconnect(listener.id)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinxcontrib.mermaid")
    app.connect("builder-inited", _drop_module_loader)
    app.connect("html-page-context", _add_mermaid)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
