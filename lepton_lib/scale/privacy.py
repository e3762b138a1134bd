"""Training without pooling the data: federated averaging, and DP-SGD with a privacy accountant.

**Federated averaging** (FedAvg, McMahan et al. 2017, arXiv:1602.05629). The data stay on
``K`` clients. Each round the server sends the global weights to the clients, each client runs a few
epochs of SGD on its own data, and the server replaces the global weights by the average of the
clients' weights, weighted by their number of examples ``n_k / n``. Real clients hold *non-IID* data
(one user's photos are not a random sample of everyone's); ``dirichlet_label_split`` simulates this by
drawing each class's share per client from a Dirichlet distribution: small ``alpha`` gives each
client a few classes, large ``alpha`` an almost uniform mix.

**DP-SGD** (Abadi et al. 2016, arXiv:1607.00133). Differential privacy bounds how much one example
can change what training releases. DP-SGD gets there in three moves per step: sample a batch
(each example independently with probability ``q``, Poisson sampling), clip every *per-example*
gradient to L2 norm ``C`` (so no example can pull harder than ``C``), and add Gaussian noise of
standard deviation ``sigma * C`` to the sum before dividing by the expected batch size. Per-example
gradients come from ``torch.func``: ``vmap(grad(loss_of_one_example))`` over the batch.
The privacy loss after ``T`` such steps is tracked with Rényi differential privacy (Mironov 2017)
by Opacus's RDP accountant (``dp_epsilon``); the same accountant backs Opacus's own ``PrivacyEngine``.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from lepton_lib.core.checks import (check_int_in_range, check_non_negative_number, check_positive_int,
                                    check_positive_number)

__all__ = [
    "dirichlet_label_split",
    "local_sgd",
    "average_states",
    "fedavg",
    "per_example_gradients",
    "clip_per_example",
    "noisy_average",
    "dp_sgd",
    "dp_epsilon",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------- #
# Federated averaging                                                          #
# --------------------------------------------------------------------------- #
def dirichlet_label_split(labels: Tensor, num_clients: int, alpha: float, seed: int = 0,
                          min_size: int = 1) -> list[Tensor]:
    """Split example indices among ``num_clients`` with label proportions drawn from ``Dir(alpha)``.

    For each class, a vector ``p ~ Dir(alpha, ..., alpha)`` over clients decides which share of that
    class's examples each client gets. Redraws (with the same generator) until every client holds at
    least ``min_size`` examples. Returns one sorted int64 index tensor per client; together they
    partition ``range(len(labels))``.
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype != torch.long:
        got = f"{tuple(labels.shape)} {labels.dtype}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an int64 tensor of shape (N,), got {got}")
    check_int_in_range("num_clients", num_clients, 1, len(labels))
    check_positive_number("alpha", alpha)
    rng = np.random.default_rng(seed)
    y = labels.cpu().numpy()  # a host-side split: the indices come back on labels' device
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(num_clients)]
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet([float(alpha)] * num_clients)
            cuts = (np.cumsum(shares)[:-1] * len(members)).round().astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].extend(chunk.tolist())
        if min(map(len, parts)) >= min_size:
            return [torch.tensor(sorted(p), dtype=torch.long, device=labels.device) for p in parts]
    raise ValueError(f"no split with min_size={min_size} found for alpha={alpha}, num_clients={num_clients}")


