"""The evaluation protocol (no CLI code): embed, tune on validation, fit on train, sweep
the trade-off on test, score the frontier; for every router x task x seed.

1. Embed every split's prompts (cached; see ``routeharness.embedding.encoders``).
2. Tune: each configuration of the router's declared ``param_grid`` (at most
   ``max_configs``, a seeded sample when the grid is larger: the same budget rule for
   every router) is fitted on train and scored by frontier AUC on validation; the best
   wins, ties to the earlier configuration.
3. Refit on train with the winner; route the test prompts for every ``lam``.
4. Score: operating points, frontier AUC (+ bootstrap CI), quality and cost at lam = 0,
   per group; APGR/CPT when the pool has two models.
Each seed is split into independent streams (``routeharness.evaluation.protocol.seed_streams``):
the grid sample, the router's ``random_state`` and the bootstrap. The oracle (each test
prompt's best model by its true outcome) is a reference computed here from the labels,
never a router. Routers see costs in normalised units (train's most expensive model's mean cost = 1);
metrics use the evaluated split's own scale. Rows with a missing score are left out of
validation and test scoring (and counted); routers may train on them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.common.progress import Advance, Reporter, _ignore
from routeharness.data.dataset import RoutingData, RoutingTask
from routeharness.embedding.embed import EmbeddedTask, embed_task
from routeharness.evaluation import metrics
from routeharness.evaluation.checkpoint import load_checkpoint, save_checkpoint
from routeharness.evaluation.protocol import (  # noqa: F401 (DEFAULT_LAMBDAS re-exported)
    DEFAULT_LAMBDAS,
    ORACLE,
    REFERENCE_ROUTERS,
    Protocol,
    SeedStreams,
    seed_streams,
)
from routeharness.evaluation.scoring import (
    _labels_free,
    oracle_reference,
    route_split,
    score_choices,
    task_reference,
)
from routeharness.evaluation.tuning import (  # noqa: F401 (the planning names re-exported)
    RouterRun,
    TuningInputs,
    candidate_configs,
    config_key,
    describe,
    fit_router,
    jsonable,
    make_router,
    plan_routers,
    tune,
    tuning_steps,
)
from routeharness.results.records import ResultSet

# the names studies and older callers import from here
_make, _fit, _describe, _key = make_router, fit_router, describe, config_key

#: the encoder a task runs with when neither --encoder nor its card names one
DEFAULT_ENCODER = "minilm"


def run_one(router_name: str | RouterRun, entry: Any, embedded: EmbeddedTask, seed: int,
            protocol: Protocol, advance: Advance = _ignore) -> dict[str, Any]:
    """One router x task x seed: tune, fit, route, score -> a result record (dict).
    ``router_name``: a registered name or spec, or a ``RouterRun`` (then ``entry`` is
    unused)."""
    plan = router_name if isinstance(router_name, RouterRun) else \
        plan_routers([router_name], references=False)[0]
    return route_one(plan, embedded, seed, protocol, advance).record


@dataclass
class Routed:
    """One run's record and its test routing: ``choices`` (L, n) on ``test``, the scored
    (complete) test rows; what paired comparisons between routers resample."""

    record: dict[str, Any]
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
    group) and its record."""
    task = embedded.task
    router_cls = plan.router_cls
    streams = seed_streams(seed)
    test_rows, test_eval, _ = _test_rows(embedded)
    scored = score_choices(test_eval, fitted.choices, protocol.lambdas,
                           n_bootstrap=protocol.n_bootstrap, seed=streams.bootstrap)
    params = dict(fitted.final_params)
    if "random_state" in params:  # a deterministic router's fit is shared by its seeds
        params["random_state"] = streams.router
    return Routed({
        "router": plan.label,
        "router_class": f"{router_cls.__module__}.{router_cls.__qualname__}",
        "router_kind": getattr(router_cls, "kind", "utility"),
        "plugin": plan.entry.plugin, "distribution": plan.entry.distribution,
        "version": plan.entry.version,
        "upper_bound": False,  # no router is an upper bound: the oracle is a reference
        "deterministic": plan.deterministic,
        "chosen_model": fitted.chosen,
        "task": task.name, "seed": seed, "params": jsonable(params),
        "fixed_params": jsonable(plan.fixed),
        "seed_streams": {"grid": streams.grid, "router": streams.router,
                         "bootstrap": streams.bootstrap},
        "tuning": jsonable(tuning),
        "n_test": int(test_eval.n), "n_test_excluded": int((~test_rows).sum()),
        "timings": {"tune_s": tune_seconds, "fit_s": fitted.fit_seconds,
                    "route_s": fitted.route_seconds},
        "metrics": {k: v for k, v in scored.items() if k not in ("curve", "frontier", "per_group")},
        "per_group": scored.get("per_group", {}),
        "curve": {"lambda": [("inf" if np.isinf(x) else x) for x in protocol.lambdas],
                  **scored["curve"]},
        "frontier": scored["frontier"],
        **({"search": fitted.search} if fitted.search is not None else {}),
    }, fitted.choices, test_eval)


