"""What every study shares: tasks loaded and embedded as ``eval`` does, tasks derived
from them (a subsample of the training split, groups held out), router x seed runs
through ``evaluate.route_one`` (the same tuning, sweep and metrics as ``eval``), and the
paired comparison of two routers over the same test prompts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.data.dataset import RoutingData, RoutingTask
from routeharness.embedding.embed import EmbeddedTask, embed_task
from routeharness.embedding.encoders import choose_encoder
from routeharness.evaluation import metrics
from routeharness.evaluation.matrix import load_tasks
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.run import Routed
from routeharness.evaluation.tuning import (
    RouterRun,
    TuningInputs,
    config_auc,
    plan_routers,
    tuning_steps,
)

#: a subsampled training split keeps at least this many prompts
MIN_TRAIN = 10
#: the router every paired comparison is made against (the paper's claim is about it)
REFERENCE_ROUTER = "knn"


def prepare(tasks: Sequence[str], encoder: str | None, *, data_dir: str | None = None,
            cache_dir: str | None = None, reporter: Reporter | None = None,
            task_options: dict[str, Any] | None = None) -> tuple[Any, list[EmbeddedTask]]:
    """The tasks loaded (``evaluate.load_tasks``) and embedded with ``encoder`` (None:
    the cards' default) through the cache: (encoder, embedded tasks)."""
    reporter = reporter or Reporter()
    loaded = load_tasks(tasks, data_dir=data_dir, reporter=reporter, task_options=task_options)
    return embed(loaded, encoder, cache_dir=cache_dir, reporter=reporter)


def embed(loaded: Sequence[RoutingTask], encoder: str | None, *, cache_dir: str | None = None,
          reporter: Reporter | None = None) -> tuple[Any, list[EmbeddedTask]]:
    """Tasks already loaded, embedded with ``encoder`` (None: the cards' default) through
    the cache: (encoder, embedded tasks). A study of several encoders loads once."""
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    reporter = reporter or Reporter()
    enc = get_encoder(choose_encoder(encoder, loaded))
    cache = EmbeddingCache(cache_dir)
    return enc, [embed_task(task, enc, cache, reporter) for task in loaded]


def derive(embedded: EmbeddedTask, rows: dict[str, tuple[str, np.ndarray]],
           name: str | None = None) -> EmbeddedTask:
    """A task whose split ``s`` is ``rows[s] = (source split, row indices or mask)`` of
    ``embedded``'s, with its embeddings: no prompt is encoded again."""
    task = embedded.task
    splits, X = {}, {}
    for split, (source, index) in rows.items():
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)
        data = task.splits[source].subset(index)
        splits[split] = replace(data, split=split)
        X[split] = embedded.X[source][index]
    for split, data in splits.items():
        if data.n == 0:
            raise RouteHarnessError(f"task {task.name!r}: the derived {split} split is empty")
    return replace(embedded, task=replace(task, name=name or task.name, splits=splits), X=X)


def train_order(embedded: EmbeddedTask, seed: int) -> np.ndarray:
    """The training rows in a seeded random order: a subsample of fraction f is the
    first ``subsample_size(n, f)`` of them, so a larger fraction holds a smaller one."""
    n = embedded.task.splits["train"].n
    return np.random.default_rng([seed, 0x5A3E]).permutation(n)


def subsample_size(n: int, fraction: float) -> int:
    """Training prompts kept at ``fraction`` (at least ``MIN_TRAIN``, at most n)."""
    if not 0 < fraction <= 1:
        raise RouteHarnessError(f"a fraction must be in (0, 1], got {fraction:g}")
    return min(n, max(MIN_TRAIN, math.ceil(fraction * n)))


def subsample_train(embedded: EmbeddedTask, fraction: float, seed: int) -> EmbeddedTask:
    """The task with its training split cut to ``fraction`` (seeded, nested across
    fractions); validation and test unchanged."""
    n = embedded.task.splits["train"].n
    keep = np.sort(train_order(embedded, seed)[:subsample_size(n, fraction)])
    return derive(embedded, {"train": ("train", keep), "validation": ("validation", _all(
        embedded, "validation")), "test": ("test", _all(embedded, "test"))})


def _all(embedded: EmbeddedTask, split: str) -> np.ndarray:
    return np.arange(embedded.task.splits[split].n)


