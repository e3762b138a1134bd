"""lepton_lib.foundations.numpy_mlp and lepton_lib.foundations.gradcheck against PyTorch and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lepton_lib.foundations import numpy_mlp as nn
from lepton_lib.foundations import (
    check_model_gradients,
    gradient_check,
    numerical_gradient,
    relative_error,
)

TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "identity": lambda t: t,
}
TORCH_MODULES = {
    "sigmoid": torch.nn.Sigmoid,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "gelu": lambda: torch.nn.GELU(approximate="none"),
    "gelu_tanh": lambda: torch.nn.GELU(approximate="tanh"),
}


def _points(seed: int = 0) -> np.ndarray:
    # A grid over the interesting range plus random points; no exact 0 (ReLU's kink).
    rng = np.random.default_rng(seed)
    return np.concatenate([np.linspace(-8.0, 8.0, 161) + 1e-3, rng.normal(0.0, 3.0, 200)])


def _torch_value_and_grad(fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = fn(t)
    (grad,) = torch.autograd.grad(out.sum(), t)
    return out.detach().numpy(), grad.numpy()


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_activation_and_derivative_match_torch_autograd(name: str) -> None:
    f, f_grad = nn.ACTIVATIONS[name]
    x = _points()
    want_value, want_grad = _torch_value_and_grad(TORCH_ACTIVATIONS[name], x)
    np.testing.assert_allclose(f(x), want_value, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f_grad(x), want_grad, rtol=1e-10, atol=1e-10)


def test_sigmoid_is_stable_for_large_inputs() -> None:
    x = np.array([-1000.0, -745.0, -50.0, 0.0, 50.0, 745.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is harmless
        s = nn.sigmoid(x)
        ds = nn.sigmoid_grad(x)
    want = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(s, want, rtol=1e-12, atol=1e-300)  # torch flushes exp(-745) to 0
    assert s[0] >= 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert np.all(np.isfinite(ds)) and ds[3] == 0.25


def test_gelu_tanh_is_an_approximation_of_the_exact_gelu() -> None:
    x = np.linspace(-6.0, 6.0, 1201)
    gap = np.abs(nn.gelu(x) - nn.gelu_tanh(x))
    assert gap.max() < 1e-3  # close...
    assert gap.max() > 1e-5  # ...but a different function, so the two names matter


# --------------------------------------------------------------------- losses


def _check_loss(loss_fn, torch_loss, inputs: np.ndarray, target: np.ndarray, torch_target) -> None:
    loss, grad = loss_fn(inputs, target)
    t = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
    want = torch_loss(t, torch_target)
    (want_grad,) = torch.autograd.grad(want, t)
    assert loss == pytest.approx(want.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, want_grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mse_matches_torch() -> None:
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    _check_loss(nn.mse_loss, F.mse_loss, pred, target, torch.tensor(target))


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_cross_entropy_matches_torch(scale: float) -> None:
    rng = np.random.default_rng(2)
    logits, target = scale * rng.normal(size=(9, 5)), rng.integers(0, 5, size=9)
    _check_loss(nn.cross_entropy, F.cross_entropy, logits, target, torch.tensor(target))


def test_binary_cross_entropy_with_logits_matches_torch() -> None:
    rng = np.random.default_rng(3)
    logits = 10.0 * rng.normal(size=(11, 2))
    target = rng.uniform(size=(11, 2))  # soft targets are allowed, as in torch
    target[:5] = np.round(target[:5])
    _check_loss(nn.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
                logits, target, torch.tensor(target))


def test_multi_margin_loss_matches_torch() -> None:
    rng = np.random.default_rng(4)
    scores, target = rng.normal(size=(12, 4)), rng.integers(0, 4, size=12)
    _check_loss(nn.multi_margin_loss, F.multi_margin_loss, scores, target, torch.tensor(target))
    loss, grad = nn.multi_margin_loss(scores, target, margin=0.3)
    t = torch.tensor(scores, requires_grad=True)
    want = F.multi_margin_loss(t, torch.tensor(target), margin=0.3)
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_binary_hinge_matches_torch_and_two_class_multi_margin() -> None:
    rng = np.random.default_rng(5)
    scores, labels = rng.normal(size=(10,)), rng.choice([-1.0, 1.0], size=10)
    _check_loss(nn.hinge_loss, lambda s, y: torch.clamp(1 - y * s, min=0).mean(),
                scores, labels, torch.tensor(labels))
    # Binary hinge on s equals 2 x multi_margin_loss on the two scores (-s/2, s/2).
    two_class = torch.tensor(np.stack([-scores / 2, scores / 2], axis=1))
    classes = torch.tensor(((labels + 1) // 2).astype(np.int64))
    assert nn.hinge_loss(scores, labels)[0] == pytest.approx(
        2 * F.multi_margin_loss(two_class, classes).item(), rel=1e-12)


def test_log_softmax_stays_finite_for_huge_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        logp = nn.log_softmax(logits)
        loss, grad = nn.cross_entropy(logits, np.array([2, 0, 1]))
    want = F.log_softmax(torch.tensor(logits), dim=-1).numpy()
    assert np.all(np.isfinite(logp)) and np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(logp, want, rtol=1e-12)
    assert logp[0, 2] == -2000.0 and logp[1, 0] == pytest.approx(-np.log(3.0))
    # The naive formula overflows to nan on the same input: the test above is not vacuous.
    with np.errstate(all="ignore"):
        naive = np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    assert not np.all(np.isfinite(naive))


def test_cross_entropy_is_never_negative() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20):
        logits = rng.normal(0.0, 5.0, size=(4, 3))
        assert nn.cross_entropy(logits, rng.integers(0, 3, size=4))[0] >= 0.0


# ----------------------------------------------------------- gradient checking


def test_numerical_gradient_of_a_known_function() -> None:
    x = np.array([0.3, -1.2, 2.0])
    num = numerical_gradient(lambda v: float(np.sum(v**3) + np.sin(v[0]) * v[1]), x)
    exact = 3 * x**2 + np.array([np.cos(x[0]) * x[1], np.sin(x[0]), 0.0])
    assert relative_error(exact, num) < 1e-8
    np.testing.assert_array_equal(x, [0.3, -1.2, 2.0])  # restored after perturbing


def test_relative_error_definition() -> None:
    assert relative_error(np.array([1.0, -2.0]), np.array([1.0, -2.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 1.1)
    assert relative_error(np.array([0.0]), np.array([1e-11]), tiny=1e-4) == pytest.approx(1e-7)
    assert relative_error(np.array([3.0]), np.array([-3.0])) == pytest.approx(2.0)


def _problem(loss: str, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 4))
    if loss in ("cross_entropy", "multi_margin"):
        return x, rng.integers(0, 3, size=8), 3
    if loss == "mse":
        return x, rng.normal(size=(8, 3)), 3
    if loss == "bce_with_logits":
        return x, rng.integers(0, 2, size=(8, 1)).astype(np.float64), 1
    return x, rng.choice([-1.0, 1.0], size=(8, 1)), 1


def _mlp(sizes: list[int], activation: str, seed: int) -> nn.MLP:
    model = nn.MLP(sizes, activation, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 100)
    for layer in model.layers:
        # Non-zero biases: with zero biases a row of dead ReLUs feeds an exact 0
        # into the next ReLU, right on its kink, where no derivative exists.
        layer.b[:] = rng.normal(0.0, 0.5, size=layer.b.shape)
    return model


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce_with_logits", "hinge", "multi_margin"])
def test_mlp_backward_passes_gradient_check(activation: str, loss: str) -> None:
    x, y, out = _problem(loss, seed=1)
    model = _mlp([4, 6, 5, out], activation, seed=2)
    errors = check_model_gradients(model, nn.LOSSES[loss], x, y)
    assert set(errors) == {"W0", "b0", "W1", "b1", "W2", "b2"}
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_detects_a_wrong_activation_derivative(monkeypatch) -> None:
    x, y, out = _problem("cross_entropy", seed=1)
    model = _mlp([4, 6, 5, out], "tanh", seed=2)
    assert max(check_model_gradients(model, nn.cross_entropy, x, y).values()) < 1e-6
    # A classic slip: 1 - tanh(x) instead of 1 - tanh(x)^2.
    monkeypatch.setitem(nn.ACTIVATIONS, "tanh", (nn.tanh, lambda z: 1.0 - np.tanh(z)))
    assert max(check_model_gradients(model, nn.cross_entropy, x, y).values()) > 1e-2


def test_gradient_check_detects_dW_from_pre_activations(monkeypatch) -> None:
    x, y, out = _problem("mse", seed=3)
    model = _mlp([4, 6, 5, out], "sigmoid", seed=4)
    f = nn.sigmoid

    def forward_remembering_pre_activations(self, inputs):
        # The same outputs, but each layer keeps z = W h + b of the layer below
        # instead of its input h = f(z): dW = z^T delta, the bug to catch.
        self._pre_activations, h = [], inputs
        for i, layer in enumerate(self.layers):
            out = layer.forward(h)
            if i > 0:
                layer._x = self._pre_activations[-1]
            if i < len(self.layers) - 1:
                self._pre_activations.append(out)
                h = f(out)
        return out

    monkeypatch.setattr(nn.MLP, "forward", forward_remembering_pre_activations)
    errors = check_model_gradients(model, nn.mse_loss, x, y)
    assert errors["W1"] > 1e-2 and errors["W2"] > 1e-2
    # Everything that does not use a cached input is still right, and the check says so.
    assert max(errors[k] for k in ("W0", "b0", "b1", "b2")) < 1e-6


# ----------------------------------------------------------- torch equivalence


@pytest.mark.parametrize("activation", sorted(TORCH_MODULES))
def test_mlp_matches_torch_sequential(activation: str) -> None:
    sizes = [5, 7, 6, 3]
    model = nn.MLP(sizes, activation, np.random.default_rng(7))
    modules: list[torch.nn.Module] = []
    for i, layer in enumerate(model.layers):
        linear = torch.nn.Linear(sizes[i], sizes[i + 1]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W.T))  # torch stores (out, in)
            linear.bias.copy_(torch.from_numpy(layer.b))
        modules.append(linear)
        if i < len(model.layers) - 1:
            modules.append(TORCH_MODULES[activation]())
    reference = torch.nn.Sequential(*modules)

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(10, 5)), rng.integers(0, 3, size=10)
    scores = model.forward(x)
    loss, grad = nn.cross_entropy(scores, y)
    grads = model.backward(grad)

    t_scores = reference(torch.from_numpy(x))
    t_loss = F.cross_entropy(t_scores, torch.from_numpy(y))
    t_loss.backward()
    np.testing.assert_allclose(scores, t_scores.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    linears = [m for m in reference if isinstance(m, torch.nn.Linear)]
    for i, linear in enumerate(linears):
        np.testing.assert_allclose(grads[f"W{i}"], linear.weight.grad.numpy().T, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(grads[f"b{i}"], linear.bias.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_step_is_plain_gradient_descent_and_training_lowers_the_loss() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(32, 2)), (rng.normal(size=32) > 0).astype(np.int64)
    model = nn.MLP([2, 8, 2], "tanh", np.random.default_rng(10))
    before = {k: v.copy() for k, v in model.params().items()}
    first, grad = nn.cross_entropy(model.forward(x), y)
    grads = {k: v.copy() for k, v in model.backward(grad).items()}
    model.step(0.5)
    for k, p in model.params().items():
        np.testing.assert_allclose(p, before[k] - 0.5 * grads[k], rtol=0, atol=1e-15)
    for _ in range(50):
        model.backward(nn.cross_entropy(model.forward(x), y)[1])
        model.step(0.5)
    assert nn.cross_entropy(model.forward(x), y)[0] < 0.9 * first


def test_init_scales_follow_he_and_xavier() -> None:
    rng = np.random.default_rng(11)
    he = nn.Linear(400, 300, rng, init="he")
    xavier = nn.Linear(400, 300, rng, init="xavier")
    assert he.W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert xavier.W.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)  # var of U(-a, a) is a^2/3
    assert np.abs(xavier.W).max() <= np.sqrt(6 / 700)
    assert nn.MLP([3, 4, 2], "relu", np.random.default_rng(0)).num_params() == 3 * 4 + 4 + 4 * 2 + 2


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: nn.mse_loss(np.zeros((4, 1)), np.zeros(4)), "target"),
        (lambda: nn.cross_entropy(np.zeros(3), np.array([0, 1, 2])), "logits"),
        (lambda: nn.cross_entropy(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0])), "target"),
        (lambda: nn.cross_entropy(np.zeros((3, 4)), np.array([0, 1, 4])), "target"),
        (lambda: nn.cross_entropy(np.zeros((3, 4)), np.array([0, -1, 2])), "target"),
        (lambda: nn.cross_entropy(np.zeros((3, 4)), np.array([0, 1])), "target"),
        (lambda: nn.multi_margin_loss(np.zeros((2, 3)), np.array([0.5, 1.0])), "target"),
        (lambda: nn.multi_margin_loss(np.zeros((2, 3)), np.array([0, 3])), "target"),
        (lambda: nn.binary_cross_entropy_with_logits(np.zeros(3), np.array([0.0, 1.0, 2.0])), "target"),
        (lambda: nn.binary_cross_entropy_with_logits(np.zeros((3, 1)), np.zeros(3)), "target"),
        (lambda: nn.hinge_loss(np.zeros(3), np.array([0.0, 1.0, -1.0])), "target"),
        (lambda: nn.MLP([3, 4, 2]).forward(np.zeros((5, 2))), "x"),
        (lambda: nn.MLP([3, 4, 2]).forward(np.zeros(3)), "x"),
        (lambda: nn.MLP([3, 4, 2], activation="swish"), "activation"),
        (lambda: nn.MLP([3]), "sizes"),
        (lambda: nn.Linear(3, 0, np.random.default_rng(0)), "out_features"),
        (lambda: nn.Linear(3, 2, np.random.RandomState(0)), "rng"),
        (lambda: nn.Linear(3, 2, np.random.default_rng(0), init="normal"), "init"),
        (lambda: nn.MLP([3, 2]).step(-0.1), "lr"),
        (lambda: numerical_gradient(lambda v: 0.0, np.zeros(3, dtype=np.float32)), "x"),
        (lambda: gradient_check(lambda v: 0.0, np.zeros(3), np.zeros(4)), "analytic_grad"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument}\b"):
        call()


def test_backward_before_forward_and_wrong_grad_shape_raise() -> None:
    model = nn.MLP([3, 4, 2])
    with pytest.raises(ValueError, match="grad_output"):
        model.backward(np.zeros((5, 2)))
    model.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        model.backward(np.zeros((5, 3)))
