"""lepton_lib.foundations.optimizers against torch.optim, step for step, and the helpers around it.

The parity harness gives both optimizers the very same gradient tensor at
every step (computed once, on the reference model), so any difference in the
parameters comes from the update rule alone. A deliberately wrong Adam or SGD
must fail the same harness: that is what shows the check has teeth.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton_lib.foundations import optimizers as lo
from lepton_lib.foundations import surfaces

pytestmark = pytest.mark.usefixtures("single_thread")


TOL = 1e-12  # float64 parameters must agree to this after EVERY step
STEPS = 60


def _small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()


def max_deviation_over_run(make_ours, make_reference, steps: int = STEPS) -> list[float]:
    """Train two copies of a model with the same gradients; return max |Δθ| after each step."""
    reference = _small_model()
    ours = copy.deepcopy(reference)
    opt_ref, opt_ours = make_reference(reference.parameters()), make_ours(ours.parameters())
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    deviations = []
    for _ in range(steps):
        batch = torch.randint(0, 64, (16,), generator=gen)  # a new mini-batch, so gradients change
        opt_ref.zero_grad()
        torch.nn.functional.cross_entropy(reference(X[batch]), y[batch]).backward()
        for p_ref, p_ours in zip(reference.parameters(), ours.parameters()):
            p_ours.grad = p_ref.grad.clone()  # identical gradients
        opt_ref.step()
        opt_ours.step()
        deviations.append(
            max((p - q).abs().max().item() for p, q in zip(reference.parameters(), ours.parameters()))
        )
    # The run must actually move the parameters, or equality would be trivial.
    assert (reference[0].weight - _small_model()[0].weight).abs().max() > 1e-3
    return deviations


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, maximize=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, momentum=0.8)),
    ("RMSprop", dict(lr=1e-2, centered=True)),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=1e-2, eps=1e-6)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-6, weight_decay=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=3e-2, betas=(0.8, 0.95), weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{'-'.join(map(str, k.items()))}" for n, k in CONFIGS])
def test_matches_torch_optim_step_for_step(name: str, kwargs: dict) -> None:
    ours = getattr(lo, name)
    reference = getattr(torch.optim, name)
    deviations = max_deviation_over_run(lambda p: ours(p, **kwargs), lambda p: reference(p, **kwargs))
    assert len(deviations) == STEPS
    worst_step = max(range(STEPS), key=deviations.__getitem__)
    assert deviations[worst_step] <= TOL, f"step {worst_step + 1}: max |Δθ| = {deviations[worst_step]:.3e}"


def test_param_groups_with_their_own_hyper_parameters() -> None:
    def groups(params):
        first, *rest = list(params)
        return [{"params": [first], "lr": 3e-2, "weight_decay": 0.2}, {"params": rest}]

    deviations = max_deviation_over_run(
        lambda p: lo.AdamW(groups(p), lr=1e-2), lambda p: torch.optim.AdamW(groups(p), lr=1e-2)
    )
    assert max(deviations) <= TOL


def test_closure_returns_the_loss_and_is_evaluated_with_grad() -> None:
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = lo.SGD([w], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    # one gradient step on ||w||^2: w <- w - 0.1 * 2w = 0.8 w
    torch.testing.assert_close(w.detach(), torch.tensor([0.8, -1.6], dtype=torch.float64), rtol=0, atol=1e-15)


# ----------------------------------------------------------------- wrong variants must fail
class AdamEpsInsideSqrt(lo.Adam):
    """A common mistake: sqrt(v_hat + eps) instead of sqrt(v_hat) + eps."""

    def _update(self, param, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        state["step"] = t = state.get("step", 0) + 1
        state["m"] = m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * grad
        state["v"] = v = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * grad * grad
        param.sub_(lr * (m / (1 - b1**t)) / torch.sqrt(v / (1 - b2**t) + eps))


class AdamWithoutBiasCorrection(lo.Adam):
    def _update(self, param, grad, state, group):
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        state["m"] = m = b1 * state.get("m", torch.zeros_like(param)) + (1 - b1) * grad
        state["v"] = v = b2 * state.get("v", torch.zeros_like(param)) + (1 - b2) * grad * grad
        param.sub_(lr * m / (torch.sqrt(v) + eps))


class SGDDampedFromStepOne(lo.SGD):
    """Starts the velocity at (1 - dampening) * g, which torch does not."""

    def _update(self, param, grad, state, group):
        mu, tau = group["momentum"], group["dampening"]
        buf = state.get("momentum_buffer", torch.zeros_like(param))
        state["momentum_buffer"] = buf = mu * buf + (1 - tau) * grad
        param.sub_(group["lr"] * buf)


WRONG = [
    ("eps inside sqrt", lambda p: AdamEpsInsideSqrt(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    ("no bias correction", lambda p: AdamWithoutBiasCorrection(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    ("L2 instead of decoupled", lambda p: lo.Adam(p, lr=1e-2, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
    ("damped first step", lambda p: SGDDampedFromStepOne(p, lr=0.05, momentum=0.9, dampening=0.5), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.5)),
]


@pytest.mark.parametrize("label,make_wrong,make_reference", WRONG, ids=[w[0] for w in WRONG])
def test_parity_check_catches_a_wrong_variant(label, make_wrong, make_reference) -> None:
    deviations = max_deviation_over_run(make_wrong, make_reference)
    # Far above the tolerance: these are real differences, not rounding.
    assert max(deviations) > 1e4 * TOL, f"{label}: the harness did not see the difference"


# ----------------------------------------------------------------- formulas checked by hand
def test_adam_first_step_moves_each_weight_by_about_lr() -> None:
    """After bias correction m_hat = g and v_hat = g^2, so the first step is lr * g / (|g| + eps)."""
    g = torch.tensor([1e-3, -0.5, 2.0, -1e3], dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    w.grad = g.clone()
    lr, eps = 0.01, 1e-8
    lo.Adam([w], lr=lr, eps=eps).step()
    expected = -lr * g / (g.abs() + eps)
    torch.testing.assert_close(w.detach(), expected, rtol=0, atol=1e-15)
    assert torch.allclose(w.detach().abs(), torch.full((4,), lr, dtype=torch.float64), rtol=1e-4)


def test_gradient_descent_on_the_quadratic_matches_the_closed_form() -> None:
    # f = (x^2 + 20 y^2) / 2: each coordinate shrinks by (1 - lr * curvature) per step.
    lr, steps = 0.04, 30
    path = surfaces.optimize_2d("quadratic", (-4.0, 1.5), "sgd", lr=lr, steps=steps)
    t = torch.arange(steps + 1, dtype=torch.float64)
    expected = torch.stack([-4.0 * (1 - lr) ** t, 1.5 * (1 - 20 * lr) ** t], dim=1)
    torch.testing.assert_close(path, expected, rtol=1e-12, atol=1e-14)


def test_optimize_2d_shape_start_and_divergence_kept() -> None:
    path = surfaces.optimize_2d("rosenbrock", None, "adam", lr=0.05, steps=25, momentum=0.8)
    assert path.shape == (26, 2) and path.dtype == torch.float64
    assert tuple(path[0].tolist()) == surfaces.SURFACES["rosenbrock"].start
    # Far beyond 2 / curvature gradient descent blows up; the path is kept, not truncated.
    wild = surfaces.optimize_2d("quadratic", None, "sgd", lr=0.5, steps=40)
    assert wild.shape == (41, 2) and wild[-1, 1].abs() > 1e10


@pytest.mark.parametrize("name", sorted(surfaces.SURFACES))
def test_surface_minimum_is_a_zero_of_loss_and_gradient(name: str) -> None:
    surface = surfaces.SURFACES[name]
    point = torch.tensor(surface.minimum, dtype=torch.float64, requires_grad=True)
    loss = surface(point)
    loss.backward()
    assert loss.item() == 0.0
    assert point.grad.abs().max().item() == 0.0
    X, Y, Z = surface.grid(resolution=11)
    assert X.shape == Y.shape == Z.shape == (11, 11) and Z.min() >= 0


def test_rosenbrock_gradient_matches_the_analytic_formula() -> None:
    x, y = 0.3, -0.7
    point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    surfaces.SURFACES["rosenbrock"](point).backward()
    expected = [-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)]
    torch.testing.assert_close(point.grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-14, atol=0)


# ----------------------------------------------------------------- minibatches
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), data=st.data(), shuffle=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_minibatches_cover_every_index_exactly_once(n: int, data, shuffle: bool, seed: int) -> None:
    batch_size = data.draw(st.integers(1, n))
    batches = list(lo.minibatches(n, batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed)))
    assert len(batches) == math.ceil(n / batch_size)
    assert all(len(b) == batch_size for b in batches[:-1]) and 1 <= len(batches[-1]) <= batch_size
    assert sorted(torch.cat(batches).tolist()) == list(range(n))


def test_minibatches_batch_stochastic_and_drop_last() -> None:
    assert [b.tolist() for b in lo.minibatches(5, 5, shuffle=False)] == [[0, 1, 2, 3, 4]]  # batch GD
    assert [b.tolist() for b in lo.minibatches(3, 1, shuffle=False)] == [[0], [1], [2]]  # SGD
    assert [b.tolist() for b in lo.minibatches(7, 3, shuffle=False, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    first = torch.cat(list(lo.minibatches(50, 8, generator=torch.Generator().manual_seed(3))))
    again = torch.cat(list(lo.minibatches(50, 8, generator=torch.Generator().manual_seed(3))))
    assert torch.equal(first, again) and not torch.equal(first, torch.arange(50))


# ----------------------------------------------------------------- bad hyper-parameters
def _w() -> list[torch.Tensor]:
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(
    "build,argument",
    [
        (lambda: lo.SGD(_w(), lr=-0.1), "lr"),
        (lambda: lo.SGD(_w(), lr=float("nan")), "lr"),
        (lambda: lo.SGD(_w(), momentum=-0.5), "momentum"),
        (lambda: lo.SGD(_w(), dampening=-1.0), "dampening"),
        (lambda: lo.SGD(_w(), weight_decay=-1e-4), "weight_decay"),
        (lambda: lo.SGD(_w(), nesterov=True), "nesterov"),
        (lambda: lo.SGD(_w(), momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda: lo.RMSprop(_w(), alpha=1.0), "alpha"),
        (lambda: lo.RMSprop(_w(), eps=-1e-8), "eps"),
        (lambda: lo.RMSprop(_w(), momentum=-0.1), "momentum"),
        (lambda: lo.Adam(_w(), lr=-1e-3), "lr"),
        (lambda: lo.Adam(_w(), betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda: lo.Adam(_w(), betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda: lo.Adam(_w(), betas=(0.9,)), "betas"),
        (lambda: lo.Adam(_w(), eps=-1.0), "eps"),
        (lambda: lo.AdamW(_w(), weight_decay=-0.01), "weight_decay"),
        (lambda: lo.minibatches(0, 1), "n"),
        (lambda: lo.minibatches(10, 11), "batch_size"),
        (lambda: lo.minibatches(10, 0), "batch_size"),
        (lambda: surfaces.optimize_2d("quadratic", None, "adagrad", lr=0.1, steps=3), "optimizer name"),
        (lambda: surfaces.optimize_2d("himmelblau", None, "adam", lr=0.1, steps=3), "surface"),
        (lambda: surfaces.optimize_2d("quadratic", None, "adam", lr=0.1, steps=-1), "steps"),
        (lambda: surfaces.SURFACES["beale"](torch.zeros(3)), "xy"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(build, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        build()
