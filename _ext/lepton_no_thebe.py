"""Leave Thebe out of the book: no "Live Code" button, no Thebe script or configuration on any page.

Thebe runs a page's code on a kernel that it asks mybinder.org for, after loading its own
JavaScript from a CDN (unpkg.com). Neither exists for a reader offline, who saw "Loading thebe
from CDN..." forever; serving Thebe's files from the book would not help, since the kernel still
comes from the network. The book's launch buttons (Binder, Colab, the notebook download) remain:
they are links, which fetch nothing until a reader follows one.

``launch_buttons: thebe`` is off in ``_config.yml``, which removes the button. jupyter-book still
loads the sphinx-thebe extension, which would add its CDN address, its script and stylesheet, and a
Binder configuration to every page; this extension disconnects it before the build starts.
"""
from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config

THEBE_MODULE = "sphinx_thebe"
THEBE_CSS = "sphinx-thebe.css"


def _disconnect_thebe(app: Sphinx, config: Config) -> None:
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "") == THEBE_MODULE:
                app.disconnect(listener.id)
    app.registry.css_files[:] = [(name, attrs) for name, attrs in app.registry.css_files if name != THEBE_CSS]


def setup(app: Sphinx) -> dict:
    # config-inited: every extension is loaded (sphinx-thebe included) and no builder exists yet.
    app.connect("config-inited", _disconnect_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
