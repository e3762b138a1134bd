"""lepton_lib.foundations.metrics against scikit-learn (the reference) on many random inputs, plus errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu
from sklearn import metrics as skm

from lepton_lib.foundations import arrays
from lepton_lib.foundations import curves as C
from lepton_lib.foundations import metrics as M

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZERO_DIVISIONS = [0.0, 1.0, float("nan")]


@st.composite
def label_pairs(draw, max_classes: int = 6, max_size: int = 60):
    """(y_true, y_pred, num_classes): labels in [0, num_classes); some classes may never occur."""
    num_classes = draw(st.integers(1, max_classes))
    size = draw(st.integers(1, max_size))
    labels = st.lists(st.integers(0, num_classes - 1), min_size=size, max_size=size)
    return np.array(draw(labels)), np.array(draw(labels)), num_classes


@st.composite
def scored_binary(draw, max_size: int = 50):
    """(y_true, y_score) with both classes present; scores from a few values, so ties are common."""
    size = draw(st.integers(2, max_size))
    y_true = np.array(draw(st.lists(st.integers(0, 1), min_size=size, max_size=size)))
    assume(0 < y_true.sum() < size)
    levels = draw(st.integers(1, 8))  # 1 level: every score tied
    grid = np.linspace(-2.0, 3.0, levels)
    y_score = grid[np.array(draw(st.lists(st.integers(0, levels - 1), min_size=size, max_size=size)))]
    return y_true, y_score


def sk(function, *args, **kwargs):
    """Call scikit-learn with its warnings silenced (zero_division and curve warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def assert_close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


# ---------------------------------------------------------------- accuracy and confusion matrix
@SETTINGS
@given(label_pairs())
def test_accuracy_and_confusion_matrix_match_sklearn(pair):
    y_true, y_pred, k = pair
    assert M.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-15)
    np.testing.assert_array_equal(M.confusion_matrix(y_true, y_pred, num_classes=k),
                                  sk(skm.confusion_matrix, y_true, y_pred, labels=range(k)))
    inferred = max(y_true.max(), y_pred.max()) + 1
    np.testing.assert_array_equal(M.confusion_matrix(y_true, y_pred),
                                  sk(skm.confusion_matrix, y_true, y_pred, labels=range(inferred)))


def test_confusion_matrix_layout_by_hand():
    # rows = truth, columns = prediction; class 2 is never predicted
    cm = M.confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 0, 1], num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 1, 0]])


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    scores = rng.normal(size=200)
    binary = (y_true == 1).astype(np.int64)
    assert M.accuracy(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == M.accuracy(y_true, y_pred)
    np.testing.assert_array_equal(M.confusion_matrix(torch.from_numpy(y_true), torch.from_numpy(y_pred)),
                                  M.confusion_matrix(y_true, y_pred))
    assert C.roc_auc_score(torch.from_numpy(binary), torch.from_numpy(scores).float()) == pytest.approx(
        skm.roc_auc_score(binary, scores.astype(np.float32)), abs=1e-12)
    # float labels that are whole numbers (as BCE targets are) are accepted
    assert M.f1_score(torch.from_numpy(binary).float(), torch.from_numpy(binary)) == 1.0


# ------------------------------------------------------------------- precision, recall and F1
@SETTINGS
@given(label_pairs(), st.sampled_from(["micro", "macro", "weighted", None]), st.sampled_from(ZERO_DIVISIONS))
def test_multiclass_precision_recall_f1_match_sklearn(pair, average, zero_division):
    y_true, y_pred, k = pair
    for ours, labels in ((dict(num_classes=None), None), (dict(num_classes=k), list(range(k)))):
        got = M.precision_recall_f1(y_true, y_pred, average=average, zero_division=zero_division, **ours)
        want = sk(skm.precision_recall_fscore_support, y_true, y_pred, average=average, labels=labels,
                  zero_division=zero_division)
        for a, b in zip(got[:3], want[:3]):
            assert_close(a, b)
        if average is None:
            np.testing.assert_array_equal(got.support, want[3])
        assert_close(M.f1_score(y_true, y_pred, average=average, zero_division=zero_division, **ours),
                     sk(skm.f1_score, y_true, y_pred, average=average, labels=labels, zero_division=zero_division))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=60),
       st.sampled_from([0, 1]), st.sampled_from(ZERO_DIVISIONS))
