"""With LEPTON_REQUIRE_ALL=1 (as in CI) only a missing CUDA device may skip a test; any other skip fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPING_TESTS = '''
import pytest

def test_missing_data():
    pytest.skip("needs $LEPTON_DATA_DIR")

@pytest.mark.gpu
def test_on_a_gpu():
    pass

def test_fine():
    pass
'''
SKIPPING_MODULE = 'import pytest\nmissing = pytest.importorskip("no_such_module_for_lepton")\n\ndef test_x():\n    pass\n'


def _run(tmp_path: Path, source: str, require_all: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(source)
    env = os.environ | {"PYTHONPATH": str(ROOT), "LEPTON_REQUIRE_ALL": "1" if require_all else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "-rs",
                           str(tmp_path / "test_sample.py"), "-W", "ignore"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


def test_a_skip_for_missing_data_fails_when_everything_is_required(tmp_path):
    result = _run(tmp_path, SKIPPING_TESTS, require_all=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout and "needs $LEPTON_DATA_DIR" in result.stdout
    if not __import__("torch").cuda.is_available():
        assert "1 skipped" in result.stdout  # the GPU test may still skip


def test_a_module_level_importorskip_fails_when_everything_is_required(tmp_path):
    result = _run(tmp_path, SKIPPING_MODULE, require_all=True)
    assert result.returncode != 0 and "no_such_module_for_lepton" in result.stdout, result.stdout


def test_skips_stay_skips_for_a_reader(tmp_path):
    result = _run(tmp_path, SKIPPING_TESTS, require_all=False)
    assert result.returncode == 0, result.stdout
    module = _run(tmp_path, SKIPPING_MODULE, require_all=False)
    assert module.returncode == 5 and "1 skipped" in module.stdout, module.stdout  # 5: nothing left to run
