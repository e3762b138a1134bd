"""Explaining one prediction of a tabular model: KernelSHAP and a LIME-style local surrogate.

Both methods treat the model as a black box ``predict``: a function from a batch of rows, shape
``(N, M)``, to one score per row, shape ``(N,)`` (for a classifier, the probability of one class).

* **KernelSHAP** (Lundberg & Lee 2017, arXiv:1705.07874) gives each of the ``M`` features its Shapley
  value in the game whose players are the features and whose payoff for a coalition ``S`` is
  ``v(S) = mean_b f(x_S, b_rest)``: the model's score when the features in ``S`` keep the values of the
  explained row ``x`` and the others are taken from background rows ``b``. The Shapley values are the
  solution of a weighted least-squares problem over coalitions with the *Shapley kernel* weights
  ``pi(S) = (M - 1) / (C(M, |S|) |S| (M - |S|))``, under the *efficiency* constraint that they sum to
  ``f(x) - E[f(background)]``. Over all ``2^M`` coalitions the solution is exact; sampled, an estimate.
* **LIME** (Ribeiro et al. 2016, arXiv:1602.04938) samples rows near the data, weighs each by an
  exponential kernel on its (standardised) distance to ``x`` and fits a weighted ridge regression: its
  coefficients are the explanation. The defaults mirror ``lime.lime_tabular.LimeTabularExplainer`` with
  ``discretize_continuous=False`` (lime 0.2): Gaussian samples with the training data's mean and standard
  deviation, kernel width ``0.75 sqrt(M)`` on standardised distances, ridge ``alpha = 1``.

``tests/test_explanations.py`` checks both against brute-force Shapley values and against the ``shap``
and ``lime`` packages.
"""
from __future__ import annotations

from math import comb
from typing import Callable, NamedTuple, Sequence

import numpy as np

from lepton_lib.core.checks import check_non_negative_int, check_non_negative_number, check_positive_int, \
    check_positive_number

__all__ = ["ShapleyAttribution", "LocalSurrogate", "coalition_values", "shapley_kernel_weights", "kernel_shap",
           "lime_perturbations", "weighted_ridge", "fit_local_surrogate", "lime_tabular_explanation"]

Predict = Callable[[np.ndarray], np.ndarray]
EXACT_MAX_FEATURES = 12  # 2^12 = 4096 coalitions: enumerate them all below this many features


class ShapleyAttribution(NamedTuple):
    """``values`` (M,): one Shapley value per feature; ``base_value``: E[f(background)];
    ``prediction``: f(x) = base_value + values.sum()."""
    values: np.ndarray
    base_value: float
    prediction: float


class LocalSurrogate(NamedTuple):
    """A linear model ``intercept + coefficients @ ((row - mean) / scale)`` fitted around one row.

    ``coefficients`` (M,) are per training-set standard deviation (``scale``), as lime reports them;
    ``score`` is the weighted R^2 of the fit on the perturbed samples.
    """
    coefficients: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    score: float


def _as_matrix(name: str, value, num_features: int | None = None) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array of shape (N, M), got shape {array.shape}")
    if num_features is not None and array.shape[1] != num_features:
        raise ValueError(f"{name} must have {num_features} columns (the features of x), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(array)))} NaN or infinite values")
    return array


