"""GraphRouter and LLM Bandit on small real data: RouterBench's MBPP part (269 training,
128 test prompts x 11 LLMs, real 0/1 scores and USD costs), embedded with MiniLM."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from routeharness.common.errors import DataError
from routeharness.data.dataset import RoutingData

LAMS = np.array([0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, np.inf])
GRAPH_EPOCHS = 60  # enough to beat random on MBPP; keeps the default tests fast




def auc_on_test(router: Any, problem: Any) -> float:
    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS
    from routeharness.evaluation.scoring import route_split, score_choices

    test = problem.test.subset(problem.test.complete_rows())
    X = problem.X["test"][problem.test.complete_rows()]
    choices = route_split(router, X, test, DEFAULT_LAMBDAS, problem.train.cost_scale)
    return score_choices(test, choices, DEFAULT_LAMBDAS, per_group=False)["auc"]


def mean_routed_cost(choices: np.ndarray, data: RoutingData) -> np.ndarray:
    """(L,) mean actual USD cost of the chosen models, one per trade-off."""
    return np.take_along_axis(data.costs.T, choices, axis=0).mean(axis=1)


@pytest.fixture(scope="module")
def random_auc(mbpp) -> float:
    from routeharness_baselines.routers import RandomRouter

    return auc_on_test(RandomRouter(random_state=0).fit(mbpp.X["train"], mbpp.train), mbpp)


# --- GraphRouter -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph(mbpp):
    from routeharness_graphrouter.router import GraphRouter

    return GraphRouter(epochs=GRAPH_EPOCHS, random_state=0).fit(mbpp.X["train"], mbpp.train)


def test_graphrouter_shapes_and_description_features(graph, mbpp):
    n, m = mbpp.test.n, mbpp.train.m
    scores_hat, costs_hat = graph.predict(mbpp.X["test"], mbpp.test.groups)
    assert scores_hat.shape == costs_hat.shape == (n, m)
    assert np.all((scores_hat >= 0) & (scores_hat <= 1)) and np.all(costs_hat >= 0)
    # LLM and task nodes are featurised by embedding their descriptions (384-d MiniLM)
    assert graph.llm_featurisation_ == "encoded" and graph.llm_features_.shape == (m, 384)
    assert "mbpp" in graph.task_index_
    assert graph.task_features_.shape == (len(graph.task_index_), 384)
    # the predicted cost ranks the models as their real mean costs do
    rank = np.corrcoef(np.argsort(np.argsort(costs_hat.mean(0))),
                       np.argsort(np.argsort(np.nanmean(mbpp.train.costs, 0))))[0, 1]
    assert rank > 0.8


def test_graphrouter_loss_falls(graph):
    history = graph.loss_history_
    assert len(history) == GRAPH_EPOCHS
    assert history[-10:].mean() < 0.8 * history[:10].mean()


def test_graphrouter_same_seed_same_result(mbpp):
    from routeharness_graphrouter.router import GraphRouter

    X, Xt = mbpp.X["train"], mbpp.X["test"][:40]
    first = GraphRouter(epochs=8, random_state=7).fit(X, mbpp.train).predict(Xt)
    second = GraphRouter(epochs=8, random_state=7).fit(X, mbpp.train).predict(Xt)
    other = GraphRouter(epochs=8, random_state=8).fit(X, mbpp.train).predict(Xt)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_graphrouter_cost_tradeoff_moves_to_cheaper_models(graph, mbpp):
    choices = graph.route_sweep(mbpp.X["test"], LAMS, mbpp.test.groups)
    cost = mean_routed_cost(choices, mbpp.test)
    assert cost[-1] < 0.2 * cost[0]
    assert len(set(map(tuple, choices))) > 2  # the trade-off really changes the routes


def test_graphrouter_beats_random(graph, mbpp, random_auc):
    assert auc_on_test(graph, mbpp) > random_auc + 10


def test_graphrouter_new_queries_do_not_interact(graph, mbpp):
    """A routed query sends no messages: its prediction is the same alone or in a batch,
    with or without its group (an unknown group links to no task node)."""
    X, groups = mbpp.X["test"], mbpp.test.groups
    whole = graph.predict(X, groups)[0]
    assert np.allclose(graph.predict(X[:5], groups[:5])[0], whole[:5], atol=1e-6)
    unknown = graph.predict(X[:5], np.array(["no-such-group"] * 5, dtype=object))[0]
    assert np.allclose(unknown, graph.predict(X[:5], None)[0], atol=1e-6)


def test_graphrouter_one_hot_nodes_without_an_encoder(mbpp):
    from routeharness_graphrouter.router import GraphRouter

    outcomes = replace(mbpp.train, encode_text=None)
    router = GraphRouter(epochs=3, random_state=0).fit(mbpp.X["train"], outcomes)
    assert router.llm_featurisation_ == "one-hot"
    assert np.array_equal(router.llm_features_, np.eye(outcomes.m, dtype=np.float32))
    assert router.predict(mbpp.X["test"][:3])[0].shape == (3, outcomes.m)


def test_graphrouter_rejects_mismatched_rows(mbpp):
    from routeharness_graphrouter.router import GraphRouter

    with pytest.raises(DataError, match="expected"):
        GraphRouter(epochs=1).fit(mbpp.X["train"][:10], mbpp.train)


# --- LLM Bandit --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bandit(mbpp):
    from routeharness_bandit.router import BanditRouter

    return BanditRouter(random_state=0).fit(mbpp.X["train"], mbpp.train)


def test_bandit_shapes_and_one_policy_for_every_lambda(bandit, mbpp):
    n, m = mbpp.test.n, mbpp.train.m
    choices = bandit.route_sweep(mbpp.X["test"], LAMS)
    assert choices.shape == (len(LAMS), n) and choices.min() >= 0 and choices.max() < m
    prob = bandit.policy_probabilities(mbpp.X["test"], 0.3)
    assert prob.shape == (n, m) and np.allclose(prob.sum(1), 1.0)
    assert bandit.predict_correct(mbpp.X["test"]).shape == (n, m)
    # one trained network, conditioned on lam: routes differ across the sweep
    assert len(set(map(tuple, choices))) > 2


def test_bandit_losses_fall(bandit):
    assert bandit.irt_loss_history_[-1] < bandit.irt_loss_history_[0] - 0.05
    assert bandit.loss_history_[-1] < bandit.loss_history_[0]


def test_bandit_same_seed_same_result(mbpp):
    from routeharness_bandit.router import BanditRouter

    X, Xt = mbpp.X["train"], mbpp.X["test"]
    first = BanditRouter(epochs=3, random_state=5).fit(X, mbpp.train)
    second = BanditRouter(epochs=3, random_state=5).fit(X, mbpp.train)
    other = BanditRouter(epochs=3, random_state=6).fit(X, mbpp.train)
    assert np.array_equal(first.policy_probabilities(Xt, 0.3),
                          second.policy_probabilities(Xt, 0.3))
    assert not np.array_equal(first.policy_probabilities(Xt, 0.3),
                              other.policy_probabilities(Xt, 0.3))


def test_bandit_cost_tradeoff_moves_to_cheaper_models(bandit, mbpp):
    cost = mean_routed_cost(bandit.route_sweep(mbpp.X["test"], LAMS), mbpp.test)
    assert cost[-1] < 0.2 * cost[0]


def test_bandit_beats_random(bandit, mbpp, random_auc):
    assert auc_on_test(bandit, mbpp) > random_auc + 10


def test_bandit_add_model_from_50_outcomes(mbpp):
    """Train without gpt-3.5-turbo (good and cheap on MBPP), then add it from 50 of its
    training outcomes: only its identity vector is fitted, the policy is untouched, and
    the policy routes to it at once."""
    import torch
    from routeharness_bandit.router import BanditRouter

    names = [model.name for model in mbpp.train.models]
    new = names.index("gpt-3.5-turbo-1106")
    keep = [j for j in range(mbpp.train.m) if j != new]
    without = replace(mbpp.train, scores=mbpp.train.scores[:, keep],
                      costs=mbpp.train.costs[:, keep],
                      models=[mbpp.train.models[j] for j in keep])
    router = BanditRouter(random_state=0).fit(mbpp.X["train"], without)
    policy_before = {k: v.clone() for k, v in router.policy_.state_dict().items()}
    theta_before = {k: v.clone() for k, v in router.theta_net_.state_dict().items()}
    X_test = mbpp.X["test"]
    before = router.route_sweep(X_test, LAMS)

    rows = np.random.default_rng(0).choice(mbpp.train.n, size=50, replace=False)
    index = router.add_model(mbpp.train.scores[rows, new], mbpp.train.costs[rows, new],
                             mbpp.train.models[new], rows=rows)
    assert index == mbpp.train.m - 1 and router.models_[index].name == "gpt-3.5-turbo-1106"
    for key, value in router.policy_.state_dict().items():
        assert torch.equal(value, policy_before[key]), f"policy weight {key} changed"
    for key, value in router.theta_net_.state_dict().items():
        assert torch.equal(value, theta_before[key]), f"IRT weight {key} changed"

    after = router.route_sweep(X_test, LAMS)
    share = (after == index).mean(axis=1)
    assert share.max() > 0.25, f"the added model is chosen on at most {share.max():.0%}"
    # routing with it is at least as good as before at the trade-offs where it is used
    test_scores = mbpp.test.scores[:, keep + [new]]
    ok = ~np.isnan(test_scores).any(1)
    used = share > 0.25
    quality_before = np.take_along_axis(test_scores[ok].T, before[:, ok], 0).mean(1)
    quality_after = np.take_along_axis(test_scores[ok].T, after[:, ok], 0).mean(1)
    assert quality_after[used].mean() >= quality_before[used].mean() - 0.02
    # the IRT identity of the new model predicts its accuracy on the test prompts
    predicted = router.predict_correct(X_test)[:, index].mean()
    assert abs(predicted - np.nanmean(mbpp.test.scores[:, new])) < 0.15


def test_bandit_add_model_rejects_bad_input(bandit, mbpp):
    with pytest.raises(ValueError, match="exactly one"):
        bandit.add_model(np.ones(3), np.ones(3))
    with pytest.raises(DataError, match="must match"):
        bandit.add_model(np.ones(3), np.ones(2), rows=np.arange(3))
    with pytest.raises(DataError, match="indices"):
        bandit.add_model(np.ones(2), np.ones(2), rows=np.array([0, 10**6]))


def test_both_registered_as_plugins():
    from routeharness.plugins.host import plugin_infos
    from routeharness.plugins.registry import get_registry

    registry = get_registry("router")
    assert "graphrouter" in registry and "bandit" in registry
    loaded = {info.name for info in plugin_infos() if info.error is None}
    assert {"graphrouter", "bandit"} <= loaded
