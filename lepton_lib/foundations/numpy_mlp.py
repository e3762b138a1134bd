"""A multilayer perceptron in plain NumPy, with backpropagation written by hand.

This module exists to be read. Every function returns what the maths in the
foundations chapters writes down, in float64, and nothing is hidden behind an
autograd engine. ``tests/test_numpy_nn.py`` checks each piece against PyTorch.

Shapes: ``B`` is the batch size, ``D`` the number of input features, ``H`` a
hidden width and ``C`` the number of outputs (classes for a classifier).
Layers compute ``x @ W + b`` with ``W`` of shape ``(in, out)``, so a batch of
rows flows left to right. PyTorch's ``nn.Linear`` stores the transpose,
``(out, in)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "relu", "relu_grad",
    "gelu", "gelu_grad", "gelu_tanh", "gelu_tanh_grad", "identity", "identity_grad",
    "ACTIVATIONS", "log_softmax", "softmax", "mse_loss", "cross_entropy",
    "binary_cross_entropy_with_logits", "hinge_loss", "multi_margin_loss", "LOSSES",
    "Linear", "MLP",
]

Array = np.ndarray

# ---------------------------------------------------------------- activations
# Each activation f comes with f_grad(x) = df/dx, evaluated elementwise at the
# pre-activation x (not at the output), so every derivative has one signature.


def sigmoid(x: Array) -> Array:
    """Logistic sigmoid 1 / (1 + exp(-x)), stable for any x.

    The textbook form overflows ``exp(-x)`` for x << 0. Writing it with
    ``e = exp(-|x|)`` (always in (0, 1]) gives 1 / (1 + e) for x >= 0 and
    e / (1 + e) for x < 0, so nothing ever overflows.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: Array) -> Array:
    """sigma'(x) = sigma(x) (1 - sigma(x)); at most 1/4, reached at x = 0."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent, 2 sigma(2x) - 1, with outputs in (-1, 1)."""
    return np.tanh(np.asarray(x, dtype=np.float64))


def tanh_grad(x: Array) -> Array:
    """tanh'(x) = 1 - tanh(x)^2; at most 1, reached at x = 0."""
    return 1.0 - np.tanh(np.asarray(x, dtype=np.float64)) ** 2


def relu(x: Array) -> Array:
    """Rectified linear unit max(0, x)."""
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def relu_grad(x: Array) -> Array:
    """1 where x > 0, else 0 (PyTorch's convention: the derivative at 0 is 0)."""
    return (np.asarray(x) > 0).astype(np.float64)


# NumPy has no erf; math.erf is accurate to the last bit, applied element by element.
_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: Array) -> Array:
    """GELU, the EXACT form: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).

    Phi is the standard normal CDF (Hendrycks & Gimpel, 2016). This is what
    ``torch.nn.functional.gelu(x)`` computes with its default ``approximate="none"``.
    """
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_grad(x: Array) -> Array:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), with phi the standard normal density."""
    x = np.asarray(x, dtype=np.float64)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def gelu_tanh(x: Array) -> Array:
    """GELU, the TANH APPROXIMATION: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Used by the original BERT and GPT-2 code; ``F.gelu(x, approximate="tanh")``.
    It differs from the exact form by less than about 1e-3.
    """
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(_GELU_K * (x + _GELU_C * x**3)))


def gelu_tanh_grad(x: Array) -> Array:
    """Derivative of :func:`gelu_tanh` by the product and chain rules."""
    x = np.asarray(x, dtype=np.float64)
    t = np.tanh(_GELU_K * (x + _GELU_C * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t**2) * _GELU_K * (1.0 + 3.0 * _GELU_C * x**2)


def identity(x: Array) -> Array:
    """f(x) = x: a layer with this 'activation' stays linear."""
    return np.asarray(x, dtype=np.float64)


def identity_grad(x: Array) -> Array:
    """f'(x) = 1."""
    return np.ones_like(np.asarray(x, dtype=np.float64))


# name -> (function, derivative). MLP looks the pair up at every call, so a test
# can swap in a wrong derivative and watch the gradient check catch it.
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "gelu": (gelu, gelu_grad),
    "gelu_tanh": (gelu_tanh, gelu_tanh_grad),
    "identity": (identity, identity_grad),
}

# --------------------------------------------------------------------- checks


def _as_float_array(name: str, value: object, ndim: int | None = None) -> Array:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array.astype(np.float64, copy=False)


def _check_class_targets(name: str, target: object, batch: int, num_classes: int) -> Array:
    array = np.asarray(target)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},) to match the batch, got {array.shape}")
    if batch and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}] for {num_classes} classes, "
            f"got values from {array.min()} to {array.max()}"
        )
    return array


def _check_same_shape(pred_name: str, pred: Array, target_name: str, target: Array) -> None:
    # Refuse to broadcast: (B,) against (B, 1) would silently build a (B, B) matrix.
    if pred.shape != target.shape:
        raise ValueError(
            f"{target_name} has shape {target.shape}, expected the shape of {pred_name} {pred.shape}"
        )


