"""Data: verified downloads (``fetch``) and dataset loaders.

Loaders read ``$LEPTON_DATA_DIR`` first (CI points it at a prepared copy),
then a cache, then the file's canonical URL, checking every file's sha256.
"""
from .download import ChecksumError, DataError, DataUnavailableError, cache_dir, data_dir, fetch
from .digits import DigitsSplit, load_digits_split
from .movielens import load_movielens_100k
from .registry import REGISTRY, RemoteFile
from .tabular import load_breast_cancer, load_german_credit

__all__ = [
    "ChecksumError",
    "DataError",
    "DataUnavailableError",
    "DigitsSplit",
    "REGISTRY",
    "RemoteFile",
    "cache_dir",
    "data_dir",
    "fetch",
    "load_breast_cancer",
    "load_digits_split",
    "load_german_credit",
    "load_movielens_100k",
]
