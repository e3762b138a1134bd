"""MovieLens 100K (Harper & Konstan 2015, doi:10.1145/2827872): 100,000 ratings of 1,682 films by 943 users.

GroupLens's terms forbid redistributing the data, so the book never ships it: the loader reads
``$LEPTON_DATA_DIR/movielens_100k/`` (a copy you obtained yourself), then the cache, and
otherwise downloads GroupLens's own zip into the cache and extracts the three files it needs.
Every file is checked against the sha256 of the published version wherever it comes from.

* ``u.data``: ``user \\t item \\t rating \\t timestamp``, ids from 1;
* ``u.item``: ``id|title|release date|video release date|IMDb URL|`` + 19 genre flags (Latin-1);
* ``u.user``: ``id|age|gender|occupation|zip``.

Ids are shifted to start at 0.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import requests

from .download import OFFLINE_ENV, DataUnavailableError, cache_dir, fetch, offline_from_env
from .registry import RemoteFile

__all__ = ["MOVIELENS_100K_URL", "MOVIELENS_100K_FILES", "MovieLens100K", "load_movielens_100k"]

MOVIELENS_100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MOVIELENS_100K_FILES = {  # sha256 of the members of GroupLens's zip (see shared/data/movielens_100k/SOURCE.md)
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


@dataclass(frozen=True)
class MovieLens100K:
    """Ratings as parallel arrays (0-based ids), with the films' and users' attributes."""

    users: np.ndarray  # (100000,) int64 in [0, 943)
    items: np.ndarray  # (100000,) int64 in [0, 1682)
    ratings: np.ndarray  # (100000,) int64 in 1..5
    timestamps: np.ndarray  # (100000,) int64, seconds since 1970
    titles: list[str]  # 1,682 film titles with their year, e.g. "Toy Story (1995)"
    genres: np.ndarray  # (1682, 19) bool, columns in the order of GENRES
    user_age: np.ndarray  # (943,) int64
    user_gender: list[str]  # "M" or "F"
    user_occupation: list[str]

    @property
    def num_users(self) -> int:
        return len(self.user_age)

    @property
    def num_items(self) -> int:
        return len(self.titles)


def _remote(member: str, url: str) -> RemoteFile:
    return RemoteFile(f"movielens_100k/{member}", url, MOVIELENS_100K_FILES[member])


def _download_into_cache(url: str, cache: Path) -> None:
    """Download GroupLens's zip into ``cache`` and extract the members we use next to it."""
    target_dir = cache / "movielens_100k"
    try:
        # No known_hash: GroupLens may re-zip the archive; each extracted member is checked instead.
        archive = Path(pooch.retrieve(url, known_hash=None, fname="ml-100k.zip", path=target_dir, progressbar=False))
    except (requests.exceptions.RequestException, OSError) as err:
        raise DataUnavailableError(
            f"MovieLens 100K: the download from {url} failed ({type(err).__name__}: {err}). GroupLens's licence "
            f"forbids redistributing it, so fetch ml-100k.zip from https://grouplens.org/datasets/movielens/100k/ "
            f"yourself, unzip it and set LEPTON_DATA_DIR to a folder holding movielens_100k/u.data, u.item, u.user."
        ) from err
    with zipfile.ZipFile(archive) as zipped:
        for member in MOVIELENS_100K_FILES:
            (target_dir / member).write_bytes(zipped.read(f"ml-100k/{member}"))


def _path(member: str, url: str, cache: Path, offline: bool) -> Path:
    """A verified local copy of one member: data directory, cache, else the zip (unless offline)."""
    remote = _remote(member, url)
    try:
        return fetch(remote, cache=cache, offline=True)  # data directory, then cache, sha256 checked
    except DataUnavailableError:
        if offline:
            raise DataUnavailableError(
                f"MovieLens 100K is not available offline: {remote.name} is in neither $LEPTON_DATA_DIR nor the "
                f"cache {cache / 'movielens_100k'}, and ${OFFLINE_ENV} forbids downloading {url}. GroupLens's licence "
                f"forbids redistribution, so the book cannot ship it: download it from "
                f"https://grouplens.org/datasets/movielens/100k/ and point LEPTON_DATA_DIR at it."
            ) from None
    _download_into_cache(url, cache)
    return fetch(remote, cache=cache, offline=True)  # the extracted copy, now checked against its sha256


def load_movielens_100k(*, url: str = MOVIELENS_100K_URL, cache: Path | None = None,
                        offline: bool | None = None) -> MovieLens100K:
    """Load MovieLens 100K, checking each file's sha256; see the module docstring for where it looks.

    Raises ``ChecksumError`` for a file that is not the published one and
    ``DataUnavailableError`` when no copy exists and downloading is impossible or forbidden
    (``offline``, default: ``$LEPTON_OFFLINE`` is 1/true/yes/on).
    """
    cache = cache or cache_dir()
    if offline is None:
        offline = offline_from_env()
    paths = {member: _path(member, url, cache, offline) for member in MOVIELENS_100K_FILES}

    ratings = np.loadtxt(paths["u.data"], dtype=np.int64, delimiter="\t")
    if ratings.ndim != 2 or ratings.shape[1] != 4:
        raise ValueError(f"u.data must have 4 tab-separated columns, got shape {ratings.shape}")
    titles, genres = [], []
    for line in paths["u.item"].read_text(encoding="latin-1").split("\n"):
        if line.strip():
            fields = line.split("|")
            titles.append(fields[1])
            genres.append([flag == "1" for flag in fields[5:]])
    ages, genders, occupations = [], [], []
    for line in paths["u.user"].read_text(encoding="latin-1").split("\n"):
        if line.strip():
            _, age, gender, occupation, _ = line.split("|")
            ages.append(int(age))
            genders.append(gender)
            occupations.append(occupation)
    return MovieLens100K(
        users=ratings[:, 0] - 1, items=ratings[:, 1] - 1, ratings=ratings[:, 2], timestamps=ratings[:, 3],
        titles=titles, genres=np.array(genres, dtype=bool), user_age=np.array(ages, dtype=np.int64),
        user_gender=genders, user_occupation=occupations,
    )
