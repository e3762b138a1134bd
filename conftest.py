"""Test-session hooks shared by the unit tests and the nbval notebook run."""
from __future__ import annotations

import importlib.util
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

# Notebooks and tests run with the same thread count as CI, so that float
# reductions (and therefore stored outputs) match run after run.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning
# threads steal the cores from the work (a 20x slowdown was measured); no number changes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_seconds_per_notebook: dict[str, float] = defaultdict(float)


def _load_nbval_tolerance():
    """tests/nbval_tolerance.py, importable as ``nbval_tolerance`` (tests/ is no package)."""
    if "nbval_tolerance" in sys.modules:
        return sys.modules["nbval_tolerance"]
    path = Path(__file__).resolve().parent / "tests" / "nbval_tolerance.py"
    spec = importlib.util.spec_from_file_location("nbval_tolerance", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["nbval_tolerance"] = module
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    # Outcomes of training are compared within the tolerance their cell states; see the module.
    if config.pluginmanager.hasplugin("nbval"):
        _load_nbval_tolerance().install()


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: one intra-op thread avoids hand-off costs (and spinning on a busy
    machine). Use with ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# In CI (LEPTON_REQUIRE_ALL=1) a test may be skipped only for want of a CUDA device: a missing package, a
# missing data folder or an unavailable backend there means a broken environment, which must not pass green.
REQUIRE_ALL_ENV = "LEPTON_REQUIRE_ALL"
ALLOWED_SKIP = "needs a CUDA device"


def _skip_is_refused(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    if os.environ.get(REQUIRE_ALL_ENV) != "1" or not report.skipped:
        return None
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if ALLOWED_SKIP in reason:
        return None
    return f"skipped with {REQUIRE_ALL_ENV}=1 (only '{ALLOWED_SKIP}' may skip): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report = outcome.get_result()
    refused = _skip_is_refused(report)
    if refused:  # a module-level importorskip
        report.outcome, report.longrepr = "failed", refused


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    refused = _skip_is_refused(report)
    if refused:
        report.outcome, report.longrepr = "failed", refused


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _seconds_per_notebook[path] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not _seconds_per_notebook:
        return
    tr = terminalreporter
    tr.section("time per notebook (kernel start + every cell)")
    width = max(len(p) for p in _seconds_per_notebook)
    for path, seconds in sorted(_seconds_per_notebook.items()):
        flag = "  <-- over the 5-minute budget" if seconds > 300 else ""
        tr.write_line(f"{path:<{width}}  {seconds:7.1f} s{flag}")
    tr.write_line(f"{'total':<{width}}  {sum(_seconds_per_notebook.values()):7.1f} s")
