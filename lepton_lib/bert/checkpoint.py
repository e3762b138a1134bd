"""Training checkpoints: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is a directory ``<root>/step-00000100/`` holding

* ``model.safetensors``: the model's ``state_dict``;
* ``optimizer.safetensors``: the optimizer's per-parameter tensors (Adam's moments and steps);
* ``state.json``: the step, the optimizer's hyper-parameters, the scheduler's state, the random
  generators' states (Python, NumPy, torch CPU and CUDA, one set per process), any extra JSON the
  trainer adds (its loss history), and the size and sha256 of both tensor files.

Nothing unsafe is ever deserialised: safetensors holds raw tensors and JSON holds plain data (no
pickle, so no ``torch.load``). Writing is atomic: the files go to a temporary directory, are
flushed to disk, and the directory is renamed into place with ``os.replace``. A crash mid-save
leaves at most a ``*.tmp-*`` directory, which :func:`list_checkpoints` ignores, never a
half-written checkpoint under the real name; re-saving a step moves the old checkpoint aside
(``*.old-<pid>``) for a moment, and a crash then is repaired by the next :func:`latest_checkpoint`
or :func:`save_checkpoint`, which also remove the leftovers of dead processes. Loading checks
sizes and hashes first, so a truncated or corrupted checkpoint raises :class:`CheckpointError`
before anything is modified.
"""
from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lepton_lib.core.files import atomic_write_bytes, fsync_directory, sha256_of

__all__ = [
    "CheckpointError", "capture_rng_state", "restore_rng_state", "save_checkpoint",
    "load_checkpoint", "list_checkpoints", "latest_checkpoint",
]

FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d{8})$")
_LEFTOVER = re.compile(r"^(step-\d{8})\.(old|tmp)-(\d+)?")  # step-N.old-<pid>, step-N.tmp-<pid>-<random>


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted or does not fit the model/optimizer."""


# --- random generators --------------------------------------------------------------------------------


def _tensor_to_text(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _text_to_tensor(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def capture_rng_state() -> dict[str, Any]:
    """Every generator a training step draws from (dropout, shuffling), as JSON-serialisable data."""
    version, keys, position = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(keys), position],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch_cpu": _tensor_to_text(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = [_tensor_to_text(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, keys, position = state["python"]
    random.setstate((version, tuple(keys), position))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_text_to_tensor(state["torch_cpu"]))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_text_to_tensor(s) for s in state["torch_cuda"]])


# --- optimizer state: tensors to safetensors, the rest to JSON ----------------------------------------


def _split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain_state": plain}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["plain_state"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _check_optimizer_fits(path: Path, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Raise ``CheckpointError`` unless ``saved`` (from :func:`_join_optimizer_state`) fits ``optimizer``.

    torch's ``load_state_dict`` compares only the number of parameter groups and of parameters in
    each; per-parameter tensors of the wrong shape (Adam's moments) would be accepted silently.
    """
    groups = [list(group["params"]) for group in optimizer.param_groups]
    saved_groups = [list(group.get("params", [])) for group in saved["param_groups"]]
    if [len(g) for g in groups] != [len(g) for g in saved_groups]:
        raise CheckpointError(
            f"{path}: the optimizer's parameter groups do not fit: the checkpoint has groups of "
            f"{[len(g) for g in saved_groups]} parameters, the optimizer given has {[len(g) for g in groups]}"
        )
    params = {index: param for ids, params in zip(saved_groups, groups) for index, param in zip(ids, params)}
    for index, values in saved["state"].items():
        if index not in params:
            raise CheckpointError(f"{path}: optimizer state for parameter {index}, which no parameter group holds")
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[index].shape:
                raise CheckpointError(
                    f"{path}: optimizer state {key!r} of parameter {index} has shape {tuple(value.shape)}, "
                    f"the optimizer's parameter has shape {tuple(params[index].shape)}"
                )


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP/DataParallel wrapper (only those: any model may have a ``module`` attribute)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


