"""Where, when and how a stored result was made: the machine, the date and the exact command."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

__all__ = ["machine_info", "command_line", "provenance"]


def machine_info() -> dict:
    """Where a result was measured: CPU, threads, torch, Python and the git revision."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        revision = "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version(), "git_revision": revision}


def command_line(program: str, argv: list[str] | None = None) -> str:
    """The shell command that ran ``program`` with ``argv`` (default: this process's arguments).

    ``program`` is how a reader starts it from the repository root, e.g. ``"python -m lepton_lib.bert.pretraining_recipe"``
    or ``"python benchmarks/inference.py"``; the arguments are shell-quoted, so the string can be pasted.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    return " ".join([program, *(shlex.quote(str(a)) for a in arguments)])


def provenance(command: str) -> dict:
    """What every stored result records about itself: the exact command, the date and the machine.

    ``recorded`` is today's date (ISO 8601); a notebook shows a stored timing as "measured on
    <machine's cpu>, <recorded>".
    """
    return {"command": command, "recorded": datetime.date.today().isoformat(), "machine": machine_info()}