# --------------------------------------------------------------------- losses
# Every loss returns (loss, dloss/dinput), averaged over all elements (or over
# the batch for the classification losses), exactly like torch's reduction="mean".


def log_softmax(logits: Array) -> Array:
    """log softmax along the last axis, by log-sum-exp with the max subtracted.

    log p_c = z_c - log sum_k exp(z_k) = (z_c - m) - log sum_k exp(z_k - m), m = max_k z_k.
    After the shift the largest exponent is exp(0) = 1, so the sum lies in
    [1, C]: it can neither overflow nor underflow to log(0).
    """
    z = _as_float_array("logits", logits)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: Array) -> Array:
    """Softmax along the last axis, computed as exp(log_softmax) (stable)."""
    return np.exp(log_softmax(logits))


def mse_loss(pred: Array, target: Array) -> tuple[float, Array]:
    """Mean squared error over all N elements and its gradient 2 (pred - target) / N.

    pred and target must have the same shape (nothing is broadcast).
    """
    pred = _as_float_array("pred", pred)
    target = _as_float_array("target", target)
    _check_same_shape("pred", pred, "target", target)
    diff = pred - target
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def cross_entropy(logits: Array, target: Array) -> tuple[float, Array]:
    """Softmax cross-entropy on logits (B, C) with integer targets (B,).

    loss = -(1/B) sum_i log softmax(z_i)[y_i]; its gradient with respect to the
    logits is (softmax(z) - onehot(y)) / B. The loss is never negative.
    """
    z = _as_float_array("logits", logits, ndim=2)
    batch, num_classes = z.shape
    y = _check_class_targets("target", target, batch, num_classes)
    logp = log_softmax(z)
    rows = np.arange(batch)
    loss = -logp[rows, y].mean()
    grad = np.exp(logp)
    grad[rows, y] -= 1.0
    return float(loss), grad / batch