# --- crash windows: a save interrupted between its two renames, and leftovers -----------------------


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not saving right now (saves are not concurrent within a process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _recover(root: Path) -> None:
    """Repair what an interrupted :func:`save_checkpoint` of a dead process left under ``root``.

    A crash between the two renames leaves ``step-N.old-<pid>`` and no ``step-N``: the old
    checkpoint is renamed back. A ``step-N.old-<pid>`` next to a ``step-N`` and any ``.tmp-``
    directory of a dead process are removed. Leftovers of a live process are not touched.
    """
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        match = _LEFTOVER.match(path.name)
        if not match or not path.is_dir() or (match[3] is not None and _alive(int(match[3]))):
            continue
        final = root / match[1]
        if match[2] == "old" and not final.exists():
            try:
                _read_verified(path)
            except CheckpointError:
                continue  # not a complete checkpoint: leave it for a person to look at
            try:
                os.replace(path, final)
            except OSError:  # another process (a DDP rank) recovered it first
                continue
            fsync_directory(root)
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- save and load ------------------------------------------------------------------------------------


def save_checkpoint(
    root: str | Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    extra: dict | None = None,
    rng_states: list[dict] | None = None,
) -> Path:
    """Save everything needed to continue training exactly; return the checkpoint directory.

    ``rng_states`` holds one :func:`capture_rng_state` per process (default: this process only).
    An existing checkpoint of the same step is replaced (the new one is complete before the swap).
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _recover(root)  # an earlier crash's leftovers: restore a displaced checkpoint, remove the rest
    final = root / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{final.name}.tmp-{os.getpid()}-"))
    old = root / f"{final.name}.old-{os.getpid()}"
    try:
        files = {"model.safetensors": {k: v.detach().contiguous().cpu() for k, v in _unwrap(model).state_dict().items()}}
        meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "step": step}
        if optimizer is not None:
            files["optimizer.safetensors"], meta["optimizer"] = _split_optimizer_state(optimizer)
        if scheduler is not None:
            meta["scheduler"] = scheduler.state_dict()
        meta["rng"] = rng_states if rng_states is not None else [capture_rng_state()]
        meta["extra"] = extra or {}
        meta["files"] = {}
        for name, tensors in files.items():
            save_file(tensors, str(tmp / name), metadata={"step": str(step)})
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
            meta["files"][name] = {"bytes": (tmp / name).stat().st_size, "sha256": sha256_of(tmp / name)}
        atomic_write_bytes(tmp / "state.json", json.dumps(meta, indent=1).encode())
        fsync_directory(tmp)
        if final.exists():  # re-saving a step (after resuming from an earlier one): swap, then drop the old
            os.replace(final, old)  # a crash right after this leaves only step-N.old-<pid>: see _recover
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_directory(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():  # failed between the renames: put the old checkpoint back
            os.replace(old, final)
        raise
    return final


def _read_verified(path: Path) -> dict:
    """Read ``state.json`` and check every tensor file against its recorded size and sha256."""
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory")
    try:
        meta = json.loads((path / "state.json").read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: state.json is missing (an incomplete checkpoint)") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}/state.json is truncated or corrupted ({err})") from err
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}/state.json: unknown format, expected format_version {FORMAT_VERSION}")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) and {"bytes", "sha256"} <= v.keys()
                                              for v in files.values()):
        raise CheckpointError(f"{path}/state.json has no valid 'files' entry (name -> bytes, sha256): "
                              f"it was not written by save_checkpoint or was edited")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{file} has {size} bytes, expected {expected['bytes']}: the file is truncated "
                                  f"or was overwritten; load an earlier checkpoint")
        if sha256_of(file) != expected["sha256"]:
            raise CheckpointError(f"{file} does not match its recorded sha256: the file is corrupted; "
                                  f"load an earlier checkpoint")
    return meta


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} cannot be read as safetensors ({err})") from err


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
    rank: int = 0,
) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``, ``scheduler``); return its metadata.

    Everything is verified before anything is changed. ``restore_rng`` sets this process's
    generators to the state process ``rank`` saved. Returns the ``state.json`` dictionary:
    ``meta["step"]`` is the number of completed steps, ``meta["extra"]`` what the trainer added.
    """
    path = Path(path)
    meta = _read_verified(path)
    weights = _load_tensors(path / "model.safetensors")
    target = _unwrap(model)
    expected = target.state_dict()
    if set(weights) != set(expected):
        missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise CheckpointError(f"{path}: the model does not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(tensor.shape)}, the model expects "
                                  f"{tuple(expected[name].shape)}")
    optimizer_state = None
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{path} holds no optimizer state")
        optimizer_state = _join_optimizer_state(_load_tensors(path / "optimizer.safetensors"), meta["optimizer"])
        _check_optimizer_fits(path, optimizer, optimizer_state)
    if scheduler is not None and "scheduler" not in meta:
        raise CheckpointError(f"{path} holds no scheduler state")
    if restore_rng and not 0 <= rank < len(meta["rng"]):
        raise CheckpointError(f"{path} holds random states for {len(meta['rng'])} processes, not for rank {rank}")
    if optimizer_state is not None:  # first: torch may still refuse it, and then nothing has changed
        try:
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{path}: the optimizer does not fit its saved state ({err})") from err
    target.load_state_dict(weights)
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if restore_rng:
        restore_rng_state(meta["rng"][rank])
    return meta


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories under ``root``, oldest first (temporary ``*.tmp-*`` ones excluded)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)), key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest checkpoint that passes verification, or None.

    A checkpoint displaced by a save that crashed between its two renames is recovered first (see
    :func:`save_checkpoint`). A corrupted newer checkpoint is skipped with a warning that names it.
    """
    _recover(Path(root))
    for path in reversed(list_checkpoints(root)):
        try:
            _read_verified(path)
        except CheckpointError as err:
            warnings.warn(f"skipping the corrupted checkpoint {path}: {err}", stacklevel=2)
            continue
        return path
    return None
