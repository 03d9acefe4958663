"""Approximate search in the kNN routers: the index plans, recall measured against the
exact index, routes equal to flat's where the approximate search is exhaustive."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from routeharness_knn.router import (
    AUTO_HNSW_FROM,
    INDEXES,
    KNNRouter,
    KNNVoteRouter,
    clear_index_cache,
    plan_index,
    recall_at_k,
)
from routeharness_knn.search import HNSW_EF_PER_K, TARGET_RECALL

from routeharness.data.synth import synthetic_task
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import DEFAULT_LAMBDAS
from routeharness.routers.base import clone


def _clustered(n: int, d: int, n_clusters: int, seed: int) -> np.ndarray:
    """Unit vectors around random centres: the shape of prompt embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d))
    points = centres[rng.integers(0, n_clusters, n)] + 0.6 * rng.normal(size=(n, d))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def task():
    task, X = synthetic_task(2000, 10, 400, n_models=4, dim=32, n_clusters=12,
                             locality=0.6, noise=0.8, seed=3)
    train = task.splits["train"]
    return X, train.outcomes(metrics.cost_scale(train.costs))


def test_plan_follows_the_rules():
    assert plan_index(20_000, 10, "ivf") == plan_index(20_000, 10, "ivf", nprobe=None)
    ivf = plan_index(20_000, 10, "ivf")
    assert (ivf.nlist, ivf.nprobe) == (141, None)  # sqrt(n); nprobe chosen at the build
    assert plan_index(10**6, 10, "ivf").nlist == 1000
    assert plan_index(1000, 10, "ivf").nlist == 25  # sqrt(n) = 32, capped at n / 39
    assert plan_index(10, 10, "ivf").nlist == 1
    assert plan_index(20_000, 10, "ivf", nprobe=10**6).nprobe == 141  # never above nlist
    assert plan_index(3000, 100, "ivf", nprobe=7).nprobe == 7  # given: used as is
    hnsw = plan_index(1000, 100, "hnsw", ef_search=16)
    assert (hnsw.m, hnsw.ef_construction, hnsw.ef_search) == (32, 80, 100)  # efSearch >= k
    assert plan_index(1000, 100, "hnsw").ef_search == HNSW_EF_PER_K * 100  # the default beam
    assert plan_index(1000, 5, "hnsw").ef_search == 64  # never below 64
    assert plan_index(AUTO_HNSW_FROM - 1, 10, "auto").kind == "flat"
    assert plan_index(AUTO_HNSW_FROM, 10, "auto").kind == "hnsw"
    assert plan_index(5, 3).to_dict() == {"kind": "flat", "n": 5, "nlist": None, "nprobe": None,
                                          "m": None, "ef_construction": None, "ef_search": None,
                                          "recall": None, "target_recall": None}
    assert plan_index(20_000, 10, "ivf").target_recall == TARGET_RECALL  # the one default
    assert plan_index(20_000, 10, "ivf", recall=0.99).target_recall == 0.99
    assert plan_index(20_000, 10, "ivf", nprobe=3).target_recall is None  # given, not chosen


def test_ivf_nprobe_is_chosen_by_measured_recall():
    points = _clustered(20_000, 64, 50, seed=1)
    outcomes = SimpleNamespace(n=20_000, m=2, scores=np.zeros((20_000, 2)),
                               costs=np.ones((20_000, 2)))
    clear_index_cache()
    router = KNNRouter(k=10, index="ivf").fit(points, outcomes)
    plan = router.search_settings()
    assert plan["kind"] == "ivf" and plan["recall"] >= TARGET_RECALL
    assert 1 <= plan["nprobe"] <= plan["nlist"] and plan["nprobe"] & (plan["nprobe"] - 1) == 0
    if plan["nprobe"] > 1:  # the fewest lists: half as many find less
        halved = recall_at_k(points, points[:300], 10, index="ivf", nprobe=plan["nprobe"] // 2)
        assert halved < recall_at_k(points, points[:300], 10, index="ivf",
                                    nprobe=plan["nprobe"])
    given = KNNRouter(k=10, index="ivf", nprobe=3).fit(points, outcomes).search_settings()
    assert (given["nprobe"], given["recall"]) == (3, None)
    clear_index_cache()


def test_ivf_recall_target_sets_nprobe():
    points = _clustered(20_000, 64, 50, seed=1)
    outcomes = SimpleNamespace(n=20_000, m=2, scores=np.zeros((20_000, 2)),
                               costs=np.ones((20_000, 2)))
    clear_index_cache()
    plans = {target: KNNRouter(k=10, index="ivf", recall=target).fit(
        points, outcomes).search_settings() for target in (0.5, 0.999, 1.0)}
    for target, plan in plans.items():  # the fewest lists reaching it (all lists: exact)
        assert plan["target_recall"] == target
        assert plan["recall"] >= target or plan["nprobe"] == plan["nlist"]
    assert plans[0.5]["nprobe"] < plans[0.999]["nprobe"] <= plans[1.0]["nprobe"]
    assert plans[1.0]["recall"] == 1.0
    # one kept build serves every target: a second target calibrates, not rebuilds
    again = KNNRouter(k=10, index="ivf", recall=0.5).fit(points, outcomes)
    assert again.search_settings() == plans[0.5]
    clear_index_cache()


@pytest.mark.parametrize("cls", [KNNRouter, KNNVoteRouter])
@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, True, "0.9", float("nan")])
def test_a_bad_recall_target_is_refused_in_one_line(cls, bad):
    with pytest.raises(ValueError, match=r"recall must be a number in \(0, 1\]") as error:
        cls(index="ivf", recall=bad).validate_params()
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="nprobe or recall") as error:
        cls(index="ivf", nprobe=4, recall=0.9).validate_params()
    assert "\n" not in str(error.value)
    cls(index="ivf", recall=1).validate_params()  # (0, 1]: 1 is a target