def binary_cross_entropy_with_logits(logits: Array, target: Array) -> tuple[float, Array]:
    """Binary cross-entropy on raw scores, with targets in [0, 1] of the same shape.

    -[t log sigma(x) + (1 - t) log(1 - sigma(x))] rewritten as
    max(x, 0) - x t + log(1 + exp(-|x|)), which never overflows. Gradient: (sigma(x) - t) / N.
    """
    x = _as_float_array("logits", logits)
    t = _as_float_array("target", target)
    _check_same_shape("logits", x, "target", t)
    if t.size and (t.min() < 0.0 or t.max() > 1.0):
        raise ValueError(f"target must lie in [0, 1], got values from {t.min()} to {t.max()}")
    per_element = np.maximum(x, 0.0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return float(per_element.mean()), (sigmoid(x) - t) / x.size


def hinge_loss(scores: Array, target: Array) -> tuple[float, Array]:
    """Binary hinge loss mean(max(0, 1 - y s)) with labels y in {-1, +1}.

    A correct answer with margin y s >= 1 costs nothing and gets no gradient;
    otherwise the (sub)gradient is -y / N.
    """
    s = _as_float_array("scores", scores)
    y = _as_float_array("target", target)
    _check_same_shape("scores", s, "target", y)
    if not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError(f"target must hold labels -1 or +1, got values {np.unique(y)[:5]}")
    margin = 1.0 - y * s
    return float(np.maximum(margin, 0.0).mean()), np.where(margin > 0, -y, 0.0) / s.size


def multi_margin_loss(scores: Array, target: Array, margin: float = 1.0) -> tuple[float, Array]:
    """Multiclass hinge loss as ``torch.nn.functional.multi_margin_loss`` (p=1) computes it.

    For each row: (1/C) sum_{j != y} max(0, margin - s_y + s_j), then the batch mean.
    This is the Weston-Watkins form (a sum over every wrong class); Crammer-Singer
    would take the max over wrong classes instead. scores (B, C), target (B,) integers.
    """
    s = _as_float_array("scores", scores, ndim=2)
    batch, num_classes = s.shape
    y = _check_class_targets("target", target, batch, num_classes)
    rows = np.arange(batch)
    violations = margin - s[rows, y][:, None] + s          # (B, C)
    violations[rows, y] = 0.0                              # the true class is not compared with itself
    active = (violations > 0).astype(np.float64)           # (B, C) which margins are violated
    loss = (violations * active).sum(axis=1) / num_classes
    grad = active.copy()
    grad[rows, y] = -active.sum(axis=1)                    # s_y appears with a minus in every active term
    return float(loss.mean()), grad / (num_classes * batch)


LOSSES: dict[str, Callable[[Array, Array], tuple[float, Array]]] = {
    "mse": mse_loss,
    "cross_entropy": cross_entropy,
    "bce_with_logits": binary_cross_entropy_with_logits,
    "hinge": hinge_loss,
    "multi_margin": multi_margin_loss,
}

# ---------------------------------------------------------------------- layers


class Linear:
    """An affine layer y = x @ W + b with W (in_features, out_features), b (out_features,).

    ``init`` picks the scale of the random weights (biases start at zero):
    ``"he"``: normal with variance 2 / in_features (He et al., 2015), for ReLU-like units;
    ``"xavier"``: uniform on +-sqrt(6 / (in + out)) (Glorot & Bengio, 2010), for tanh/sigmoid.
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator,
                 init: str = "he") -> None:
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{name} must be a positive int, got {size!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if init == "he":
            self.W = rng.normal(0.0, math.sqrt(2.0 / in_features), size=(in_features, out_features))
        elif init == "xavier":
            limit = math.sqrt(6.0 / (in_features + out_features))
            self.W = rng.uniform(-limit, limit, size=(in_features, out_features))
        else:
            raise ValueError(f"init must be 'he' or 'xavier', got {init!r}")
        self.b = np.zeros(out_features)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self._x: Array | None = None

    def forward(self, x: Array) -> Array:
        """(B, in) -> (B, out). Caches the INPUT x: backward needs it for dW."""
        x = _as_float_array("x", x, ndim=2)
        if x.shape[1] != self.W.shape[0]:
            raise ValueError(f"x must have shape (B, {self.W.shape[0]}), got {x.shape}")
        self._x = x
        return x @ self.W + self.b

    def backward(self, grad_out: Array) -> Array:
        """Given dL/dy (B, out), store dL/dW = x^T dL/dy and dL/db; return dL/dx (B, in)."""
        if self._x is None:
            raise ValueError("grad_out given before any forward pass: call forward first")
        expected = (self._x.shape[0], self.W.shape[1])
        if grad_out.shape != expected:
            raise ValueError(f"grad_out must have shape {expected}, got {grad_out.shape}")
        self.dW = self._x.T @ grad_out           # (in, B) @ (B, out) sums over the batch
        self.db = grad_out.sum(axis=0)           # the bias is added to every row
        return grad_out @ self.W.T               # (B, out) @ (out, in)


class MLP:
    """Linear -> activation -> ... -> Linear: no activation after the last layer.

    ``sizes`` lists the widths, input first: ``[2, 16, 16, 1]`` is two hidden
    layers of 16 units. The output is a raw score (a logit); the loss function
    applies softmax or sigmoid itself, which is the numerically stable way.
    ``init=None`` picks He for ReLU/GELU and Xavier for sigmoid/tanh/identity;
    ``rng=None`` means ``np.random.default_rng(0)``, so an unseeded MLP is still reproducible.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 rng: np.random.Generator | None = None, init: str | None = None) -> None:
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output width, got {list(sizes)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if rng is None:
            rng = np.random.default_rng(0)
        if init is None:
            init = "he" if activation in ("relu", "gelu", "gelu_tanh") else "xavier"
        self.sizes = [int(s) for s in sizes]
        self.activation = activation
        self.layers = [Linear(n_in, n_out, rng, init) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self._pre_activations: list[Array] = []

    def forward(self, x: Array) -> Array:
        """x (B, sizes[0]) -> scores (B, sizes[-1]); caches each hidden pre-activation z."""
        f, _ = ACTIVATIONS[self.activation]
        self._pre_activations = []
        h = x
        for layer in self.layers[:-1]:
            z = layer.forward(h)                  # the layer caches its input h
            self._pre_activations.append(z)       # the activation's derivative needs z
            h = f(z)
        return self.layers[-1].forward(h)

    def backward(self, grad_output: Array) -> dict[str, Array]:
        """Backpropagate dL/dscores (B, sizes[-1]); return dL/d(every W and b).

        Walking the layers in reverse: the last layer turns dL/dy into dL/dh;
        multiplying elementwise by f'(z) gives dL/dz, which is the next
        layer's dL/dy.
        """
        if len(self._pre_activations) != len(self.layers) - 1:
            raise ValueError("grad_output given before any forward pass: call forward first")
        _, f_grad = ACTIVATIONS[self.activation]
        grad = self.layers[-1].backward(np.asarray(grad_output, dtype=np.float64))
        for layer, z in zip(reversed(self.layers[:-1]), reversed(self._pre_activations)):
            grad = layer.backward(grad * f_grad(z))
        return self.grads()

    def params(self) -> dict[str, Array]:
        """The parameter arrays themselves (not copies), named W0, b0, W1, b1, ..."""
        named: dict[str, Array] = {}
        for i, layer in enumerate(self.layers):
            named[f"W{i}"], named[f"b{i}"] = layer.W, layer.b
        return named

    def grads(self) -> dict[str, Array]:
        """Gradients from the last backward pass, with the same names as :meth:`params`."""
        named: dict[str, Array] = {}
        for i, layer in enumerate(self.layers):
            named[f"W{i}"], named[f"b{i}"] = layer.dW, layer.db
        return named

    def step(self, lr: float) -> None:
        """Plain gradient descent, in place: theta <- theta - lr * dL/dtheta."""
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        for layer in self.layers:
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db

    def num_params(self) -> int:
        """Number of scalar parameters."""
        return sum(p.size for p in self.params().values())