def hold_out(embedded: EmbeddedTask, test_groups: Sequence[str],
             train_groups: Sequence[str] | None = None) -> EmbeddedTask:
    """Train and tune on ``train_groups`` (default: every group not tested), test on the
    test split's rows of ``test_groups``: prompts unlike the training ones."""
    task = embedded.task
    known = task.groups
    for group in [*test_groups, *(train_groups or [])]:
        if group not in known:
            raise RouteHarnessError(f"task {task.name!r} has no group {group!r} "
                                    f"(groups: {', '.join(known)})")
    tested = set(test_groups)
    trained = set(train_groups) if train_groups else set(known) - tested
    if not trained or not tested:
        raise RouteHarnessError(f"task {task.name!r}: holding out {sorted(tested)} leaves "
                                "no group to train on" if not trained else "no group to test")
    if trained & tested:
        raise RouteHarnessError(f"groups {sorted(trained & tested)} are both trained and tested")

    def rows(split: str, groups: set[str]) -> np.ndarray:
        return np.isin(task.splits[split].groups.astype(str), sorted(groups))

    return derive(embedded, {"train": ("train", rows("train", trained)),
                             "validation": ("validation", rows("validation", trained)),
                             "test": ("test", rows("test", tested))})


def plans_for(routers: Sequence[str]) -> list[RouterRun]:
    """The routers resolved against the registry (unknown names and parameters fail
    here, before any work); no reference routers."""
    if not routers:
        raise RouteHarnessError("give at least one router (-r)")
    return plan_routers(list(routers), references=False)


def with_reference(routers: list[str], reference: str = REFERENCE_ROUTER) -> list[str]:
    """The routers with the reference router (kNN) first when it is registered and not
    already given: every comparison is made against it."""
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.base import parse_router_spec

    names = [parse_router_spec(r).name for r in routers]
    if reference in names or reference not in get_registry("router"):
        return list(routers)
    return [reference, *routers]


def comparison(routers: Sequence[str]) -> tuple[list[str], list[RouterRun], str | None]:
    """A comparative study's routers (kNN added, ``with_reference``), their plans, and
    the label every router is compared with (None when kNN is not registered)."""
    routers = with_reference(list(routers))
    plans = plans_for(routers)
    labels = [p.label for p in plans]
    return routers, plans, REFERENCE_ROUTER if REFERENCE_ROUTER in labels else None


def versus(runs: dict[tuple[str, int], Routed], label: str, reference: str | None,
           seeds: Sequence[int], n_bootstrap: int) -> dict[str, Any] | None:
    """``paired`` against the reference; None for the reference itself or without one."""
    if reference is None or label == reference:
        return None
    return paired(runs, label, reference, seeds, n_bootstrap=n_bootstrap, seed=seeds[0])


def against_frontier(runs: dict[tuple[str, int], Routed], label: str, seeds: Sequence[int],
                     n_bootstrap: int) -> dict[str, Any]:
    """``label`` minus the single-model frontier on the same test prompts (AUC, quality at
    lambda 0 against the best model's, quality at the fixed budget), with the interval of
    a bootstrap over seeds and prompts: where the router stands against mixing models
    blindly (above, within, below)."""
    resamples = Resamples.of(runs, seeds, n_bootstrap, seeds[0])
    return resamples.entry(resamples.side(runs, label, seeds), resamples.frontier())


def run_all(plans: Sequence[RouterRun], embedded: EmbeddedTask, protocol: Protocol,
            reporter: Reporter, title: str, executor: Any = None) -> dict[tuple[str, int], Routed]:
    """Every router x seed on one (possibly derived) task: (label, seed) -> ``Routed``,
    run by ``executor`` (``routeharness.evaluation.executors``; default: in this process)."""
    from routeharness.evaluation.executors import Job, LocalExecutor

    runner = executor or LocalExecutor()
    jobs = [Job(plan, embedded, seed) for seed in protocol.seeds for plan in plans]
    steps = sum(tuning_steps(p, protocol) for p in plans) * len(protocol.seeds)
    with reporter.progress(title, steps) as advance:
        done = {(job.plan.label, job.seed): routed
                for job, routed in runner.run(jobs, protocol, advance)}
    return {(job.plan.label, job.seed): done[(job.plan.label, job.seed)] for job in jobs}


