"""Widget notebooks, run in a real JupyterLab and driven in headless Chromium.

The test starts JupyterLab from this Python environment on 127.0.0.1 (a free port,
a random token) over a temporary copy of ``book/``, so nothing in the repository
changes; the browser may only talk to that server. For each notebook (a quick set
by default, every notebook whose code uses ipywidgets with LEPTON_LAB_NOTEBOOKS=all)
it opens the notebook, checks that its MyST prose is rendered (jupyterlab-myst:
no raw ``{cite:p}``, ``{doc}`` or ``:::{admonition}`` text), runs all cells, then
moves a control of every cell that shows controls and checks that the displayed
result (the cell's Output widgets) changes. No cell may end with an error output,
the kernel may publish no error (a failing widget callback's included) and the
page may show no dialog.

It records how glued numbers show (jupyterlab-myst has no glue role; the book's own
extension tools/lab/lepton-glue, installed from requirements.txt, pastes the glued values,
and a test below checks that each shows as myst-nb formats it in the book), and checks that
the notebook is not marked modified the moment it opens. Screenshots and ``summary.json`` go to
``_build/screenshots/jupyterlab/`` (printed when the test runs).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, SCREENSHOTS, PageProbe

ARTEFACTS = SCREENSHOTS / "jupyterlab"
BOOK = ROOT / "book"
# A notebook is a widget notebook when a code cell imports ipywidgets (directly or
# through lepton_lib's widget demos).
WIDGET_IMPORT = re.compile(r"^\s*(import ipywidgets|from ipywidgets\b|from lepton_lib\.core import .*\b(live_demo|precomputed_demo)\b)",
                           re.MULTILINE)
START_S = 90  # JupyterLab's server start
RUN_ALL_S = 420  # one notebook, every cell (the heaviest widget notebooks train a small model)
MOVE_S = 60  # a live demo recomputes its result
# MyST that plain JupyterLab shows as text and jupyterlab-myst renders
RAW_MYST = {
    "cite": r"\{cite(:\w+)?\}`",
    "doc": r"\{doc\}`",
    "admonition": r":::\s*\{(admonition|note|tip|warning|important|seealso)\}",
}
GLUE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")  # the role's kind and target: [notebook::]name[:format]
GLUE_S = 60  # lepton-glue pastes the glued values once the prose has rendered


def widget_notebooks() -> list[str]:
    found = []
    for path in sorted(BOOK.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or "_build" in path.parts:
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if any(c["cell_type"] == "code" and WIDGET_IMPORT.search("".join(c["source"])) for c in cells):
            found.append(str(path.relative_to(BOOK)))
    return found


# `make test` runs these three (about 3 minutes on 2 idle cores: precomputed and live demos, sliders,
# dropdowns and number boxes); LEPTON_LAB_NOTEBOOKS="all" runs every widget notebook, or names some
# (paths under book/, separated by spaces). The quick set took 3.7 minutes on 2 busy cores; all ten
# widget notebooks took about 25 minutes with those cores shared by several jobs.
QUICK = ["attention/scaling.ipynb", "background/strategy.ipynb", "foundations/optimizers.ipynb"]


def selected_notebooks() -> list[str]:
    every = widget_notebooks()
    chosen = os.environ.get("LEPTON_LAB_NOTEBOOKS", "").split() or QUICK
    if chosen == ["all"]:
        return every
    unknown = [n for n in chosen if n not in every]
    if unknown:
        raise ValueError(f"LEPTON_LAB_NOTEBOOKS: {unknown} are not widget notebooks under book/; "
                         f"expected 'all' or some of {every}")
    return chosen


NOTEBOOKS = selected_notebooks()
SUMMARY: dict[str, dict] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """User settings for the test's Lab: every cell kept in the DOM (no windowing, so the
    test sees every output) and no news or update checks (nothing leaves the machine)."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for name, content in files.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


class Lab:
    """A JupyterLab server over a temporary copy of book/."""

    def __init__(self, home: Path) -> None:
        self.root = home / "book"
        shutil.copytree(BOOK, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
        _write_settings(home / "settings")
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "lab.log"
        env = os.environ | {
            "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"), "OMP_WAIT_POLICY": "PASSIVE",
        }
        env.pop("JUPYTER_TOKEN", None)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly",  # the default one asks PyPI for extensions
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"JupyterLab did not answer on {self.url} within {START_S} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (it is in requirements.txt)")
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with pytestconfig.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\nJupyterLab test: screenshots and summary.json in {ARTEFACTS}", flush=True)
    try:
        yield server
    finally:
        server.close()


# --- the page side: JupyterLab's own objects, exposed by --LabApp.expose_app_in_browser ----------

