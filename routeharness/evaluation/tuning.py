"""Routers planned from their specs and tuned: the one place for a router's
configurations, how one configuration is scored, and the tie rule picking the winner.
``evaluate`` (one process) and ``executors`` (Ray: one configuration per task) both tune
through the functions here, so their numbers are the same.

A configuration's score is a frontier AUC (every lam) of routes it was not fitted on
(``TuningInputs``, by the protocol's ``tune_on``):

- ``validation`` (the default): fitted on train's ``Outcomes`` (the router's
  ``random_state`` from the seed's router stream), routed on the scored validation
  prompts;
- ``groups``: leave one group out: for each group of the training split, fitted on the
  training rows of the other groups and routed on that group's scored training and
  validation rows; the score is the mean of the groups' AUCs (each group weighs the
  same). A task with fewer than 2 training groups cannot be tuned this way.

The best score wins. Configurations within ``TIE_TOLERANCE`` of it are tied, and the
router's declared ``tie_preference`` decides among them, never the grid's order; a
tuned parameter it leaves out prefers the value nearest the router's own default
(``pick``)."""

from __future__ import annotations

import inspect
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line
from routeharness.common.progress import Advance, _ignore
from routeharness.data.dataset import Outcomes, RoutingData, RoutingTask
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
    same_value,
    sparse_models,
    spec_label,
    tags_of,
    tie_preference_of,
)

#: configurations whose tuning AUCs (0-100 scale) are within this of the best are tied:
#: numerical noise (summation order, a BLAS kernel), far below any real difference
TIE_TOLERANCE = 1e-9


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

    def grid_for(self, sparse: bool) -> dict[str, list[Any]]:
        """The grid tuned on a training table with a ``sparse`` model (``sparse_table``)
        or without: without one, the grid less the router's ``sparse_params`` (they act
        only on sparse models, so every value routes the same; the default is used)."""
        if sparse:
            return self.grid
        sparse = set(getattr(self.router_cls, "sparse_params", ()) or ())
        return {k: v for k, v in self.grid.items() if k not in sparse}

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
        tie_preference_of(router_cls)  # and so does a tie preference the grid contradicts
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
class Fold:
    """One scoring of a configuration: fitted on ``X_fit`` and ``fit`` (costs in units of
    ``fit.cost_scale``), routed on ``X_scored`` and scored on ``scored``'s complete rows
    (none of them fitted on). ``name``: ``validation``, or the held-out group."""

    name: str
    X_fit: np.ndarray
    fit: Outcomes
    X_scored: np.ndarray
    scored: RoutingData


@dataclass(frozen=True)
class TuningInputs:
    """What tuning sees of a task: train's embeddings and ``Outcomes`` (costs in units of
    ``cost_scale``), the scored validation rows with their embeddings, and the ``folds``
    a configuration is scored on (``tune_on``: the validation split, or one fold per
    training group)."""

    X_train: np.ndarray
    train: Outcomes
    X_val: np.ndarray
    validation: RoutingData
    folds: tuple[Fold, ...] = ()
    tune_on: str = "validation"

    def __post_init__(self) -> None:
        if not self.folds:  # built by hand: scored on the validation split
            object.__setattr__(self, "folds", (Fold("validation", self.X_train, self.train,
                                                    self.X_val, self.validation),))

    @classmethod
    def of(cls, embedded: EmbeddedTask, tune_on: str = "validation") -> TuningInputs:
        """The inputs of an embedded task (validation rows without a score left out)."""
        task = embedded.task
        train, validation = task.splits["train"], task.splits["validation"]
        scale = metrics.cost_scale(train.costs)
        outcomes = train.outcomes(scale, task.group_descriptions, embedded.encode_text,
                                  embedded.encoder_path)
        rows = validation.complete_rows()
        X_val, scored = embedded.X["validation"][rows], validation.subset(rows)
        if tune_on == "groups":
            folds = group_folds(embedded)
        elif tune_on == "validation":
            folds = (Fold("validation", embedded.X["train"], outcomes, X_val, scored),)
        else:
            raise RouteHarnessError(f"unknown tune_on {tune_on!r} (validation or groups)")
        return cls(embedded.X["train"], outcomes, X_val, scored, folds, tune_on)