def local_sgd(model: nn.Module, x: Tensor, y: Tensor, epochs: int, lr: float, batch_size: int,
              generator: torch.Generator, loss_fn: LossFn = F.cross_entropy) -> nn.Module:
    """Plain minibatch SGD on ``(x (N, ...), y (N,))`` for ``epochs`` passes, shuffled by ``generator``. In place."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same positive number of examples, got {len(x)} and {len(y)}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator, device=generator.device).to(x.device)
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model


def average_states(states: list[dict[str, Tensor]], weights: list[float]) -> dict[str, Tensor]:
    """``sum_k weights[k] * states[k]`` for every floating tensor, with the weights normalised to sum to 1."""
    if not states or len(states) != len(weights):
        raise ValueError(f"states and weights must be non-empty and equally long, got {len(states)} and {len(weights)}")
    total = float(sum(weights))
    if total <= 0 or min(weights) < 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    for k, state in enumerate(states[1:], start=1):
        if state.keys() != states[0].keys():
            missing, unexpected = sorted(states[0].keys() - state.keys()), sorted(state.keys() - states[0].keys())
            raise ValueError(f"states[{k}] has other keys than states[0]: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        for name, first in states[0].items():
            if state[name].shape != first.shape:
                raise ValueError(f"states[{k}][{name!r}] has shape {tuple(state[name].shape)}, "
                                 f"states[0][{name!r}] has {tuple(first.shape)}")
    averaged = {}
    for name, first in states[0].items():
        if not first.is_floating_point():  # counters such as BatchNorm's num_batches_tracked
            averaged[name] = first.clone()
            continue
        averaged[name] = sum(w / total * s[name] for w, s in zip(weights, states))
    return averaged


def fedavg(model: nn.Module, clients: list[tuple[Tensor, Tensor]], rounds: int, local_epochs: int, lr: float,
           batch_size: int, seed: int = 0, loss_fn: LossFn = F.cross_entropy,
           evaluate: Callable[[nn.Module], float] | None = None) -> tuple[nn.Module, list[float]]:
    """Run FedAvg with every client taking part in every round; ``model`` holds the global weights.

    Client ``k`` in round ``r`` shuffles with a generator seeded ``seed + 1000 * r + k``, so a run is
    reproducible and a single client with ``rounds=1`` is exactly ``local_sgd`` with that generator.
    Returns the trained global model and ``evaluate(model)`` after each round (empty if not given).
    """
    if not clients:
        raise ValueError("clients must hold at least one (x, y) pair")
    for name, value in (("rounds", rounds), ("local_epochs", local_epochs), ("batch_size", batch_size)):
        check_positive_int(name, value)
    history = []
    for r in range(rounds):
        states, sizes = [], []
        for k, (x, y) in enumerate(clients):
            local = copy.deepcopy(model)  # the server's weights, sent to the client
            generator = torch.Generator().manual_seed(seed + 1000 * r + k)
            local_sgd(local, x, y, local_epochs, lr, batch_size, generator, loss_fn)
            states.append(local.state_dict())
            sizes.append(len(x))
        model.load_state_dict(average_states(states, sizes))
        if evaluate is not None:
            history.append(evaluate(model))
    return model, history


# --------------------------------------------------------------------------- #
# DP-SGD                                                                       #
# --------------------------------------------------------------------------- #
def per_example_gradients(model: nn.Module, x: Tensor, y: Tensor,
                          loss_fn: LossFn = F.cross_entropy) -> dict[str, Tensor]:
    """The gradient of each example's own loss: ``{name: (B, *param.shape)}``, computed with ``vmap(grad)``.

    ``loss_fn`` is called on a batch of one (``x[i:i+1]``, ``y[i:i+1]``), so any mean-reducing loss
    works. Models whose layers mix examples (BatchNorm) have no per-example gradient; use GroupNorm.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same positive number of examples, got {len(x)} and {len(y)}")
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def loss_of_one(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    return vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, x, y)


def clip_per_example(grads: dict[str, Tensor], max_norm: float) -> tuple[dict[str, Tensor], Tensor]:
    """Scale each example's gradient (over all parameters together) to L2 norm at most ``max_norm``.

    Returns the clipped gradients (same shapes) and the norms before clipping ``(B,)``. Gradients
    already shorter than ``max_norm`` are left unchanged: the factor is ``min(1, C / norm)``.
    """
    check_positive_number("max_norm", max_norm)
    if not grads:
        raise ValueError("grads is empty")
    batch = {g.shape[0] for g in grads.values()}
    if len(batch) != 1:
        raise ValueError(f"every gradient must share the batch dimension, got sizes {sorted(batch)}")
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))  # (B,)
    factor = (max_norm / norms.clamp_min(1e-12)).clamp(max=1.0)  # (B,)
    clipped = {name: g * factor.view(-1, *[1] * (g.dim() - 1)) for name, g in grads.items()}
    return clipped, norms


