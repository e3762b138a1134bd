"""The case studies' decision metrics against scikit-learn (or a brute-force count) on random inputs."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.metrics import brier_score_loss, recall_score

from lepton_lib.cases import brier_score, calibration_curve, expected_calibration_error
from lepton_lib.cases import group_rates
from lepton_lib.foundations import cost_optimal_threshold, expected_cost, sensitivity_specificity

SEEDS = range(10)


def _random_case(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes present
    # Scores correlated with the label, rounded so that ties occur.
    prob = np.clip(np.round(0.3 * y + rng.uniform(0, 0.7, n), 2), 0, 1)
    return y, prob


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_and_calibration_match_sklearn(seed: int) -> None:
    y, prob = _random_case(seed)
    assert brier_score(y, prob) == pytest.approx(brier_score_loss(y, prob), abs=1e-12)
    for n_bins in (5, 10, 13):
        ours = calibration_curve(y, prob, n_bins=n_bins)
        theirs = sk_calibration_curve(y, prob, n_bins=n_bins, strategy="uniform")
        np.testing.assert_allclose(ours[0], theirs[0], atol=1e-12)
        np.testing.assert_allclose(ours[1], theirs[1], atol=1e-12)


def test_expected_calibration_error_by_hand() -> None:
    y = np.array([0, 1, 1, 1])
    prob = np.array([0.05, 0.15, 0.95, 0.95])  # bins 0, 1, 9: gaps |0 - .05|, |1 - .15|, |2 - 1.9|
    assert expected_calibration_error(y, prob, n_bins=10) == pytest.approx((0.05 + 0.85 + 0.1) / 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_sensitivity_specificity_match_sklearn_recall(seed: int) -> None:
    y, prob = _random_case(seed)
    for threshold in (0.2, 0.5, 0.71):
        pred = (prob >= threshold).astype(int)
        sens, spec = sensitivity_specificity(y, prob, threshold)
        assert sens == pytest.approx(recall_score(y, pred, pos_label=1))
        assert spec == pytest.approx(recall_score(y, pred, pos_label=0))


@pytest.mark.parametrize("seed", SEEDS)
def test_cost_threshold_is_the_brute_force_minimum(seed: int) -> None:
    y, prob = _random_case(seed)
    costs = np.array([[0.0, 1.0], [5.0, 0.0]])
    best_t, best_cost = cost_optimal_threshold(y, prob, costs)
    grid = np.linspace(-0.01, 1.01, 1021)  # step 0.001 < the 0.01 spacing of the rounded scores
    predicted = prob[None, :] >= grid[:, None]  # (thresholds, N)
    brute = ((5.0 * (predicted == 0) * (y == 1) + 1.0 * (predicted == 1) * (y == 0)).sum(1) / len(y)).min()
    assert best_cost == pytest.approx(brute)
    assert expected_cost(y, (prob >= best_t).astype(int), costs) == pytest.approx(best_cost)


def test_expected_cost_by_hand() -> None:
    # one bad accepted (cost 5), one good rejected (cost 1), two right: 6 / 4
    assert expected_cost([1, 0, 0, 1], [0, 1, 0, 1], np.array([[0, 1], [5, 0]])) == pytest.approx(1.5)


def test_group_rates_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    pred = np.array([1, 0, 1, 0, 1, 1])
    groups = np.array(["a", "a", "a", "a", "b", "b"])
    a, b = group_rates(y, pred, groups)
    assert (a.group, a.size, a.base_rate, a.positive_rate) == ("a", 4, 0.5, 0.5)
    assert (a.true_positive_rate, a.false_positive_rate) == (0.5, 0.5)
    assert (b.true_positive_rate, b.false_positive_rate, b.positive_rate) == (1.0, 1.0, 1.0)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="y_prob must be probabilities"):
        brier_score([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="both pos_label"):
        sensitivity_specificity([1, 1], [0.2, 0.3], 0.5)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        cost_optimal_threshold([0, 1], [0.2, 0.3], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="groups has 1"):
        group_rates([0, 1], [0, 1], ["a"])
