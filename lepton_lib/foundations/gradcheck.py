"""Finite-difference gradient checks for code that computes gradients by hand.

The derivative of a scalar function f at x is approximated one coordinate at a
time by the central difference

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),

whose truncation error shrinks like eps^2 (a one-sided difference's only like
eps). Round-off pulls the other way: f is known to about 1e-16 |f|, so the
quotient carries an absolute error of about 1e-16 |f| / eps. For float64 and a
loss of order 1, eps = 1e-5 keeps both near 1e-11.

The comparison uses the relative error |a - b| / max(|a|, |b|, tiny), so a
gradient of size 1e-3 and one of size 1e3 are judged alike. ``tiny`` is the
size below which an entry is judged in absolute terms instead: a gradient that
is exactly zero (a dead ReLU, a hinge with its margin met, terms that cancel)
has a finite difference of pure round-off, about 1e-11, and dividing that by
itself would report a 100% error. With tiny = 1e-4 such an entry passes a 1e-6
tolerance only if |a - b| < 1e-10.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["numerical_gradient", "relative_error", "gradient_check", "check_model_gradients"]

Array = np.ndarray


def numerical_gradient(f: Callable[[Array], float], x: Array, eps: float = 1e-5) -> Array:
    """Central-difference gradient of the scalar function ``f`` at ``x``.

    ``x`` must be a float64 array; it is perturbed IN PLACE, one entry at a
    time, and restored afterwards. That lets ``f`` ignore its argument and read
    a model's parameter array directly (``x`` can be that very array).
    Cost: 2 * x.size evaluations of f.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a float64 numpy array (float32 is too coarse for this), got {got}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)   # views: writes reach x itself
    if not np.shares_memory(flat_x, x):
        raise ValueError("x must be contiguous so that it can be perturbed in place")
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        f_plus = float(f(x))
        flat_x[i] = old - eps
        f_minus = float(f(x))
        flat_x[i] = old                                    # restore exactly
        flat_grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(analytic: Array, numeric: Array, tiny: float = 1e-4) -> float:
    """max_i |a_i - b_i| / max(|a_i|, |b_i|, tiny); 0 for identical arrays."""
    a = np.asarray(analytic, dtype=np.float64)
    b = np.asarray(numeric, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"numeric has shape {b.shape}, expected the shape of analytic {a.shape}")
    if a.size == 0:
        return 0.0
    denominator = np.maximum(np.maximum(np.abs(a), np.abs(b)), tiny)
    return float(np.max(np.abs(a - b) / denominator))


def gradient_check(f: Callable[[Array], float], x: Array, analytic_grad: Array,
                   eps: float = 1e-5, tiny: float = 1e-4) -> float:
    """Max relative error between ``analytic_grad`` and the central difference of f at x.

    Rule of thumb in float64: below 1e-6 the gradient is right; above 1e-3 it
    is almost certainly wrong, or f has a kink (ReLU at 0) within eps of x.
    """
    analytic = np.asarray(analytic_grad, dtype=np.float64)
    if analytic.shape != np.shape(x):
        raise ValueError(f"analytic_grad has shape {analytic.shape}, expected the shape of x {np.shape(x)}")
    return relative_error(analytic, numerical_gradient(f, x, eps), tiny)


def check_model_gradients(model, loss_fn: Callable[[Array, Array], tuple[float, Array]],
                          inputs: Array, targets: Array, eps: float = 1e-5,
                          tiny: float = 1e-4) -> dict[str, float]:
    """Gradient-check every parameter of a model with ``forward``/``backward``/``params``.

    ``loss_fn(output, targets)`` returns ``(loss, dloss/doutput)``, like the
    losses in :mod:`lepton_lib.foundations.numpy_mlp`. Returns the max relative error per
    parameter name.
    """
    loss, grad_output = loss_fn(model.forward(inputs), targets)
    analytic: Mapping[str, Array] = {k: v.copy() for k, v in model.backward(grad_output).items()}

    def loss_at_current_params(_: Array) -> float:
        return loss_fn(model.forward(inputs), targets)[0]

    return {name: gradient_check(loss_at_current_params, param, analytic[name], eps, tiny)
            for name, param in model.params().items()}
