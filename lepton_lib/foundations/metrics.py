"""Classification metrics: accuracy, confusion matrix, precision/recall/F1, ROC and PR curves,
sensitivity/specificity at a threshold and cost-weighted threshold choice.

Every function takes 1-D NumPy arrays or torch tensors (lists work too) and returns NumPy
values, and each one agrees with scikit-learn's function of the same name (the tests check
this on many random inputs). Labels are integers (or bools, or floats that are whole
numbers); classes are numbered ``0 .. num_classes - 1`` where a number of classes matters.

Conventions, stated once:

* ``confusion_matrix[i, j]`` counts examples whose true class is ``i`` and predicted class
  is ``j`` (rows are the truth, as in scikit-learn).
* A ratio whose denominator is zero (precision of a class that is never predicted, recall of
  a class that never occurs) is replaced by ``zero_division``: ``0.0`` (the default, what
  scikit-learn's default returns, without its warning), ``1.0`` or ``nan`` (and ``nan``
  values are then left out of macro and weighted averages, as scikit-learn does).
* F1 is computed as ``2 tp / (2 tp + fp + fn)``, which equals the harmonic mean of
  precision and recall whenever both are defined; it falls back to ``zero_division`` only
  when ``tp + fp + fn == 0``, i.e. when the class appears in neither array.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Union

import numpy as np
import torch

__all__ = [
    "accuracy",
    "confusion_matrix",
    "PrecisionRecallF1",
    "precision_recall_f1",
    "precision_score",
    "recall_score",
    "f1_score",
    "roc_curve",
    "roc_auc_score",
    "precision_recall_curve",
    "classification_report",
    "sensitivity_specificity",
    "expected_cost",
    "cost_optimal_threshold",
]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]
_AVERAGES = ("binary", "micro", "macro", "weighted", None)


# ----------------------------------------------------------------------------- input checks
def _to_numpy_1d(name: str, values: ArrayLike) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D NumPy array; raise ``ValueError`` naming ``name``."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:  # NumPy has no bfloat16
            values = values.float()
        values = values.numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (N,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; expected at least one element")
    return array


def _labels(name: str, values: ArrayLike) -> np.ndarray:
    """Class labels as int64: integers, bools, or floats that are all whole numbers."""
    array = _to_numpy_1d(name, values)
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values {array[:5]}")
        return array.astype(np.int64)
    raise ValueError(f"{name} must hold integer class labels, got dtype {array.dtype}")


def _scores(name: str, values: ArrayLike) -> np.ndarray:
    """Real-valued, finite scores as float64."""
    array = _to_numpy_1d(name, values)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold real-valued scores, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(array)))} NaN or infinite values")
    return array


def _same_length(first: tuple[str, np.ndarray], second: tuple[str, np.ndarray]) -> None:
    (name_a, a), (name_b, b) = first, second
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} elements but {name_b} has {len(b)}; expected the same length")


def _check_range(name: str, labels: np.ndarray, num_classes: int) -> None:
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"{name} contains label {int(bad[0])}, outside the range [0, {num_classes - 1}] "
                         f"given by num_classes={num_classes}")


def _check_num_classes(num_classes: int | None) -> None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")


def _check_zero_division(zero_division: float) -> float:
    if not (zero_division in (0.0, 1.0) or (isinstance(zero_division, float) and np.isnan(zero_division))):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    return float(zero_division)


def _divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    """Elementwise ``numerator / denominator`` with ``zero_division`` where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator == 0, 1.0, denominator)  # avoids a 0/0 warning; replaced below
    return np.where(denominator == 0, zero_division, numerator / safe)


def _nan_average(values: np.ndarray, weights: np.ndarray | None) -> float:
    """Average ignoring NaN (from ``zero_division=nan``); all-zero weights fall back to equal ones."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    values = values[keep]
    if weights is None or weights[keep].sum() == 0:
        return float(values.mean())
    return float(np.average(values, weights=weights[keep]))


# --------------------------------------------------------------------------------- metrics
def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions that equal the true label. ``y_true, y_pred``: (N,) labels."""
    truth, pred = _labels("y_true", y_true), _labels("y_pred", y_pred)
    _same_length(("y_true", truth), ("y_pred", pred))
    return float(np.mean(truth == pred))


