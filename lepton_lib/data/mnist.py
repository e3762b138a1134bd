"""MNIST, the 28×28 handwritten digits of LeCun et al. (1998, doi:10.1109/5.726791), from its IDX files.

The four ``*-idx?-ubyte.gz`` files are fetched and checked like every other file of the book
(:func:`~lepton_lib.data.download.fetch`: ``$LEPTON_DATA_DIR``, the cache, then the canonical URL).
When the 60,000 training images can be obtained, :func:`load_mnist` returns the official
60,000/10,000 split. When they cannot (offline, and in neither the data directory nor the
cache), it says so and falls back to the 10,000 official *test* images alone: a fixed, seeded,
stratified part of them is used for training and the rest for testing. Any other failure (a
corrupted file, a missing test file) is raised, never papered over.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lepton_lib.core.checks import check_non_negative_int, check_positive_int

from .download import DataUnavailableError, fetch

__all__ = ["IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "MNIST_FILES", "MnistSplit", "read_idx", "load_mnist"]

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, three dimensions (N, rows, columns)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, one dimension (N,)
MNIST_FILES = {
    "train_images": "mnist/train-images-idx3-ubyte.gz",
    "train_labels": "mnist/train-labels-idx1-ubyte.gz",
    "test_images": "mnist/t10k-images-idx3-ubyte.gz",
    "test_labels": "mnist/t10k-labels-idx1-ubyte.gz",
}
SIDE = 28
N_OFFICIAL_TRAIN, N_OFFICIAL_TEST = 60_000, 10_000
FALLBACK_TRAIN_SIZE = 5_000  # test images trained on when the training images are unavailable


@dataclass(frozen=True)
class MnistSplit:
    """Training and test tensors, and which split they come from.

    ``x_*``: float32 of shape (N, 1, 28, 28) in [0, 1]; ``y_*``: int64 of shape (N,) in 0..9;
    ``index_*``: int64 of shape (N,), each example's row in the IDX file it was read from.
    ``split`` is ``"official"`` (training part from the 60,000 training images, test part the
    10,000 test images) or ``"test-images-only"`` (both parts cut from the 10,000 test images,
    because the training images could not be obtained); ``description`` says it in words.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    index_train: torch.Tensor
    index_test: torch.Tensor
    split: Literal["official", "test-images-only"]
    description: str

    @property
    def train(self) -> TensorDataset:
        return TensorDataset(self.x_train, self.y_train)

    @property
    def test(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes and check its header.

    ``magic`` is :data:`IDX_IMAGES_MAGIC` (returns uint8 of shape (N, rows, columns)) or
    :data:`IDX_LABELS_MAGIC` (returns uint8 of shape (N,)). The header's magic number and the
    number of bytes that follow it must match; every error names the file.
    """
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        raise ValueError(f"magic must be {IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels), got {magic!r}")
    path = Path(path)
    with gzip.open(path, "rb") as stream:
        raw = stream.read()
    header_bytes = 4 * (1 + (3 if magic == IDX_IMAGES_MAGIC else 1))  # the magic number, then one size per axis
    if len(raw) >= 4 and (found_magic := int(np.frombuffer(raw[:4], dtype=">u4")[0])) != magic:
        raise ValueError(f"{path}: IDX magic number {found_magic}, expected {magic} "
                         f"({'images' if magic == IDX_IMAGES_MAGIC else 'labels'})")
    if len(raw) < header_bytes:
        raise ValueError(f"{path}: {len(raw)} bytes after decompression, too short for an IDX header "
                         f"of {header_bytes} bytes")
    dims = [int(v) for v in np.frombuffer(raw[4:header_bytes], dtype=">u4")]
    expected = int(np.prod(dims))
    found = len(raw) - header_bytes
    if found != expected:
        raise ValueError(f"{path}: header says {' x '.join(map(str, dims))} = {expected} values, "
                         f"but {found} bytes follow it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims)


def _read_pair(images_name: str, labels_name: str, n: int, **fetch_args) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(fetch(images_name, **fetch_args), IDX_IMAGES_MAGIC)
    labels = read_idx(fetch(labels_name, **fetch_args), IDX_LABELS_MAGIC)
    if images.shape != (n, SIDE, SIDE) or labels.shape != (n,):
        raise ValueError(f"{images_name} and {labels_name}: expected {n} images of {SIDE}x{SIDE} and {n} labels, "
                         f"got images {images.shape} and labels {labels.shape}")
    if labels.max() > 9:
        raise ValueError(f"{labels_name}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels


def _stratified_part(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted rows of a stratified sample of ``size`` of ``labels`` (every class keeps its share)."""
    if size == len(labels):
        return np.arange(len(labels))
    try:
        from sklearn.model_selection import train_test_split
    except ImportError as error:  # scikit-learn is in requirements.txt, not a lepton_lib dependency
        raise ImportError("load_mnist needs scikit-learn for a stratified subset: pip install scikit-learn") from error
    part, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    return np.sort(part)


def _tensors(images: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images[rows].astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return x, torch.from_numpy(labels[rows].astype(np.int64))


def load_mnist(
    train_size: int | None = None,
    seed: int = 0,
    *,
    allow_fallback: bool = True,
    offline: bool | None = None,
    cache: Path | None = None,
) -> MnistSplit:
    """Load MNIST as float32 images in [0, 1] of shape (N, 1, 28, 28) and int64 labels.

    With the training images available (``$LEPTON_DATA_DIR``, the cache, or a download, which
    ``offline``, default ``$LEPTON_OFFLINE``, forbids), the split is the official one: the
    training part is the 60,000 training images, or a stratified sample of ``train_size`` of
    them drawn with ``seed``; the test part is the 10,000 test images.

    Without them, and only then, the split is ``"test-images-only"``: a stratified sample of
    ``train_size`` (default 5,000) of the 10,000 test images, drawn with ``seed``, is the
    training part and the remaining test images are the test part; ``allow_fallback=False``
    raises ``DataUnavailableError`` instead. The returned ``split`` and ``description`` say which.
    """
    check_positive_int("train_size", train_size, allow_none=True)
    check_non_negative_int("seed", seed)
    if not isinstance(allow_fallback, bool):
        raise ValueError(f"allow_fallback must be a bool, got {allow_fallback!r}")
    fetch_args = {"offline": offline, "cache": cache}
    test_images, test_labels = _read_pair(MNIST_FILES["test_images"], MNIST_FILES["test_labels"],
                                          N_OFFICIAL_TEST, **fetch_args)
    try:
        fetch(MNIST_FILES["train_images"], **fetch_args)
    except DataUnavailableError:
        if not allow_fallback:
            raise
        return _test_images_only(test_images, test_labels, train_size, seed)

    if train_size is not None and train_size > N_OFFICIAL_TRAIN:
        raise ValueError(f"train_size must be at most {N_OFFICIAL_TRAIN} (the official training images), "
                         f"got {train_size}")
    train_images, train_labels = _read_pair(MNIST_FILES["train_images"], MNIST_FILES["train_labels"],
                                            N_OFFICIAL_TRAIN, **fetch_args)
    train_rows = _stratified_part(train_labels, train_size or N_OFFICIAL_TRAIN, seed)
    test_rows = np.arange(N_OFFICIAL_TEST)
    description = (f"official split: {len(train_rows):,} of the {N_OFFICIAL_TRAIN:,} training images"
                   + (f" (stratified sample, seed {seed})" if len(train_rows) < N_OFFICIAL_TRAIN else "")
                   + f", tested on the {N_OFFICIAL_TEST:,} official test images")
    return MnistSplit(*_tensors(train_images, train_labels, train_rows), *_tensors(test_images, test_labels, test_rows),
                      torch.from_numpy(train_rows.astype(np.int64)), torch.from_numpy(test_rows.astype(np.int64)),
                      "official", description)


def _test_images_only(images: np.ndarray, labels: np.ndarray, train_size: int | None, seed: int) -> MnistSplit:
    """The fallback split: train on a stratified part of the official test images, test on the rest."""
    train_size = FALLBACK_TRAIN_SIZE if train_size is None else train_size
    if not 10 <= train_size <= N_OFFICIAL_TEST - 10:
        raise ValueError(f"train_size must be in [10, {N_OFFICIAL_TEST - 10}] when only the {N_OFFICIAL_TEST:,} test "
                         f"images are available (both parts need every digit), got {train_size}")
    train_rows = _stratified_part(labels, train_size, seed)
    test_rows = np.setdiff1d(np.arange(N_OFFICIAL_TEST), train_rows)
    description = (f"test images only: the {N_OFFICIAL_TRAIN:,} training images could not be obtained, so "
                   f"{len(train_rows):,} of the {N_OFFICIAL_TEST:,} official test images (stratified sample, "
                   f"seed {seed}) are used for training and the other {len(test_rows):,} for testing")
    return MnistSplit(*_tensors(images, labels, train_rows), *_tensors(images, labels, test_rows),
                      torch.from_numpy(train_rows.astype(np.int64)), torch.from_numpy(test_rows.astype(np.int64)),
                      "test-images-only", description)