def test_binary_precision_recall_f1_match_sklearn(pairs, pos_label, zero_division):
    y_true, y_pred = np.array(pairs).T
    got = M.precision_recall_f1(y_true, y_pred, average="binary", pos_label=pos_label, zero_division=zero_division)
    want = sk(skm.precision_recall_fscore_support, y_true, y_pred, average="binary", pos_label=pos_label,
              zero_division=zero_division)
    for a, b in zip(got[:3], want[:3]):
        assert_close(a, b)
    assert got.support == int(np.sum(y_true == pos_label))
    assert_close(M.precision_score(y_true, y_pred, pos_label=pos_label, zero_division=zero_division),
                 sk(skm.precision_score, y_true, y_pred, pos_label=pos_label, zero_division=zero_division))
    assert_close(M.recall_score(y_true, y_pred, pos_label=pos_label, zero_division=zero_division),
                 sk(skm.recall_score, y_true, y_pred, pos_label=pos_label, zero_division=zero_division))


def test_class_never_predicted_uses_zero_division():
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 0, 1, 1, 1]  # class 2 never predicted: precision 0/0
    for zero_division in ZERO_DIVISIONS:
        precision, recall, f1, _ = M.precision_recall_f1(y_true, y_pred, average=None, zero_division=zero_division)
        assert_close(precision, [1.0, 2 / 3, zero_division])
        assert_close(recall, [1.0, 1.0, 0.0])
        assert_close(f1, [1.0, 0.8, 0.0])  # tp + fp + fn = 1 > 0, so F1 is a plain 0 whatever zero_division


def test_micro_average_equals_accuracy_for_single_label_data():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    micro = M.precision_recall_f1(y_true, y_pred, average="micro")
    assert micro.precision == micro.recall == micro.f1 == pytest.approx(M.accuracy(y_true, y_pred), abs=1e-15)


