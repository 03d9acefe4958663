"""The learned routers mlp, mlp-select, linear and routerdc on small real data:
RouterBench's MBPP part (real 0/1 scores and USD costs of 11 LLMs), embedded with MiniLM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from routeharness.common.errors import DataError
from routeharness.data.dataset import Outcomes, RoutingData

LAMS = np.array([0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, np.inf])
# short schedules keep the default tests fast; the defaults are tuned in the harness
FAST = {
    "mlp": {"max_epochs": 30},
    "mlp-select": {"max_epochs": 15},
    "routerdc": {"training_steps": 150, "lr": 5e-3, "temperature": 0.2,
                 "cost_rates": (0.0, 1.0)},
    "linear": {"alpha": 10.0},
}




def make(name: str, seed: int = 0, **extra: Any) -> Any:
    from routeharness.plugins.registry import get_registry

    return get_registry("router").get(name).load()(**{**FAST[name], **extra, "random_state": seed})


@pytest.fixture(scope="module")
def fitted(mbpp) -> dict[str, Any]:
    return {name: make(name).fit(mbpp.X["train"], mbpp.train) for name in FAST}


def test_registered_through_the_plugin_hook():
    from routeharness.plugins.registry import get_registry

    registry = get_registry("router")
    for name, plugin in [("mlp", "mlp"), ("mlp-select", "mlp"), ("linear", "linear"),
                         ("routerdc", "routerdc")]:
        entry = registry.get(name)
        assert entry.plugin.endswith(plugin)
        grid = entry.load().param_grid
        n_configs = int(np.prod([len(v) for v in grid.values()]))
        assert 1 < n_configs <= 24  # the harness's tuning budget, as for kNN


def auc_on_test(router: Any, problem: Any) -> float:
    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS
    from routeharness.evaluation.scoring import route_split, score_choices

    rows = problem.test.complete_rows()
    choices = route_split(router, problem.X["test"][rows], problem.test.subset(rows),
                          DEFAULT_LAMBDAS, problem.train.cost_scale)
    return score_choices(problem.test.subset(rows), choices, DEFAULT_LAMBDAS,
                         per_group=False)["auc"]


def test_shapes(fitted, mbpp):
    n, m = mbpp.test.n, mbpp.train.m
    X = mbpp.X["test"]
    for name in ("mlp", "linear"):
        scores_hat, costs_hat = fitted[name].predict(X)
        assert scores_hat.shape == costs_hat.shape == (n, m)
        assert np.all((scores_hat >= 0) & (scores_hat <= 1)) and np.all(costs_hat > 0)
        # the predicted costs rank the models as their real mean training costs do
        real = np.nanmean(mbpp.train.costs, axis=0)
        assert np.corrcoef(np.argsort(np.argsort(costs_hat.mean(0))),
                           np.argsort(np.argsort(real)))[0, 1] > 0.9
    for name in ("mlp-select", "routerdc"):
        choice = fitted[name].route(X, 0.1)
        assert choice.shape == (n,) and choice.min() >= 0 and choice.max() < m
    sims = fitted["routerdc"].similarities(X)
    assert sims.shape == (n, m) and np.all(np.abs(sims) <= 1 / 0.2 + 1e-5)


@pytest.mark.parametrize("name", ["mlp", "mlp-select", "routerdc"])
def test_same_seed_same_router(name, mbpp):
    short = {"max_epochs": 3} if name.startswith("mlp") else {"training_steps": 20}
    first, again, other = (make(name, seed=s, **short).fit(mbpp.X["train"], mbpp.train)
                           for s in (0, 0, 1))
    X = mbpp.X["test"]
    assert np.array_equal(again.route_sweep(X, LAMS), first.route_sweep(X, LAMS))
    assert again.loss_history_ == first.loss_history_
    # and another seed trains a different network
    assert other.loss_history_ != first.loss_history_


@pytest.mark.parametrize("name", ["mlp", "mlp-select", "routerdc"])
def test_training_loss_falls(name, fitted):
    history = fitted[name].loss_history_
    curves = history if isinstance(history[0], list) else [history]
    for curve in curves:
        k = max(1, len(curve) // 10)
        assert np.mean(curve[-k:]) < 0.9 * np.mean(curve[:k])


def test_ridge_matches_closed_form_on_real_embeddings(fitted, mbpp):
    """Without missing cells the per-model fit equals the textbook solution."""
    X, y = mbpp.X["train"].astype(np.float64), mbpp.train.scores[:, 0]
    Xa = np.hstack([X, np.ones((len(X), 1))])
    penalty = 10.0 * np.eye(Xa.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    w = np.linalg.solve(Xa.T @ Xa + penalty, Xa.T @ y)
    router = fitted["linear"]
    assert np.allclose(router.coef_[:, 0], w[:-1], atol=1e-6)
    assert np.isclose(router.intercept_[0], w[-1], atol=1e-6)


def mean_routed_cost(choices: np.ndarray, data: RoutingData) -> np.ndarray:
    return np.take_along_axis(data.costs.T, choices, axis=0).mean(axis=1)


@pytest.mark.parametrize("name", list(FAST))
def test_trade_off_towards_cost_moves_to_cheaper_models(name, fitted, mbpp):
    choices = fitted[name].route_sweep(mbpp.X["test"], np.array([0.0, 1.0, np.inf]))
    cost = mean_routed_cost(choices, mbpp.test)
    assert cost[2] < cost[0] and cost[1] <= cost[0] + 1e-12
    if name == "routerdc":
        return  # its largest trained cost rate (1.0) still weighs quality: no cost-only router
    # cost-only routing picks (nearly always) the cheapest model on average
    cheapest = int(np.argmin(np.nanmean(mbpp.train.costs, axis=0)))
    assert np.mean(choices[2] == cheapest) > 0.8


def test_each_beats_random(fitted, mbpp):
    from routeharness_baselines.routers import RandomRouter

    random_auc = auc_on_test(RandomRouter(random_state=0).fit(mbpp.X["train"], mbpp.train),
                             mbpp)
    aucs = {name: auc_on_test(router, mbpp) for name, router in fitted.items()}
    assert all(auc > random_auc for auc in aucs.values()), (aucs, random_auc)


def test_missing_cells_are_masked(mbpp):
    """NaN scores (missing cells) neither break training nor leak into the losses."""
    scores = mbpp.train.scores.copy()
    rng = np.random.default_rng(0)
    scores[rng.random(scores.shape) < 0.2] = np.nan
    holed = Outcomes(scores=scores, costs=mbpp.train.costs, groups=mbpp.train.groups,
                     models=mbpp.train.models)
    for name in FAST:
        extra = {"max_epochs": 3} if name.startswith("mlp") else {}
        if name == "routerdc":
            extra = {"training_steps": 20}
        router = make(name, **extra).fit(mbpp.X["train"], holed)
        for curve in (getattr(router, "loss_history_", None) or [[0.0]]):
            assert np.all(np.isfinite(curve))
        assert router.route_sweep(mbpp.X["test"], LAMS).shape == (len(LAMS), mbpp.test.n)


def test_routerdc_losses_on_a_worked_example():
    """The sample-LLM loss skips failing positives and masks negatives that also succeed."""
    import torch
    from routeharness_routerdc.router import nearest_rate, sample_llm_loss

    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]])
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    # top-1 positive: model 0 (or 3, equal target); negatives: the two zeros (1, 2)
    loss = sample_llm_loss(logits, target, top_k=1, last_k=2)
    pos = 2.0 if int(target.sort(descending=True).indices[0, 0]) == 0 else 0.5
    expected = -torch.log_softmax(torch.tensor([pos, 0.0, -1.0]), 0)[0]
    assert torch.isclose(loss, expected)
    # a row where every model fails gives no signal
    assert float(sample_llm_loss(logits, torch.zeros(1, 4), top_k=3, last_k=3)) == 0.0
    rates = np.array([0.0, 0.1, 1.0])
    assert [nearest_rate(x, rates) for x in (0.0, 0.001, 0.05, 0.5, 2.0, np.inf)] == \
        [0, 0, 1, 2, 2, 2]


def test_routerdc_finetunes_its_text_encoder(mbpp):
    """finetune_encoder=True trains the run's transformer (MiniLM) with the head, from the
    prompt texts; routing reads the texts through the harness; same seed, same router."""
    import torch
    from routeharness_routerdc.router import load_transformer

    from routeharness.evaluation.scoring import route_split

    assert mbpp.train.encoder_path and mbpp.train.texts is not None
    rows = np.arange(48)
    train = mbpp.train.subset(rows)
    X = mbpp.X["train"][rows]
    params = {"finetune_encoder": True, "training_steps": 4, "batch_size": 8,
              "max_length": 32, "cost_rates": (0.0, 1.0), "encoder_lr": 1e-3}
    first = make("routerdc", **params).fit(X, train)
    second = make("routerdc", **params).fit(X, train)
    assert [len(h) for h in first.loss_history_] == [4, 4]
    _, pretrained = load_transformer(mbpp.train.encoder_path)
    name, before = next(iter(pretrained.named_parameters()))
    after = dict(first.routers_[0][2].named_parameters())[name]
    assert not torch.equal(before, after)  # the encoder itself was trained
    test = mbpp.test.subset(np.arange(20))
    choices = route_split(first, mbpp.X["test"][:20], test, list(LAMS), train.cost_scale)
    assert choices.shape == (len(LAMS), 20) and choices.min() >= 0 and choices.max() < test.m
    again = route_split(second, mbpp.X["test"][:20], test, list(LAMS), train.cost_scale)
    np.testing.assert_array_equal(choices, again)
    with pytest.raises(DataError, match="texts"):
        first.route(mbpp.X["test"][:20], 0.0)
    from dataclasses import replace

    with pytest.raises(DataError, match=r"outcomes\.texts is missing"):
        make("routerdc", **params).fit(X, replace(train, texts=None))
