"""CLIP's contrastive objective and zero-shot classification, on embeddings of any origin.

Radford et al. (2021, arXiv:2103.00020) train an image encoder and a text encoder so that, in a
batch of N matching (image, text) pairs, each image picks out its own text among the N and each
text its own image. With unit-normalised embeddings ``u_i`` (images) and ``v_j`` (texts) the
logits are ``s_ij = u_i . v_j / tau`` and the loss is the mean of two cross-entropies, over the
rows of ``s`` (image to text) and over its columns (text to image), with target ``i`` for row ``i``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.core.checks import check_positive_int, check_positive_number, check_tensor, should_check_values
from lepton_lib.core.runtime import seeded_torch_rng

__all__ = [
    "ImageTextEncoders",
    "clip_contrastive_loss",
    "contrastive_logits",
    "train_image_text_encoders",
    "zero_shot_predict",
]


def contrastive_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Scaled cosine similarities ``(N_images, N_texts)`` of ``image_emb`` (N, d) and ``text_emb`` (M, d)."""
    check_tensor("image_emb", image_emb, shape=("N", "d"))
    check_tensor("text_emb", text_emb, shape=("M", image_emb.shape[1]))
    tau = check_positive_number("temperature", temperature)
    return F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T / tau


def clip_contrastive_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Symmetric cross-entropy over a batch of N matching pairs: row i of each input is pair i."""
    logits = contrastive_logits(image_emb, text_emb, temperature)
    if logits.shape[0] != logits.shape[1]:
        raise ValueError(
            f"image_emb, text_emb: expected N matching pairs, got {logits.shape[0]} images and {logits.shape[1]} texts"
        )
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def zero_shot_predict(image_emb: torch.Tensor, class_text_emb: torch.Tensor) -> torch.Tensor:
    """Index ``(N,)`` of the class whose text embedding (one row per class) is closest to each image."""
    return contrastive_logits(image_emb, class_text_emb, 1.0).argmax(dim=1)


@dataclass(frozen=True)
class ImageTextEncoders:
    image_encoder: nn.Linear  # image features (N, d_image) -> embeddings (N, dim)
    text_encoder: nn.Linear  # text features (C, d_text) -> embeddings (C, dim)
    losses: list[float]  # contrastive loss of each training step


def train_image_text_encoders(
    image_features: torch.Tensor,
    labels: torch.Tensor,
    class_text_features: torch.Tensor,
    dim: int = 16,
    steps: int = 300,
    lr: float = 0.05,
    temperature: float = 0.1,
    seed: int = 0,
) -> ImageTextEncoders:
    """Train two linear encoders with :func:`clip_contrastive_loss` on (image, caption) pairs.

    ``image_features`` (N, d_image) float, ``labels`` (N,) int64 in [0, C), ``class_text_features``
    (C, d_text): the caption of image i is the text of its class. Each step draws one image of every
    class that has one, so a batch never holds two identical captions, and takes an Adam step.
    """
    check_tensor("image_features", image_features, shape=("N", None), dtype=(torch.float32, torch.float64))
    check_tensor("labels", labels, shape=(image_features.shape[0],), dtype=torch.int64)
    check_tensor("class_text_features", class_text_features, shape=("C", None), dtype=image_features.dtype)
    n_classes = class_text_features.shape[0]
    if should_check_values(labels) and labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels: expected class indices in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    check_positive_int("dim", dim)
    check_positive_int("steps", steps)
    check_positive_number("lr", lr)
    by_class = [torch.nonzero(labels == c).flatten() for c in range(n_classes)]
    present = [c for c in range(n_classes) if by_class[c].numel()]
    if len(present) < 2:
        raise ValueError(f"labels: expected images of at least 2 classes, got {len(present)}")
    with seeded_torch_rng(seed):
        image_encoder = nn.Linear(image_features.shape[1], dim).to(image_features.dtype)
        text_encoder = nn.Linear(class_text_features.shape[1], dim).to(image_features.dtype)
        opt = torch.optim.Adam([*image_encoder.parameters(), *text_encoder.parameters()], lr=lr)
        # all draws up front: row t holds step t's image of each present class
        picks = torch.stack([by_class[c][torch.randint(by_class[c].numel(), (steps,))] for c in present], dim=1)
        texts = class_text_features[present]
        losses = []
        for t in range(steps):
            loss = clip_contrastive_loss(image_encoder(image_features[picks[t]]), text_encoder(texts), temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return ImageTextEncoders(image_encoder, text_encoder, losses)