PANEL = """path => [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path)"""

OPENED = f"""path => {{
    const panel = ({PANEL})(path);
    if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle';
}}"""

# Every error the kernel publishes from now on, a failing widget callback's included.
LISTEN = f"""path => {{
    window.__kernelErrors = [];
    ({PANEL})(path).sessionContext.session.kernel.iopubMessage.connect((_, msg) => {{
        const c = msg.content;
        if (msg.header.msg_type === 'error') window.__kernelErrors.push(`${{c.ename}}: ${{c.evalue}}`);
        if (msg.header.msg_type === 'stream' && c.name === 'stderr' && /Traceback|Error:/.test(c.text))
            window.__kernelErrors.push(c.text.slice(0, 500));
    }});
}}"""

PROSE = f"""path => {{
    const panel = ({PANEL})(path);
    const cells = panel.content.widgets.filter(c => c.model.type === 'markdown');
    const shown = cells.map(c => c.node.querySelector('.jp-MarkdownOutput, .jp-RenderedMarkdown, .myst'));
    const text = shown.map(n => n?.innerText || '').join('\\n');
    const allText = shown.map(n => n?.textContent || '').join('\\n');  // collapsed dropdowns' text too
    return {{text, allText, dirty: panel.context.model.dirty,
             admonitions: panel.node.querySelectorAll('.jp-MarkdownCell aside, .jp-MarkdownCell .admonition, .jp-MarkdownCell details').length}};
}}"""

# Scroll to the first paragraph with a glued number (the prose screenshot shows how glue renders).
SHOW_GLUED = f"""path => {{
    const cell = ({PANEL})(path).content.widgets.find(c => c.model.type === 'markdown'
        && c.model.sharedModel.getSource().includes('{{glue'));
    if (cell) cell.node.scrollIntoView({{block: 'start'}});
}}"""

RUN_ALL = f"""path => {{
    window.__runDone = null;
    const panel = ({PANEL})(path);
    window.jupyterapp.shell.activateById(panel.id);
    window.jupyterapp.commands.execute('notebook:run-all-cells')
        .then(ok => {{ window.__runDone = {{ok: !!ok}}; }}, e => {{ window.__runDone = {{ok: false, error: String(e)}}; }});
}}"""

STATE = f"""path => {{
    const panel = ({PANEL})(path);
    const errors = [], withControls = [];
    panel.content.widgets.forEach((cell, i) => {{
        if (cell.model.type !== 'code') return;
        for (const out of cell.model.outputs.toJSON())
            if (out.output_type === 'error') errors.push(`cell ${{i}}: ${{out.ename}}: ${{out.evalue}}`);
        if (cell.node.querySelector('.jp-OutputArea .widget-dropdown select, .jp-OutputArea .noUi-handle, '
                                    + '.jp-OutputArea .widget-text input'))
            withControls.push(i);
    }});
    const unrun = panel.content.widgets.filter(c => c.model.type === 'code' && c.model.executionCount === null).length;
    return {{errors, withControls, unrun, kernelErrors: window.__kernelErrors || [],
             dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 300))}};
}}"""

# What a cell displays: the visible text and images of its Output widgets (a Stack shows one child).
SHOWN = f"""([path, i]) => {{
    const node = ({PANEL})(path).content.widgets[i].node;
    const outs = [...node.querySelectorAll('.widget-output')].filter(o => o.offsetParent !== null);
    const imgs = outs.flatMap(o => [...o.querySelectorAll('img')]).filter(im => im.offsetParent !== null)
        .map(im => im.getAttribute('src').length + ':' + im.getAttribute('src').slice(-48));
    return {{outputs: outs.length, text: outs.map(o => o.innerText).join('\\n'), imgs}};
}}"""


def _cell(probe: PageProbe, path: str, index: int):
    """A locator for the notebook's cell ``index`` (marked in the DOM by its index in the panel)."""
    probe.page.evaluate(f"([path, i]) => ({PANEL})(path).content.widgets[i].node.setAttribute('data-test-cell', i)",
                        [path, index])
    return probe.page.locator(f'[data-test-cell="{index}"]')


