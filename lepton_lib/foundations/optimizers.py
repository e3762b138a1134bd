"""Optimizers written by hand: gradient descent, momentum, RMSprop, Adam and AdamW.

Each class subclasses :class:`torch.optim.Optimizer` with the constructor arguments of its
``torch.optim`` namesake, so it can replace it in any training loop. Its ``_update`` method is the
textbook formula for ONE parameter tensor, line by line, with no fused kernels;
``tests/test_optim.py`` checks every class step for step against ``torch.optim`` (float64, 1e-12).
Not supported (speed, not mathematics): ``foreach``, ``fused``, ``capturable``, ``differentiable``,
tensor learning rates, sparse and complex gradients.

Also here, for the optimization chapter: ``minibatches`` (batch, stochastic and mini-batch index
streams). The 2-D loss surfaces that trace an optimizer's path are in
:mod:`lepton_lib.foundations.surfaces`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor

from lepton_lib.core.checks import check_int_in_range, check_non_negative_number, check_positive_int

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "OPTIMIZER_NAMES", "make_optimizer", "minibatches"]


# --------------------------------------------------------------------------- checks
def _check_non_negative(**values: float) -> None:
    """Each hyper-parameter (a rate, a decay, an epsilon) must be a finite number >= 0."""
    for name, value in values.items():
        check_non_negative_number(name, value)


def _check_in_unit_interval(name: str, value: object) -> float:
    """Decay rates live in [0, 1): at 1 the running average would never change."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- base class
class _HandWrittenOptimizer(torch.optim.Optimizer):
    """``step`` is shared: run the closure (if any), then ``_update`` each parameter that has a gradient."""

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        """Apply one update to every parameter that has a ``.grad``; return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs a forward and backward pass
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if grad.is_sparse or torch.is_complex(grad):
                    kind = "sparse" if grad.is_sparse else "complex"
                    raise ValueError(f"{type(self).__name__} needs dense real gradients, got a {kind} one "
                                     f"of shape {tuple(grad.shape)}")
                if group["maximize"]:  # climb instead of descend
                    grad = -grad
                self._update(param, grad, self.state[param], group)
        return loss


# --------------------------------------------------------------------------- SGD
class SGD(_HandWrittenOptimizer):
    r"""Gradient descent with optional (Nesterov) momentum and L2 weight decay.

    For each parameter $\theta$ with gradient $g$ (any shape; all tensors below
    have $\theta$'s shape):

    $$g \leftarrow g + \lambda\theta, \qquad
      b \leftarrow \mu b + (1 - \tau) g, \qquad
      \theta \leftarrow \theta - \eta\,(g + \mu b \text{ if Nesterov else } b)$$

    with learning rate $\eta$ (``lr``), momentum $\mu$, dampening $\tau$ and
    weight decay $\lambda$. As in ``torch.optim.SGD`` the buffer $b$ starts at
    the first gradient (no dampening on step 1), and without momentum the
    update is plain $\theta \leftarrow \theta - \eta g$.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_non_negative(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0, got momentum={momentum!r}, dampening={dampening!r}"
            )
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize
        )
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, mu, tau, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        if wd != 0:
            grad = grad + wd * param  # gradient of the L2 penalty (wd / 2) * ||theta||^2
        if mu != 0:
            buf = state.get("momentum_buffer")
            # torch starts the velocity at the first gradient, undamped.
            buf = grad.clone() if buf is None else mu * buf + (1 - tau) * grad
            state["momentum_buffer"] = buf
            # Nesterov: step along the gradient plus the velocity we are about to add.
            grad = grad + mu * buf if group["nesterov"] else buf
        param.sub_(lr * grad)


