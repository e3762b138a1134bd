"""lepton-glue: a JupyterLab extension that shows myst-nb glued values in rendered Markdown cells.

The extension is prebuilt (``labextension/``, committed); installing this package puts it in
``share/jupyter/labextensions/lepton-glue``, where JupyterLab finds it. Nothing here runs in Python.
"""


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "lepton-glue"}]
