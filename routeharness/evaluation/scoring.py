"""Routing a split and scoring the choices: the harness's one path from a fitted router
to metrics (``route_split``: the router gets embeddings and only what its tags declare,
never labels), the oracle's choices from the true outcomes, ``score_choices`` (frontier
AUC, bootstrap interval, quality and cost at lam = 0, RouterArena's score, per group,
APGR/CPT) and the
per-task reference facts. Pure numpy on top of ``routeharness.evaluation.metrics``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.data.dataset import RoutingData, RoutingTask
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import Protocol, SeedStreams
from routeharness.results.records import (
    EmbeddingsUsed,
    OracleRow,
    SingleModel,
    TaskReference,
)
from routeharness.routers.base import best_models, tags_of


def _labels_free(data: RoutingData) -> RoutingData:
    """The split with its labels removed, to show that routing never needs them."""
    nan = np.full_like(data.scores, np.nan)
    return RoutingData(data.ids, data.prompts, data.groups, nan, nan.copy(), data.models,
                       data.images, data.embed_texts, data.split)


def route_split(router: Any, X: np.ndarray, data: RoutingData, lams: Sequence[float],
                cost_scale: float) -> np.ndarray:
    """(L, n) choices on a split. The router gets the embeddings, and only what its tags
    declare: the groups (``needs_groups``) and the prompt texts (``needs_texts``);
    never the labels. ``cost_scale`` is unused (kept for callers)."""
    tags = tags_of(router)
    kwargs = {"texts": data.texts_to_embed()} if tags.needs_texts else {}
    choices = np.asarray(router.route_sweep(X, np.asarray(lams, dtype=float),
                                            data.groups if tags.needs_groups else None,
                                            **kwargs))
    name = type(router).__name__
    if choices.shape != (len(lams), data.n):
        raise RouteHarnessError(f"{name}.route_sweep returned shape {choices.shape}, "
                                f"expected {(len(lams), data.n)}")
    if choices.size and (choices.min() < 0 or choices.max() >= data.m):
        raise RouteHarnessError(f"{name} routed to a model index outside 0..{data.m - 1}")
    return choices.astype(np.int64)


def oracle_choices(data: RoutingData, lams: Sequence[float], cost_scale: float,
                   tie_break: str) -> np.ndarray:
    """(L, n): each prompt's best model by its true outcome at every lam (costs divided
    by ``cost_scale``, as routers see them), ties by the protocol's rule."""
    costs = data.costs / cost_scale
    return np.stack([best_models(data.scores, costs, lam, tie_break) for lam in lams]) \
        if data.n else np.zeros((len(lams), 0), dtype=np.int64)


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
    # RouterArena's score at lam = 0 and at the sweep's best point (docs/metrics.md)
    if np.isfinite(point_q).all() and np.isfinite(point_c).all():
        arena = metrics.arena_score(np.clip(point_q, 0.0, 1.0), 1000.0 * point_c * scale)
        out["arena_score"], out["arena_score_max"] = float(arena[0]), float(np.max(arena))
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


def task_reference(task: RoutingTask, evaluated: RoutingData, *,
                   oracle: OracleRow | None = None,
                   embeddings: EmbeddingsUsed | None = None) -> TaskReference:
    """Per-task facts every table shows: single models and their frontier; the oracle's
    row and how the embeddings were obtained when given."""
    scale = metrics.cost_scale(evaluated.costs)
    cost, quality = metrics.single_model_points(evaluated.scores, evaluated.costs / scale)
    optional = {"oracle": oracle, "embeddings": embeddings}
    return TaskReference(
        version=task.version, revision=task.revision, source=task.source,
        fingerprint=task.fingerprint(),
        sizes={split: data.n for split, data in task.splits.items()},
        models=[m.name for m in task.models], groups=task.groups, cost_scale_usd=scale,
        single_models=[SingleModel(model=m.name, quality=float(q) * 100.0, cost=float(c),
                                   cost_usd=float(c) * scale,
                                   arena_score=metrics.arena_score(
                                       min(max(float(q), 0.0), 1.0), 1000.0 * float(c) * scale)
                                   if np.isfinite(q) and np.isfinite(c) else None)
                       for m, c, q in zip(task.models, cost, quality)],
        single_model_frontier_auc=metrics.auc(cost, quality),
        **{k: v for k, v in optional.items() if v is not None})


ORACLE_FIELDS = ("auc", "quality_at_0", "cost_at_0_usd", "auc_ci95", "curve", "frontier")


def oracle_reference(test_eval: RoutingData, train_scale: float, protocol: Protocol,
                     streams: SeedStreams) -> OracleRow:
    """The oracle's reference row: ``ORACLE_FIELDS`` of its choices on the scored test
    rows (bootstrap on ``streams.bootstrap``)."""
    choices = oracle_choices(test_eval, protocol.lambdas, train_scale, protocol.tie_break)
    scored = score_choices(test_eval, choices, protocol.lambdas, per_group=False,
                           n_bootstrap=protocol.n_bootstrap, seed=streams.bootstrap)
    return OracleRow(**{k: scored[k] for k in ORACLE_FIELDS if k in scored})


def isclose(a: float, b: float, tol: float = 1e-9) -> bool:
    """The harness's one closeness rule for recorded numbers."""
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def record_problems(i: int, record: Any) -> list[str]:
    """Numbers of record ``i`` that do not follow from its own curve: its AUC, quality
    and cost at lam = 0 and its frontier, recomputed (``leaderboard validate`` and
    ``--resume`` refuse a record with any)."""

    where = f"record {i} ({record.router} on {record.task}, seed {record.seed})"
    cost = np.asarray(record.curve.cost, dtype=float)
    quality = np.asarray(record.curve.quality, dtype=float)
    if not (np.isfinite(cost).all() and np.isfinite(quality).all()):
        return [f"{where}: its curve has missing or non-finite points"]
    problems = []
    try:
        recomputed = {"auc": metrics.auc(cost, quality),
                      "quality_at_0": float(quality[0]) * 100.0, "cost_at_0": float(cost[0])}
        hull_c, hull_q = metrics.frontier(cost, quality)
    except (ValueError, FloatingPointError) as exc:
        return [f"{where}: its curve cannot be scored ({exc})"]
    for metric, value in recomputed.items():
        stated = record.metrics.get(metric)
        if stated is None or not isclose(stated, value):
            problems.append(f"{where}: metrics.{metric} = {stated!r} does not match its curve "
                            f"({value!r})")
    for axis, hull in (("cost", hull_c), ("quality", hull_q)):
        stated_axis = np.asarray(getattr(record.frontier, axis), dtype=float)
        if stated_axis.shape != hull.shape or not np.allclose(stated_axis, hull):
            problems.append(f"{where}: frontier.{axis} does not match its curve")
    return problems
