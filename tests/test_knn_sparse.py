"""kNN's estimate where a model's outcomes are sparse (issue 21, item 1): a missing
neighbour outcome counts as ``prior`` outcomes at the model's mean shrunk toward the
pool's, for a sparse model only; on a table without one (every built-in task) every
``prior`` routes exactly as before the rule, and tuning leaves it out there (the
committed results' grid, sample and ties are unchanged)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from routeharness_knn.router import KNNRouter
from routeharness_knn.table import POOL_PRIOR_OUTCOMES, shrunk_means

from routeharness.common.progress import Reporter
from routeharness.data.dataset import ModelInfo, Outcomes
from routeharness.embedding.cache import EmbeddingCache
from routeharness.embedding.embed import embed_task
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import DEFAULT_LAMBDAS, Protocol, seed_streams
from routeharness.evaluation.tuning import configs_to_tune, plan_routers, tie_rules
from routeharness.routers.base import sparse_models


def test_shrunk_means_by_hand():
    table = np.array([[1, 1, 1], [0, 1, np.nan], [1, 1, np.nan], [0, 1, np.nan]], float)
    # means 0.5, 1, 1 on 4, 4, 1 outcomes; the pool's mean is their mean, 5/6
    pool = 5 / 6
    assert np.allclose(shrunk_means(table, strength=2),
                       [(2 + 2 * pool) / 6, (4 + 2 * pool) / 6, (1 + 2 * pool) / 3])
    c = POOL_PRIOR_OUTCOMES
    assert np.allclose(shrunk_means(table), [(2 + c * pool) / (4 + c),
                                             (4 + c * pool) / (4 + c), (1 + c * pool) / (1 + c)])
    assert np.allclose(shrunk_means(np.full((3, 2), np.nan)), 0.0)  # nothing known


def _clusters(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n prompts in 3 well-separated clusters of 8-d vectors, and each one's cluster."""
    centres = np.eye(8)[:3] * 10
    cluster = rng.integers(0, 3, n)
    return centres[cluster] + rng.normal(size=(n, 8)), cluster


def _outcomes(scores: np.ndarray, costs: np.ndarray) -> Outcomes:
    models = [ModelInfo(f"m{j}") for j in range(scores.shape[1])]
    return Outcomes(scores=scores, costs=costs, models=models,
                    groups=np.array(["g"] * len(scores), dtype=object))


@pytest.fixture(scope="module")
def sparse_new_model():
    """Three specialists (judge scores about 0.9 in their own cluster, about 0.2
    elsewhere) and a new, cheap model whose true quality is 0.5 everywhere but whose
    only outcomes, on 1% of the 2,000 training prompts, are all 1.0. The known answer:
    in every cluster its specialist is better than the new model."""
    rng = np.random.default_rng(0)
    X, cluster = _clusters(2000, rng)
    Q, q_cluster = _clusters(600, rng)
    own = cluster[:, None] == np.arange(3)[None, :]
    old = np.where(own, rng.uniform(0.8, 1.0, (2000, 3)), rng.uniform(0.0, 0.4, (2000, 3)))
    new = np.full(2000, np.nan)
    seen = rng.choice(2000, 20, replace=False)
    new[seen] = 1.0
    scores = np.column_stack([old, new])
    costs = np.where(np.isnan(scores), np.nan, np.array([1.0, 1.0, 1.0, 0.1])[None, :])
    return X, _outcomes(scores, costs), Q, q_cluster


