"""MNIST: IDX parsing, the fallback split when the training images are absent, and the two models."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lepton_lib.data import (
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, MNIST_FILES, REGISTRY, DataUnavailableError, load_mnist, read_idx,
)
from lepton_lib.foundations import MnistCNN, MnistMLP

PREPARED = os.environ.get("LEPTON_DATA_DIR")
needs_data = pytest.mark.skipif(
    not PREPARED or not (Path(PREPARED) / MNIST_FILES["test_images"]).is_file(),
    reason="LEPTON_DATA_DIR does not hold the MNIST test files")
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official test set


def write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> Path:
    header = np.array([magic, *dims], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as stream:
        stream.write(header + payload)
    return path


# ---------------------------------------------------------------- IDX parsing


def test_read_idx_parses_images_and_labels(tmp_path: Path) -> None:
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8)
    images = read_idx(write_idx(tmp_path / "i.gz", IDX_IMAGES_MAGIC, (2, 3, 4), pixels.tobytes()), IDX_IMAGES_MAGIC)
    assert images.shape == (2, 3, 4) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, pixels.reshape(2, 3, 4))
    labels = read_idx(write_idx(tmp_path / "l.gz", IDX_LABELS_MAGIC, (3,), bytes([7, 0, 9])), IDX_LABELS_MAGIC)
    assert labels.tolist() == [7, 0, 9]


def test_read_idx_rejects_wrong_magic_naming_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels-as-images.gz", IDX_LABELS_MAGIC, (3,), bytes(3))
    with pytest.raises(ValueError, match=r"labels-as-images\.gz: IDX magic number 2049, expected 2051"):
        read_idx(path, IDX_IMAGES_MAGIC)


@pytest.mark.parametrize("payload_bytes", [23, 25])
def test_read_idx_rejects_a_size_mismatch(tmp_path: Path, payload_bytes: int) -> None:
    path = write_idx(tmp_path / "short.gz", IDX_IMAGES_MAGIC, (2, 3, 4), bytes(payload_bytes))
    with pytest.raises(ValueError, match=rf"short\.gz: header says 2 x 3 x 4 = 24 values, but {payload_bytes}"):
        read_idx(path, IDX_IMAGES_MAGIC)


def test_read_idx_rejects_a_truncated_header_and_a_bad_magic_argument(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "tiny.gz", IDX_IMAGES_MAGIC, (), bytes(2))  # the magic number and 2 bytes
    with pytest.raises(ValueError, match=r"tiny\.gz: 6 bytes .* too short for an IDX header of 16 bytes"):
        read_idx(path, IDX_IMAGES_MAGIC)
    with pytest.raises(ValueError, match="magic must be 2051 .* or 2049 .*, got 2050"):
        read_idx(path, 2050)


def test_registry_knows_the_four_files() -> None:
    for name in MNIST_FILES.values():
        assert REGISTRY[name].url == f"https://ossci-datasets.s3.amazonaws.com/{name}"
        assert len(REGISTRY[name].sha256) == 64


# ---------------------------------------------------------------- the real files


@pytest.fixture
def offline_without_training_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline, an empty cache, and (as in CI) no training images in the data directory."""
    if (Path(PREPARED) / MNIST_FILES["train_images"]).is_file():
        pytest.skip("LEPTON_DATA_DIR holds the training images: the fallback cannot happen")
    monkeypatch.setenv("LEPTON_OFFLINE", "1")
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path / "cache"))


@needs_data
def test_official_test_label_counts() -> None:
    labels = read_idx(Path(PREPARED) / MNIST_FILES["test_labels"], IDX_LABELS_MAGIC)
    assert np.bincount(labels, minlength=10).tolist() == TEST_LABEL_COUNTS


@needs_data
def test_fallback_split_sizes_types_and_description(offline_without_training_images: None) -> None:
    split = load_mnist()
    assert split.split == "test-images-only"
    assert "could not be obtained" in split.description and "5,000" in split.description
    assert split.x_train.shape == (5000, 1, 28, 28) and split.x_test.shape == (5000, 1, 28, 28)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert 0 <= split.x_train.min() and split.x_train.max() == 1
    # the two parts are disjoint and together are the whole official test set
    rows = torch.cat([split.index_train, split.index_test])
    assert sorted(rows.tolist()) == list(range(10_000))
    counts = torch.bincount(split.y_train, minlength=10) + torch.bincount(split.y_test, minlength=10)
    assert counts.tolist() == TEST_LABEL_COUNTS
    assert len(split.train) == 5000 and len(split.test) == 5000


