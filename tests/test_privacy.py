"""FedAvg and DP-SGD against plain references: SGD, a loop over examples, the closed-form RDP."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.scale import (
    average_states,
    clip_per_example,
    dirichlet_label_split,
    dp_epsilon,
    dp_sgd,
    fedavg,
    local_sgd,
    noisy_average,
    per_example_gradients,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _data(n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


# --- federated averaging ------------------------------------------------------------------------
def test_dirichlet_split_partitions_and_skews_labels():
    labels = torch.arange(10).repeat_interleave(50)  # 10 classes, 50 each
    for alpha in (0.1, 100.0):
        parts = dirichlet_label_split(labels, 5, alpha, seed=0)
        assert torch.equal(torch.cat(parts).sort().values, torch.arange(500))
    skewed = dirichlet_label_split(labels, 5, 0.1, seed=0)
    mixed = dirichlet_label_split(labels, 5, 100.0, seed=0)

    def classes_held(parts):  # classes making up at least 5% of a client's data, averaged over clients
        return sum(int((torch.bincount(labels[p], minlength=10) >= 0.05 * len(p)).sum()) for p in parts) / 5

    assert classes_held(skewed) < 5 < classes_held(mixed)


def test_fedavg_with_one_client_is_plain_sgd():
    x, y = _data()
    federated, _ = fedavg(_mlp(), [(x, y)], rounds=3, local_epochs=2, lr=0.1, batch_size=8, seed=5)
    central = _mlp()
    for r in range(3):  # the generators fedavg uses for client 0 in round r
        local_sgd(central, x, y, 2, 0.1, 8, torch.Generator().manual_seed(5 + 1000 * r))
    for (name, a), b in zip(federated.state_dict().items(), central.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    assert not torch.equal(central[0].weight, _mlp()[0].weight)  # it did train


def test_one_full_batch_step_per_client_averages_to_a_central_gradient_step():
    """FedSGD: weighting by n_k / n turns the clients' steps into one step on the pooled mean loss."""
    x, y = _data(30)
    clients = [(x[:5], y[:5]), (x[5:17], y[5:17]), (x[17:], y[17:])]  # unequal sizes matter
    federated, _ = fedavg(_mlp(), clients, rounds=1, local_epochs=1, lr=0.3, batch_size=30)
    central = _mlp()
    F.cross_entropy(central(x), y).backward()
    with torch.no_grad():
        for p in central.parameters():
            p -= 0.3 * p.grad
    for (name, a), b in zip(federated.state_dict().items(), central.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6, msg=name)


def test_average_states_weights_and_checks():
    a, b = {"w": torch.tensor([0.0, 4.0])}, {"w": torch.tensor([4.0, 0.0])}
    torch.testing.assert_close(average_states([a, b], [3, 1])["w"], torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match="weights"):
        average_states([a, b], [1])


# --- DP-SGD -------------------------------------------------------------------------------------
def test_per_example_gradients_match_a_loop_over_examples():
    model, (x, y) = _mlp(), _data(7)
    batched = per_example_gradients(model, x, y)
    for i in range(7):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(batched[name][i], p.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_per_example_clipping_matches_a_loop_over_examples():
    model, (x, y) = _mlp(), _data(9)
    max_norm = 1.4  # between the smallest and the largest per-example norm of this batch
    clipped, norms = clip_per_example(per_example_gradients(model, x, y), max_norm)
    summed = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    n_clipped = 0
    for i in range(9):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
        assert norms[i].item() == pytest.approx(norm, rel=1e-5)
        scale = min(1.0, max_norm / norm)
        n_clipped += scale < 1.0
        for name, p in model.named_parameters():
            summed[name] += scale * p.grad
    assert 0 < n_clipped < 9  # both branches of min(1, C / norm) were exercised
    for name, value in summed.items():
        torch.testing.assert_close(clipped[name].sum(0), value, atol=1e-6, rtol=1e-5, msg=name)
    after = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in clipped.values()))
    assert float(after.max()) <= max_norm * (1 + 1e-6)


