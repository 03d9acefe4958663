"""Routers planned from their specs and tuned on validation: the one place for a
router's configurations, how one configuration is scored, and the tie rule picking the
winner. ``evaluate`` (one process) and ``executors`` (Ray: one configuration per task)
both tune through the functions here, so their numbers are the same.

A configuration is fitted on train's ``Outcomes`` (the router's ``random_state`` from the
seed's router stream) and routed on the validation prompts with a score, for every lam;
its score is the frontier AUC there. The best configuration wins; ties go to the earlier
one in grid order (``pick``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line
from routeharness.common.progress import Advance, _ignore
from routeharness.data.dataset import Outcomes, RoutingData
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import Protocol, SeedStreams
from routeharness.evaluation.scoring import route_split, score_choices
from routeharness.results.records import REFERENCE_ROUTERS
from routeharness.routers.base import (
    RouterSpec,
    accepts_random_state,
    fixed_params,
    parse_router_spec,
    spec_label,
    tags_of,
)

#: a configuration must beat the best so far by more than this to replace it
TIE_TOLERANCE = 1e-12


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


def make_router(router_cls: type, params: dict[str, Any], random_state: int) -> Any:
    """The router built with ``params`` (and ``random_state`` when it takes one)."""
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

    @property
    def deterministic(self) -> bool:
        """The router's ``deterministic`` tag: its routes do not depend on the seed."""
        return tags_of(self.router_cls).deterministic

    def __getstate__(self) -> dict[str, Any]:
        # sent to other processes (executors) without its memo of another process's routes
        return {**self.__dict__, "memo": {}}


def plan_routers(routers: Sequence[str], references: bool = True) -> list[RouterRun]:
    """The ``-r`` specs (``NAME`` or ``NAME:PARAM=VALUE,...``) resolved against the
    registry, in order, duplicates dropped; reference routers appended."""
    from routeharness.plugins.registry import get_registry

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


def fit_router(plan: RouterRun, router: Any, X: np.ndarray, outcomes: Outcomes) -> None:
    """``router.fit``; a hyper-parameter the user fixed (``-r NAME:PARAM=VALUE``) that the
    router refuses (its ``ValueError`` or ``TypeError``) is one line naming the spec, not
    a traceback. Other errors are the plugin's and keep their traceback."""
    try:
        fitted = router.fit(X, outcomes)
    except (ValueError, TypeError) as exc:
        if not plan.fixed:
            raise
        reason = one_line(exc)
        raise RouteHarnessError(f"router {plan.label!r}: the router refuses its fixed "
                                f"hyper-parameters ({describe(plan.fixed)}): {reason}") from None
    if fitted is not router:
        raise RouteHarnessError(f"router {plan.label!r}: fit() must return self")


def describe(params: dict[str, Any]) -> str:
    """``k=10, weights=distance``; ``defaults`` for none."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def config_key(params: dict[str, Any]) -> str:
    """A configuration as text: the key of memoised routes."""
    return json.dumps(jsonable(params), sort_keys=True, default=repr)


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and keys made text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class TuningInputs:
    """What tuning sees of a task: train's embeddings and ``Outcomes`` (costs in units of
    ``cost_scale``), and the scored validation rows with their embeddings."""

    X_train: np.ndarray
    train: Outcomes
    X_val: np.ndarray
    validation: RoutingData

    @classmethod
    def of(cls, embedded: EmbeddedTask) -> TuningInputs:
        """The inputs of an embedded task (validation rows without a score left out)."""
        task = embedded.task
        train, validation = task.splits["train"], task.splits["validation"]
        scale = metrics.cost_scale(train.costs)
        outcomes = train.outcomes(scale, task.group_descriptions, embedded.encode_text,
                                  embedded.encoder_path)
        rows = validation.complete_rows()
        return cls(embedded.X["train"], outcomes, embedded.X["validation"][rows],
                   validation.subset(rows))


def config_auc(plan: RouterRun, params: dict[str, Any], inputs: TuningInputs,
               protocol: Protocol, random_state: int) -> float:
    """Validation AUC of one configuration (``params`` with the fixed ones), fitted on
    train: the score tuning ranks configurations by."""
    router = make_router(plan.router_cls, {**params, **plan.fixed}, random_state)
    fit_router(plan, router, inputs.X_train, inputs.train)
    choices = route_split(router, inputs.X_val, inputs.validation, protocol.lambdas,
                          inputs.train.cost_scale)
    return float(score_choices(inputs.validation, choices, protocol.lambdas,
                               per_group=False)["auc"])


def configs_to_tune(plan: RouterRun, protocol: Protocol, streams: SeedStreams) -> list[dict]:
    """The configurations a run scores on validation: none when there is nothing to
    choose (``--no-tune``, or a grid of one)."""
    configs = candidate_configs(plan.grid, protocol.max_configs, streams.grid)
    return configs if protocol.tune and len(configs) > 1 else []


def default_config(plan: RouterRun, protocol: Protocol, streams: SeedStreams) -> dict:
    """The configuration of a run with nothing to tune: the grid's only one when tuning,
    the router's defaults under ``--no-tune``."""
    if not protocol.tune:
        return {}
    return candidate_configs(plan.grid, protocol.max_configs, streams.grid)[0]


def pick(configs: Sequence[dict[str, Any]],
         values: Sequence[float]) -> tuple[dict[str, Any], list[dict]]:
    """The winner by validation AUC (ties to the earlier configuration) and the tuning
    table, one row per configuration in order."""
    table, best, best_auc = [], configs[0], -np.inf
    for params, value in zip(configs, values):
        table.append({"params": params, "validation_auc": value})
        if value > best_auc + TIE_TOLERANCE:
            best, best_auc = params, value
    return best, table


def tune(plan: RouterRun, inputs: TuningInputs, protocol: Protocol, streams: SeedStreams,
         advance: Advance = _ignore, status: str = "") -> tuple[dict[str, Any], list[dict]]:
    """The best configuration by validation AUC and the table of every configuration,
    scored one after another in this process (a deterministic router's scores memoised
    in ``plan.memo``). ``advance`` is called once per configuration."""
    configs = configs_to_tune(plan, protocol, streams)
    if not configs:
        return default_config(plan, protocol, streams), []
    values = []
    for i, params in enumerate(configs):
        advance(0, f"{status}tuning {i + 1}/{len(configs)} ({describe(params)})")
        key = ("validation", config_key(params))
        value = plan.memo.get(key) if plan.deterministic else None
        if value is None:
            value = config_auc(plan, params, inputs, protocol, streams.router)
            if plan.deterministic:
                plan.memo[key] = value
        values.append(value)
        advance(1)
    return pick(configs, values)


def tuning_steps(plan: RouterRun, protocol: Protocol) -> int:
    """Progress steps of one run: one per configuration tuned, one for the final fit."""
    n = min(len(candidate_configs(plan.grid, protocol.max_configs, 0)), protocol.max_configs)
    return (n if protocol.tune and n > 1 else 0) + 1