def test_a_new_model_with_few_perfect_outcomes_does_not_take_every_route(sparse_new_model):
    X, outcomes, Q, q_cluster = sparse_new_model
    raw = KNNRouter(k=10, prior=0.0).fit(X, outcomes)
    ruled = KNNRouter(k=10).fit(X, outcomes)  # the default prior, 1
    assert ruled.prior == 1.0
    # the failure the rule answers: with the raw mean, a neighbourhood without any of
    # its 20 outcomes falls back to its training mean, 1.0, above every specialist
    assert (raw.route(Q, 0.0) == 3).mean() > 0.95
    # with the rule its estimate there is its shrunk mean, far below 1, plus the mean
    # difficulty of the neighbours (how far their outcomes are from the models' means)
    pool = float(np.mean([*np.nanmean(outcomes.scores[:, :3], axis=0), 1.0]))
    expected = (20 * 1.0 + POOL_PRIOR_OUTCOMES * pool) / (20 + POOL_PRIOR_OUTCOMES)
    assert np.isclose(ruled.score_priors_[3], expected) and expected < 0.75
    old = outcomes.scores[:, :3]
    difficulty = (old - old.mean(axis=0)).mean(axis=1)
    assert np.allclose(ruled.row_offsets_, difficulty)
    scores_hat, _ = ruled.predict(Q)
    index, _ = ruled._neighbours(Q)
    unseen = np.isnan(outcomes.scores[index, 3]).all(axis=1)
    assert unseen.sum() > 500
    want = np.clip(expected + difficulty[index[unseen]], 0, 1).mean(axis=1)
    assert np.allclose(scores_hat[unseen, 3], want) and (scores_hat[unseen, 3] < 0.8).all()
    chosen = ruled.route_sweep(Q, np.array([0.0, 0.1]))
    assert (chosen[0] == 3).mean() < 0.05  # each cluster's specialist, as it should be
    assert (chosen[0] == q_cluster).mean() > 0.95
    # a neighbourhood holding some of its outcomes is pulled toward them, not to 1.0
    seen = ~unseen
    imputed_only = np.clip(expected + difficulty[index[seen]], 0, 1).mean(axis=1)
    assert seen.any() and (scores_hat[seen, 3] > imputed_only).all() and \
        (scores_hat[seen, 3] < 1.0).all()


def test_prior_interpolates_between_the_raw_mean_and_the_shrunk_mean(sparse_new_model):
    X, outcomes, Q, _ = sparse_new_model
    values = [KNNRouter(k=50, prior=p).fit(X, outcomes).predict(Q)[0][:, 3]
              for p in (0.0, 0.25, 1.0, 100.0)]
    prior_mean = shrunk_means(outcomes.scores)[3]
    # each missing cell weighs more as prior grows: the estimate moves toward the prior
    gaps = [np.abs(v - prior_mean).mean() for v in values]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] and gaps[3] < 1e-2


def test_validate_params_checks_prior():
    for bad in (-1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="prior must be a finite number >= 0"):
            KNNRouter(prior=bad).validate_params()
    KNNRouter(prior=0).validate_params()


@pytest.fixture(scope="module")
def mbpp(routerbench_embedded, minilm, cache_dir):
    task = routerbench_embedded.restrict_to_group("mbpp")
    embedded = embed_task(task, minilm, EmbeddingCache(cache_dir), Reporter())
    train = task.splits["train"]
    return embedded, train.outcomes(metrics.cost_scale(train.costs))


@pytest.mark.parametrize("weighting", ["uniform", "distance"])
def test_without_a_sparse_model_routes_and_scores_are_identical_for_every_prior(mbpp,
                                                                               weighting):
    """The built-in tasks miss a few cells (routerbench: 8 training prompts without any
    outcome, one more cell of one model) and have no sparse model: there the rule must
    change nothing, to the last bit (committed kNN results and board submissions stay
    valid). Here mbpp's outcomes with such holes punched in, and without them."""
    embedded, outcomes = mbpp
    holed = outcomes.scores.copy(), outcomes.costs.copy()
    rng = np.random.default_rng(3)
    for table in holed:
        table[rng.choice(outcomes.n, 4, replace=False)] = np.nan  # prompts without outcomes
        table[rng.choice(outcomes.n, 9), rng.integers(0, outcomes.m, 9)] = np.nan
    X, Q = embedded.X["train"], embedded.X["test"]
    for fitted in (outcomes, replace(outcomes, scores=holed[0], costs=holed[1])):
        assert not sparse_models(fitted.scores).any()
        for k in (1, 10, 100):
            before = KNNRouter(k=k, weighting=weighting, prior=0.0).fit(X, fitted)
            want = before.predict(Q)
            routes = before.route_sweep(Q, DEFAULT_LAMBDAS)
            for prior in (0.25, 1.0, 4.0):
                after = KNNRouter(k=k, weighting=weighting, prior=prior).fit(X, fitted)
                got = after.predict(Q)
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
                assert np.array_equal(after.route_sweep(Q, DEFAULT_LAMBDAS), routes)


