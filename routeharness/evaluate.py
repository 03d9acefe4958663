"""The evaluation protocol (no CLI code): embed, tune on validation, fit on train, sweep
the trade-off on test, score the frontier; for every router x task x seed.

1. Embed every split's prompts (cached; see ``routeharness.encoders``).
2. Tune: each configuration of the router's declared ``param_grid`` (at most
   ``max_configs``, a seeded sample when the grid is larger: the same budget rule for
   every router) is fitted on train and scored by frontier AUC on validation; the best
   wins, ties to the earlier configuration.
3. Refit on train with the winner; route the test prompts for every ``lam``.
4. Score: operating points, frontier AUC (+ bootstrap CI), quality and cost at lam = 0,
   per group; APGR/CPT when the pool has two models.
Each seed is split into independent streams (``routeharness.protocol.seed_streams``):
the grid sample, the router's ``random_state`` and the bootstrap. The oracle (each test
prompt's best model by its true outcome) is a reference computed here from the labels,
never a router. Routers see costs in normalised units (train's most expensive model's mean cost = 1);
metrics use the evaluated split's own scale. Rows with a missing score are left out of
validation and test scoring (and counted); routers may train on them.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import metrics
from routeharness.base import (
    RouterSpec,
    accepts_random_state,
    fixed_params,
    parse_router_spec,
    spec_label,
    tags_of,
)
from routeharness.checkpoint import load_checkpoint, save_checkpoint
from routeharness.data import Outcomes, RoutingData, RoutingTask
from routeharness.embedding import EmbeddedTask, embed_task
from routeharness.errors import RouteHarnessError
from routeharness.progress import Advance, Reporter, _ignore
from routeharness.protocol import (  # noqa: F401 (DEFAULT_LAMBDAS re-exported)
    DEFAULT_LAMBDAS,
    ORACLE,
    REFERENCE_ROUTERS,
    Protocol,
    SeedStreams,
    seed_streams,
)
from routeharness.records import ResultSet
from routeharness.scoring import (
    _labels_free,
    oracle_reference,
    route_split,
    score_choices,
    task_reference,
)

#: the encoder a task runs with when neither --encoder nor its card names one
DEFAULT_ENCODER = "minilm"


def candidate_configs(param_grid: dict[str, list[Any]], max_configs: int,
                      seed: int) -> list[dict[str, Any]]:
    """The grid's configurations; a seeded sample of ``max_configs`` if there are more
    (``seed``: the grid-sample stream)."""
    names = sorted(param_grid)
    configs = [dict(zip(names, values))
               for values in itertools.product(*(param_grid[n] for n in names))]
    if len(configs) > max_configs:
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(configs), size=max_configs, replace=False))
        configs = [configs[i] for i in keep]
    return configs or [{}]


def _make(router_cls: type, params: dict[str, Any], random_state: int) -> Any:
    params = dict(params)
    if accepts_random_state(router_cls):
        params["random_state"] = random_state
    return router_cls(**params)


@dataclass
class RouterRun:
    """One router of the matrix: its registry ``entry``, loaded class, the parameters the
    user fixed (``-r NAME:PARAM=VALUE``) and the ``label`` its records carry."""

    label: str
    name: str
    entry: Any
    router_cls: type
    fixed: dict[str, Any] = field(default_factory=dict)
    #: deterministic routers: (stage, config) -> validation AUC or test routes, per task
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def grid(self) -> dict[str, list[Any]]:
        """The tuning grid without the fixed parameters."""
        grid = getattr(self.router_cls, "param_grid", {}) or {}
        return {k: v for k, v in grid.items() if k not in self.fixed}


def plan_routers(routers: Sequence[str], references: bool = True) -> list[RouterRun]:
    """The ``-r`` specs (``NAME`` or ``NAME:PARAM=VALUE,...``) resolved against the
    registry, in order, duplicates dropped; reference routers appended."""
    from routeharness.registry import get_registry

    registry = get_registry("router")
    specs = [parse_router_spec(text) for text in routers]
    if references:
        specs += [RouterSpec(r) for r in REFERENCE_ROUTERS if r in registry]
    plans: dict[str, RouterRun] = {}
    for spec in specs:
        entry = registry.get(spec.name)
        router_cls = entry.load()
        tags_of(router_cls)  # an unknown tag fails here, before any work
        fixed = fixed_params(router_cls, spec)
        label = spec_label(spec.name, fixed)
        plans.setdefault(label, RouterRun(label, spec.name, entry, router_cls, fixed))
    return list(plans.values())


def tune(plan: RouterRun, X_train: np.ndarray, train: Outcomes, X_val: np.ndarray,
         validation: RoutingData, protocol: Protocol, streams: SeedStreams,
         advance: Advance = _ignore, status: str = "") -> tuple[dict[str, Any], list[dict]]:
    """The best configuration by validation AUC (ties to the earlier one), and the table
    of every configuration. ``advance`` is called once per configuration."""
    configs = candidate_configs(plan.grid, protocol.max_configs, streams.grid)
    if not protocol.tune or len(configs) == 1:
        return (configs[0] if protocol.tune else {}), []
    deterministic = tags_of(plan.router_cls).deterministic
    table, best, best_auc = [], configs[0], -np.inf
    for i, params in enumerate(configs):
        advance(0, f"{status}tuning {i + 1}/{len(configs)} ({_describe(params)})")
        key = ("validation", _key(params))
        value = plan.memo.get(key) if deterministic else None
        if value is None:
            router = _make(plan.router_cls, {**params, **plan.fixed}, streams.router)
            _fit(plan, router, X_train, train)
            choices = route_split(router, X_val, validation, protocol.lambdas, train.cost_scale)
            value = score_choices(validation, choices, protocol.lambdas, per_group=False)["auc"]
            if deterministic:
                plan.memo[key] = value
        table.append({"params": params, "validation_auc": value})
        if value > best_auc + 1e-12:
            best, best_auc = params, value
        advance(1)
    return best, table


def _fit(plan: RouterRun, router: Any, X: np.ndarray, outcomes: Outcomes) -> None:
    """``router.fit``; a hyper-parameter the user fixed (``-r NAME:PARAM=VALUE``) that the
    router refuses (its ``ValueError`` or ``TypeError``) is one line naming the spec, not
    a traceback. Other errors are the plugin's and keep their traceback."""
    try:
        fitted = router.fit(X, outcomes)
    except (ValueError, TypeError) as exc:
        if not plan.fixed:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RouteHarnessError(f"router {plan.label!r}: the router refuses its fixed "
                                f"hyper-parameters ({_describe(plan.fixed)}): {reason}") from None
    if fitted is not router:
        raise RouteHarnessError(f"router {plan.label!r}: fit() must return self")


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _key(params: dict[str, Any]) -> str:
    return json.dumps(_jsonable(params), sort_keys=True, default=repr)


