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
Routers see costs in normalised units (train's most expensive model's mean cost = 1);
metrics use the evaluated split's own scale. Rows with a missing score are left out of
validation and test scoring (and counted); routers may train on them.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from routeharness import metrics
from routeharness.base import accepts_random_state
from routeharness.data import Outcomes, RoutingData, RoutingTask
from routeharness.embedding import EmbeddedTask, embed_task
from routeharness.errors import RouteHarnessError
from routeharness.progress import Reporter
from routeharness.protocol import DEFAULT_LAMBDAS, REFERENCE_ROUTERS, Protocol  # noqa: F401 (re-exported)


def candidate_configs(param_grid: dict[str, list[Any]], max_configs: int,
                      seed: int) -> list[dict[str, Any]]:
    """The grid's configurations; a seeded sample of ``max_configs`` if there are more."""
    names = sorted(param_grid)
    configs = [dict(zip(names, values))
               for values in itertools.product(*(param_grid[n] for n in names))]
    if len(configs) > max_configs:
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(configs), size=max_configs, replace=False))
        configs = [configs[i] for i in keep]
    return configs or [{}]


def _make(router_cls: type, params: dict[str, Any], seed: int) -> Any:
    params = dict(params)
    if accepts_random_state(router_cls):
        params["random_state"] = seed
    return router_cls(**params)


def _labels_free(data: RoutingData) -> RoutingData:
    """The split with its labels removed, to show that routing never needs them."""
    nan = np.full_like(data.scores, np.nan)
    return RoutingData(data.ids, data.prompts, data.groups, nan, nan.copy(), data.models,
                       data.images, data.embed_texts, data.split)


def route_split(router: Any, X: np.ndarray, data: RoutingData, lams: Sequence[float],
                cost_scale: float) -> np.ndarray:
    """(L, n) choices on a split. Only an oracle (tag) is handed the true outcomes."""
    if getattr(router, "tags", {}).get("oracle"):
        truth = Outcomes(data.scores, data.costs / cost_scale, data.groups, data.models,
                         cost_scale)
        return np.stack([router.route_oracle(truth, lam) for lam in lams])
    kwargs = {}
    if "texts" in inspect.signature(router.route_sweep).parameters:
        kwargs["texts"] = data.texts_to_embed()  # for routers with their own text encoder
    choices = np.asarray(router.route_sweep(X, np.asarray(lams, dtype=float), data.groups,
                                            **kwargs))
    if choices.shape != (len(lams), data.n):
        raise RouteHarnessError(f"{type(router).__name__}.route_sweep returned shape "
                                f"{choices.shape}, expected {(len(lams), data.n)}")
    if choices.min() < 0 or choices.max() >= data.m:
        raise RouteHarnessError(f"{type(router).__name__} routed to a model index outside "
                                f"0..{data.m - 1}")
    return choices.astype(np.int64)


def score_choices(data: RoutingData, choices: np.ndarray, lams: Sequence[float], *,
                  n_bootstrap: int = 0, seed: int = 0, per_group: bool = True) -> dict[str, Any]:
    """Metrics of (L, n) choices on a split whose rows are all complete."""
    scale = metrics.cost_scale(data.costs)
    costs = data.costs / scale
    point_c, point_q = metrics.operating_points(data.scores, costs, choices)
    out: dict[str, Any] = {
        "auc": metrics.auc(point_c, point_q),
        "quality_at_0": float(point_q[0]) * 100.0,
        "cost_at_0": float(point_c[0]),
        "cost_at_0_usd": float(point_c[0]) * scale,
        "cost_scale_usd": scale,
        "curve": {"cost": point_c.tolist(), "quality": point_q.tolist()},
    }
    hull_c, hull_q = metrics.frontier(point_c, point_q)
    out["frontier"] = {"cost": hull_c.tolist(), "quality": hull_q.tolist()}
    if n_bootstrap:
        out["auc_ci95"] = list(metrics.bootstrap_auc(data.scores, costs, choices,
                                                     n_resamples=n_bootstrap, seed=seed))
    if data.m == 2:
        means = data.scores.mean(axis=0)
        strong, weak = int(np.argmax(means)), int(np.argmin(means))
        if strong != weak and means[strong] > means[weak]:
            share = (choices == strong).mean(axis=1)
            out["apgr"] = metrics.apgr(share, point_q, means[weak], means[strong])
            out["cpt50"] = metrics.cpt(share, point_q, means[weak], means[strong], 0.5)
            out["cpt80"] = metrics.cpt(share, point_q, means[weak], means[strong], 0.8)
    if per_group:
        groups = {}
        for group in sorted(set(map(str, data.groups))):
            rows = np.flatnonzero(data.groups == group)
            sub = data.subset(rows)
            if sub.n == 0:
                continue
            groups[group] = {k: v for k, v in score_choices(sub, choices[:, rows], lams,
                                                            per_group=False).items()
                             if k in ("auc", "quality_at_0", "cost_at_0_usd")}
            groups[group]["n"] = int(sub.n)
        out["per_group"] = groups
    return out


