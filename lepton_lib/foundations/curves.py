"""Metrics of scores: ROC and precision-recall curves, the area under the ROC curve,
sensitivity/specificity at a threshold, expected cost and the cost-optimal threshold.

Inputs follow :mod:`lepton_lib.foundations.metrics`: 1-D NumPy arrays, torch tensors or lists;
labels are integers, scores are finite real numbers (a higher score means "more positive").
Each function agrees with scikit-learn's function of the same name where one exists.
"""
from __future__ import annotations

import numpy as np

from lepton_lib.foundations.arrays import ArrayLike, as_labels, as_scores, check_same_length
from lepton_lib.foundations.metrics import confusion_matrix

__all__ = [
    "roc_curve",
    "roc_auc_score",
    "precision_recall_curve",
    "sensitivity_specificity",
    "expected_cost",
    "cost_optimal_threshold",
]


# ---------------------------------------------------------------------------- score curves
def _counts_at_thresholds(
    y_true: ArrayLike, y_score: ArrayLike, pos_label: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when predicting "positive" for ``score >= t``, for each distinct ``t``.

    Returns ``(tps, fps, thresholds)``, thresholds decreasing, all of shape (T,) with T the
    number of distinct scores. Tied scores share one threshold: a threshold admits all of
    them at once, which is exactly how the tie is resolved by any rule ``score >= t``.
    """
    truth, score = as_labels("y_true", y_true), as_scores("y_score", y_score)
    check_same_length(("y_true", truth), ("y_score", score))
    classes = np.unique(truth)
    if len(classes) > 2:
        raise ValueError(f"y_true must hold two classes for a binary curve, got {classes.tolist()}")
    if pos_label not in classes:
        raise ValueError(f"y_true contains no example of pos_label={pos_label!r} (labels {classes.tolist()}); "
                         "a curve needs both classes")
    if len(classes) < 2:
        raise ValueError(f"y_true contains only one class ({classes.tolist()}); a curve needs both classes")
    is_positive = (truth == pos_label).astype(np.float64)
    order = np.argsort(-score, kind="stable")
    score, is_positive = score[order], is_positive[order]
    # Index of the last example of each run of equal scores: the cut points between thresholds.
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(is_positive)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps, score[last_of_tie]


def roc_curve(
    y_true: ArrayLike, y_score: ArrayLike, pos_label: int = 1, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: ``(fpr, tpr, thresholds)``, each of shape (T + 1,).

    Point ``i`` is the false- and true-positive rate of the rule "positive if
    ``score >= thresholds[i]``". ``thresholds[0] = inf`` adds the point (0, 0) (nothing
    predicted positive), as scikit-learn >= 1.3 does. ``drop_intermediate`` removes points
    that lie on a straight segment between their neighbours; the curve and its area are
    unchanged. Unlike scikit-learn (which warns and returns NaN), ``y_true`` with a single
    class raises ``ValueError``: a rate over zero examples is undefined.
    """
    tps, fps, thresholds = _counts_at_thresholds(y_true, y_score, pos_label)
    if drop_intermediate and len(fps) > 2:
        # A point is a corner if the second difference of fps or of tps is non-zero there.
        corner = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        tps, fps, thresholds = tps[corner], fps[corner], thresholds[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc_score(y_true: ArrayLike, y_score: ArrayLike, pos_label: int = 1) -> float:
    """Area under the ROC curve by the trapezoid rule.

    It equals the Mann–Whitney U statistic divided by ``n_pos * n_neg``: the probability
    that a random positive scores higher than a random negative, ties counting one half
    (Hanley & McNeil, 1982). Trapezoids, not steps, are what give a tie that half.
    """
    fpr, tpr, _ = roc_curve(y_true, y_score, pos_label=pos_label, drop_intermediate=True)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def precision_recall_curve(
    y_true: ArrayLike, y_score: ArrayLike, pos_label: int = 1, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall of "positive if ``score >= t``" for every distinct score ``t``.

    Returns ``(precision, recall, thresholds)`` in scikit-learn's layout: thresholds
    increasing, shape (T,); precision and recall of shape (T + 1,), with a final point
    ``(precision=1, recall=0)`` that has no threshold. ``drop_intermediate`` keeps only the
    first and last threshold of each run of equal recall.
    """
    tps, fps, thresholds = _counts_at_thresholds(y_true, y_score, pos_label)
    if drop_intermediate and len(fps) > 2:
        keep = np.r_[True, (np.diff(tps[:-1]) != 0) | (np.diff(tps[1:]) != 0), True]
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    precision = tps / (tps + fps)  # tps + fps >= 1: every threshold is the score of some example
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


# ------------------------------------------------------------------------ decision thresholds
def sensitivity_specificity(y_true: ArrayLike, y_score: ArrayLike, threshold: float,
                            pos_label: int = 1) -> tuple[float, float]:
    """(sensitivity, specificity) of the rule "positive if ``score >= threshold``".

    Sensitivity is the recall of the positive class (true-positive rate); specificity is the
    recall of the negative class (1 - false-positive rate). Both classes must occur.
    """
    truth, score = as_labels("y_true", y_true), as_scores("y_score", y_score)
    check_same_length(("y_true", truth), ("y_score", score))
    positive = truth == pos_label
    if positive.all() or not positive.any():
        raise ValueError(f"y_true must contain both pos_label={pos_label} and another class")
    predicted = score >= threshold
    return float(predicted[positive].mean()), float((~predicted[~positive]).mean())


def expected_cost(y_true: ArrayLike, y_pred: ArrayLike, cost_matrix: np.ndarray) -> float:
    """Mean cost per example: ``cost_matrix[true, predicted]`` (shape (K, K)) averaged over examples."""
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
    costs = np.asarray(cost_matrix, dtype=np.float64)
    if costs.ndim != 2 or costs.shape[0] != costs.shape[1]:
        raise ValueError(f"cost_matrix must be square (K, K), got shape {costs.shape}")
    return float(np.sum(confusion_matrix(truth, pred, num_classes=costs.shape[0]) * costs) / len(truth))


def cost_optimal_threshold(y_true: ArrayLike, y_score: ArrayLike, cost_matrix: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` minimising :func:`expected_cost` of "class 1 if ``score >= t``", and that cost.

    Every distinct score (and ``inf``, "never predict 1") is tried, so the result is exact on the
    data given; choose it on data the model was not evaluated on. Labels must be 0/1.
    """
    truth, score = as_labels("y_true", y_true), as_scores("y_score", y_score)
    check_same_length(("y_true", truth), ("y_score", score))
    costs = np.asarray(cost_matrix, dtype=np.float64)
    if costs.shape != (2, 2):
        raise ValueError(f"cost_matrix must have shape (2, 2) for a binary decision, got {costs.shape}")
    positives, negatives = float(np.sum(truth == 1)), float(np.sum(truth != 1))
    if positives + negatives != len(truth) or not set(np.unique(truth).tolist()) <= {0, 1}:
        raise ValueError(f"y_true must hold 0/1 labels, got {np.unique(truth).tolist()}")
    if positives == 0 or negatives == 0:
        raise ValueError("y_true must contain both classes to choose a threshold")
    tps, fps, thresholds = _counts_at_thresholds(truth, score, pos_label=1)  # "1 if score >= t", t decreasing
    tps, fps, thresholds = np.r_[0.0, tps], np.r_[0.0, fps], np.r_[np.inf, thresholds]  # inf: never predict 1
    # Each cell of the confusion matrix times its cost, for every threshold at once.
    totals = (costs[1, 1] * tps + costs[1, 0] * (positives - tps) + costs[0, 1] * fps
              + costs[0, 0] * (negatives - fps)) / len(truth)
    best = int(np.argmin(totals))  # on a tie, the highest threshold: the fewest examples predicted 1
    return float(thresholds[best]), float(totals[best])
