"""2-D loss surfaces and the path an optimizer takes on them, for the optimization chapter.

``SURFACES`` holds three classic test functions (an ill-conditioned quadratic, Rosenbrock's
valley, Beale's plateaus) as :class:`Surface2D` objects; :func:`optimize_2d` runs one of the
hand-written optimizers of :mod:`lepton_lib.foundations.optimizers` on a surface, chosen by
name (:func:`lepton_lib.foundations.optimizers.make_optimizer`), and returns every point it visited.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lepton_lib.core.checks import check_non_negative_int
from lepton_lib.foundations.optimizers import make_optimizer

__all__ = ["Surface2D", "SURFACES", "optimize_2d"]


@dataclass(frozen=True)
class Surface2D:
    """A 2-D loss surface: ``fn`` maps points ``(..., 2)`` to losses ``(...)``; ``minimum`` is the
    global minimiser, ``start`` a default starting point, ``xlim``/``ylim`` a plotting window."""

    name: str
    fn: Callable[[Tensor], Tensor]
    minimum: tuple[float, float]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def __call__(self, xy: Tensor) -> Tensor:
        if not isinstance(xy, Tensor) or xy.dim() < 1 or xy.shape[-1] != 2:
            shape = tuple(xy.shape) if isinstance(xy, Tensor) else type(xy).__name__
            raise ValueError(f"xy must be a tensor of shape (..., 2), got {shape}")
        return self.fn(xy)

    def grid(self, resolution: int = 200) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(X, Y, Z)``, each of shape ``(resolution, resolution)``, for ``plt.contour``."""
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
        xs = torch.linspace(*self.xlim, resolution, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, resolution, dtype=torch.float64)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")
        return X, Y, self(torch.stack([X, Y], dim=-1))


def _quadratic(xy: Tensor) -> Tensor:
    # Curvatures 1 and 20: the condition number is 20, so plain gradient
    # descent zig-zags along y while it crawls along x.
    x, y = xy[..., 0], xy[..., 1]
    return 0.5 * (x**2 + 20.0 * y**2)


def _rosenbrock(xy: Tensor) -> Tensor:
    # A curved, flat-bottomed valley; the minimum (1, 1) is easy to reach and hard to walk along to.
    x, y = xy[..., 0], xy[..., 1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _beale(xy: Tensor) -> Tensor:
    # Flat plateaus and steep walls: gradients span many orders of magnitude.
    x, y = xy[..., 0], xy[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


SURFACES: dict[str, Surface2D] = {
    "quadratic": Surface2D("quadratic", _quadratic, (0.0, 0.0), (-4.5, 1.5), (-5.0, 5.0), (-2.0, 2.0)),
    "rosenbrock": Surface2D("rosenbrock", _rosenbrock, (1.0, 1.0), (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0)),
    "beale": Surface2D("beale", _beale, (3.0, 0.5), (0.7, 1.4), (-1.0, 4.5), (-1.5, 2.0)),
}

def optimize_2d(
    surface: Surface2D | str,
    start: tuple[float, float] | None,
    optimizer_name: str,
    lr: float,
    steps: int,
    momentum: float | None = None,
    **kwargs: object,
) -> Tensor:
    """Run ``steps`` updates of an optimizer on a 2-D surface and return its path.

    ``surface`` is a :class:`Surface2D` or a key of ``SURFACES``; ``start=None`` uses
    ``surface.start``; ``optimizer_name``, ``lr``, ``momentum`` and ``kwargs`` go to
    :func:`make_optimizer`. Returns a float64 tensor of shape ``(steps + 1, 2)``: the start, then
    the point after each update. A diverging run is kept whole (later rows may be inf or nan).
    """
    if isinstance(surface, str):
        if surface not in SURFACES:
            raise ValueError(f"surface must be a Surface2D or one of {sorted(SURFACES)}, got {surface!r}")
        surface = SURFACES[surface]
    if not isinstance(surface, Surface2D):
        raise ValueError(f"surface must be a Surface2D or one of {sorted(SURFACES)}, got {type(surface).__name__}")
    check_non_negative_int("steps", steps)
    start = surface.start if start is None else start
    if len(start) != 2:
        raise ValueError(f"start must be a point (x, y), got {start!r}")
    point = torch.tensor([float(start[0]), float(start[1])], dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer(optimizer_name, [point], lr=lr, momentum=momentum, **kwargs)
    path = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        surface(point).backward()
        optimizer.step()
        path.append(point.detach().clone())
    return torch.stack(path)