def training_groups(task: RoutingTask) -> list[str]:
    """The groups of the task's training split, sorted."""
    return sorted({str(g) for g in task.splits["train"].groups})


def check_tune_on(task: RoutingTask, protocol: Protocol) -> None:
    """One line, before any work, when ``task`` cannot be tuned as ``protocol`` asks:
    tuning on groups needs at least 2 groups in the training split."""
    if protocol.tune and protocol.tune_on == "groups":
        _check_groups(task)


def _check_groups(task: RoutingTask) -> None:
    groups = training_groups(task)
    if len(groups) < 2:
        named = f" ({groups[0]})" if groups else ""
        raise RouteHarnessError(
            f"task {task.name!r} has {len(groups)} group{'' if len(groups) == 1 else 's'} "
            f"in its training split{named}: tuning on groups (--tune-on groups) holds one "
            "out at a time and needs at least 2; tune on validation instead")


def group_folds(embedded: EmbeddedTask) -> tuple[Fold, ...]:
    """Leave one group out: for each training group (sorted), fitted on the training rows
    of the other groups (their own cost scale), scored on the group's complete training
    and validation rows. A group with no complete row there is left out."""
    task = embedded.task
    _check_groups(task)
    groups = training_groups(task)
    train, validation = task.splits["train"], task.splits["validation"]
    train_groups = train.groups.astype(str)
    val_groups = validation.groups.astype(str)
    folds = []
    for group in groups:
        kept = train_groups != group
        fitted = train.subset(kept)
        outcomes = fitted.outcomes(metrics.cost_scale(fitted.costs), task.group_descriptions,
                                   embedded.encode_text, embedded.encoder_path)
        held_train = ~kept & train.complete_rows()
        held_val = (val_groups == group) & validation.complete_rows()
        if not held_train.any() and not held_val.any():
            continue
        scored = _joined([train.subset(held_train), validation.subset(held_val)])
        X_scored = np.concatenate([embedded.X["train"][held_train],
                                   embedded.X["validation"][held_val]])
        folds.append(Fold(group, embedded.X["train"][kept], outcomes, X_scored, scored))
    if not folds:
        raise RouteHarnessError(f"task {task.name!r}: no training group has a scored "
                                "prompt to hold out (tuning on groups)")
    return tuple(folds)


