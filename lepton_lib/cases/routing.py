"""Route optimisation as what it is: a combinatorial problem, with a heuristic and an exact answer.

The source documents say that large models "optimise logistics routes". Choosing the order in
which a vehicle visits its stops is the travelling-salesman problem (TSP) and, with capacities
and several vehicles, the vehicle-routing problem: combinatorial optimisation, NP-hard in
general, and solved in practice by operations-research solvers and heuristics. Learned
heuristics (Kool, van Hoof and Welling 2019, arXiv:1803.08475) are a research topic measured
by their *gap* to the optimum. This module gives the two ends of that comparison on instances
small enough to solve exactly: the nearest-neighbour heuristic and brute force.
"""
from __future__ import annotations

import itertools

import numpy as np

from lepton_lib.core.checks import check_int_in_range

__all__ = ["MAX_EXACT_STOPS", "exact_shortest_tour", "nearest_neighbour_tour", "tour_length"]

MAX_EXACT_STOPS = 10  # brute force visits (n-1)! orders: 9! = 362,880 at the limit


def _as_points(points: object) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"points: expected an array of shape (n_stops >= 2, dims), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points: expected finite coordinates, got NaN or infinity")
    return arr


def _distances(arr: np.ndarray) -> np.ndarray:
    return np.linalg.norm(arr[:, None, :] - arr[None, :, :], axis=-1)


def tour_length(points: object, order: object) -> float:
    """Length of the closed tour visiting ``points`` (shape (n, d)) in ``order`` and returning home.

    ``order`` must be a permutation of ``range(n)``.
    """
    arr = _as_points(points)
    idx = np.asarray(order)
    n = arr.shape[0]
    if idx.shape != (n,) or sorted(idx.tolist()) != list(range(n)):
        raise ValueError(f"order: expected a permutation of range({n}), got {idx.tolist()}")
    return float(np.linalg.norm(arr[idx] - arr[np.roll(idx, -1)], axis=1).sum())


def nearest_neighbour_tour(points: object, start: int = 0) -> list[int]:
    """Greedy tour: from ``start``, always go to the closest stop not yet visited."""
    arr = _as_points(points)
    n = arr.shape[0]
    check_int_in_range("start", start, 0, n - 1)
    dist = _distances(arr)
    tour, left = [start], set(range(n)) - {start}
    while left:
        here = tour[-1]
        nxt = min(left, key=lambda j: (dist[here, j], j))
        tour.append(nxt)
        left.remove(nxt)
    return tour


def exact_shortest_tour(points: object) -> list[int]:
    """The shortest closed tour, by trying every order (at most ``MAX_EXACT_STOPS`` stops).

    Stop 0 is fixed as the start, so (n-1)! orders are tried at once; ties keep the first order in
    lexicographic order.
    """
    arr = _as_points(points)
    n = arr.shape[0]
    if n > MAX_EXACT_STOPS:
        raise ValueError(f"points: brute force takes at most {MAX_EXACT_STOPS} stops, got {n}")
    dist = _distances(arr)
    rest = np.array(list(itertools.permutations(range(1, n))), dtype=np.int64).reshape(-1, n - 1)
    orders = np.concatenate([np.zeros((rest.shape[0], 1), dtype=np.int64), rest], axis=1)
    lengths = dist[orders, np.roll(orders, -1, axis=1)].sum(axis=1)
    return orders[int(np.argmin(lengths))].tolist()
