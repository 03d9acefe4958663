"""One router x task x seed in this process, and the pieces executors chain: tune
(``tuning.tune``), refit with the winner and route the test prompts for every lam
(``fit_route``), score the routes and make the record (``finish``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeharness.common.progress import Advance, _ignore
from routeharness.data.dataset import RoutingData
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.scoring import _labels_free, route_split, score_choices
from routeharness.evaluation.tuning import (
    RouterRun,
    TuningInputs,
    config_key,
    describe,
    fit_router,
    jsonable,
    make_router,
    tune,
)
from routeharness.results.records import Curve, Metrics, RunRecord, StreamSeeds, TuningRow


@dataclass
class Routed:
    """One run's record and its test routing: ``choices`` (L, n) on ``test``, the scored
    (complete) test rows; what paired comparisons between routers resample."""

    record: RunRecord
    choices: np.ndarray
    test: RoutingData


@dataclass(frozen=True)
class Fitted:
    """A run's final fit: the winning configuration (``params``: tuned and fixed), the
    test choices (L, n) for every lam, the router's own ``get_params()``, the model a
    single-model router chose, and the fit and route wall times."""

    params: dict[str, Any]
    choices: np.ndarray
    final_params: dict[str, Any]
    chosen: str | None
    fit_seconds: float
    route_seconds: float
    #: the search the router resolved (kNN's index: kind, nlist/nprobe and the recall
    #: that chose it, hnsw's settings), when it says (``search_settings()``)
    search: dict[str, Any] | None = None


def _test_rows(embedded: EmbeddedTask) -> tuple[np.ndarray, RoutingData, np.ndarray]:
    test = embedded.task.splits["test"]
    rows = test.complete_rows()
    return rows, test.subset(rows), embedded.X["test"][rows]


def fit_route(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
              best: dict[str, Any]) -> Fitted:
    """Refit on train with the winning configuration ``best`` and route the scored test
    prompts for every lam, labels removed."""
    task = embedded.task
    train = task.splits["train"]
    scale = metrics.cost_scale(train.costs)
    outcomes = train.outcomes(scale, task.group_descriptions, embedded.encode_text,
                              embedded.encoder_path)
    _, test_eval, X_test = _test_rows(embedded)
    params = {**best, **plan.fixed}
    router = make_router(plan.router_cls, params, seed_streams(seed).router)
    started = time.perf_counter()
    fit_router(plan, router, embedded.X["train"], outcomes)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    choices = route_split(router, X_test, _labels_free(test_eval), protocol.lambdas, scale)
    route_seconds = time.perf_counter() - started
    final_params = router.get_params() if hasattr(router, "get_params") else params
    index = getattr(router, "model_index_", None)
    chosen = task.models[index].name if isinstance(index, int) else None
    settings = getattr(router, "search_settings", None)
    search = jsonable(settings()) if callable(settings) else None
    return Fitted(params, choices, final_params, chosen, fit_seconds, route_seconds, search)


def finish(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
           tuning: list[dict], tune_seconds: float, fitted: Fitted) -> Routed:
    """A run scored on test (frontier, bootstrap interval from the seed's stream, per
    group) and its typed record."""
    task = embedded.task
    router_cls = plan.router_cls
    streams = seed_streams(seed)
    test_rows, test_eval, _ = _test_rows(embedded)
    scored = score_choices(test_eval, fitted.choices, protocol.lambdas,
                           n_bootstrap=protocol.n_bootstrap, seed=streams.bootstrap)
    params = dict(fitted.final_params)
    if "random_state" in params:  # a deterministic router's fit is shared by its seeds
        params["random_state"] = streams.router
    metrics = {k: v for k, v in scored.items() if k not in ("curve", "frontier", "per_group")}
    record = RunRecord(
        router=plan.label,
        router_class=f"{router_cls.__module__}.{router_cls.__qualname__}",
        router_kind=getattr(router_cls, "kind", "utility"),
        plugin=plan.entry.plugin, distribution=plan.entry.distribution,
        version=plan.entry.version,
        upper_bound=False,  # no router is an upper bound: the oracle is a reference
        chosen_model=fitted.chosen, task=task.name, seed=seed, params=jsonable(params),
        tuning=[TuningRow(**row) for row in jsonable(tuning)],
        n_test=int(test_eval.n), n_test_excluded=int((~test_rows).sum()),
        timings={"tune_s": tune_seconds, "fit_s": fitted.fit_seconds,
                 "route_s": fitted.route_seconds},
        metrics=Metrics(**metrics), per_group=scored.get("per_group", {}),
        curve=Curve(lambdas=list(protocol.lambdas), **scored["curve"]),
        frontier=Curve(**scored["frontier"]),
        deterministic=plan.deterministic, fixed_params=jsonable(plan.fixed),
        seed_streams=StreamSeeds(grid=streams.grid, router=streams.router,
                                 bootstrap=streams.bootstrap),
        **({"search": fitted.search} if fitted.search is not None else {}))
    return Routed(record, fitted.choices, test_eval)


def route_one(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
              advance: Advance = _ignore) -> Routed:
    """One router x task x seed in this process: tune (``tuning.tune``), refit and route
    test (``fit_route``, memoised in ``plan.memo`` for a deterministic router), score
    (``finish``)."""
    streams = seed_streams(seed)
    status = f"{plan.label} on {embedded.task.name}, seed {seed}: "
    started = time.perf_counter()
    inputs = TuningInputs.of(embedded, protocol.tune_on)
    best, table = tune(plan, inputs, protocol, streams, advance, status)
    tune_seconds = time.perf_counter() - started
    advance(0, f"{status}fitting ({describe({**best, **plan.fixed})})")
    key = ("test", config_key({**best, **plan.fixed}))
    fitted = plan.memo.get(key) if plan.deterministic else None
    if fitted is None:
        fitted = fit_route(plan, embedded, seed, protocol, best)
        if plan.deterministic:
            plan.memo[key] = fitted
    advance(1)
    return finish(plan, embedded, seed, protocol, table, tune_seconds, fitted)