def _joined(parts: Sequence[RoutingData]) -> RoutingData:
    """The rows of ``parts`` (of one task) one after another."""
    images = None if all(p.images is None for p in parts) else \
        [image for p in parts for image in (p.images or [None] * p.n)]
    texts = None if all(p.embed_texts is None for p in parts) else \
        [text for p in parts for text in p.texts_to_embed()]
    return RoutingData(
        ids=[i for p in parts for i in p.ids], prompts=[t for p in parts for t in p.prompts],
        groups=np.concatenate([p.groups for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        costs=np.concatenate([p.costs for p in parts]), models=parts[0].models,
        images=images, embed_texts=texts, split="+".join(p.split for p in parts))


def fold_auc(plan: RouterRun, params: dict[str, Any], fold: Fold, protocol: Protocol,
             random_state: int) -> float:
    """AUC on one fold's scored rows of one configuration (``params`` with the fixed
    ones) fitted on the fold's training rows."""
    router = make_router(plan.router_cls, {**params, **plan.fixed}, random_state)
    fit_router(plan, router, fold.X_fit, fold.fit)
    choices = route_split(router, fold.X_scored, fold.scored, protocol.lambdas,
                          fold.fit.cost_scale)
    return float(score_choices(fold.scored, choices, protocol.lambdas,
                               per_group=False)["auc"])


def config_auc(plan: RouterRun, params: dict[str, Any], inputs: TuningInputs,
               protocol: Protocol, random_state: int) -> float:
    """The score tuning ranks configurations by: the AUC of one configuration on the
    validation split (fitted on train), or the mean of its held-out groups' AUCs."""
    values = [fold_auc(plan, params, fold, protocol, random_state) for fold in inputs.folds]
    return values[0] if len(values) == 1 else float(np.mean(values))


def sparse_table(scores: np.ndarray) -> bool:
    """Whether a training outcome table has a sparse model (``routers.base
    .sparse_models``), the tables ``sparse_params`` are tuned on (``RouterRun.grid_for``)."""
    return bool(sparse_models(scores).any())


def configs_to_tune(plan: RouterRun, protocol: Protocol, streams: SeedStreams,
                    sparse: bool = False) -> list[dict]:
    """The configurations a run scores on validation: none when there is nothing to
    choose (``--no-tune``, or a grid of one); ``sparse``: whether the training table has
    a sparse model (``RouterRun.grid_for``)."""
    configs = candidate_configs(plan.grid_for(sparse), protocol.max_configs, streams.grid)
    return configs if protocol.tune and len(configs) > 1 else []


def default_config(plan: RouterRun, protocol: Protocol, streams: SeedStreams,
                   sparse: bool = False) -> dict:
    """The configuration of a run with nothing to tune: the grid's only one when tuning,
    the router's defaults under ``--no-tune``."""
    if not protocol.tune:
        return {}
    return candidate_configs(plan.grid_for(sparse), protocol.max_configs, streams.grid)[0]


@dataclass(frozen=True)
class TieRule:
    """How one tuned parameter ranks its values in a tie (``rule``: ``larger``,
    ``smaller``, ``default``, or a tuple of values, most preferred first); ``declared``:
    by the router's ``tie_preference``, else the harness's default (``default``)."""

    name: str
    rule: Any
    declared: bool
    default: Any = inspect.Parameter.empty

    def rank(self, value: Any) -> float:
        """Lower is preferred."""
        if self.rule == "larger":
            return -float(value)
        if self.rule == "smaller":
            return float(value)
        if self.rule == "default":
            return _distance(value, self.default)
        return float(next((i for i, v in enumerate(self.rule) if same_value(v, value)),
                          len(self.rule)))

    def describe(self, value: Any) -> str:
        shown = f"{self.name}={value}"
        if self.rule in ("larger", "smaller"):
            return f"the {self.rule} {self.name} ({shown})"
        if self.rule == "default":
            return f"{self.name} nearest the router's default {self.default!r} ({shown})"
        return f"{shown} (first of {list(self.rule)})"


def tie_rules(plan: RouterRun) -> list[TieRule]:
    """The rules a tie among ``plan``'s configurations is broken by, in order: the
    router's ``tie_preference`` for the parameters it tunes, then every other tuned
    parameter (by name) preferring the value nearest the router's default."""
    defaults = {p.name: p.default for p in
                inspect.signature(plan.router_cls.__init__).parameters.values()}
    grid = plan.grid
    declared = [(name, rule) for name, rule in tie_preference_of(plan.router_cls)
                if name in grid]
    named = {name for name, _ in declared}
    rules = [TieRule(name, rule, True, defaults.get(name, inspect.Parameter.empty))
             for name, rule in declared]
    rules += [TieRule(name, "default", False, defaults.get(name, inspect.Parameter.empty))
              for name in sorted(grid) if name not in named]
    return rules


def _distance(value: Any, default: Any) -> float:
    """How far a value is from the router's default: 0 when equal; for two numbers the
    distance of their logarithms (both positive) or of the numbers; else 1. No default:
    0 (no preference)."""
    if default is inspect.Parameter.empty or same_value(value, default):
        return 0.0
    if _number(value) and _number(default):
        a, b = float(value), float(default)
        return abs(math.log(a) - math.log(b)) if a > 0 and b > 0 else abs(a - b)
    return 1.0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))


def _value_order(value: Any) -> tuple[int, float, str]:
    """The last word, when no rule tells two configurations apart: None first, then
    numbers ascending, then other values by their text (never the grid's order)."""
    if value is None:
        return (0, 0.0, "")
    if _number(value) or isinstance(value, (bool, np.bool_)):
        return (1, float(value), "")
    return (2, 0.0, repr(value))


def preference_key(rules: Sequence[TieRule], params: dict[str, Any]) -> tuple:
    """A configuration's place among tied ones (lower wins): each rule's rank, then the
    values' order, parameters by name."""
    ranks = tuple(rule.rank(params.get(rule.name)) for rule in rules)
    return ranks + tuple(_value_order(params[name]) for name in sorted(params))


