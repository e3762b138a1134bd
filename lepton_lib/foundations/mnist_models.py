"""The two MNIST classifiers of the source documents, rebuilt in PyTorch.

:class:`MnistMLP` flattens the image and applies one hidden ReLU layer with dropout;
:class:`MnistCNN` is a small LeNet-like network (two rounds of convolution, ReLU and max
pooling, then one linear layer). Both return *logits* of shape (B, num_classes): the softmax
belongs to the loss (``nn.CrossEntropyLoss``), not to the model. Train them with
:func:`lepton_lib.foundations.training.fit`.
"""
from __future__ import annotations

import torch
from torch import nn

from lepton_lib.core.checks import check_positive_int

__all__ = ["MnistMLP", "MnistCNN"]


def _check_dropout(dropout: object) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return float(dropout)


def _check_image(x: torch.Tensor, channels: int, side: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (channels, side, side):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (B, {channels}, {side}, {side}), got {got}")


class MnistMLP(nn.Module):
    """Flatten, ``hidden`` ReLU units, dropout, and a linear layer to ``num_classes`` logits."""

    def __init__(self, hidden: int = 128, dropout: float = 0.2, num_classes: int = 10, side: int = 28,
                 channels: int = 1) -> None:
        super().__init__()
        self.side, self.channels = check_positive_int("side", side), check_positive_int("channels", channels)
        check_positive_int("hidden", hidden)
        check_positive_int("num_classes", num_classes)
        self.net = nn.Sequential(
            nn.Flatten(),                                  # (B, C*H*W)
            nn.Linear(channels * side * side, hidden),     # (B, hidden)
            nn.ReLU(),
            nn.Dropout(_check_dropout(dropout)),
            nn.Linear(hidden, num_classes),                # (B, num_classes): logits, no softmax
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, self.channels, self.side)          # (B, C, H, W)
        return self.net(x)


class MnistCNN(nn.Module):
    """LeNet-like: (conv ``kernel_size``, ReLU, 2×2 max pool) twice, then a linear layer to logits.

    ``channels=(c1, c2)`` are the two convolutions' output channels; the convolutions pad by
    ``kernel_size // 2`` so that only the pooling halves the image (28 → 14 → 7).
    """

    def __init__(self, channels: tuple[int, int] = (8, 16), kernel_size: int = 5, num_classes: int = 10,
                 side: int = 28, in_channels: int = 1) -> None:
        super().__init__()
        if not isinstance(channels, (tuple, list)) or len(channels) != 2:
            raise ValueError(f"channels must be a pair (c1, c2) of positive ints, got {channels!r}")
        c1, c2 = (check_positive_int("channels", c) for c in channels)
        if check_positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd (so that padding keeps the image size), got {kernel_size}")
        check_positive_int("num_classes", num_classes)
        if check_positive_int("side", side) % 4:
            raise ValueError(f"side must be a multiple of 4 (two 2x2 poolings), got {side}")
        self.side, self.in_channels = side, check_positive_int("in_channels", in_channels)
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding=pad),  # (B, c1, H, W)
            nn.ReLU(),
            nn.MaxPool2d(2),                                       # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, kernel_size, padding=pad),           # (B, c2, H/2, W/2)
            nn.ReLU(),
            nn.MaxPool2d(2),                                       # (B, c2, H/4, W/4)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),                                          # (B, c2*H/4*W/4): a reshape, no weights
            nn.Linear(c2 * (side // 4) ** 2, num_classes),         # (B, num_classes): logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_image(x, self.in_channels, self.side)               # (B, C, H, W)
        return self.classifier(self.features(x))
