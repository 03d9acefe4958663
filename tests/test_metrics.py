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


# --- the two-stage bootstrap of paired comparisons (issue 19) ---------------------------------
def _problem(n: int = 1500, seed: int = 0):
    """0/1 outcomes of three models (costs 0.1, 0.4, 1) and an oracle-like router's
    choices at a sweep of trade-offs."""
    rng = np.random.default_rng(seed)
    scores = (rng.random((n, 3)) < np.array([0.3, 0.6, 0.9])).astype(float)
    costs = np.tile(np.array([0.1, 0.4, 1.0]), (n, 1))
    lams = [0.0, 0.1, 0.3, 1.0, 3.0, np.inf]
    good = np.stack([best_models(scores, costs, lam, "cheapest") for lam in lams])
    return scores, costs, good, rng


def _worse(good: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``good`` with the cheapest model on a random ``share`` of the prompts."""
    out = good.copy()
    out[:, rng.random(good.shape[1]) < share] = 0
    return out


def test_the_two_stage_bootstrap_of_identical_runs_is_exactly_zero():
    scores, costs, good, _ = _problem()
    diff, replicates = metrics.paired_seed_prompt_bootstrap(
        scores, costs, [good, good], [good, good], n_resamples=50)
    assert diff.tolist() == [0.0, 0.0, 0.0] and not replicates.any()
    assert replicates.shape == (50, 3)


def test_resampling_seeds_widens_the_interval_when_refits_differ():
    """Refits that route differently: the interval over seeds then prompts is wider than
    the one over prompts alone (what the committed study's intervals left out)."""
    scores, costs, good, rng = _problem()
    a = [_worse(good, share, rng) for share in (0.02, 0.25, 0.45)]  # unstable refits
    b = [good] * 3
    _, low, high = metrics.paired_bootstrap_auc(scores, costs, a, b, n_resamples=300)
    _, replicates = metrics.paired_seed_prompt_bootstrap(scores, costs, a, b,
                                                         n_resamples=300)
    two_low, two_high = metrics.percentile_interval(replicates[:, 0])
    assert two_high - two_low > 2 * (high - low)


def test_a_router_against_the_single_model_frontier():
    scores, costs, good, _ = _problem()
    diff, replicates = metrics.paired_seed_prompt_bootstrap(scores, costs, [good], None,
                                                            n_resamples=100)
    assert diff[0] > 0 and metrics.percentile_interval(replicates[:, 0])[0] > 0  # above
    cheap = np.zeros_like(good)  # always the cheapest model: one point on the frontier
    diff, _ = metrics.paired_seed_prompt_bootstrap(scores, costs, [cheap], None,
                                                   n_resamples=20)
    assert diff[0] < 0 and diff[1] == pytest.approx(100 * (scores[:, 0].mean()
                                                           - scores.mean(axis=0).max()))


def test_quality_at_a_fixed_budget_reads_the_hull():
    costs, quality = np.array([0.1, 0.5, 1.0]), np.array([0.2, 0.6, 0.7])
    assert metrics.quality_at(costs, quality, 0.3) == pytest.approx(40.0)
    assert metrics.quality_at(costs, quality, 2.0) == pytest.approx(70.0)
    assert np.isnan(metrics.quality_at(costs, quality, 0.05))  # nothing that cheap
    assert metrics.budget_of(np.tile([0.2, 1.0], (4, 1))) == pytest.approx(0.6)


def test_cost_spread():
    assert metrics.cost_spread(np.tile([0.875, 1.0], (3, 1))) == pytest.approx(0.125)
    assert metrics.cost_spread(np.tile([1.0, 100.0], (3, 1))) == pytest.approx(0.99)
    assert np.isnan(metrics.cost_spread(np.zeros((2, 2))))


def test_tail_quantiles_are_the_replicates_quantiles():
    values = np.arange(1000.0)
    tails = metrics.tail_quantiles(values)
    assert tails["p"] == list(metrics.TAIL_PROBABILITIES)
    assert tails["low"][-1] == pytest.approx(np.quantile(values, 0.1))
    assert tails["high"][0] == pytest.approx(np.quantile(values, 0.9995))
    assert all(np.isnan(metrics.tail_quantiles(np.full(3, np.nan))["low"]))