def pick(plan: RouterRun, configs: Sequence[dict[str, Any]],
         values: Sequence[float]) -> tuple[dict[str, Any], list[dict]]:
    """The configuration with the best tuning AUC; among those within ``TIE_TOLERANCE``
    of it (a NaN never wins; all NaN: all tied), the first by ``preference_key`` under
    ``tie_rules(plan)``, whatever the grid's order. The tuning table: one row per
    configuration in grid order; the winner's row has ``chosen`` and, when a tie was
    broken, ``tie``: how many tied and which rule decided."""
    scores = [math.nan if v is None else float(v) for v in values]
    finite = [v for v in scores if not math.isnan(v)]
    best = max(finite) if finite else math.nan
    tied = [i for i, v in enumerate(scores)
            if not finite or (not math.isnan(v) and v >= best - TIE_TOLERANCE)]
    tuned = set(configs[0]) if configs else set()
    rules = [rule for rule in tie_rules(plan) if rule.name in tuned]
    ranked = sorted(tied, key=lambda i: preference_key(rules, configs[i]))
    table = [{"params": params, "validation_auc": value}
             for params, value in zip(configs, values)]
    winner = ranked[0]
    table[winner]["chosen"] = True
    if len(ranked) > 1:
        table[winner]["tie"] = _tie_reason(plan, rules, [configs[i] for i in ranked])
    return configs[winner], table


def _tie_reason(plan: RouterRun, rules: Sequence[TieRule],
                tied: Sequence[dict[str, Any]]) -> str:
    """How the tied configurations (the winner first) came down to the winner: each rule
    that narrowed them, in order, and whose rule it was."""
    winner, left, steps = tied[0], list(tied), []
    for rule in rules:
        if len(left) == 1:
            break
        keep = [c for c in left if rule.rank(c.get(rule.name)) ==
                rule.rank(winner.get(rule.name))]
        if len(keep) < len(left):
            source = f"{plan.name}'s tie_preference" if rule.declared else \
                "the harness's default, no preference declared"
            steps.append((source, rule.describe(winner.get(rule.name))))
            left = keep
    if len(left) > 1:  # no rule tells them apart: the values' own order
        name = next((n for n in sorted(winner) if any(
            _value_order(c.get(n)) != _value_order(winner[n]) for c in left)), "?")
        steps.append(("no rule tells them apart", f"the smaller {name} ({name}="
                                                  f"{winner.get(name)})"))
    parts, last = [], None
    for source, text in steps:  # each source named once, before its rules
        parts.append(text if source == last else f"{source}: {text}")
        last = source
    return (f"{len(tied)} configurations within {TIE_TOLERANCE:g} of the best AUC; kept by "
            + ", then ".join(parts))


def tune(plan: RouterRun, inputs: TuningInputs, protocol: Protocol, streams: SeedStreams,
         advance: Advance = _ignore, status: str = "") -> tuple[dict[str, Any], list[dict]]:
    """The best configuration by validation AUC and the table of every configuration,
    scored one after another in this process (a deterministic router's scores memoised
    in ``plan.memo``). ``advance`` is called once per configuration."""
    sparse = sparse_table(inputs.train.scores)
    configs = configs_to_tune(plan, protocol, streams, sparse)
    if not configs:
        return default_config(plan, protocol, streams, sparse), []
    if inputs.tune_on != protocol.tune_on:
        raise RouteHarnessError(f"the tuning inputs are for tune_on={inputs.tune_on!r}, the "
                                f"protocol tunes on {protocol.tune_on!r}")
    values = []
    for i, params in enumerate(configs):
        advance(0, f"{status}tuning {i + 1}/{len(configs)} ({describe(params)})")
        key = ("validation", protocol.tune_on, config_key(params))
        value = plan.memo.get(key) if plan.deterministic else None
        if value is None:
            value = config_auc(plan, params, inputs, protocol, streams.router)
            if plan.deterministic:
                plan.memo[key] = value
        values.append(value)
        advance(1)
    return pick(plan, configs, values)


def tuning_steps(plan: RouterRun, protocol: Protocol, sparse: bool = False) -> int:
    """Progress steps of one run: one per configuration tuned, one for the final fit."""
    n = min(len(candidate_configs(plan.grid_for(sparse), protocol.max_configs, 0)),
            protocol.max_configs)
    return (n if protocol.tune and n > 1 else 0) + 1