def noisy_average(clipped: dict[str, Tensor], max_norm: float, noise_multiplier: float, expected_batch_size: float,
                  generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """``(sum_i g_i + N(0, (sigma C)^2 I)) / expected_batch_size`` for every parameter.

    Dividing by the *expected* batch size (a constant) rather than the sampled one keeps the
    released quantity a plain sum plus noise, which is what the accountant analyses.
    """
    check_non_negative_number("noise_multiplier", noise_multiplier)
    check_positive_number("expected_batch_size", expected_batch_size)
    out = {}
    for name, g in clipped.items():
        # Drawn by the generator on its own device, then moved: a CPU generator gives the same noise on every device.
        noise = torch.randn(g.shape[1:], generator=generator, dtype=g.dtype,
                            device=g.device if generator is None else generator.device).to(g.device)
        noise = noise * (noise_multiplier * max_norm)
        out[name] = (g.sum(0) + noise) / expected_batch_size
    return out


def dp_sgd(model: nn.Module, x: Tensor, y: Tensor, epochs: int, batch_size: int, lr: float, max_norm: float,
           noise_multiplier: float, seed: int = 0, loss_fn: LossFn = F.cross_entropy) -> tuple[nn.Module, int, float]:
    """Train ``model`` in place with DP-SGD; return ``(model, steps, sample_rate)`` for the accountant.

    Each of the ``epochs * N // batch_size`` steps draws a Poisson batch (every example with probability
    ``q = batch_size / N``), clips per-example gradients to ``max_norm``, adds noise of standard
    deviation ``noise_multiplier * max_norm`` and takes a plain SGD step. ``noise_multiplier=0`` and a
    huge ``max_norm`` give ordinary SGD on Poisson batches (the non-private baseline).
    """
    n = len(x)
    if len(y) != n or n == 0:
        raise ValueError(f"x and y must hold the same positive number of examples, got {len(x)} and {len(y)}")
    check_int_in_range("batch_size", batch_size, 1, n)
    check_positive_int("epochs", epochs)  # every setting is checked before the model is touched
    check_positive_number("max_norm", max_norm)
    check_non_negative_number("noise_multiplier", noise_multiplier)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
        raise ValueError(f"lr must be a finite number, got {lr!r}")
    sample_rate = batch_size / n
    steps = epochs * n // batch_size
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same batches and noise on every device
    model.train()
    for _ in range(steps):
        draws = torch.rand(n, generator=generator, device=generator.device)
        chosen = torch.nonzero(draws < sample_rate).flatten().to(x.device)
        if len(chosen) == 0:  # an empty Poisson batch releases only noise
            grads = {name: torch.zeros(0, *p.shape, device=p.device)
                     for name, p in model.named_parameters() if p.requires_grad}
        else:
            grads, _ = clip_per_example(per_example_gradients(model, x[chosen], y[chosen], loss_fn), max_norm)
        update = noisy_average(grads, max_norm, noise_multiplier, batch_size, generator)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in update:
                    p -= lr * update[name]
    return model, steps, sample_rate


def dp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """The ``epsilon`` of ``(epsilon, delta)``-DP after ``steps`` DP-SGD steps, by Opacus's RDP accountant.

    The accountant adds up the Rényi divergence of the subsampled Gaussian mechanism at a grid of
    orders (Mironov, Talwar & Zhang 2019) and converts the best order to ``(epsilon, delta)``.
    """
    from opacus.accountants import RDPAccountant  # optional dependency: only this function needs it

    check_non_negative_number("noise_multiplier", noise_multiplier)
    check_positive_int("steps", steps)
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must lie in (0, 1], got {sample_rate!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    if noise_multiplier <= 0:
        return float("inf")  # no noise, no privacy
    accountant = RDPAccountant()
    accountant.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(accountant.get_epsilon(delta=delta))
