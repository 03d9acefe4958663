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


# --- RouterArena's score (docs/metrics.md), reproduced by hand --------------------------------
def test_arena_score_reproduces_routerarenas_routerdc_row_by_hand():
    # RouterArena's leaderboard (routeworks.github.io, src/data/mockData.ts): RouterDC,
    # accuracy 32.01%, $0.07 per 1,000 queries, arena score 33.75. By hand, with
    # log2(200) = 7.643856, log2(0.0044) = -7.828274, log2(0.07) = -3.836501:
    #   C = (7.643856 + 3.836501) / (7.643856 + 7.828274) = 11.480357 / 15.472130 = 0.742002
    #   S = 1.1 x 0.3201 x 0.742002 / (0.1 x 0.3201 + 0.742002)
    #     = 0.261267 / 0.774012 = 0.337548  -> 33.75 on the leaderboard's scale
    assert metrics.arena_score(0.3201, 0.07) == pytest.approx(33.7548, abs=1e-3)
    assert round(metrics.arena_score(0.3201, 0.07), 2) == 33.75


def test_arena_score_reproduces_the_azure_row_and_clips_the_cost():
    # azure: 68.09%, $0.54 per 1,000 queries, 66.66 on the board (its inputs are rounded):
    #   C = (7.643856 + 0.888969) / 15.472130 = 8.532825 / 15.472130 = 0.551496
    #   S = 1.1 x 0.6809 x 0.551496 / (0.06809 + 0.551496) = 0.413061 / 0.619586 = 0.666679
    assert metrics.arena_score(0.6809, 0.54) == pytest.approx(66.668, abs=1e-3)
    # at or above c_max = $200 the cost score is 0, so S is 0 whatever the accuracy;
    # at or below c_min = $0.0044 it is 1: S = 1.1 A / (0.1 A + 1) = 0.99 / 1.09 at A = 0.9
    assert metrics.arena_score(0.9, 500.0) == 0.0
    assert metrics.arena_score(0.9, 0.001) == pytest.approx(100 * 0.99 / 1.09)
    assert metrics.arena_score(0.0, 1.0) == 0.0
    assert metrics.arena_score(np.array([0.3201, 0.6809]), np.array([0.07, 0.54])) == \
        pytest.approx([33.7548, 66.668], abs=1e-3)
    with pytest.raises(ValueError, match="accuracy"):
        metrics.arena_score(1.5, 1.0)


def test_score_choices_reports_the_arena_score_at_lambda_0_and_its_best_point():
    from routeharness.data.dataset import ModelInfo, RoutingData
    from routeharness.evaluation.scoring import score_choices

    # two prompts; model 0 right on both at $0.002 per call, model 1 right on one at
    # $0.00001 per call (= $2 and $0.01 per 1,000 queries)
    scores = np.array([[1.0, 1.0], [1.0, 0.0]])
    costs = np.array([[0.002, 0.00001], [0.002, 0.00001]])
    data = RoutingData(np.array(["a", "b"]), np.array(["p", "q"]), np.array(["g", "g"]),
                       scores, costs, [ModelInfo("m0"), ModelInfo("m1")])
    choices = np.array([[0, 0], [1, 1]])  # lam = 0: model 0; then model 1
    out = score_choices(data, choices, [0.0, float("inf")], per_group=False)
    # lam = 0: A = 1, c = $2: C = (7.643856 - 1) / 15.472130 = 0.429404,
    #   S = 1.1 x 0.429404 / (0.1 + 0.429404) = 0.892228 -> 89.22
    # lam = inf: A = 0.5, c = $0.01: C = (7.643856 + 6.643856) / 15.472130 = 0.923445,
    #   S = 1.1 x 0.5 x 0.923445 / (0.05 + 0.923445) = 0.521762 -> 52.18
    assert out["arena_score"] == pytest.approx(89.2228, abs=1e-3)
    assert out["arena_score_max"] == pytest.approx(89.2228, abs=1e-3)


def test_a_result_file_written_before_the_arena_score_loads_and_its_table_leaves_it_out():
    from pathlib import Path

    from routeharness.common.contract import parse_json
    from routeharness.results.records import ResultSet
    from routeharness.results.sets import report_tables

    old = Path(__file__).resolve().parent.parent / "leaderboards" / "routerbench-v1" / \
        "submissions" / "knn.json"
    assert "arena_score" not in old.read_text()  # written before the score existed
    result = ResultSet.from_dict(parse_json(old.read_bytes(), str(old))["result"])
    assert all(r.metrics.arena_score is None for r in result.records)
    headers = report_tables(result)[0].headers
    assert "AUC" in headers[1] and not any("Arena" in h for h in headers)
