"""Fetch a data file once, verify it, and keep it.

Order of search: ``$LEPTON_DATA_DIR/<name>`` (a prepared copy, as in CI), then
the cache (``$LEPTON_CACHE_DIR``, default the user's cache folder), then the
file's canonical URL. Every file is checked against its sha256 wherever it
comes from. Downloads go through pooch, which writes to a temporary file and
moves it into place only after the hash matches, so an interrupted or
corrupted download never leaves a file that looks valid.
"""
from __future__ import annotations

import os
from pathlib import Path

import pooch
import requests

from lepton_lib.core.files import sha256_of

from .registry import REGISTRY, RemoteFile

__all__ = [
    "DataError", "ChecksumError", "DataUnavailableError", "fetch", "data_dir", "cache_dir",
    "offline_from_env",
]

DATA_DIR_ENV = "LEPTON_DATA_DIR"
CACHE_DIR_ENV = "LEPTON_CACHE_DIR"
OFFLINE_ENV = "LEPTON_OFFLINE"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def offline_from_env() -> bool:
    """``$LEPTON_OFFLINE`` as a boolean: unset, empty, 0/false/no/off mean online; 1/true/yes/on offline."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{OFFLINE_ENV} must be one of {_TRUE} (offline) or {_FALSE} (online), "
                     f"got {os.environ[OFFLINE_ENV]!r}")


class DataError(RuntimeError):
    """Base class for data-loading failures."""


class ChecksumError(DataError):
    """A file's sha256 is not the one the registry expects."""


class DataUnavailableError(DataError):
    """A file is in neither the data directory nor the cache, and cannot be downloaded."""


def data_dir() -> Path | None:
    """The prepared data directory from ``$LEPTON_DATA_DIR``, or ``None``."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are kept: ``$LEPTON_CACHE_DIR`` or the user's cache folder."""
    value = os.environ.get(CACHE_DIR_ENV)
    return Path(value).expanduser() if value else Path(pooch.os_cache("lepton_book"))


def _resolve(file: RemoteFile | str) -> RemoteFile:
    if isinstance(file, RemoteFile):
        return file
    if file not in REGISTRY:
        raise ValueError(f"file must be a RemoteFile or a registered name such as 'cora/ind.cora.x', got {file!r}")
    return REGISTRY[file]


def _verified(path: Path, file: RemoteFile, where: str) -> Path:
    actual = sha256_of(path)
    if actual != file.sha256:
        raise ChecksumError(
            f"{file.name}: sha256 mismatch for {path} ({where}).\n"
            f"  expected {file.sha256}\n  found    {actual}\n"
            f"The file is corrupted or not the published version. Delete it, or point "
            f"{DATA_DIR_ENV} at a folder holding the published file ({file.url})."
        )
    return path


def fetch(file: RemoteFile | str, *, cache: Path | None = None, offline: bool | None = None) -> Path:
    """Return a local, verified path to ``file``, downloading it if needed.

    ``offline`` (default: ``$LEPTON_OFFLINE`` is 1/true/yes/on, see :func:`offline_from_env`) forbids the download step.
    Raises ``ChecksumError`` if a copy has the wrong sha256 and
    ``DataUnavailableError`` if no copy can be found or fetched.
    """
    file = _resolve(file)
    prepared = data_dir()
    if prepared is not None and (prepared / file.name).is_file():
        return _verified(prepared / file.name, file, f"from ${DATA_DIR_ENV}")

    target_dir = (cache or cache_dir()) / Path(file.name).parent
    target = target_dir / Path(file.name).name
    if target.is_file():
        return _verified(target, file, "cached copy")

    if offline is None:
        offline = offline_from_env()
    looked = f"${DATA_DIR_ENV}={prepared}" if prepared is not None else f"${DATA_DIR_ENV} (not set)"
    hint = (
        f"{file.name} was not found in {looked} or the cache {target_dir}.\n"
        f"  url      {file.url}\n  sha256   {file.sha256}\n"
        f"Download it by hand and set {DATA_DIR_ENV} to the folder that holds '{file.name}'."
    )
    if offline:
        raise DataUnavailableError(f"offline (${OFFLINE_ENV} is set): {hint}")
    try:
        path = pooch.retrieve(
            file.url, known_hash=f"sha256:{file.sha256}", fname=target.name, path=target_dir, progressbar=False
        )
    except ValueError as err:  # pooch's hash mismatch; it has already removed the temporary file
        raise ChecksumError(f"{file.name}: the download from {file.url} failed its sha256 check ({err})") from err
    except (requests.exceptions.RequestException, OSError) as err:
        raise DataUnavailableError(f"download failed ({type(err).__name__}: {err}). {hint}") from err
    return Path(path)