_MAX_CLASSES = 2**14  # a 16384 x 16384 int64 matrix is 2 GiB: beyond that a label is surely a mistake


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Count matrix ``C`` of shape (K, K): ``C[i, j]`` = #examples of class ``i`` predicted as ``j``.

    ``K`` is ``num_classes`` or, when it is ``None``, ``max(label) + 1`` so that row ``i`` is
    always class ``i`` (scikit-learn instead keeps only the labels that occur; pass
    ``labels=range(K)`` to it for the same matrix). Labels outside ``[0, K)`` raise.
    """
    truth, pred = _labels("y_true", y_true), _labels("y_pred", y_pred)
    _same_length(("y_true", truth), ("y_pred", pred))
    _check_num_classes(num_classes)
    if num_classes is None:
        for name, labels in (("y_true", truth), ("y_pred", pred)):
            if labels.min() < 0:
                raise ValueError(f"{name} contains the negative label {int(labels.min())}; expected labels >= 0")
        largest = max(("y_true", truth), ("y_pred", pred), key=lambda item: int(item[1].max()))
        num_classes = int(largest[1].max()) + 1
        if num_classes > _MAX_CLASSES:  # K is inferred: a stray label must not allocate K * K counts
            raise ValueError(f"{largest[0]} contains the label {num_classes - 1}, so the confusion matrix would "
                             f"need {num_classes}^2 cells; expected labels below {_MAX_CLASSES} (pass num_classes "
                             f"to check the labels against the classes you have)")
    elif num_classes > _MAX_CLASSES:
        raise ValueError(f"num_classes={num_classes} would need a {num_classes} x {num_classes} matrix; expected at "
                         f"most {_MAX_CLASSES} classes")
    _check_range("y_true", truth, num_classes)
    _check_range("y_pred", pred, num_classes)
    # Each (true, predicted) pair gets one flat index; bincount counts them all at once.
    flat = truth * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class PrecisionRecallF1(NamedTuple):
    """Result of :func:`precision_recall_f1`: floats when averaged, (K,) arrays when not.

    ``support`` is the number of true examples counted: of ``pos_label`` for ``"binary"``,
    of every class for the averages, and per class (an int array) for ``average=None``.
    """

    precision: float | np.ndarray
    recall: float | np.ndarray
    f1: float | np.ndarray
    support: int | np.ndarray


def precision_recall_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    average: str | None = "binary",
    pos_label: int = 1,
    num_classes: int | None = None,
    zero_division: float = 0.0,
) -> PrecisionRecallF1:
    """Precision ``tp/(tp+fp)``, recall ``tp/(tp+fn)`` and F1 for one or every class.

    ``average``:
      * ``"binary"``: the scores of ``pos_label`` only; the labels must take at most two values.
      * ``"micro"``: pool tp, fp, fn over classes first (for single-label data every metric then
        equals the accuracy).
      * ``"macro"``: unweighted mean of the per-class scores (every class counts the same).
      * ``"weighted"``: mean of the per-class scores weighted by each class's support.
      * ``None``: per-class arrays.
    The classes are ``range(num_classes)`` when it is given, else the labels that occur in
    ``y_true`` or ``y_pred`` (scikit-learn's default). See the module docstring for
    ``zero_division``.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    zero_division = _check_zero_division(zero_division)
    _check_num_classes(num_classes)
    truth, pred = _labels("y_true", y_true), _labels("y_pred", y_pred)
    _same_length(("y_true", truth), ("y_pred", pred))
    if num_classes is not None:
        _check_range("y_true", truth, num_classes)
        _check_range("y_pred", pred, num_classes)
    present = np.unique(np.concatenate([truth, pred]))

    if average == "binary":
        if len(present) > 2:
            raise ValueError(f"average='binary' needs at most two distinct labels, got {present.tolist()}; "
                             "use average='macro', 'micro', 'weighted' or None for multiclass labels")
        if len(present) == 2 and pos_label not in present:
            raise ValueError(f"pos_label={pos_label!r} is not one of the labels {present.tolist()}")
        tp = np.array([np.sum((truth == pos_label) & (pred == pos_label))])
        pred_sum = np.array([np.sum(pred == pos_label)])
        true_sum = np.array([np.sum(truth == pos_label)])
    else:
        if num_classes is None and present.min() < 0:
            raise ValueError(f"labels must be >= 0, got {int(present.min())}")
        classes = np.arange(num_classes) if num_classes is not None else present
        cm = confusion_matrix(truth, pred, num_classes=int(max(classes.max(), present.max())) + 1)
        tp, pred_sum, true_sum = np.diag(cm)[classes], cm.sum(axis=0)[classes], cm.sum(axis=1)[classes]
        if average == "micro":
            tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), true_sum.sum(keepdims=True)

    precision = _divide(tp, pred_sum, zero_division)
    recall = _divide(tp, true_sum, zero_division)
    f1 = _divide(2 * tp, pred_sum + true_sum, zero_division)  # 2tp + fp + fn = pred_sum + true_sum

    if average is None:
        return PrecisionRecallF1(precision, recall, f1, true_sum.astype(np.int64))
    weights = true_sum.astype(np.float64) if average == "weighted" else None
    return PrecisionRecallF1(
        _nan_average(precision, weights), _nan_average(recall, weights), _nan_average(f1, weights), int(true_sum.sum())
    )


def precision_score(y_true: ArrayLike, y_pred: ArrayLike, **kwargs) -> float | np.ndarray:
    """Precision only; keyword arguments as in :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, **kwargs).precision


def recall_score(y_true: ArrayLike, y_pred: ArrayLike, **kwargs) -> float | np.ndarray:
    """Recall only; keyword arguments as in :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, **kwargs).recall


