"""Are predicted probabilities honest? The Brier score and the reliability (calibration) curve.

A classifier is *calibrated* when, among the examples it gives probability ``p``, a fraction
``p`` are positive. Ranking metrics such as ROC AUC cannot see calibration (any increasing
transformation of the scores leaves them unchanged), yet a threshold chosen from costs, or a
risk shown to a clinician, assumes it. Both functions agree with scikit-learn's
``brier_score_loss`` and ``calibration.calibration_curve`` (``strategy="uniform"``).
"""
from __future__ import annotations

import numpy as np

from lepton_lib.core.checks import check_positive_int
from lepton_lib.foundations.arrays import ArrayLike, as_labels, as_scores, check_same_length

__all__ = ["brier_score", "calibration_curve", "expected_calibration_error"]


def _probabilities(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth, prob = as_labels("y_true", y_true), as_scores("y_prob", y_prob)
    check_same_length(("y_true", truth), ("y_prob", prob))
    if not set(np.unique(truth).tolist()) <= {0, 1}:
        raise ValueError(f"y_true must hold 0/1 labels, got {np.unique(truth).tolist()}")
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError(f"y_prob must be probabilities in [0, 1], got values in [{prob.min()}, {prob.max()}]")
    return truth, prob


def brier_score(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean squared difference between the predicted probability of class 1 and the 0/1 outcome."""
    truth, prob = _probabilities(y_true, y_prob)
    return float(np.mean((prob - truth) ** 2))


def _bins(prob: np.ndarray, n_bins: int) -> np.ndarray:
    check_positive_int("n_bins", n_bins)
    # Equal-width bins (0, 1/n], (1/n, 2/n], ...: an edge belongs to the bin below it (0 to the first), as
    # in scikit-learn. Comparing with the edges themselves, not floor(p * n), avoids rounding surprises.
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, prob, side="left")


def calibration_curve(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction_of_positives, mean_predicted_probability)`` over the non-empty equal-width bins.

    Points on the diagonal mean calibrated; below it, over-confident about class 1.
    """
    truth, prob = _probabilities(y_true, y_prob)
    bins = _bins(prob, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    nonempty = counts > 0
    positives = np.bincount(bins, weights=truth.astype(np.float64), minlength=n_bins)
    predicted = np.bincount(bins, weights=prob, minlength=n_bins)
    return positives[nonempty] / counts[nonempty], predicted[nonempty] / counts[nonempty]


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """Bin-size-weighted mean of |fraction of positives - mean probability| over equal-width bins."""
    truth, prob = _probabilities(y_true, y_prob)
    bins = _bins(prob, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=truth.astype(np.float64), minlength=n_bins)
                 - np.bincount(bins, weights=prob, minlength=n_bins))
    return float(gap.sum() / counts.sum())