def task_reference(task: RoutingTask, evaluated: RoutingData) -> dict[str, Any]:
    """Per-task facts every table shows: single models and their frontier."""
    scale = metrics.cost_scale(evaluated.costs)
    cost, quality = metrics.single_model_points(evaluated.scores, evaluated.costs / scale)
    return {
        "version": task.version, "revision": task.revision, "source": task.source,
        "fingerprint": task.fingerprint(),
        "sizes": {split: data.n for split, data in task.splits.items()},
        "models": [m.name for m in task.models],
        "groups": task.groups,
        "cost_scale_usd": scale,
        "single_models": [{"model": m.name, "quality": float(q) * 100.0, "cost": float(c),
                           "cost_usd": float(c) * scale}
                          for m, c, q in zip(task.models, cost, quality)],
        "single_model_frontier_auc": metrics.auc(cost, quality),
    }


def tune(router_cls: type, X_train: np.ndarray, train: Outcomes, X_val: np.ndarray,
         validation: RoutingData, protocol: Protocol, seed: int) -> tuple[dict[str, Any], list[dict]]:
    """The best configuration by validation AUC, and the table of every configuration."""
    configs = candidate_configs(getattr(router_cls, "param_grid", {}) or {},
                                protocol.max_configs, seed)
    if not protocol.tune or len(configs) == 1:
        return (configs[0] if protocol.tune else {}), []
    table, best, best_auc = [], configs[0], -np.inf
    for params in configs:
        router = _make(router_cls, params, seed).fit(X_train, train)
        choices = route_split(router, X_val, validation, protocol.lambdas, train.cost_scale)
        value = score_choices(validation, choices, protocol.lambdas, per_group=False)["auc"]
        table.append({"params": params, "validation_auc": value})
        if value > best_auc + 1e-12:
            best, best_auc = params, value
    return best, table