def tuning_steps(plan: RouterRun, protocol: Protocol) -> int:
    """Progress steps of one run: one per configuration tuned, one for the final fit."""
    n = min(len(candidate_configs(plan.grid, protocol.max_configs, 0)), protocol.max_configs)
    return (n if protocol.tune and n > 1 else 0) + 1


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


def route_one(plan: RouterRun, embedded: EmbeddedTask, seed: int, protocol: Protocol,
              advance: Advance = _ignore) -> Routed:
    """``run_one`` keeping the test choices (``Routed``)."""
    task = embedded.task
    router_cls = plan.router_cls
    streams = seed_streams(seed)
    train, validation, test = (task.splits[s] for s in ("train", "validation", "test"))
    scale = metrics.cost_scale(train.costs)
    train_outcomes = train.outcomes(scale, task.group_descriptions, embedded.encode_text,
                                    embedded.encoder_path)
    val_rows, test_rows = validation.complete_rows(), test.complete_rows()
    validation_eval = validation.subset(val_rows)
    test_eval = test.subset(test_rows)
    X_val = embedded.X["validation"][val_rows]
    X_test = embedded.X["test"][test_rows]
    status = f"{plan.label} on {task.name}, seed {seed}: "

    started = time.perf_counter()
    best, tuning = tune(plan, embedded.X["train"], train_outcomes, X_val, validation_eval,
                        protocol, streams, advance, status)
    tune_seconds = time.perf_counter() - started
    params = {**best, **plan.fixed}
    advance(0, f"{status}fitting ({_describe(params)})")
    key = ("test", _key(params))
    deterministic = tags_of(router_cls).deterministic
    if deterministic and key in plan.memo:
        choices, final_params, chosen, fit_seconds, route_seconds = plan.memo[key]
    else:
        router = _make(router_cls, params, streams.router)
        started = time.perf_counter()
        _fit(plan, router, embedded.X["train"], train_outcomes)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        choices = route_split(router, X_test, _labels_free(test_eval), protocol.lambdas, scale)
        route_seconds = time.perf_counter() - started
        final_params = router.get_params() if hasattr(router, "get_params") else params
        index = getattr(router, "model_index_", None)
        chosen = task.models[index].name if isinstance(index, int) else None
        if deterministic:
            plan.memo[key] = (choices, final_params, chosen, fit_seconds, route_seconds)
    advance(1)
    scored = score_choices(test_eval, choices, protocol.lambdas,
                           n_bootstrap=protocol.n_bootstrap, seed=streams.bootstrap)
    return Routed({
        "router": plan.label,
        "router_class": f"{router_cls.__module__}.{router_cls.__qualname__}",
        "router_kind": getattr(router_cls, "kind", "utility"),
        "plugin": plan.entry.plugin, "distribution": plan.entry.distribution,
        "version": plan.entry.version,
        "upper_bound": False,  # no router is an upper bound: the oracle is a reference
        "deterministic": deterministic,
        "chosen_model": chosen,
        "task": task.name, "seed": seed, "params": _jsonable(final_params),
        "fixed_params": _jsonable(plan.fixed),
        "seed_streams": {"grid": streams.grid, "router": streams.router,
                         "bootstrap": streams.bootstrap},
        "tuning": _jsonable(tuning),
        "n_test": int(test_eval.n), "n_test_excluded": int((~test_rows).sum()),
        "timings": {"tune_s": tune_seconds, "fit_s": fit_seconds, "route_s": route_seconds},
        "metrics": {k: v for k, v in scored.items() if k not in ("curve", "frontier", "per_group")},
        "per_group": scored.get("per_group", {}),
        "curve": {"lambda": [("inf" if np.isinf(x) else x) for x in protocol.lambdas],
                  **scored["curve"]},
        "frontier": scored["frontier"],
    }, choices, test_eval)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


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
    from routeharness.tasks import load_task

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
             oracle: bool | None = None) -> ResultSet:
    """The router x task matrix over the protocol's seeds -> a typed ``ResultSet``.

    ``routers``: names or specs ``NAME:PARAM=VALUE,...`` (fixed hyper-parameters).
    ``encoder``: None uses the tasks' card default (see ``choose_encoder``).
    ``references`` adds the best-single and random rows and the oracle reference;
    ``oracle`` (default: ``references``) the oracle reference alone.
    ``checkpoint``: a file the result so far is saved to after every router x task x
    seed (atomically). ``resume=True`` reuses the records saved there for the router x
    task x seed they cover (same protocol, encoder, task data and router distribution,
    version and fixed parameters, else an error) and runs only the rest.
    """
    from routeharness.encoders import EmbeddingCache, get_encoder
    from routeharness.results import new_result_set

    protocol = protocol or Protocol()
    reporter = reporter or Reporter()
    plans = plan_routers(routers, references)  # unknown names and params fail before work
    loaded = load_tasks(tasks, data_dir=data_dir, reporter=reporter, task_options=task_options)
    enc = get_encoder(choose_encoder(encoder, loaded))
    cache = EmbeddingCache(cache_dir)
    result = new_result_set(protocol, enc)
    reusable = load_checkpoint(checkpoint, protocol, enc, plans, reporter) \
        if resume and checkpoint is not None else {}
    for task in loaded:
        embedded = embed_task(task, enc, cache, reporter)
        reporter.log(f"embeddings for {task.name} ({enc.name}): {embedded.encoded} prompts "
                     f"encoded, {embedded.cached} loaded from cache"
                     + (" (nothing encoded)" if embedded.encoded == 0 else ""))
        for note in embedded.notes:
            reporter.log(note)
        test = task.splits["test"]
        test_eval = test.subset(test.complete_rows())
        reference = task_reference(task, test_eval)
        reference["embeddings"] = {"encoded": embedded.encoded, "cached": embedded.cached,
                                   "notes": embedded.notes}
        if references if oracle is None else oracle:
            # seed 0's bootstrap stream whatever --seeds: pieces of one matrix run with
            # different seeds hold the same oracle row, so they merge
            reference[ORACLE] = oracle_reference(
                test_eval, metrics.cost_scale(task.splits["train"].costs), protocol,
                seed_streams(0))
        result["tasks"][task.name] = reference
        for plan in plans:
            plan.memo.clear()  # routes are per task
        runs = [(plan, seed) for seed in protocol.seeds for plan in plans]
        steps = {plan.label: tuning_steps(plan, protocol) for plan in plans}
        reused = 0
        with reporter.progress(f"routing {task.name}",
                               sum(steps[p.label] for p, _ in runs)) as advance:
            for plan, seed in runs:
                record = reusable.get((plan.label, task.name, seed))
                if record is not None and record["task_fingerprint"] == reference["fingerprint"]:
                    reused += 1
                    result["records"].append(record["record"])
                    advance(steps[plan.label], f"{plan.label}, seed {seed}: reused")
                else:
                    result["records"].append(run_one(plan, plan.entry, embedded, seed,
                                                     protocol, advance))
                if checkpoint is not None:
                    save_checkpoint(result, checkpoint)
        if reused:
            reporter.log(f"{task.name}: {reused} of {len(runs)} runs reused from {checkpoint}")
    return ResultSet.from_dict(result)