def test_noise_has_standard_deviation_sigma_c_over_batch():
    zeros = {"w": torch.zeros(16, 200_000)}  # 16 examples whose gradients are all zero
    out = noisy_average(zeros, max_norm=2.0, noise_multiplier=1.5, expected_batch_size=16,
                        generator=torch.Generator().manual_seed(0))["w"]
    assert out.mean().item() == pytest.approx(0.0, abs=0.002)
    assert out.std().item() == pytest.approx(1.5 * 2.0 / 16, rel=0.01)


def test_dp_sgd_without_noise_or_clipping_is_sgd_on_poisson_batches():
    x, y = _data(32)
    model, steps, q = dp_sgd(_mlp(), x, y, epochs=1, batch_size=8, lr=0.2, max_norm=1e9, noise_multiplier=0.0, seed=3)
    assert (steps, q) == (4, 0.25)
    reference = _mlp()
    generator = torch.Generator().manual_seed(3)
    for _ in range(steps):  # the same Poisson draws; the sum of gradients over the expected batch size
        chosen = torch.nonzero(torch.rand(32, generator=generator) < q).flatten()
        for p in reference.parameters():
            torch.randn(p.shape, generator=generator)  # dp_sgd draws (zero-scaled) noise: keep in step
        reference.zero_grad()
        F.cross_entropy(reference(x[chosen]), y[chosen], reduction="sum").div(8).backward()
        with torch.no_grad():
            for p in reference.parameters():
                p -= 0.2 * p.grad
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def _rdp_integer_order(q: float, sigma: float, alpha: int) -> float:
    """RDP of the Poisson-subsampled Gaussian at an integer order (Mironov, Talwar & Zhang 2019, Sec. 3.3)."""
    a = sum(math.comb(alpha, k) * (1 - q) ** (alpha - k) * q**k * math.exp((k * k - k) / (2 * sigma**2))
            for k in range(alpha + 1))
    return math.log(a) / (alpha - 1)


@pytest.mark.parametrize("q,sigma", [(0.01, 1.1), (0.05, 2.0), (1.0, 3.0)])
def test_accountant_rdp_matches_the_closed_form_at_integer_orders(q, sigma):
    from opacus.accountants.analysis.rdp import compute_rdp

    orders = [2, 3, 5, 8, 16]
    rdp = compute_rdp(q=q, noise_multiplier=sigma, steps=7, orders=orders)
    expected = [7 * _rdp_integer_order(q, sigma, a) for a in orders]
    assert list(rdp) == pytest.approx(expected, rel=1e-6)
    if q == 1.0:  # the plain Gaussian mechanism: alpha / (2 sigma^2) per step
        assert list(rdp) == pytest.approx([7 * a / (2 * sigma**2) for a in orders], rel=1e-9)


def test_epsilon_behaves_as_privacy_should():
    base = dp_epsilon(1.1, 0.01, 1000, 1e-5)
    assert 0 < base < math.inf
    assert dp_epsilon(1.1, 0.01, 2000, 1e-5) > base  # more steps, more privacy lost
    assert dp_epsilon(2.0, 0.01, 1000, 1e-5) < base  # more noise, less lost
    assert dp_epsilon(1.1, 0.02, 1000, 1e-5) > base  # larger batches are seen more often
    assert dp_epsilon(0.0, 0.01, 1000, 1e-5) == math.inf
    # one step of the plain Gaussian mechanism: the RDP bound can be no better than the classic
    # analytic bound sigma = sqrt(2 ln(1.25 / delta)) / epsilon (Dwork & Roth, Thm 3.22), and not far off
    sigma = math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert 0.3 < dp_epsilon(sigma, 1.0, 1, 1e-5) < 0.6


def test_dp_functions_check_arguments():
    with pytest.raises(ValueError, match="max_norm"):
        clip_per_example({"w": torch.zeros(2, 3)}, 0.0)
    with pytest.raises(ValueError, match="sample_rate"):
        dp_epsilon(1.0, 0.0, 10, 1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        dp_sgd(_mlp(), *_data(10), epochs=1, batch_size=11, lr=0.1, max_norm=1.0, noise_multiplier=1.0)
