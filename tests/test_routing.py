"""Route optimisation helpers (lepton_lib.cases.routing): exact answers on known instances."""
import itertools
import math

import numpy as np
import pytest

from lepton_lib.cases.routing import (
    MAX_EXACT_STOPS,
    exact_shortest_tour,
    nearest_neighbour_tour,
    tour_length,
)


def test_tour_length_of_unit_square_is_its_perimeter():
    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert tour_length(square, [0, 1, 2, 3]) == pytest.approx(4.0)
    assert tour_length(square, [0, 2, 1, 3]) == pytest.approx(2 + 2 * math.sqrt(2))


def test_exact_tour_finds_the_perimeter_of_a_shuffled_polygon():
    angles = np.linspace(0, 2 * np.pi, 7, endpoint=False)
    hexagon_like = np.stack([np.cos(angles), np.sin(angles)], axis=1)[[0, 3, 5, 1, 6, 2, 4]]
    best = exact_shortest_tour(hexagon_like)
    perimeter = 7 * 2 * math.sin(math.pi / 7)
    assert tour_length(hexagon_like, best) == pytest.approx(perimeter)


def test_exact_tour_matches_a_direct_minimum_and_beats_or_ties_nearest_neighbour():
    rng = np.random.default_rng(3)
    pts = rng.random((7, 2))
    direct = min(tour_length(pts, (0, *p)) for p in itertools.permutations(range(1, 7)))
    exact = tour_length(pts, exact_shortest_tour(pts))
    greedy = tour_length(pts, nearest_neighbour_tour(pts))
    assert exact == pytest.approx(direct)
    assert greedy >= exact - 1e-12


def test_nearest_neighbour_can_be_strictly_worse():
    # Greedy commits early and pays on the way back: on some random instances it is measurably longer.
    gaps = []
    for seed in range(20):
        pts = np.random.default_rng(seed).random((8, 2))
        gaps.append(tour_length(pts, nearest_neighbour_tour(pts)) / tour_length(pts, exact_shortest_tour(pts)))
    assert max(gaps) > 1.01


def test_nearest_neighbour_visits_every_stop_once():
    pts = np.random.default_rng(0).random((12, 2))
    tour = nearest_neighbour_tour(pts, start=5)
    assert tour[0] == 5 and sorted(tour) == list(range(12))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tour_length([[0, 0], [1, 1]], [0, 0]), "order"),
        (lambda: tour_length([[0, 0]], [0]), "points"),
        (lambda: nearest_neighbour_tour([[0, 0], [1, 1]], start=2), "start"),
        (lambda: exact_shortest_tour(np.zeros((MAX_EXACT_STOPS + 1, 2))), "points"),
        (lambda: exact_shortest_tour([[0, 0], [np.nan, 1]]), "points"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