def f1_score(y_true: ArrayLike, y_pred: ArrayLike, **kwargs) -> float | np.ndarray:
    """F1 only; keyword arguments as in :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, **kwargs).f1


# ---------------------------------------------------------------------------- score curves
def _counts_at_thresholds(
    y_true: ArrayLike, y_score: ArrayLike, pos_label: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when predicting "positive" for ``score >= t``, for each distinct ``t``.

    Returns ``(tps, fps, thresholds)``, thresholds decreasing, all of shape (T,) with T the
    number of distinct scores. Tied scores share one threshold: a threshold admits all of
    them at once, which is exactly how the tie is resolved by any rule ``score >= t``.
    """
    truth, score = _labels("y_true", y_true), _scores("y_score", y_score)
    _same_length(("y_true", truth), ("y_score", score))
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


# ---------------------------------------------------------------------------------- report
def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    num_classes: int | None = None,
    target_names: Sequence[str] | None = None,
    zero_division: float = 0.0,
    output_dict: bool = True,
    digits: int = 4,
) -> dict | str:
    """Per-class precision, recall, F1 and support, plus accuracy and macro/weighted averages.

    The dictionary has scikit-learn's layout (``output_dict=True`` there): one entry per class
    name, then ``"accuracy"`` (a float), ``"macro avg"`` and ``"weighted avg"``. With
    ``output_dict=False`` the same numbers come back as an aligned text table.
    """
    truth, pred = _labels("y_true", y_true), _labels("y_pred", y_pred)
    per_class = precision_recall_f1(truth, pred, average=None, num_classes=num_classes, zero_division=zero_division)
    classes = np.arange(num_classes) if num_classes is not None else np.unique(np.concatenate([truth, pred]))
    if target_names is None:
        target_names = [str(c) for c in classes]
    elif len(target_names) != len(classes):
        raise ValueError(f"target_names has {len(target_names)} names but there are {len(classes)} classes")
    keys = ("precision", "recall", "f1-score", "support")
    report: dict = {}
    for name, *row in zip(target_names, *per_class):
        report[name] = {key: float(value) for key, value in zip(keys, row)}
    report["accuracy"] = accuracy(truth, pred)
    for average in ("macro", "weighted"):
        summary = precision_recall_f1(truth, pred, average=average, num_classes=num_classes,
                                      zero_division=zero_division)
        report[f"{average} avg"] = {key: float(value) for key, value in zip(keys, summary)}
    if output_dict:
        return report

    width = max(len("weighted avg"), *(len(name) for name in target_names))

    def table_row(name: str) -> str:
        row = report[name]
        scores = "".join(f"{row[key]:>10.{digits}f}" for key in keys[:3])
        return f"{name:>{width}} {scores}{int(row['support']):>10d}"

    header = f"{'':>{width}} " + "".join(f"{key:>10}" for key in keys)
    accuracy_row = f"{'accuracy':>{width}} {'':>20}{report['accuracy']:>10.{digits}f}{len(truth):>10d}"
    lines = [header, "", *map(table_row, target_names), "", accuracy_row, table_row("macro avg"),
             table_row("weighted avg")]
    return "\n".join(lines)


# ------------------------------------------------------------------------ decision thresholds
def sensitivity_specificity(y_true: ArrayLike, y_score: ArrayLike, threshold: float,
                            pos_label: int = 1) -> tuple[float, float]:
    """(sensitivity, specificity) of the rule "positive if ``score >= threshold``".

    Sensitivity is the recall of the positive class (true-positive rate); specificity is the
    recall of the negative class (1 - false-positive rate). Both classes must occur.
    """
    truth, score = _labels("y_true", y_true), _scores("y_score", y_score)
    _same_length(("y_true", truth), ("y_score", score))
    positive = truth == pos_label
    if positive.all() or not positive.any():
        raise ValueError(f"y_true must contain both pos_label={pos_label} and another class")
    predicted = score >= threshold
    return float(predicted[positive].mean()), float((~predicted[~positive]).mean())


def expected_cost(y_true: ArrayLike, y_pred: ArrayLike, cost_matrix: np.ndarray) -> float:
    """Mean cost per example: ``cost_matrix[true, predicted]`` (shape (K, K)) averaged over examples."""
    truth, pred = _labels("y_true", y_true), _labels("y_pred", y_pred)
    costs = np.asarray(cost_matrix, dtype=np.float64)
    if costs.ndim != 2 or costs.shape[0] != costs.shape[1]:
        raise ValueError(f"cost_matrix must be square (K, K), got shape {costs.shape}")
    return float(np.sum(confusion_matrix(truth, pred, num_classes=costs.shape[0]) * costs) / len(truth))


def cost_optimal_threshold(y_true: ArrayLike, y_score: ArrayLike, cost_matrix: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` minimising :func:`expected_cost` of "class 1 if ``score >= t``", and that cost.

    Every distinct score (and ``inf``, "never predict 1") is tried, so the result is exact on the
    data given; choose it on data the model was not evaluated on. Labels must be 0/1.
    """
    truth, score = _labels("y_true", y_true), _scores("y_score", y_score)
    _same_length(("y_true", truth), ("y_score", score))
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