class Resamples:
    """One task's scored test prompts and one set of two-stage bootstrap draws (seeds,
    then prompts: ``metrics.bootstrap_draws``) under which every run on them is scored:
    a difference of two routers, of a router and the single-model frontier, or a sum of
    differences over training shares, is paired because every side sees the same draws.
    Costs are normalised on the test split (``metrics.cost_scale``), as eval scores."""

    def __init__(self, test: RoutingData, n_seeds: int, n_bootstrap: int, seed: int):
        self.n_test = test.n
        self.n_seeds = n_seeds
        self.scores = test.scores
        self.costs = test.costs / metrics.cost_scale(test.costs)
        self.budget = metrics.budget_of(self.costs)
        self.draws = (metrics.bootstrap_draws(test.n, n_seeds, n_bootstrap,
                                              seed_streams(seed).bootstrap)
                      if n_bootstrap else None)
        #: id of a run's choices -> (the choices, kept alive; point; replicates): a
        #: deterministic router's one set of routes is scored once for every seed
        self._runs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

    @classmethod
    def of(cls, runs: dict[tuple[str, int], Routed], seeds: Sequence[int], n_bootstrap: int,
           seed: int) -> Resamples:
        """The draws for the runs of ``seeds`` (their test prompts: any run's)."""
        return cls(next(iter(runs.values())).test, len(seeds), n_bootstrap, seed)

    def _run(self, routed: Routed) -> tuple[np.ndarray, np.ndarray | None]:
        key = id(routed.choices)
        if key not in self._runs:
            if routed.test.n != self.n_test:
                raise RouteHarnessError("paired runs must be scored on the same test prompts")
            point = metrics.run_metrics(self.scores, self.costs, routed.choices, self.budget)
            replicates = None if self.draws is None else metrics.run_metrics(
                self.scores, self.costs, routed.choices, self.budget, self.draws[1])
            self._runs[key] = (routed.choices, point, replicates)
        return self._runs[key][1:]

    def side(self, runs: dict[tuple[str, int], Routed], label: str,
             seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """``metrics.PAIRED_METRICS`` of ``label``, mean over ``seeds``: (3,) and its
        (B, 3) replicates (seeds drawn, then prompts; None without a bootstrap)."""
        scored = [self._run(runs[(label, s)]) for s in seeds]
        point = np.mean([p for p, _ in scored], axis=0)
        if self.draws is None:
            return point, None
        return point, metrics.seed_means(np.stack([r for _, r in scored]), self.draws[0])

    def frontier(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The single-model frontier's ``metrics.PAIRED_METRICS`` and replicates (it does
        not depend on the seed)."""
        point = metrics.frontier_metrics(self.scores, self.costs, self.budget)
        return point, (None if self.draws is None else metrics.frontier_metrics(
            self.scores, self.costs, self.budget, self.draws[1]))

    def entry(self, a: tuple[np.ndarray, np.ndarray | None],
              b: tuple[np.ndarray, np.ndarray | None]) -> dict[str, Any]:
        """a - b as a study file keeps it (``comparison_entry``)."""
        return comparison_entry(a[0] - b[0], None if a[1] is None or b[1] is None
                                else a[1] - b[1], n_test=self.n_test, n_seeds=self.n_seeds,
                                budget=self.budget)


def comparison_entry(point: np.ndarray, replicates: np.ndarray | None, *, n_test: int,
                     n_seeds: int, budget: float) -> dict[str, Any]:
    """A paired difference as a study file keeps it: the AUC difference (``difference``),
    its 95% percentile interval (``ci95``) and ``tails`` (``metrics.tail_quantiles``: what
    a verdict reads a corrected interval from), the same three for ``quality_at_0`` and
    ``quality_at_budget`` (at normalised cost ``budget``), and what was resampled."""
    def one(j: int) -> dict[str, Any]:
        if replicates is None:
            return {"difference": float(point[j]), "ci95": None, "tails": None}
        return {"difference": float(point[j]),
                "ci95": metrics.percentile_interval(replicates[:, j]),
                "tails": metrics.tail_quantiles(replicates[:, j])}

    out = one(0)
    out.update({"n_test": int(n_test), "n_seeds": int(n_seeds),
                "resampled": "seeds, then test prompts", "budget": float(budget),
                "quality_at_0": one(1), "quality_at_budget": one(2)})
    return out


def paired(runs: dict[tuple[str, int], Routed], label: str, reference: str,
           seeds: Sequence[int], *, n_bootstrap: int, seed: int) -> dict[str, Any]:
    """``label`` minus ``reference`` (``comparison_entry``), mean over seeds, with the
    intervals of a two-stage bootstrap: each replicate draws the seeds (refits) with
    replacement, then the test prompts, and scores both routers' runs of the drawn seeds
    on those prompts (``Resamples``)."""
    resamples = Resamples.of(runs, seeds, n_bootstrap, seed)
    return resamples.entry(resamples.side(runs, label, seeds),
                           resamples.side(runs, reference, seeds))


def validation_auc(plan: RouterRun, embedded: EmbeddedTask, params: dict[str, Any],
                   seed: int, protocol: Protocol) -> float:
    """Validation AUC of one configuration (fitted on train), as tuning scores it."""
    return config_auc(plan, params, TuningInputs.of(embedded, protocol.tune_on), protocol,
                      seed_streams(seed).router)


def auc_of(runs: dict[tuple[str, int], Routed], label: str,
           seeds: Sequence[int], metric: str = "auc") -> tuple[float | None, float | None]:
    """Mean and standard deviation over seeds of a run metric."""
    from routeharness.results.sets import mean_std

    return mean_std([runs[(label, s)].record.metrics.get(metric) for s in seeds])
