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
REQUIRE_JS = "requirejs/require.js"

# Render every diagram once the page is parsed; draw in the book's own light and dark
# palettes (mermaid's "base" theme; the CSS in _ext/static/lepton-presentation.css turns off
# the theme's inverting filter) and redraw when the reader flips the light/dark switch.
# A diagram is shrunk to the column only until its text reaches MIN_TEXT_PX; past that it
# keeps that size and its block scrolls sideways (tests/browser/test_presentation.py).
MERMAID_START = """
document.addEventListener("DOMContentLoaded", function () {
  var FONT_PX = 16, MIN_TEXT_PX = 12;
  var common = { fontSize: FONT_PX + "px", fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" };
  var palettes = {
    light: { darkMode: false, background: "#ffffff", primaryColor: "#e7edfb", primaryTextColor: "#111827",
             primaryBorderColor: "#3b5bdb", secondaryColor: "#f1f3f5", tertiaryColor: "#f8f9fa",
             lineColor: "#343a40", textColor: "#111827", clusterBkg: "#f8f9fa", clusterBorder: "#868e96",
             edgeLabelBackground: "#ffffff", nodeTextColor: "#111827" },
    dark: { darkMode: true, background: "#14181e", primaryColor: "#1f2b46", primaryTextColor: "#f1f3f5",
            primaryBorderColor: "#91a7ff", secondaryColor: "#2b3035", tertiaryColor: "#1c2128",
            lineColor: "#ced4da", textColor: "#f1f3f5", clusterBkg: "#1c2128", clusterBorder: "#adb5bd",
            edgeLabelBackground: "#2b3035", nodeTextColor: "#f1f3f5" }
  };
  var blocks = Array.prototype.slice.call(document.querySelectorAll("pre.mermaid"));
  blocks.forEach(function (el) { el.dataset.source = el.textContent; });
  function fit() {
    blocks.forEach(function (el) {
      var svg = el.querySelector("svg");
      var box = svg && svg.viewBox && svg.viewBox.baseVal;
      if (!box || !box.width) return;
      svg.style.maxWidth = box.width + "px";
      svg.style.minWidth = Math.min(box.width, box.width * MIN_TEXT_PX / FONT_PX) + "px";
      el.dataset.minTextPx = MIN_TEXT_PX;
    });
  }
  function draw() {
    var dark = document.documentElement.dataset.theme === "dark";
    var vars = Object.assign({}, common, palettes[dark ? "dark" : "light"]);
    mermaid.initialize({ startOnLoad: false, theme: "base", themeVariables: vars, securityLevel: "strict" });
    blocks.forEach(function (el) { el.removeAttribute("data-processed"); el.textContent = el.dataset.source; });
    return mermaid.run({ nodes: blocks }).then(fit);
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


def _add_mermaid(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    from sphinxcontrib.mermaid import mermaid

    if doctree is None or doctree.next_node(mermaid) is None:
        return
    app.add_js_file(MERMAID_JS, defer="defer")  # 2.6 MB: never render-blocking
    app.add_js_file(None, body=MERMAID_START)


def _drop_module_loader(app: Sphinx) -> None:
    from sphinxcontrib.mermaid import install_js

    for listener in list(app.events.listeners["html-page-context"]):
        if listener.handler is install_js:
            app.disconnect(listener.id)


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
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


def _point_widgets_at_vendor(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
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
            files.insert(i, _JavaScript(None, priority=script.priority, body=MATHJAX2_SHIM))
            # `var require = {...}` before require.js is RequireJS's own way to be configured,
            # which lets require.js and the manager load with `defer` (_ext/lepton_assets.py).
            at = next((j for j, s in enumerate(files) if str(getattr(s, "filename", "") or "").endswith(REQUIRE_JS)), i)
            files.insert(at, _JavaScript(None, priority=script.priority, body=f'var require = {{baseUrl: "{vendor}"}};'))
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
