"""kNN routers and the baselines on real RouterBench data."""

from __future__ import annotations

import numpy as np
import pytest
from routeharness_baselines.routers import BestSingleRouter, CheapestRouter
from routeharness_knn.router import KNNRouter, KNNVoteRouter

from routeharness.common.progress import Reporter
from routeharness.embedding.cache import EmbeddingCache
from routeharness.embedding.embed import embed_task
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import DEFAULT_LAMBDAS
from routeharness.evaluation.scoring import oracle_choices, route_split
from routeharness.routers.base import TIE_BREAK, NotFittedError, clone


@pytest.fixture(scope="module")
def mbpp(routerbench_embedded, minilm, cache_dir):
    task = routerbench_embedded.restrict_to_group("mbpp")
    embedded = embed_task(task, minilm, EmbeddingCache(cache_dir), Reporter())
    train = task.splits["train"]
    scale = metrics.cost_scale(train.costs)
    return embedded, train.outcomes(scale), scale


def test_knn_predicts_neighbour_means(mbpp):
    embedded, outcomes, _ = mbpp
    X = embedded.X["train"]
    router = KNNRouter(k=1).fit(X, outcomes)
    scores_hat, costs_hat = router.predict(X[:20])
    # each training prompt is its own nearest neighbour
    assert np.allclose(scores_hat, np.nan_to_num(outcomes.scores[:20], nan=scores_hat[0, 0]))
    assert np.allclose(costs_hat, outcomes.costs[:20])
    k5 = KNNRouter(k=5, weighting="distance").fit(X, outcomes)
    s5, _ = k5.predict(X[:20])
    assert s5.shape == (20, outcomes.m) and (s5 >= 0).all() and (s5 <= 1).all()


def test_knn_is_deterministic_and_clone_is_unfitted(mbpp):
    embedded, outcomes, _ = mbpp
    router = KNNRouter(k=10)
    with pytest.raises(NotFittedError):
        router.predict(embedded.X["test"])
    a = router.fit(embedded.X["train"], outcomes).route_sweep(embedded.X["test"], DEFAULT_LAMBDAS)
    b = clone(router).fit(embedded.X["train"], outcomes).route_sweep(embedded.X["test"],
                                                                        DEFAULT_LAMBDAS)
    assert np.array_equal(a, b)
    assert clone(router).get_params() == router.get_params()


@pytest.mark.parametrize("router_cls", [KNNRouter, KNNVoteRouter])
def test_cost_tradeoff_moves_choices_to_cheaper_models(mbpp, router_cls):
    embedded, outcomes, scale = mbpp
    test = embedded.task.splits["test"]
    router = router_cls(k=10).set_params(**({"tie_break": "best-average"}
                                            if router_cls is KNNVoteRouter else {}))
    router = router.fit(embedded.X["train"], outcomes)
    choices = route_split(router, embedded.X["test"], test, DEFAULT_LAMBDAS, scale)
    spent = [test.costs[np.arange(test.n), row].mean() for row in choices]
    assert spent[-1] < spent[0]
    if router_cls is KNNRouter:
        assert spent[-1] < spent[0] / 5  # cost only is far cheaper than quality only
    assert spent[-1] == pytest.approx(test.costs[np.arange(test.n), choices[-1]].mean())


def test_knn_beats_random_and_oracle_bounds_everything(mbpp):
    embedded, outcomes, scale = mbpp
    test = embedded.task.splits["test"].subset(embedded.task.splits["test"].complete_rows())
    X_test = embedded.X["test"]
    aucs = {}
    routers = (("knn", KNNRouter(k=20)), ("best", BestSingleRouter()),
               ("cheap", CheapestRouter()))
    for name, router in (*routers, ("oracle", None)):
        if router is None:  # the harness's reference: each prompt's best model by its labels
            choices = oracle_choices(test, DEFAULT_LAMBDAS, scale, TIE_BREAK)
        else:
            router.fit(embedded.X["train"], outcomes)
            choices = route_split(router, X_test, test, DEFAULT_LAMBDAS, scale)
        c, q = metrics.operating_points(test.scores, test.costs / metrics.cost_scale(test.costs),
                                        choices)
        aucs[name] = metrics.auc(c, q)
    assert aucs["oracle"] >= max(aucs["knn"], aucs["best"], aucs["cheap"])
    assert aucs["knn"] > aucs["cheap"]


def test_knn_beats_the_single_model_frontier_on_full_routerbench(cache_dir):
    """The README's claim, on all 3,178 prompts (their embeddings ship with the task:
    about 2 s; it encoded them, minutes on 2 cores, and was marked slow)."""
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    result = evaluate(["knn"], ["routerbench"], protocol=Protocol(n_bootstrap=0),
                      cache_dir=str(cache_dir))
    knn = next(r for r in result.records if r.router == "knn")
    reference = result.tasks["routerbench"]
    assert knn.metrics.auc > reference.single_model_frontier_auc
    best = next(r for r in result.records if r.router == "best-single")
    assert knn.metrics.quality_at_0 > best.metrics.quality_at_0 - 2.0