def _as_row(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be one row, a non-empty 1-D array of shape (M,), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    return array


def _predict_scores(predict: Predict, rows: np.ndarray) -> np.ndarray:
    """``predict(rows)`` as float64 of shape (N,), or a ValueError naming ``predict``."""
    scores = np.asarray(predict(rows), dtype=np.float64)
    if scores.shape != (len(rows),):
        raise ValueError(f"predict must map rows of shape {rows.shape} to one score each, shape ({len(rows)},); "
                         f"got shape {scores.shape} (for a classifier pass e.g. lambda X: model.predict_proba(X)[:, 1])")
    return scores


def _check_predict(predict) -> None:
    if not callable(predict):
        raise ValueError(f"predict must be a function from rows (N, M) to scores (N,), got {type(predict).__name__}")


# ----------------------------------------------------------------------------------------------- KernelSHAP

def coalition_values(predict: Predict, x: np.ndarray, background: np.ndarray, masks: np.ndarray,
                     chunk: int = 256) -> np.ndarray:
    """``v(S) = mean_b predict(x where S, else b)`` for each coalition ``S``.

    ``x`` (M,), ``background`` (B, M), ``masks`` (S, M) bool (True = the feature keeps x's value).
    Returns (S,). Evaluates ``predict`` on S * B rows, ``chunk`` coalitions at a time.
    """
    values = np.empty(len(masks))
    for start in range(0, len(masks), chunk):
        block = masks[start:start + chunk]
        rows = np.where(block[:, None, :], x[None, None, :], background[None, :, :])  # (s, B, M)
        scores = _predict_scores(predict, rows.reshape(-1, x.size))
        values[start:start + chunk] = scores.reshape(len(block), len(background)).mean(axis=1)
    return values


def shapley_kernel_weights(num_features: int, sizes: np.ndarray) -> np.ndarray:
    """``pi(s) = (M - 1) / (C(M, s) s (M - s))`` for coalition sizes ``0 < s < M``; shape of ``sizes``."""
    M = num_features
    sizes = np.asarray(sizes)
    binomials = np.array([comb(M, int(s)) for s in sizes.ravel()], dtype=np.float64).reshape(sizes.shape)
    return (M - 1) / (binomials * sizes * (M - sizes))


def _all_coalitions(M: int) -> tuple[np.ndarray, np.ndarray]:
    """Every coalition except the empty and the full one (their weight is infinite: they become the
    constraints), with its Shapley kernel weight. Masks (2^M - 2, M) bool, weights (2^M - 2,)."""
    codes = np.arange(1, 2 ** M - 1)
    masks = (codes[:, None] >> np.arange(M)[None, :]) & 1 == 1
    return masks, shapley_kernel_weights(M, masks.sum(axis=1))


def _sampled_coalitions(M: int, num_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` coalitions drawn with probability proportional to their kernel weight, in pairs
    (S and its complement, which lowers the variance), each then weighing 1 in the regression."""
    sizes = np.arange(1, M)
    size_mass = (M - 1) / (sizes * (M - sizes))  # C(M, s) coalitions of size s, each of weight pi(s)
    drawn = rng.choice(sizes, size=(num_samples + 1) // 2, p=size_mass / size_mass.sum())
    order = np.argsort(rng.random((len(drawn), M)), axis=1)  # a uniform random permutation per sample
    masks = order < drawn[:, None]  # its first |S| features form a uniform subset of that size
    masks = np.concatenate([masks, ~masks])[:num_samples]
    return masks, np.ones(len(masks))


def kernel_shap(predict: Predict, x, background, num_samples: int | None = None, seed: int = 0,
                groups: Sequence[int] | None = None) -> ShapleyAttribution:
    """KernelSHAP attributions of ``predict(x)`` against ``background`` rows.

    ``x`` (M,), ``background`` (B, M); ``predict`` maps (N, M) to (N,). With ``num_samples=None`` all
    ``2^M - 2`` coalitions are enumerated when ``M <= 12`` (exact Shapley values), else ``2M + 2048``
    coalitions are sampled (shap's default); an explicit ``num_samples >= 2^M - 2`` also enumerates.
    The model is evaluated on (number of coalitions + 2) * B rows. Sampling draws from
    ``np.random.default_rng(seed)``; the caller's random state is untouched.

    ``groups`` (M,) ints in ``0..G-1`` makes the players groups of features that enter or leave a
    coalition together (the one-hot columns of one categorical attribute); then ``M`` above means ``G``
    and ``values`` has shape (G,).
    """
    _check_predict(predict)
    x = _as_row("x", x)
    M = x.size
    background = _as_matrix("background", background, M)
    check_positive_int("num_samples", num_samples, allow_none=True)
    check_non_negative_int("seed", seed)
    members = _check_groups(groups, M)
    M = int(members.max()) + 1  # the number of players (a Python int: 2 ** M must not overflow)
    if M == 1:
        raise ValueError("x must have at least 2 features (or groups) to share a prediction among, got 1")
    exact = num_samples >= 2 ** M - 2 if num_samples is not None else M <= EXACT_MAX_FEATURES
    if exact:
        masks, weights = _all_coalitions(M)
    else:
        masks, weights = _sampled_coalitions(M, num_samples or 2 * M + 2048, np.random.default_rng(seed))
    ends = coalition_values(predict, x, background, np.array([[False] * x.size, [True] * x.size]))
    base_value, prediction = float(ends[0]), float(ends[1])
    gains = coalition_values(predict, x, background, masks[:, members]) - base_value  # (S,) v(S) - v(empty)
    values = _constrained_weighted_least_squares(masks.astype(np.float64), gains, weights,
                                                 total=prediction - base_value)
    return ShapleyAttribution(values, base_value, prediction)


def _check_groups(groups: Sequence[int] | None, num_features: int) -> np.ndarray:
    """The group of each feature as an int array (M,) using every group 0..G-1; each its own by default."""
    if groups is None:
        return np.arange(num_features)
    members = np.asarray(groups)
    if members.shape != (num_features,) or not np.issubdtype(members.dtype, np.integer) or members.min() < 0 \
            or set(np.unique(members).tolist()) != set(range(members.max() + 1)):
        raise ValueError(f"groups must give each of the {num_features} features a group index, using every index "
                         f"0..G-1; got {groups!r}")
    return members


def _constrained_weighted_least_squares(Z: np.ndarray, y: np.ndarray, w: np.ndarray, total: float) -> np.ndarray:
    """argmin_phi sum_k w_k (y_k - Z_k . phi)^2 subject to sum(phi) = total.

    The constraint removes the last unknown: phi_M = total - sum_{j<M} phi_j, so
    y - Z[:, M] total = (Z[:, :M] - Z[:, M]) phi_{:M}, an ordinary weighted least-squares problem.
    """
    last = Z[:, -1]
    design = Z[:, :-1] - last[:, None]
    target = y - last * total
    root_w = np.sqrt(w)
    head = np.linalg.lstsq(design * root_w[:, None], target * root_w, rcond=None)[0]
    return np.append(head, total - head.sum())


# ------------------------------------------------------------------------------------------------------ LIME

def _mean_and_scale(training_data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population standard deviations, a zero deviation read as 1 (as StandardScaler)."""
    scale = training_data.std(axis=0)
    return training_data.mean(axis=0), np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)


def lime_perturbations(x, training_data, num_samples: int, seed: int = 0,
                       sample_around_instance: bool = False) -> np.ndarray:
    """LIME's neighbourhood: row 0 is ``x`` (M,), the other ``num_samples - 1`` rows are
    ``mean + scale * z`` with ``z ~ N(0, I)`` (around ``x`` instead of the mean if
    ``sample_around_instance``), mean and scale from ``training_data`` (N, M). Returns (num_samples, M)."""
    x = _as_row("x", x)
    training_data = _as_matrix("training_data", training_data, x.size)
    check_positive_int("num_samples", num_samples)
    check_non_negative_int("seed", seed)
    mean, scale = _mean_and_scale(training_data)
    z = np.random.default_rng(seed).standard_normal((num_samples, x.size))
    samples = z * scale + (x if sample_around_instance else mean)
    samples[0] = x
    return samples


def weighted_ridge(features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                   alpha: float = 1.0) -> tuple[np.ndarray, float]:
    """``argmin_{b, c} sum_k w_k (y_k - c - X_k . b)^2 + alpha |b|^2`` (intercept not penalised).

    ``features`` (N, M), ``targets`` (N,), ``weights`` (N,) >= 0. Centring X and y at their weighted means
    removes ``c``; then ``b = (Xc^T W Xc + alpha I)^-1 Xc^T W yc`` and ``c = y_mean - x_mean . b``
    (what scikit-learn's ``Ridge(alpha).fit(X, y, sample_weight=w)`` computes).
    """
    w = np.asarray(weights, dtype=np.float64)
    x_mean = w @ features / w.sum()
    y_mean = w @ targets / w.sum()
    Xc, yc = features - x_mean, targets - y_mean
    gram = Xc.T @ (w[:, None] * Xc) + alpha * np.eye(features.shape[1])
    coefficients = np.linalg.solve(gram, Xc.T @ (w * yc))
    return coefficients, float(y_mean - x_mean @ coefficients)


def fit_local_surrogate(samples, scores, training_data, kernel_width: float | None = None,
                        alpha: float = 1.0) -> LocalSurrogate:
    """Fit LIME's surrogate to ``scores`` (N,) = f(``samples``) (N, M), whose row 0 is the explained row.

    Samples are standardised with ``training_data``'s mean and deviation; sample ``k`` weighs
    ``exp(-d_k^2 / (2 width^2))``, ``d_k`` its Euclidean distance to row 0 in standardised units
    (lime's ``sqrt(exp(-d^2 / width^2))``), ``width = 0.75 sqrt(M)`` by default.
    """
    samples = _as_matrix("samples", samples)
    M = samples.shape[1]
    training_data = _as_matrix("training_data", training_data, M)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(samples),) or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be finite with shape ({len(samples)},) (one per sample), got {scores.shape}")
    width = 0.75 * np.sqrt(M) if kernel_width is None else check_positive_number("kernel_width", kernel_width)
    alpha = check_non_negative_number("alpha", alpha)
    mean, scale = _mean_and_scale(training_data)
    standardised = (samples - mean) / scale
    distances = np.linalg.norm(standardised - standardised[0], axis=1)
    weights = np.exp(-distances ** 2 / (2 * width ** 2))
    coefficients, intercept = weighted_ridge(standardised, scores, weights, alpha)
    residual = scores - intercept - standardised @ coefficients
    spread = scores - weights @ scores / weights.sum()
    score = 1.0 - (weights @ residual ** 2) / (weights @ spread ** 2)
    return LocalSurrogate(coefficients, intercept, mean, scale, float(score))


def lime_tabular_explanation(predict: Predict, x, training_data, num_samples: int = 5000, seed: int = 0,
                             kernel_width: float | None = None, alpha: float = 1.0,
                             sample_around_instance: bool = False) -> LocalSurrogate:
    """A LIME explanation of ``predict(x)``: :func:`lime_perturbations`, the model on them, then
    :func:`fit_local_surrogate`. ``x`` (M,), ``training_data`` (N, M); ``predict`` maps (K, M) to (K,)."""
    _check_predict(predict)
    samples = lime_perturbations(x, training_data, num_samples, seed, sample_around_instance)
    if kernel_width is not None:
        check_positive_number("kernel_width", kernel_width)
    check_non_negative_number("alpha", alpha)
    scores = _predict_scores(predict, samples)
    return fit_local_surrogate(samples, scores, training_data, kernel_width, alpha)