def run_one(router_name: str, entry: Any, embedded: EmbeddedTask, seed: int,
            protocol: Protocol) -> dict[str, Any]:
    """One router x task x seed: tune, fit, route, score -> a result record (dict)."""
    task = embedded.task
    router_cls = entry.load()
    train, validation, test = (task.splits[s] for s in ("train", "validation", "test"))
    scale = metrics.cost_scale(train.costs)
    train_outcomes = train.outcomes(scale, task.group_descriptions, embedded.encode_text,
                                    embedded.encoder_path)
    val_rows, test_rows = validation.complete_rows(), test.complete_rows()
    validation_eval = validation.subset(val_rows)
    test_eval = test.subset(test_rows)
    X_val = embedded.X["validation"][val_rows]
    X_test = embedded.X["test"][test_rows]

    started = time.perf_counter()
    is_oracle = bool(getattr(router_cls, "tags", {}).get("oracle"))
    best, tuning = ({}, []) if is_oracle else tune(router_cls, embedded.X["train"],
                                                   train_outcomes, X_val, validation_eval,
                                                   protocol, seed)
    tune_seconds = time.perf_counter() - started
    router = _make(router_cls, best, seed)
    started = time.perf_counter()
    fitted = router.fit(embedded.X["train"], train_outcomes)
    if fitted is not router:
        raise RouteHarnessError(f"router {router_name!r}: fit() must return self")
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    choices = route_split(router, X_test, _labels_free(test_eval) if not is_oracle else test_eval,
                          protocol.lambdas, scale)
    route_seconds = time.perf_counter() - started
    scored = score_choices(test_eval, choices, protocol.lambdas,
                           n_bootstrap=protocol.n_bootstrap, seed=seed)
    params = {k: v for k, v in router.get_params().items()} if hasattr(router, "get_params") else best
    return {
        "router": router_name,
        "router_class": f"{router_cls.__module__}.{router_cls.__qualname__}",
        "router_kind": getattr(router_cls, "kind", "utility"),
        "plugin": entry.plugin, "distribution": entry.distribution, "version": entry.version,
        "upper_bound": is_oracle,
        "chosen_model": (task.models[router.model_index_].name
                         if isinstance(getattr(router, "model_index_", None), int) else None),
        "task": task.name, "seed": seed, "params": _jsonable(params),
        "tuning": _jsonable(tuning),
        "n_test": int(test_eval.n), "n_test_excluded": int((~test_rows).sum()),
        "timings": {"tune_s": tune_seconds, "fit_s": fit_seconds, "route_s": route_seconds},
        "metrics": {k: v for k, v in scored.items() if k not in ("curve", "frontier", "per_group")},
        "per_group": scored.get("per_group", {}),
        "curve": {"lambda": [("inf" if np.isinf(x) else x) for x in protocol.lambdas],
                  **scored["curve"]},
        "frontier": scored["frontier"],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate(routers: Sequence[str], tasks: Sequence[str], *, encoder: str = "minilm",
             protocol: Protocol | None = None, data_dir: str | None = None,
             cache_dir: str | None = None, reporter: Reporter | None = None,
             references: bool = True, task_options: dict[str, Any] | None = None,
             checkpoint: Callable[[dict[str, Any]], None] | None = None,
             resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """The router x task matrix over the protocol's seeds -> a result set (dict, JSON-able).

    ``references`` adds the best-single, random and oracle rows to every task.
    ``checkpoint(result)`` is called after every router x task x seed with the result so
    far. ``resume``: an earlier (partial) result set of the same protocol and encoder; its
    records are reused for the router x task x seed they cover when the task's data
    fingerprint is unchanged, and only the rest is run.
    """
    from routeharness.encoders import EmbeddingCache, get_encoder
    from routeharness.registry import get_registry
    from routeharness.results import new_result_set
    from routeharness.tasks import load_task

    protocol = protocol or Protocol()
    reporter = reporter or Reporter()
    registry = get_registry("router")
    names = list(dict.fromkeys(routers))
    if references:
        names += [r for r in REFERENCE_ROUTERS if r not in names and r in registry]
    entries = {name: registry.get(name) for name in names}  # unknown names fail before work
    enc = get_encoder(encoder)
    cache = EmbeddingCache(cache_dir)
    result = new_result_set(protocol, enc)
    reusable = _reusable_records(resume, result) if resume else {}
    for spec in tasks:
        reporter.log(f"loading task {spec}")
        task = load_task(spec, data_dir=data_dir, **(task_options or {}))
        embedded = embed_task(task, enc, cache, reporter)
        reporter.log(f"embeddings for {task.name}: {embedded.encoded} prompts encoded, "
                     f"{embedded.cached} loaded from cache"
                     + (" (nothing encoded)" if embedded.encoded == 0 else ""))
        for note in embedded.notes:
            reporter.log(note)
        reference = task_reference(task, task.splits["test"].subset(
            task.splits["test"].complete_rows()))
        reference["embeddings"] = {"encoded": embedded.encoded, "cached": embedded.cached,
                                   "notes": embedded.notes}
        result["tasks"][task.name] = reference
        runs = [(name, seed) for seed in protocol.seeds for name in names]
        reused = 0
        with reporter.progress(f"routing {task.name}", len(runs)) as advance:
            for name, seed in runs:
                record = reusable.get((name, task.name, seed))
                if record is not None and record["task_fingerprint"] == reference["fingerprint"]:
                    reused += 1
                    result["records"].append(record["record"])
                else:
                    result["records"].append(run_one(name, entries[name], embedded, seed,
                                                     protocol))
                if checkpoint is not None:
                    checkpoint(result)
                advance(1)
        if reused:
            reporter.log(f"{task.name}: {reused} of {len(runs)} runs reused from the "
                         f"resumed results")
    return result


def _reusable_records(resume: dict[str, Any], fresh: dict[str, Any]) -> dict[tuple, dict]:
    """Records of an earlier result set keyed by (router, task, seed), with their task's
    fingerprint; a different protocol (seeds aside) or encoder is an error."""
    from routeharness.results import incompatibilities

    differ = incompatibilities(resume, fresh)
    if differ:
        raise RouteHarnessError(f"cannot resume: the saved results differ in "
                                f"{', '.join(differ)}")
    fingerprints = {name: task.get("fingerprint") for name, task in resume.get("tasks", {}).items()}
    return {(r["router"], r["task"], int(r["seed"])):
            {"record": r, "task_fingerprint": fingerprints.get(r["task"])}
            for r in resume.get("records", [])}