@pytest.mark.parametrize("task", ["routerbench", "alpacaeval", "llmrouter", "routerdc"])
def test_no_built_in_text_task_has_a_sparse_model(task, shared_data):
    from routeharness.data.tasks import load_task

    # routerdc is not shipped: its data comes from ../shared/data, as a user's --data-dir
    train = load_task(task, data_dir=shared_data if task == "routerdc" else None).splits["train"]
    coverage = (~np.isnan(train.scores)).mean(axis=0)
    assert not sparse_models(train.scores).any() and coverage.min() > 0.99


def test_a_sparse_model_changes_only_its_own_column(sparse_new_model):
    X, outcomes, Q, _ = sparse_new_model
    raw = KNNRouter(k=10, prior=0.0).fit(X, outcomes).predict(Q)
    ruled = KNNRouter(k=10, prior=1.0).fit(X, outcomes).predict(Q)
    for a, b in zip(raw, ruled):
        assert np.array_equal(a[:, :3], b[:, :3]) and not np.array_equal(a[:, 3], b[:, 3])


def test_tuning_leaves_prior_out_without_a_sparse_model_and_tunes_it_with_one():
    plan = plan_routers(["knn"], references=False)[0]
    protocol, streams = Protocol(seeds=(0,)), seed_streams(0)
    complete = configs_to_tune(plan, protocol, streams, sparse=False)
    # the grid before the rule: 7 k x 2 weightings, all tuned (under max_configs 24)
    assert len(complete) == 14 and all(set(c) == {"k", "weighting"} for c in complete)
    sparse = configs_to_tune(plan, Protocol(seeds=(0,), max_configs=100), streams,
                             sparse=True)
    assert len(sparse) == 42 and {c["prior"] for c in sparse} == {0.0, 0.25, 1.0}
    assert [r.name for r in tie_rules(plan)] == ["k", "weighting", "prior"]


def test_a_committed_submission_verifies_against_a_rerun_that_records_prior():
    """A re-run of a kNN submission made before ``prior`` existed records it (its
    numbers are the same: no built-in task has a sparse model); the parameter the
    submission does not name is not compared, every other one still is."""
    import json
    from pathlib import Path

    from routeharness.boards.definition import Submission
    from routeharness.boards.run import compare_records

    path = Path(__file__).resolve().parent.parent / "leaderboards" / "routerbench-v1" / \
        "submissions" / "knn.json"
    record = Submission.model_validate(json.loads(path.read_text("utf-8"))).result.records[0]
    assert "prior" not in record.params
    rerun = record.model_copy(update={"params": {**record.params, "prior": 1.0}})
    assert all(row.ok for row in compare_records(record, rerun, 1e-4))
    other = record.model_copy(update={"params": {**record.params, "k": 7, "prior": 1.0}})
    [params] = [row for row in compare_records(record, other, 1e-4) if row.metric == "params"]
    assert not params.ok


def test_the_shift_study_lists_the_parameters_a_run_tuned():
    """A study's "tuned" values name what tuning chose among: on the built-in tasks
    kNN's k and weighting, not ``prior`` (left at its default there)."""
    from types import SimpleNamespace

    from routeharness.study.shift import _tuned_names

    plan = plan_routers(["knn"], references=False)[0]
    row = SimpleNamespace(params={"k": 50, "weighting": "uniform"})
    assert _tuned_names(plan, SimpleNamespace(tuning=[row])) == {"k", "weighting"}
    sparse = SimpleNamespace(params={"k": 50, "weighting": "uniform", "prior": 1.0})
    assert _tuned_names(plan, SimpleNamespace(tuning=[sparse])) == {"k", "weighting", "prior"}
    assert _tuned_names(plan, SimpleNamespace(tuning=[])) == {"k", "weighting"}