@SETTINGS
@given(label_pairs(max_classes=5))
def test_classification_report_matches_sklearn(pair):
    y_true, y_pred, k = pair
    ours = M.classification_report(y_true, y_pred, num_classes=k)
    want = sk(skm.classification_report, y_true, y_pred, labels=list(range(k)), output_dict=True, zero_division=0.0)
    assert ours.keys() == want.keys()
    assert ours["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
    for key, row in want.items():
        if key != "accuracy":
            for column, value in row.items():
                assert ours[key][column] == pytest.approx(value, abs=1e-12), (key, column)


def test_classification_report_text_lists_every_class():
    text = M.classification_report([0, 1, 2, 2], [0, 2, 2, 2], target_names=["zero", "one", "two"],
                                   output_dict=False)
    assert all(name in text for name in ("zero", "one", "two", "accuracy", "macro avg", "weighted avg"))
    assert "0.7500" in text  # the accuracy, 3 of 4


# ------------------------------------------------------------------------ ROC, AUC and PR curves
@SETTINGS
@given(scored_binary(), st.booleans(), st.sampled_from([0, 1]))
def test_roc_curve_matches_sklearn(data, drop_intermediate, pos_label):
    y_true, y_score = data
    got = C.roc_curve(y_true, y_score, pos_label=pos_label, drop_intermediate=drop_intermediate)
    want = skm.roc_curve(y_true, y_score, pos_label=pos_label, drop_intermediate=drop_intermediate)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(scored_binary())
def test_auc_is_sklearn_and_mann_whitney(data):
    y_true, y_score = data
    auc = C.roc_auc_score(y_true, y_score)
    assert auc == pytest.approx(skm.roc_auc_score(y_true, y_score), abs=1e-12)
    positives, negatives = y_score[y_true == 1], y_score[y_true == 0]
    u_statistic = mannwhitneyu(positives, negatives).statistic
    assert auc == pytest.approx(u_statistic / (len(positives) * len(negatives)), abs=1e-12)
    # the same probability counted pair by pair: P(s+ > s-) + P(s+ = s-) / 2
    diff = positives[:, None] - negatives[None, :]
    assert auc == pytest.approx(np.mean(diff > 0) + 0.5 * np.mean(diff == 0), abs=1e-12)


@SETTINGS
@given(scored_binary(), st.booleans())
def test_precision_recall_curve_matches_sklearn(data, drop_intermediate):
    y_true, y_score = data
    got = C.precision_recall_curve(y_true, y_score, drop_intermediate=drop_intermediate)
    want = skm.precision_recall_curve(y_true, y_score, drop_intermediate=drop_intermediate)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # each point is the precision and recall of thresholding the scores there
    precision, recall, thresholds = got
    for p, r, t in zip(precision, recall, thresholds):
        y_pred = (y_score >= t).astype(int)
        assert p == pytest.approx(skm.precision_score(y_true, y_pred), abs=1e-12)
        assert r == pytest.approx(skm.recall_score(y_true, y_pred), abs=1e-12)


def test_roc_by_hand_with_ties():
    # Scores 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): 3 of 4 pairs ordered correctly.
    assert C.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # All scores tied: the curve is the diagonal, so a tie counts one half.
    fpr, tpr, thresholds = C.roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(fpr, [0, 1])
    np.testing.assert_array_equal(tpr, [0, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.5])
    assert C.roc_auc_score([0, 1, 0, 1], [0.5] * 4) == 0.5
    # A perfect ranking has area 1, a reversed one 0.
    assert C.roc_auc_score([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert C.roc_auc_score([1, 1, 0, 0], [1, 2, 3, 4]) == 0.0


# -------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: M.accuracy([0, 1, 1], [0, 1]), "y_true has 3 elements but y_pred has 2"),
        (lambda: M.accuracy(np.zeros((2, 2), int), np.zeros((2, 2), int)), r"y_true must be 1-D .* \(2, 2\)"),
        (lambda: M.accuracy([], []), "y_true is empty"),
        (lambda: M.accuracy([0.5, 1.0], [0, 1]), "y_true must hold integer class labels"),
        (lambda: M.confusion_matrix([0, 3], [0, 1], num_classes=3), "y_true contains label 3"),
        (lambda: M.confusion_matrix([0, 1], [0, -1]), "y_pred contains the negative label -1"),
        (lambda: M.confusion_matrix([0, 1], [0, 1], num_classes=0), "num_classes must be a positive int"),
        (lambda: M.precision_recall_f1([0, 1, 2], [0, 1, 2]), "average='binary' needs at most two"),
        (lambda: M.precision_recall_f1([3, 4], [3, 4], pos_label=1), "pos_label=1 is not one of"),
        (lambda: M.precision_recall_f1([0, 1], [0, 1], average="samples"), "average must be one of"),
        (lambda: M.precision_recall_f1([0, 1], [0, 1], zero_division=0.5), "zero_division must be"),
        (lambda: M.f1_score([0, 1, 5], [0, 1, 1], average="macro", num_classes=3), "y_true contains label 5"),
        (lambda: C.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3]), "y_true contains only one class|no example"),
        (lambda: C.roc_auc_score([0, 0, 0], [0.1, 0.2, 0.3]), "pos_label=1"),
        (lambda: C.roc_curve([0, 1, 2], [0.1, 0.2, 0.3]), "y_true must hold two classes"),
        (lambda: C.roc_curve([0, 1], [0.1, 0.2, 0.3]), "y_true has 2 elements but y_score has 3"),
        (lambda: C.roc_curve([0, 1], [0.1, float("nan")]), "y_score must be finite"),
        (lambda: C.roc_curve([0, 1], np.ones((2, 1))), "y_score must be 1-D"),
        (lambda: M.classification_report([0, 1], [0, 1], target_names=["a"]), "target_names has 1 names"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_array_helpers_convert_lists_tensors_and_whole_floats():
    assert arrays.as_labels("y", [1.0, 0.0, 2.0]).dtype == np.int64
    assert arrays.as_labels("y", torch.tensor([True, False])).tolist() == [1, 0]
    assert arrays.as_scores("s", torch.tensor([0.5, 1.0], dtype=torch.bfloat16)).dtype == np.float64
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        arrays.as_labels("y", [0.5, 1.0])
    with pytest.raises(ValueError, match="s must hold real-valued scores"):
        arrays.as_scores("s", [True, False])
    with pytest.raises(ValueError, match="y is empty"):
        arrays.as_1d_array("y", [])
    with pytest.raises(ValueError, match="a has 2 elements but b has 1"):
        arrays.check_same_length(("a", np.zeros(2)), ("b", np.zeros(1)))
