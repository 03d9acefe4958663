"""Metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from routeharness.evaluation import metrics
from routeharness.routers.base import best_models, select


def test_single_point_area_is_flat_extension_to_max_cost():
    # one operating point at cost 0.25, quality 0.6: flat 0.6 from 0.25 to 1 -> 0.45 -> 45
    assert metrics.auc(np.array([0.25]), np.array([0.6])) == pytest.approx(45.0)


def test_two_points_trapezoid_then_flat():
    # (0, 0.5) -> (0.5, 0.9) then flat to 1: 0.5*(0.5+0.9)/2 + 0.5*0.9 = 0.35 + 0.45 = 0.8
    assert metrics.auc(np.array([0.0, 0.5]), np.array([0.5, 0.9])) == pytest.approx(80.0)


def test_dominated_point_is_dropped_from_frontier():
    costs = np.array([0.0, 0.4, 0.5])
    qualities = np.array([0.5, 0.4, 0.9])  # (0.4, 0.4) costs more than (0, 0.5) for less
    hull_c, hull_q = metrics.frontier(costs, qualities)
    assert hull_c.tolist() == [0.0, 0.5]
    assert hull_q.tolist() == [0.5, 0.9]
    assert metrics.auc(costs, qualities) == pytest.approx(80.0)


def test_point_under_the_chord_is_not_a_vertex():
    # (0.5, 0.6) lies under the chord from (0, 0.5) to (1, 0.9) (0.7 there): mixing wins
    hull_c, _ = metrics.frontier(np.array([0.0, 0.5, 1.0]), np.array([0.5, 0.6, 0.9]))
    assert hull_c.tolist() == [0.0, 1.0]
    assert metrics.auc(np.array([0.0, 0.5, 1.0]), np.array([0.5, 0.6, 0.9])) == pytest.approx(70.0)


def test_ties_in_cost_keep_the_best_quality():
    hull_c, hull_q = metrics.frontier(np.array([0.2, 0.2, 0.2]), np.array([0.3, 0.7, 0.5]))
    assert hull_c.tolist() == [0.2] and hull_q.tolist() == [0.7]


def test_dominating_router_has_larger_area():
    base_c, base_q = np.array([0.1, 0.5, 1.0]), np.array([0.4, 0.6, 0.7])
    better_q = base_q + 0.1
    assert metrics.auc(base_c, better_q) > metrics.auc(base_c, base_q)
    assert metrics.auc(base_c, better_q) - metrics.auc(base_c, base_q) == pytest.approx(
        100 * 0.1 * (1.0 - 0.1))


def test_points_beyond_max_cost_are_cut():
    # (0, 0.4) -> (2, 0.8): at cost 1 the hull is 0.6; area 0.5*(0.4+0.6) = 0.5
    assert metrics.auc(np.array([0.0, 2.0]), np.array([0.4, 0.8])) == pytest.approx(50.0)


def test_operating_points_average_the_chosen_cells():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    costs = np.array([[0.1, 1.0], [0.3, 0.5]])
    choices = np.array([[0, 1], [1, 1]])
    c, q = metrics.operating_points(scores, costs, choices)
    assert c.tolist() == pytest.approx([0.3, 0.75])
    assert q.tolist() == pytest.approx([1.0, 0.5])


def test_apgr_of_perfect_and_of_linear_routers():
    weak, strong = 0.5, 0.9
    # a router that reaches the strong quality at 20% strong calls
    assert metrics.apgr(np.array([0.2]), np.array([0.9]), weak, strong) == pytest.approx(0.9)
    # only the endpoints: the random-mix line, APGR 0.5
    assert metrics.apgr(np.array([]), np.array([]), weak, strong) == pytest.approx(0.5)
    # CPT(50%): half the gap at 10% strong calls on the 0->20% segment
    assert metrics.cpt(np.array([0.2]), np.array([0.9]), weak, strong, 0.5) == pytest.approx(0.1)


def test_cost_scale_is_the_most_expensive_models_mean():
    costs = np.array([[1.0, 4.0], [3.0, 8.0]])
    assert metrics.cost_scale(costs) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        metrics.cost_scale(np.zeros((2, 2)))


def test_frontier_rejects_nan():
    with pytest.raises(ValueError):
        metrics.frontier(np.array([0.1, np.nan]), np.array([0.5, 0.6]))


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    scores = (rng.random((200, 3)) < np.array([0.3, 0.6, 0.8])).astype(float)
    costs = np.tile(np.array([0.1, 0.4, 1.0]), (200, 1))
    choices = np.stack([np.full(200, j) for j in range(3)])
    c, q = metrics.operating_points(scores, costs, choices)
    low, high = metrics.bootstrap_auc(scores, costs, choices, n_resamples=300, seed=1)
    assert low < metrics.auc(c, q) < high
    assert high - low < 15


def test_select_breaks_ties_towards_the_cheaper_model():
    scores = np.array([[1.0, 1.0, 0.0]])
    costs = np.array([[0.9, 0.2, 0.1]])
    assert select(scores, costs, 0.0).tolist() == [1]
    assert select(scores, costs, np.inf).tolist() == [2]
    assert select(np.array([[np.nan, 0.1]]), np.array([[0.0, 1.0]]), 0.0).tolist() == [1]


def test_a_missing_cell_never_poisons_the_row():
    """A missing score with a missing cost (AlpacaEval has such cells) once made
    0 * inf = NaN at lam = 0, and a NaN utility sent the row to model 0; a missing score
    with a known cost (RouterBench) could win at lam = inf."""
    scores = np.array([[0.0, np.nan, 1.0], [np.nan, np.nan, np.nan]])
    costs = np.array([[0.1, np.nan, 0.5], [np.nan, np.nan, np.nan]])
    with np.errstate(all="raise"):
        for lam in (0.0, 1.0, np.inf):
            chosen = select(scores, costs, lam)
            assert chosen[0] == (0 if np.isinf(lam) else 2)
    assert best_models(scores, costs, 0.0, "best-average")[0] == 2
    # no score but the cheapest known cost: never the cost-only choice
    assert select(np.array([[np.nan, 0.5]]), np.array([[0.01, 0.2]]), np.inf).tolist() == [1]