def route_one(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
              advance: Advance = _ignore) -> Routed:
    """One router x task x seed in this process: tune (``tuning.tune``), refit and route
    test (``fit_route``, memoised in ``plan.memo`` for a deterministic router), score
    (``finish``)."""
    streams = seed_streams(seed)
    status = f"{plan.label} on {embedded.task.name}, seed {seed}: "
    started = time.perf_counter()
    best, table = tune(plan, TuningInputs.of(embedded), protocol, streams, advance, status)
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


_jsonable = jsonable  # the name checkpoint and older callers import


def _refuse_duplicate_tasks(specs: list[str], loaded: Sequence[RoutingTask]) -> None:
    """Two task specs that load tasks of one name (the same spec twice, or two folders
    both named ``data``) would pool their records under that name: refused."""
    first: dict[str, str] = {}
    for spec, task in zip(specs, loaded):
        if task.name in first:
            raise RouteHarnessError(
                f"tasks {first[task.name]!r} and {spec!r} are both named {task.name!r}: their "
                f"results would be pooled; give one task once, or name your datasets apart "
                f"(routing.json \"name\")")
        first[task.name] = spec


def load_tasks(specs: Sequence[str], *, data_dir: str | None = None,
               reporter: Reporter | None = None,
               task_options: dict[str, Any] | None = None) -> list[RoutingTask]:
    """The task specs loaded in order; two that load tasks of one name are refused."""
    from routeharness.data.tasks import load_task

    reporter = reporter or Reporter()
    loaded = []
    for spec in specs:
        reporter.log(f"loading task {spec}")
        loaded.append(load_task(spec, data_dir=data_dir, **(task_options or {})))
    _refuse_duplicate_tasks(list(specs), loaded)
    return loaded


def choose_encoder(encoder: str | None, tasks: Sequence[RoutingTask]) -> str:
    """``encoder`` when given; else the tasks' card default (``card.encoder``), which
    must be one for all tasks run together; else ``DEFAULT_ENCODER``."""
    if encoder:
        return encoder
    defaults = {t.name: (getattr(t.card, "encoder", None) or DEFAULT_ENCODER) for t in tasks}
    if len(set(defaults.values())) > 1:
        listed = ", ".join(f"{name}: {enc}" for name, enc in defaults.items())
        raise RouteHarnessError(f"these tasks default to different encoders ({listed}): "
                                f"choose one with --encoder, or run them separately")
    return next(iter(defaults.values()), DEFAULT_ENCODER)


