"""The 8×8 handwritten digits bundled with scikit-learn, split into train/validation/test.

The data (1,797 images, 10 classes) are the test partition of the UCI "Optical Recognition of
Handwritten Digits" set by E. Alpaydin and C. Kaynak (1998, doi:10.24432/C50P49, CC BY 4.0).
Each image is a 32×32 bitmap reduced to 8×8 blocks whose values count the "on" pixels
(0..16). scikit-learn ships them inside its package, so loading needs no network: the book
uses them wherever the source documents use MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset

from lepton_lib.core.checks import check_non_negative_int

__all__ = ["DigitsSplit", "load_digits_split"]

MAX_PIXEL = 16.0  # every pixel counts the "on" pixels of a 4×4 block: 0..16


@dataclass(frozen=True)
class DigitsSplit:
    """Train, validation and test tensors.

    ``x_*``: float32 of shape (N, 64), or (N, 1, 8, 8) with ``as_images=True``;
    ``y_*``: int64 of shape (N,) with values in 0..9; ``index_*``: int64 of shape (N,), the
    rows of ``sklearn.datasets.load_digits()`` that each part holds.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    index_train: torch.Tensor
    index_val: torch.Tensor
    index_test: torch.Tensor

    @property
    def train(self) -> TensorDataset:
        return TensorDataset(self.x_train, self.y_train)

    @property
    def val(self) -> TensorDataset:
        return TensorDataset(self.x_val, self.y_val)

    @property
    def test(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)


def _check_fraction(name: str, value: float, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def load_digits_split(
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    normalize: bool = True,
    as_images: bool = False,
) -> DigitsSplit:
    """Load the digits and split them, stratified by class, into train / validation / test.

    ``test_fraction`` and ``val_fraction`` are fractions of the whole data set (the default
    leaves 70% for training); the split keeps every class's share the same in each part
    (to within one example per class and part). The same ``seed`` always gives the same
    split. ``normalize`` divides pixels by 16 so they lie in [0, 1]; otherwise they keep their
    raw counts 0..16 (still float32). ``as_images`` returns (N, 1, 8, 8) instead of (N, 64).
    """
    _check_fraction("test_fraction", test_fraction, allow_zero=False)
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    if test_fraction + val_fraction >= 1:
        raise ValueError(f"test_fraction + val_fraction must be < 1 to leave training data, "
                         f"got {test_fraction} + {val_fraction}")
    check_non_negative_int("seed", seed)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:  # scikit-learn is in requirements.txt, not a lepton_lib dependency
        raise ImportError("load_digits_split needs scikit-learn: pip install scikit-learn") from error

    digits = load_digits()
    pixels = digits.data.astype(np.float32)  # (1797, 64), values 0..16
    labels = digits.target.astype(np.int64)  # (1797,)
    if normalize:
        pixels = pixels / MAX_PIXEL

    # Two stratified cuts: first the test set, then the validation set out of what is left,
    # with its fraction rescaled so that it is val_fraction of the whole.
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    if val_fraction > 0:
        train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                      stratify=labels[rest], random_state=seed)
    else:
        train, val = rest, rest[:0]

    def tensors(part: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(pixels[part])
        if as_images:
            x = x.reshape(-1, 1, 8, 8)
        return x, torch.from_numpy(labels[part])

    return DigitsSplit(*tensors(train), *tensors(val), *tensors(test),
                       *(torch.from_numpy(part.astype(np.int64)) for part in (train, val, test)))