# --------------------------------------------------------------------------- RMSprop
class RMSprop(_HandWrittenOptimizer):
    r"""RMSprop: divide each gradient by a running root-mean-square of its history.

    $$s \leftarrow \alpha s + (1-\alpha) g^2, \qquad
      \theta \leftarrow \theta - \eta \frac{g}{\sqrt{s} + \epsilon}$$

    ``centered=True`` also averages $\bar g \leftarrow \alpha\bar g + (1-\alpha)g$
    and divides by $\sqrt{s - \bar g^2} + \epsilon$ (an estimate of the
    standard deviation instead of the RMS). With ``momentum`` $\mu > 0$ the
    scaled gradient goes into a velocity $b \leftarrow \mu b + g/(\cdot)$ and
    $\theta \leftarrow \theta - \eta b$. Averages start at zero; RMSprop has no
    bias correction. ``weight_decay`` adds $\lambda\theta$ to $g$ first.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay, momentum=momentum)
        _check_in_unit_interval("alpha", alpha)
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize
        )
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, alpha, eps, wd, mu = group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = torch.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(param)
            if mu > 0:
                state["momentum_buffer"] = torch.zeros_like(param)
        state["step"] += 1
        if wd != 0:
            grad = grad + wd * param
        s = alpha * state["square_avg"] + (1 - alpha) * grad * grad
        state["square_avg"] = s
        if group["centered"]:
            g_bar = alpha * state["grad_avg"] + (1 - alpha) * grad
            state["grad_avg"] = g_bar
            denom = torch.sqrt(s - g_bar * g_bar) + eps  # running standard deviation
        else:
            denom = torch.sqrt(s) + eps  # running root mean square
        if mu > 0:
            buf = mu * state["momentum_buffer"] + grad / denom
            state["momentum_buffer"] = buf
            param.sub_(lr * buf)
        else:
            param.sub_(lr * grad / denom)


# --------------------------------------------------------------------------- Adam / AdamW
class Adam(_HandWrittenOptimizer):
    r"""Adam (Kingma & Ba, arXiv:1412.6980): momentum plus RMS scaling, bias-corrected.

    At step $t = 1, 2, \dots$ with gradient $g_t$:

    $$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
      v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,$$
    $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
      \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$

    $\epsilon$ is added OUTSIDE the square root of the bias-corrected
    second moment, exactly as in ``torch.optim.Adam``. ``weight_decay``
    $\lambda$ is classic L2 regularisation: $g_t \leftarrow g_t + \lambda\theta$
    before the moments, so the decay is rescaled by $\sqrt{\hat v_t}$ like the
    rest of the gradient. ``decoupled_weight_decay=True`` (what :class:`AdamW`
    sets) instead shrinks $\theta \leftarrow (1 - \eta\lambda)\theta$ outside the
    adaptive step. ``amsgrad=True`` divides by the running maximum of $v_t$
    (Reddi et al., arXiv:1904.09237), bias-corrected the same way.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_in_unit_interval("betas[0]", betas[0])
        _check_in_unit_interval("betas[1]", betas[1])
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)  # m: running mean of g
            state["exp_avg_sq"] = torch.zeros_like(param)  # v: running mean of g^2
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        t = state["step"]

        if wd != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * wd)  # AdamW: shrink the weights, untouched by v
            else:
                grad = grad + wd * param  # Adam: L2 penalty's gradient joins g

        m = beta1 * state["exp_avg"] + (1 - beta1) * grad
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if group["amsgrad"]:
            v = torch.maximum(state["max_exp_avg_sq"], v)  # never let the denominator shrink
            state["max_exp_avg_sq"] = v

        # Both averages start at 0, so early on they are too small by (1 - beta^t).
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        param.sub_(lr * m_hat / (torch.sqrt(v_hat) + eps))


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, arXiv:1711.05101): Adam with decoupled weight decay.

    $$\theta_t = (1 - \eta\lambda)\,\theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}$$

    The decay no longer passes through $m$ and $v$, so every weight shrinks
    by the same factor whatever its gradient history. Default
    ``weight_decay=1e-2`` as in ``torch.optim.AdamW``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)


# --------------------------------------------------------------------------- by name
# Names understood by make_optimizer / optimize_2d.
OPTIMIZER_NAMES = ("sgd", "nesterov", "rmsprop", "adam", "adamw")


def make_optimizer(
    name: str, params: Iterable[Tensor], lr: float, momentum: float | None = None, **kwargs: object
) -> _HandWrittenOptimizer:
    """Build an optimizer by name; ``momentum`` is SGD's/RMSprop's ``momentum`` or Adam's ``beta1``.

    ``None`` keeps each default (0 for SGD and RMSprop, 0.9 for Nesterov and Adam/AdamW).
    Extra keyword arguments go to the constructor.
    """
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"optimizer name must be one of {OPTIMIZER_NAMES}, got {name!r}")
    if name == "sgd":
        return SGD(params, lr=lr, momentum=0.0 if momentum is None else momentum, **kwargs)
    if name == "nesterov":
        return SGD(params, lr=lr, momentum=0.9 if momentum is None else momentum, nesterov=True, **kwargs)
    if name == "rmsprop":
        return RMSprop(params, lr=lr, momentum=0.0 if momentum is None else momentum, **kwargs)
    betas = kwargs.pop("betas", (0.9, 0.999))
    if momentum is not None:
        betas = (momentum, betas[1])  # type: ignore[index]
    cls = Adam if name == "adam" else AdamW
    return cls(params, lr=lr, betas=betas, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- mini-batches
def minibatches(
    n: int,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Tensor]:
    """Return an iterator over one epoch's example indices, ``batch_size`` at a time.

    ``batch_size=n`` is batch gradient descent (one step per epoch), ``batch_size=1`` stochastic
    gradient descent (n steps), anything between mini-batch gradient descent. Each index in
    ``range(n)`` appears exactly once; the last batch holds the ``n % batch_size`` leftovers unless
    ``drop_last=True``. With ``shuffle=True`` the order is a permutation drawn from ``generator``
    (at call time). Arguments are checked at call time too, not at the first ``next``.

    Yields int64 tensors of shape ``(batch_size,)`` (the last may be shorter).
    """
    check_positive_int("n", n)
    check_int_in_range("batch_size", batch_size, 1, n, high_means="n")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (order[start : min(start + batch_size, stop)] for start in range(0, stop, batch_size))