def evaluate(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
             protocol: Protocol | None = None, data_dir: str | None = None,
             cache_dir: str | None = None, reporter: Reporter | None = None,
             references: bool = True, task_options: dict[str, Any] | None = None,
             checkpoint: str | Path | None = None, resume: bool = False,
             oracle: bool | None = None, executor: Any = None) -> ResultSet:
    """The router x task matrix over the protocol's seeds -> a typed ``ResultSet``.

    ``routers``: names or specs ``NAME:PARAM=VALUE,...`` (fixed hyper-parameters).
    ``encoder``: None uses the tasks' card default (see ``choose_encoder``).
    ``references`` adds the best-single and random rows and the oracle reference;
    ``oracle`` (default: ``references``) the oracle reference alone.
    ``checkpoint``: a file the result so far is saved to after every router x task x
    seed (atomically). ``resume=True`` reuses the records saved there for the router x
    task x seed they cover (same protocol, encoder, task data and router distribution,
    version and fixed parameters, else an error) and runs only the rest.
    ``executor``: where the runs execute (``routeharness.evaluation.executors``: an ``Executor``, or
    ``"local"`` (default) / ``"ray"``, then started and stopped here); the records come
    out in the same order, with the same numbers, whichever runs them.
    """
    from routeharness.embedding.encoders import EmbeddingCache, get_encoder
    from routeharness.evaluation.executors import Executor, Job, get_executor
    from routeharness.results.sets import new_result_set

    protocol = protocol or Protocol()
    reporter = reporter or Reporter()
    plans = plan_routers(routers, references)  # unknown names and params fail before work
    owned = not isinstance(executor, Executor)
    runner = get_executor(executor or "local") if owned else executor
    loaded = load_tasks(tasks, data_dir=data_dir, reporter=reporter, task_options=task_options)
    enc = get_encoder(choose_encoder(encoder, loaded))
    cache = EmbeddingCache(cache_dir)
    result = new_result_set(protocol, enc)
    reusable = load_checkpoint(checkpoint, protocol, enc, plans, reporter) \
        if resume and checkpoint is not None else {}
    order: list[tuple[str, str, int]] = []  # the records' order, whatever runs them
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    jobs = []
    for task in loaded:
        embedded = embed_task(task, enc, cache, reporter)
        result["tasks"][task.name] = _reference(embedded, enc.name, protocol, reporter,
                                                references if oracle is None else oracle)
        fingerprint = result["tasks"][task.name]["fingerprint"]
        reused = 0
        for seed in protocol.seeds:
            for plan in plans:
                key = (plan.label, task.name, seed)
                order.append(key)
                record = reusable.get(key)
                if record is not None and record["task_fingerprint"] == fingerprint:
                    done[key] = record["record"]
                    reused += 1
                else:
                    jobs.append(Job(plan, embedded, seed))
        if reused:
            reporter.log(f"{task.name}: {reused} of {len(plans) * len(protocol.seeds)} runs "
                         f"reused from {checkpoint}")
    total = sum(tuning_steps(job.plan, protocol) for job in jobs)
    try:
        with reporter.progress(f"routing {', '.join(t.name for t in loaded)}", total) as advance:
            for job, routed in runner.run(jobs, protocol, advance):
                done[job.key] = routed.record
                if checkpoint is not None:
                    result["records"] = [done[k] for k in order if k in done]
                    save_checkpoint(result, checkpoint)
    finally:
        if owned:
            runner.close()
    result["records"] = [done[k] for k in order]
    return ResultSet.from_dict(result)


def _reference(embedded: EmbeddedTask, encoder_name: str, protocol: Protocol,
               reporter: Reporter, oracle: bool) -> dict[str, Any]:
    """A task's reference facts (``scoring.task_reference``), how its embeddings were
    obtained, and the oracle row when asked for."""
    task = embedded.task
    reporter.log(f"embeddings for {task.name} ({encoder_name}): {embedded.encoded} prompts "
                 f"encoded, {embedded.cached} loaded from cache"
                 + (" (nothing encoded)" if embedded.encoded == 0 else ""))
    for note in embedded.notes:
        reporter.log(note)
    test = task.splits["test"]
    test_eval = test.subset(test.complete_rows())
    reference = task_reference(task, test_eval)
    reference["embeddings"] = {"encoded": embedded.encoded, "cached": embedded.cached,
                               "notes": embedded.notes}
    if oracle:
        # seed 0's bootstrap stream whatever --seeds: pieces of one matrix run with
        # different seeds hold the same oracle row, so they merge
        reference[ORACLE] = oracle_reference(
            test_eval, metrics.cost_scale(task.splits["train"].costs), protocol,
            seed_streams(0))
    return reference
