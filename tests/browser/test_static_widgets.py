"""Widget demos respond in the built book with no kernel and no network.

Each demo is a ``lepton_lib.core.precomputed_demo``: one stored result per grid
setting, each an Output with the CSS class ``lepton-setting-<i>-<j>...`` (the index
of every control's value), in stacks that the controls switch through front-end
links. Here every control is moved to other grid values in headless Chromium and
the result shown must change and equal what the notebook stored for that setting.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lepton_lib.core import SETTING_CLASS

from .conftest import HTML, ROOT, PageProbe
from .test_offline_book import render

# page -> the index of each control's starting value (the value the prose names)
DEMOS = {
    "book/attention/positional": (3, 2),  # d = 128 of 16..256, base 10000 of 100..100000 (the figure above it)
    "book/attention/scaling": (14,),  # c = 1/sqrt(64) = 2**-3, the 15th of 2**(k/4), k = -26..6
    "book/attention/train-tiny-transformer": (0, 1, 0),  # the best head (layer 1, head 2), the first prompt
    "book/background/scaling-and-cost": (1, 1, 1, 3),  # 7B params, 2000B tokens, 1024 GPUs, ZeRO stage 3
    "book/background/strategy": (1, 2, 1),  # 2 dollars per GPU-hour, 1000 tokens/s, 50% busy
    "book/bert/idea": (0,),  # "bank", the word of the table above it
    "book/cases/recommendation": (0,),  # user 1 of users 1..40
    "book/foundations/optimizers": (3, 2, 2, 1),  # adam, rosenbrock (surfaces sorted), lr 0.05, momentum 0.9
    "book/gnn/karate": (13,),  # epoch 300, the last of 14
    "book/scale/distributed": (1, 1, 3, 0, 0),  # 7B params, 8 GPUs, ZeRO stage 3, adam, mixed precision
}
SHOWN = f"""() => [...document.querySelectorAll('[class*="{SETTING_CLASS}-"]')].map(e => {{
    const cls = [...e.classList].find(c => c.startsWith('{SETTING_CLASS}-'));
    const img = e.querySelector('img');
    return {{cls, img: img ? img.getAttribute('src') : null, text: e.innerText.trim(),
             visible: e.offsetParent !== null}};
}})"""


def stored_results(notebook: Path) -> dict[str, tuple[str | None, str]]:
    """Setting class -> (PNG as base64, text) from the notebook's saved widget state."""
    state = json.loads(notebook.read_text())["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    results = {}
    for model in state["state"].values():
        classes = [c for c in model["state"].get("_dom_classes", []) if c.startswith(SETTING_CLASS + "-")]
        if model["model_name"] != "OutputModel" or not classes:
            continue
        png, text = None, ""
        for out in model["state"]["outputs"]:
            if out["output_type"] == "stream":
                text += out["text"]
            else:
                png = png or out["data"].get("image/png")
        results[classes[0]] = (re.sub(r"\s", "", png) if png else None, text.strip())
    return results


def setting_class(index: tuple[int, ...]) -> str:
    return SETTING_CLASS + "-" + "-".join(map(str, index))


def shown(probe: PageProbe) -> dict:
    found = probe.page.evaluate(SHOWN)
    assert len(found) == 1, f"expected one demo result on the page, found {found}"
    assert found[0]["visible"], "the demo's result is hidden"
    return found[0]


def assert_shows(probe: PageProbe, stored: dict, index: tuple[int, ...]) -> dict:
    """Wait until the page shows the result for ``index`` and compare it with the stored one."""
    name = setting_class(index)
    probe.page.wait_for_function(
        f"() => [...document.querySelectorAll('.{name}')].some(e => e.offsetParent !== null)", timeout=10_000
    )
    now = shown(probe)
    assert now["cls"] == name
    png, text = stored[name]
    if png:
        assert now["img"] == "data:image/png;base64," + png, f"{name}: the image is not the stored one"
    else:
        assert now["text"] == text, f"{name}: shows {now['text']!r}, stored {text!r}"
    return now


def controls(probe: PageProbe):
    """The demo's controls in order: ('slider', handle) or ('select', element)."""
    row = probe.page.locator(".widget-hbox").filter(has=probe.page.locator(".widget-slider, .widget-dropdown")).first
    found = []
    for i in range(row.locator(":scope > *").count()):
        child = row.locator(":scope > *").nth(i)
        if child.locator("select").count():
            found.append(("select", child.locator("select")))
        else:
            found.append(("slider", child.locator(".noUi-handle")))
    return found


def move(kind: str, control, target: int, current: int) -> None:
    if kind == "select":
        control.select_option(index=target)
        return
    control.focus()
    key = "ArrowRight" if target > current else "ArrowLeft"
    for _ in range(abs(target - current)):
        control.press(key)


@pytest.mark.parametrize("transport", ["http", "file"])
@pytest.mark.parametrize("page", sorted(DEMOS))
def test_every_control_switches_to_the_stored_result(page: str, transport: str, browser, book_url: str) -> None:
    stored = stored_results(ROOT / f"{page}.ipynb")
    start = DEMOS[page]
    assert setting_class(start) in stored, f"{page}: no stored result for the starting setting {start}"
    url = f"{book_url}/{page}.html" if transport == "http" else (HTML / f"{page}.html").as_uri()
    probe = PageProbe(browser, book_url if transport == "http" else "file://")
    try:
        render(probe, url)
        index = list(start)
        before = assert_shows(probe, stored, tuple(index))
        found = controls(probe)
        assert len(found) == len(start), f"{page}: expected {len(start)} controls, found {len(found)}"
        sizes = {}
        for name in stored:
            for k, i in enumerate(map(int, name.rsplit(SETTING_CLASS + "-", 1)[1].split("-"))):
                sizes[k] = max(sizes.get(k, 0), i + 1)
        for k, (kind, control) in enumerate(found):
            n = sizes[k]
            assert n >= 2, f"{page}: control {k} has a single value"
            # two moves, each to another value: one step on, then one more (back, for two values)
            targets = [(index[k] + 1) % n, (index[k] + 2) % n]
            for target in targets:
                move(kind, control, target, index[k])
                index[k] = target
                now = assert_shows(probe, stored, tuple(index))
                assert (now["img"], now["text"]) != (before["img"], before["text"]), f"{page}: moving control {k} changed nothing"
                before = now
        assert probe.console_errors == [], f"{page} logged errors: {probe.console_errors[:5]}"
        assert probe.blocked_requests == [], f"{page} tried to reach the network: {probe.blocked_requests[:5]}"
    finally:
        probe.close()


def test_every_page_with_a_precomputed_demo_is_checked() -> None:
    """A page that stores per-setting results must be in DEMOS, with the starting setting the page stores."""
    pages = {}
    for notebook in sorted((ROOT / "book").rglob("*.ipynb")):
        page = str(notebook.relative_to(ROOT).with_suffix(""))
        state = json.loads(notebook.read_text()).get("metadata", {}).get("widgets", {})
        if SETTING_CLASS + "-" in json.dumps(state):
            pages[page] = notebook
    assert sorted(pages) == sorted(DEMOS), f"pages with a precomputed demo {sorted(pages)}, checked {sorted(DEMOS)}"
    for page, notebook in pages.items():
        assert setting_class(DEMOS[page]) in stored_results(notebook), f"{page}: no stored result for {DEMOS[page]}"
