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


# The widget manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`;
# the book loads MathJax 3, so forward that call to MathJax 3's typesetter.
MATHJAX2_SHIM = """
window.addEventListener("DOMContentLoaded", function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = { Queue: function (job) {
      var el = job && job[2];
      if (el && MathJax.startup && MathJax.startup.promise) {
        MathJax.startup.promise.then(function () { return MathJax.typesetPromise([el]); });
      }
    } };
  }
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


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:  # noqa: ANN001
    # sphinx-thebe registers its inline config twice under jupyter-book, and a
    # second `const THEBE_JS_URL` is a SyntaxError in the browser console.
    seen: set = set()
    unique = []
    for script in context.get("script_files", []):
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers append to this same list


def _point_widgets_at_vendor(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:  # noqa: ANN001
    # The widget manager is a set of AMD modules named "@jupyter-widgets/..."; its fonts
    # are found relative to the URL require.js gives those modules, i.e. relative to
    # require's baseUrl. Point baseUrl (and the manager's module "CDN") at the vendor
    # folder, relative to each page, so they resolve to the vendored copy.
    from sphinx.builders.html._assets import _JavaScript

    files = context.get("script_files", [])
    for i, script in enumerate(files):
        if str(getattr(script, "filename", "") or "").endswith("html-manager/dist/embed-amd.js"):
            vendor = context["pathto"]("_static/vendor/", resource=True)
            attributes = dict(script.attributes)
            attributes["data-jupyter-widgets-cdn"] = vendor
            files[i] = _JavaScript(script.filename, priority=script.priority, **attributes)
            files.insert(i, _JavaScript(None, priority=script.priority,
                                        body=f'require.config({{baseUrl: "{vendor}"}});' + MATHJAX2_SHIM))
            return


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinxcontrib.mermaid")
    app.connect("builder-inited", _drop_module_loader)
    app.connect("html-page-context", _add_mermaid)
    # Early: a later handler may return a template name, which ends the event.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    # Late: myst-nb adds the widget scripts to a page at the default priority (500).
    app.connect("html-page-context", _point_widgets_at_vendor, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