def _move_a_control(cell) -> str:
    """Move one of the cell's controls to another value and say what was done: the first dropdown,
    slider or number box, else the last text box (its text gets a word more: a first text box is
    often a word that the texts after it must contain)."""
    controls = cell.locator(".jp-OutputArea .widget-dropdown select, .jp-OutputArea .noUi-handle, "
                            ".jp-OutputArea .widget-text input")
    kinds = [controls.nth(i).evaluate(
        "e => e.tagName === 'SELECT' ? 'select' : e.tagName !== 'INPUT' ? 'slider'"
        " : (e.type === 'number' || (e.value.trim() !== '' && !isNaN(Number(e.value)))) ? 'number' : 'text'")
        for i in range(controls.count())]
    pick = next((i for i, kind in enumerate(kinds) if kind != "text"), len(kinds) - 1)
    control, kind = controls.nth(pick), kinds[pick]
    control.scroll_into_view_if_needed()
    if kind == "select":
        current = control.evaluate("e => e.selectedIndex")
        target = (current + 1) % control.locator("option").count()
        control.select_option(index=target)
        return f"dropdown: option {current} -> {target}"
    if kind in ("number", "text"):
        before = control.input_value()
        after = f"{float(before) * 2 if float(before) else 1:g}" if kind == "number" else before + " too"
        control.fill(after)
        control.press("Enter")
        control.press("Tab")
        return f"{kind} box: {before!r} -> {after!r}"
    before = control.get_attribute("aria-valuenow")
    control.focus()
    control.press("ArrowRight")
    if control.get_attribute("aria-valuenow") == before:  # at its maximum
        control.press("ArrowLeft")
    return f"slider: {before} -> {control.get_attribute('aria-valuenow')}"


def glue_roles(notebook: Path) -> list[tuple[str, str]]:
    """The glue roles of the notebook's markdown cells: (kind, target), kind "" for ``{glue}``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [role for c in cells if c["cell_type"] == "markdown" for role in GLUE.findall("".join(c["source"]))]


def stored_glue(notebook: Path) -> dict[str, str]:
    """The ``text/plain`` of every value the notebook's stored outputs glue, by name."""
    found = {}
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            plain = scrapbook and output.get("data", {}).get(scrapbook["mime_prefix"] + "text/plain")
            if plain is not None:
                found[scrapbook["name"]] = "".join(plain) if isinstance(plain, list) else plain
    return found


def book_text(notebook: Path, kind: str, target: str) -> str:
    """What the book (myst-nb) shows for the role ``{glue:kind}`target` `` of ``notebook``."""
    from myst_nb.core.variables import format_plain_text

    key, spec = target, ""
    if kind == "text" and ":" in target and not target.rsplit(":", 1)[0].endswith(":"):
        key, spec = target.rsplit(":", 1)
    source = notebook
    if "::" in key:
        doc, key = key.split("::", 1)
        source = notebook.parent / doc
    values = stored_glue(source)
    if key not in values:
        raise AssertionError(f"{notebook.name}: the role {{glue:{kind}}}`{target}` names {key!r}, which "
                             f"{source.name}'s stored outputs do not glue (they glue {sorted(values)[:5]}...)")
    return format_plain_text(values[key], spec) if kind == "text" else values[key]