@pytest.mark.parametrize("cls", [KNNRouter, KNNVoteRouter])
@pytest.mark.parametrize("weighting", ["uniform", "distance"])
def test_exhaustive_approximate_search_routes_like_flat(task, cls, weighting):
    X, outcomes = task
    exact = cls(k=10, weighting=weighting).fit(X["train"], outcomes)
    expected = exact.route_sweep(X["test"], DEFAULT_LAMBDAS)
    for params in ({"index": "ivf", "nprobe": 10**6}, {"index": "hnsw", "ef_search": 2000}):
        router = cls(k=10, weighting=weighting, **params).fit(X["train"], outcomes)
        assert router.index_plan_.kind == params["index"]
        assert np.array_equal(router.route_sweep(X["test"], DEFAULT_LAMBDAS), expected), params


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_recall_at_default_settings(index):
    points = _clustered(20_500, 64, 50, seed=0)
    X, queries = points[:20_000], points[20_000:]
    recall = recall_at_k(X, queries, 10, index=index)
    assert 0.95 <= recall <= 1.0
    # measured, not assumed: a starved search is worse, and the exact one is exact
    assert recall_at_k(X, queries, 10, index="ivf", nprobe=1) < recall
    assert recall_at_k(X, queries, 10, index="flat") == 1.0


@pytest.mark.parametrize("index", ["ivf", "hnsw", "auto"])
def test_two_fits_route_the_same(task, index):
    X, outcomes = task
    a = KNNRouter(k=20, index=index, random_state=0).fit(X["train"], outcomes)
    clear_index_cache()  # a second build, not the kept one
    b = KNNRouter(k=20, index=index, random_state=1).fit(X["train"], outcomes)
    assert index == "auto" or a.index_ is not b.index_
    assert np.array_equal(a.route_sweep(X["test"], DEFAULT_LAMBDAS),
                          b.route_sweep(X["test"], DEFAULT_LAMBDAS))
    assert a.index_plan_ == b.index_plan_


def test_ivf_with_lists_shorter_than_k_still_routes(task):
    X, outcomes = task
    router = KNNVoteRouter(k=100, index="ivf", nprobe=1).fit(X["train"], outcomes)
    routes = router.route_sweep(X["test"], DEFAULT_LAMBDAS)
    assert routes.shape == (len(DEFAULT_LAMBDAS), X["test"].shape[0])
    assert routes.min() >= 0 and routes.max() < outcomes.m
    scores_hat, _ = KNNRouter(k=100, index="ivf", nprobe=1).fit(
        X["train"], outcomes).predict(X["test"])
    assert np.isfinite(scores_hat).all()


@pytest.mark.parametrize("bad", [{"index": "annoy"}, {"index": "ivf", "nprobe": 0},
                                 {"index": "hnsw", "ef_search": 1.5}])
def test_bad_settings_are_refused_in_one_line(task, bad):
    X, outcomes = task
    with pytest.raises(ValueError) as error:
        KNNRouter(**bad).fit(X["train"], outcomes)
    assert "\n" not in str(error.value)
    if "index" in bad and bad["index"] not in INDEXES:
        assert all(name in str(error.value) for name in INDEXES)


@pytest.mark.parametrize("cls", [KNNRouter, KNNVoteRouter])
def test_params_round_trip_and_index_is_not_tuned(task, cls):
    X, outcomes = task
    router = cls(k=5, index="hnsw", ef_search=70).fit(X["train"], outcomes)
    copy = clone(router)
    assert copy.get_params() == router.get_params()
    assert copy.get_params()["index"] == "hnsw" and copy.get_params()["ef_search"] == 70
    assert not hasattr(copy, "index_")
    assert cls().get_params()["index"] == "flat"
    assert not {"index", "nprobe", "ef_search"} & set(cls.param_grid)


def test_tuning_reuses_one_build_with_each_routers_search_settings(task):
    X, outcomes = task
    clear_index_cache()
    wide = KNNRouter(k=10, index="ivf", nprobe=10**6).fit(X["train"], outcomes)
    narrow = KNNRouter(k=5, index="ivf", nprobe=1).fit(X["train"], outcomes)
    assert narrow.index_ is wide.index_  # same data, same build settings: built once
    exact = KNNRouter(k=10).fit(X["train"], outcomes)
    assert narrow.route_sweep(X["test"], DEFAULT_LAMBDAS).shape[1] == X["test"].shape[0]
    # the shared index searches with each router's own nprobe, whoever searched last
    assert np.array_equal(wide.route_sweep(X["test"], DEFAULT_LAMBDAS),
                          exact.route_sweep(X["test"], DEFAULT_LAMBDAS))
    other = KNNRouter(k=10, index="ivf").fit(X["train"][:1500], outcomes_head(outcomes, 1500))
    assert other.index_ is not wide.index_
    clear_index_cache()


def outcomes_head(outcomes, n: int):
    """The first n training prompts' outcomes (enough of ``Outcomes`` for ``fit``)."""
    return SimpleNamespace(n=n, m=outcomes.m, scores=outcomes.scores[:n],
                           costs=outcomes.costs[:n])
