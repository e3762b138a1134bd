"""Classification metrics of hard predictions: accuracy, confusion matrix, precision/recall/F1
and the classification report. Metrics of scores (ROC and PR curves, thresholds, costs) are in
:mod:`lepton_lib.foundations.curves`.

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
from typing import NamedTuple

import numpy as np

from lepton_lib.foundations.arrays import ArrayLike, as_labels, check_same_length

__all__ = [
    "accuracy",
    "confusion_matrix",
    "PrecisionRecallF1",
    "precision_recall_f1",
    "precision_score",
    "recall_score",
    "f1_score",
    "classification_report",
    "MeanInterval",
    "mean_interval",
]

_AVERAGES = ("binary", "micro", "macro", "weighted", None)


# ----------------------------------------------------------------------------- input checks
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
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
    check_same_length(("y_true", truth), ("y_pred", pred))
    return float(np.mean(truth == pred))


_MAX_CLASSES = 2**14  # a 16384 x 16384 int64 matrix is 2 GiB: beyond that a label is surely a mistake


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Count matrix ``C`` of shape (K, K): ``C[i, j]`` = #examples of class ``i`` predicted as ``j``.

    ``K`` is ``num_classes`` or, when it is ``None``, ``max(label) + 1`` so that row ``i`` is
    always class ``i`` (scikit-learn instead keeps only the labels that occur; pass
    ``labels=range(K)`` to it for the same matrix). Labels outside ``[0, K)`` raise.
    """
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
    check_same_length(("y_true", truth), ("y_pred", pred))
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
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
    check_same_length(("y_true", truth), ("y_pred", pred))
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
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
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


class MeanInterval(NamedTuple):
    mean: float
    low: float
    high: float
    n: int


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> MeanInterval:
    """Mean of ``values`` (one per seed) and its Student-t interval at ``confidence``.

    With n runs the spread s of the runs is itself estimated, so the half-width is
    t_{n-1} s / sqrt(n) rather than 1.96 s / sqrt(n): 2.78 s / sqrt(5) for five seeds.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size < 2 or not np.isfinite(x).all():
        raise ValueError(f"values must be a 1-D sequence of at least 2 finite numbers, got shape {x.shape}"
                         + ("" if x.size < 2 or np.isfinite(x).all() else " with NaN or inf"))
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return MeanInterval(mean, mean - half, mean + half, int(x.size))