def glue_shown(notebook: Path, rendered: str) -> dict:
    """How the notebook's glued numbers show in Lab's rendered prose: each role's target text
    (``as_names``: jupyterlab-myst renders an unknown role as its text) must be gone and the
    value the book shows for it (``book_text``) must be in the prose (``not_shown`` lists those
    that are not)."""
    roles = list(dict.fromkeys(glue_roles(notebook)))
    as_names = [target for _, target in roles if target in rendered]
    not_shown = [f"{target} -> {text!r}" for kind, target in roles
                 if (text := book_text(notebook, kind, target)) not in rendered]
    return {"roles": len(roles), "as_names": len(as_names), "examples": as_names[:3],
            "not_shown": len(not_shown), "not_shown_examples": not_shown[:3]}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_widget_notebook_runs_and_responds_in_jupyterlab(notebook: str, lab: Lab, browser) -> None:
    record: dict = {}
    SUMMARY[notebook] = record
    start = time.monotonic()
    probe = PageProbe(browser, lab.url)
    page = probe.page
    page.set_viewport_size({"width": 1400, "height": 1000})
    stem = notebook.removesuffix(".ipynb").replace("/", "-")
    try:
        page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}", wait_until="load")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=START_S * 1000)
        page.wait_for_function(OPENED, arg=notebook, timeout=START_S * 1000, polling=500)
        page.evaluate(LISTEN, notebook)
        page.wait_for_timeout(1500)  # let every markdown cell render (and any late change mark the model dirty)
        targets = [target for _, target in glue_roles(lab.root / notebook)]
        with contextlib.suppress(Exception):  # not pasted in time: the glue test below reports which
            page.wait_for_function(f"targets => !targets.some(t => ({PROSE})({json.dumps(notebook)}).allText.includes(t))",
                                   arg=targets, timeout=GLUE_S * 1000, polling=500)
        prose = page.evaluate(PROSE, notebook)
        record["modified_on_open"] = prose["dirty"]
        record["raw_myst"] = {k: len(re.findall(p, prose["text"])) for k, p in RAW_MYST.items()}
        record["glue"] = glue_shown(lab.root / notebook, prose["allText"])
        record["rendered_admonitions"] = prose["admonitions"]
        page.evaluate(SHOW_GLUED, notebook)
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTEFACTS / f"{stem}-prose.png"))
        raw = {k: n for k, n in record["raw_myst"].items() if n}
        # a kernelspec other than the one ipykernel installs is rewritten by Lab on open (a modified notebook)
        assert not record["modified_on_open"], f"{notebook}: marked modified as soon as it opened"
        assert not raw, (f"{notebook}: MyST shown as raw text in Lab (counts {raw}); is jupyterlab-myst "
                         "(requirements.txt) installed and enabled?")

        page.evaluate(RUN_ALL, notebook)
        page.wait_for_function("() => window.__runDone", timeout=RUN_ALL_S * 1000, polling=1000)
        done = page.evaluate("() => window.__runDone")
        state = page.evaluate(STATE, notebook)
        record["run_all_s"] = round(time.monotonic() - start, 1)
        assert state["errors"] == [], f"{notebook}: cells ended with errors: {state['errors']}"
        assert done["ok"], f"{notebook}: run all cells failed: {done}"
        assert state["unrun"] == 0, f"{notebook}: {state['unrun']} code cell(s) did not run"
        assert state["withControls"], f"{notebook}: no cell shows a widget control after running all cells"

        record["moved"] = {}
        for index in state["withControls"]:
            cell = _cell(probe, notebook, index)
            before = page.evaluate(SHOWN, [notebook, index])
            assert before["outputs"], f"{notebook}: cell {index} shows controls but no Output widget"
            action = _move_a_control(cell)
            try:
                page.wait_for_function(
                    f"([path, i, before]) => JSON.stringify(({SHOWN})([path, i])) !== before",
                    arg=[notebook, index, json.dumps(before)], timeout=MOVE_S * 1000, polling=250,
                )
            except Exception as error:  # Playwright's TimeoutError, reported with the cell and the action
                raise AssertionError(f"{notebook}: cell {index}, {action}: the displayed result did not change "
                                     f"within {MOVE_S} s (shows {before['text'][:200]!r})") from error
            page.wait_for_timeout(300)
            cell.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTEFACTS / f"{stem}-cell{index}.png"))
            record["moved"][str(index)] = action

        state = page.evaluate(STATE, notebook)
        assert state["kernelErrors"] == [], f"{notebook}: the kernel reported errors: {state['kernelErrors'][:3]}"
        assert state["errors"] == [], f"{notebook}: cells ended with errors: {state['errors']}"
        assert state["dialogs"] == [], f"{notebook}: the page shows a dialog: {state['dialogs']}"
        assert probe.blocked_requests == [], f"{notebook}: requests left the machine: {probe.blocked_requests[:5]}"
        record["console_errors"] = probe.console_errors[:10]
        record["seconds"] = round(time.monotonic() - start, 1)
    finally:
        with contextlib.suppress(Exception):  # the page may be gone; closing the server ends the kernel anyway
            page.evaluate(f"path => ({PANEL})(path)?.sessionContext.shutdown()", notebook)
        probe.close()
        (ARTEFACTS / "summary.json").write_text(json.dumps(SUMMARY, indent=2))


# jupyterlab-myst (2.7.0) has no glue role (jupyter-book/jupyterlab-myst#165): it shows a glued number as the text of
# its role, `name:format`. The book's extension tools/lab/lepton-glue (requirements.txt) pastes the glued values.
def test_glued_numbers_show_as_their_values_in_jupyterlab() -> None:
    """Runs after the notebook tests (file order) and reads what they recorded: in every opened notebook, no glue
    role shows as its name and every glued value shows as the book shows it (the stored ``text/plain`` formatted
    by myst-nb's ``format_plain_text``, cross-notebook roles included)."""
    recorded = {notebook: r["glue"] for notebook, r in SUMMARY.items() if "glue" in r}
    assert recorded, "no notebook was opened in JupyterLab (run the whole module)"
    assert sum(g["roles"] for g in recorded.values()), f"the opened notebooks glue nothing ({recorded}): check more"
    wrong = {notebook: g for notebook, g in recorded.items() if g["as_names"] or g["not_shown"]}
    assert not wrong, (f"glued numbers not shown as their values in Lab ({wrong}); is lepton-glue "
                       "(tools/lab/lepton-glue, requirements.txt) installed? `jupyter labextension list`")