@needs_data
def test_fallback_split_is_stratified_and_deterministic(offline_without_training_images: None) -> None:
    a, b, c = load_mnist(train_size=2000, seed=3), load_mnist(train_size=2000, seed=3), load_mnist(train_size=2000)
    assert torch.equal(a.index_train, b.index_train) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.index_train, c.index_train)
    expected = np.array(TEST_LABEL_COUNTS) * 2000 / 10_000
    assert np.abs(torch.bincount(a.y_train, minlength=10).numpy() - expected).max() <= 1
    assert len(a.y_test) == 8000


@needs_data
def test_no_fallback_when_told_not_to(offline_without_training_images: None) -> None:
    with pytest.raises(DataUnavailableError, match="train-images-idx3-ubyte.gz"):
        load_mnist(allow_fallback=False)


@needs_data
def test_official_split_when_the_training_images_are_available(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """A data directory with (synthetic, registered-as-such) training images gives the official split."""
    from lepton_lib.data import RemoteFile, download
    from lepton_lib.core.files import sha256_of

    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for key in ("test_images", "test_labels", "train_labels"):
        (root / MNIST_FILES[key]).symlink_to(Path(PREPARED) / MNIST_FILES[key])
    fake = write_idx(root / MNIST_FILES["train_images"], IDX_IMAGES_MAGIC, (60_000, 28, 28), bytes(60_000 * 784))
    registry = dict(REGISTRY)
    name = MNIST_FILES["train_images"]
    registry[name] = RemoteFile(name, REGISTRY[name].url, sha256_of(fake))
    monkeypatch.setattr(download, "REGISTRY", registry)
    monkeypatch.setenv("LEPTON_DATA_DIR", str(root))
    monkeypatch.setenv("LEPTON_OFFLINE", "1")
    split = load_mnist(train_size=1000)
    assert split.split == "official" and "official split" in split.description
    assert split.x_train.shape == (1000, 1, 28, 28) and split.x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(split.y_test, minlength=10).tolist() == TEST_LABEL_COUNTS


@needs_data
def test_a_corrupted_training_file_is_not_silently_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lepton_lib.data import ChecksumError

    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for key in ("test_images", "test_labels", "train_labels"):
        (root / MNIST_FILES[key]).symlink_to(Path(PREPARED) / MNIST_FILES[key])
    (root / MNIST_FILES["train_images"]).write_bytes(b"not mnist")
    monkeypatch.setenv("LEPTON_DATA_DIR", str(root))
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz"):
        load_mnist()


@pytest.mark.parametrize("kwargs, message", [
    ({"train_size": 0}, "train_size must be a positive int"),
    ({"train_size": 2.5}, "train_size must be a positive int"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"allow_fallback": "yes"}, "allow_fallback must be a bool"),
])
def test_bad_arguments_are_rejected_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_mnist(**kwargs)


@needs_data
def test_fallback_train_size_must_leave_test_images(offline_without_training_images: None) -> None:
    with pytest.raises(ValueError, match=r"train_size must be in \[10, 9990\].*got 9995"):
        load_mnist(train_size=9995)


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("model", [MnistMLP(), MnistCNN(), MnistCNN(channels=(4, 6), kernel_size=3)])
def test_models_map_images_to_logits(model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    logits = model(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert not torch.allclose(logits.softmax(dim=1).sum(dim=1), logits.sum(dim=1))  # logits, not probabilities


def test_mlp_has_the_documents_shape() -> None:
    assert sum(p.numel() for p in MnistMLP().parameters()) == 784 * 128 + 128 + 128 * 10 + 10


def test_models_reject_bad_input_and_config() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\), got \(3, 784\)"):
        MnistMLP()(torch.zeros(3, 784))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        MnistCNN()(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="dropout must be a number in"):
        MnistMLP(dropout=1.0)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        MnistMLP(hidden=0)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        MnistCNN(kernel_size=4)
    with pytest.raises(ValueError, match="channels must be a pair"):
        MnistCNN(channels=(8,))
    with pytest.raises(ValueError, match="side must be a multiple of 4"):
        MnistCNN(side=30)
