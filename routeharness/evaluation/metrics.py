"""Cost-quality metrics, pure numpy. See docs/metrics.md.

Conventions: ``costs`` are normalised (the most expensive model's mean cost on the
evaluated split is 1) and ``qualities`` are mean scores in [0, 1]; areas are reported on a
0-100 scale (score x 100, cost in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_COST = 1.0


def operating_points(scores: np.ndarray, costs: np.ndarray,
                     choices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean actual (cost, score) of the chosen models, one point per trade-off.

    scores, costs: (n, m); choices: (L, n) model indices. Returns two (L,) arrays.
    """
    choices = np.atleast_2d(choices)
    rows = np.arange(scores.shape[0])
    chosen_scores = scores[rows, choices]  # (L, n)
    chosen_costs = costs[rows, choices]
    return chosen_costs.mean(axis=1), chosen_scores.mean(axis=1)


def frontier(costs: np.ndarray, qualities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing concave (upper convex) hull of cost-quality points.

    Any two operating points can be mixed (route a fraction of prompts by each), so
    every point under the hull is reachable; points that cost more for no more quality
    are dropped. Returns the hull's vertices sorted by cost.
    """
    costs = np.asarray(costs, dtype=float).ravel()
    qualities = np.asarray(qualities, dtype=float).ravel()
    if costs.shape != qualities.shape or costs.size == 0:
        raise ValueError("frontier needs equally long, non-empty cost and quality arrays")
    if not (np.isfinite(costs).all() and np.isfinite(qualities).all()):
        raise ValueError("frontier: costs and qualities must be finite")
    order = np.lexsort((-qualities, costs))  # by cost, best quality first among equal costs
    pareto_c, pareto_q = [], []
    for c, q in zip(costs[order], qualities[order]):
        if not pareto_q or q > pareto_q[-1]:
            if pareto_c and c == pareto_c[-1]:
                continue
            pareto_c.append(c)
            pareto_q.append(q)
    hull_c: list[float] = []
    hull_q: list[float] = []
    for c, q in zip(pareto_c, pareto_q):
        # drop the last vertex while it lies on or under the segment to the new point
        while len(hull_c) >= 2:
            c1, q1, c2, q2 = hull_c[-2], hull_q[-2], hull_c[-1], hull_q[-1]
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):
                hull_c.pop()
                hull_q.pop()
            else:
                break
        hull_c.append(c)
        hull_q.append(q)
    return np.asarray(hull_c), np.asarray(hull_q)


def auc(costs: np.ndarray, qualities: np.ndarray, max_cost: float = MAX_COST) -> float:
    """Area under the frontier on [cheapest point, max_cost], score x 100, cost in [0, 1].

    Right of its last vertex the frontier is flat (a larger budget can always be left
    unspent); left of its cheapest vertex it contributes nothing (no operating point
    exists there). Vertices beyond ``max_cost`` are cut at ``max_cost``.
    """
    return hull_area(*frontier(costs, qualities), max_cost=max_cost)


def hull_area(hull_c: np.ndarray, hull_q: np.ndarray, max_cost: float = MAX_COST) -> float:
    """``auc`` of a frontier already computed (``frontier``'s vertices)."""
    if hull_c[0] >= max_cost:
        return 0.0
    if hull_c[-1] > max_cost:
        q_at_max = float(np.interp(max_cost, hull_c, hull_q))
        keep = hull_c < max_cost
        hull_c = np.append(hull_c[keep], max_cost)
        hull_q = np.append(hull_q[keep], q_at_max)
    else:
        hull_c = np.append(hull_c, max_cost)
        hull_q = np.append(hull_q, hull_q[-1])
    area = float(np.sum((hull_c[1:] - hull_c[:-1]) * (hull_q[1:] + hull_q[:-1]) / 2.0))
    return 100.0 * area / max_cost


def auc_many(costs: np.ndarray, qualities: np.ndarray,
             max_cost: float = MAX_COST) -> np.ndarray:
    """``auc`` of B curves at once: ``costs`` and ``qualities`` (B, L) -> (B,) areas, the
    same frontier and cut as ``auc`` (a bootstrap's thousands of replicates in numpy)."""
    costs = np.asarray(costs, dtype=float)
    qualities = np.asarray(qualities, dtype=float)
    if costs.ndim != 2 or costs.shape != qualities.shape or costs.size == 0:
        raise ValueError("auc_many needs two non-empty (B, L) arrays of one shape")
    if not (np.isfinite(costs).all() and np.isfinite(qualities).all()):
        raise ValueError("auc_many: costs and qualities must be finite")
    n_curves, n_points = costs.shape
    order = np.lexsort((-qualities, costs), axis=-1)  # as ``frontier``: by cost, best first
    c = np.take_along_axis(costs, order, axis=1)
    q = np.take_along_axis(qualities, order, axis=1)
    # a point is on the Pareto staircase when it beats every cheaper point's quality
    keep = np.ones_like(q, dtype=bool)
    keep[:, 1:] = q[:, 1:] > np.maximum.accumulate(q, axis=1)[:, :-1]
    rows = np.arange(n_curves)
    stack = np.zeros((n_curves, n_points), dtype=np.int64)  # hull vertices (positions)
    top = np.zeros(n_curves, dtype=np.int64)
    for p in range(n_points):  # ``frontier``'s monotone chain, on every curve at once
        going = keep[:, p].copy()
        while True:
            live = rows[going & (top >= 2)]
            if live.size == 0:
                break
            i1, i2 = stack[live, top[live] - 2], stack[live, top[live] - 1]
            c1, q1, c2, q2 = c[live, i1], q[live, i1], c[live, i2], q[live, i2]
            pop = (q2 - q1) * (c[live, p] - c1) <= (q[live, p] - q1) * (c2 - c1)
            going[live[~pop]] = False
            top[live[pop]] -= 1
        pushed = rows[keep[:, p]]
        stack[pushed, top[pushed]] = p
        top[pushed] += 1
    last = stack[rows, top - 1]
    index = np.where(np.arange(n_points)[None, :] < top[:, None], stack, last[:, None])
    hull_c = np.take_along_axis(c, index, axis=1)  # padded with the last vertex
    hull_q = np.take_along_axis(q, index, axis=1)
    xa, xb, ya, yb = hull_c[:, :-1], hull_c[:, 1:], hull_q[:, :-1], hull_q[:, 1:]
    cut = np.minimum(xb, max_cost)
    width = np.where(xa < max_cost, cut - xa, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        y_cut = np.where(xb > xa, ya + (yb - ya) * (cut - xa) / (xb - xa), ya)
    area = np.sum(width * (ya + y_cut) / 2.0, axis=1)
    tail_c, tail_q = c[rows, last], q[rows, last]  # flat right of the last vertex
    area += np.where(tail_c < max_cost, (max_cost - tail_c) * tail_q, 0.0)
    return 100.0 * area / max_cost


# --- RouterArena's leaderboard score (arXiv 2510.00202; docs/metrics.md) ---------------------
#: RouterArena's constants: the weight of accuracy against cost (beta) and the cost range,
#: USD per 1,000 queries, its log-scaled cost score spans (c_max scores 0, c_min scores 1)
ARENA_BETA = 0.1
ARENA_C_MAX = 200.0
ARENA_C_MIN = 0.0044


def arena_score(accuracy: float | np.ndarray, cost_per_1k_usd: float | np.ndarray,
                beta: float = ARENA_BETA, c_max: float = ARENA_C_MAX,
                c_min: float = ARENA_C_MIN) -> float | np.ndarray:
    """RouterArena's score x100 of an operating point: ``accuracy`` A in [0, 1] (the mean
    score) and ``cost_per_1k_usd`` c, USD per 1,000 queries (the mean USD per query x
    1,000). The cost score C = (log2 c_max - log2 c) / (log2 c_max - log2 c_min), c clipped
    to [c_min, c_max] first (so C is in [0, 1]); S = (1 + beta) A C / (beta A + C), 0 where
    A and C are both 0. Scalars or arrays of one shape (element-wise)."""
    a = np.asarray(accuracy, dtype=float)
    c = np.clip(np.asarray(cost_per_1k_usd, dtype=float), c_min, c_max)
    if np.any(~np.isfinite(a)) or np.any((a < 0) | (a > 1)):
        raise ValueError("arena_score: accuracy must be in [0, 1]")
    if np.any(np.isnan(c)):
        raise ValueError("arena_score: cost must be a number")
    cost_score = (np.log2(c_max) - np.log2(c)) / (np.log2(c_max) - np.log2(c_min))
    denominator = beta * a + cost_score
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(denominator > 0,
                         (1.0 + beta) * a * cost_score / np.where(denominator > 0,
                                                                  denominator, 1.0), 0.0)
    score = 100.0 * score
    return float(score) if score.ndim == 0 else score


def single_model_points(scores: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cost, quality) of each model used alone: two (m,) arrays."""
    return costs.mean(axis=0), scores.mean(axis=0)


def cost_scale(costs_usd: np.ndarray) -> float:
    """USD per normalised cost unit: the most expensive model's mean cost."""
    scale = float(np.nanmax(np.nanmean(costs_usd, axis=0)))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("cost scale must be positive: every model's mean cost is 0 or NaN")
    return scale


def pgr_curve(strong_share: np.ndarray, qualities: np.ndarray, weak_quality: float,
              strong_quality: float) -> tuple[np.ndarray, np.ndarray]:
    """Frontier of performance gap recovered against the share of calls to the strong model.

    The all-weak (0, q_weak) and all-strong (1, q_strong) routers are always reachable.
    Returns (share, PGR) vertices of the non-decreasing hull.
    """
    gap = strong_quality - weak_quality
    if gap <= 0:
        raise ValueError("APGR needs a strong model that beats the weak one")
    share = np.concatenate([[0.0, 1.0], np.asarray(strong_share, dtype=float)])
    quality = np.concatenate([[weak_quality, strong_quality], np.asarray(qualities, dtype=float)])
    hull_s, hull_q = frontier(share, quality)
    return hull_s, (hull_q - weak_quality) / gap


def apgr(strong_share: np.ndarray, qualities: np.ndarray, weak_quality: float,
         strong_quality: float) -> float:
    """Average performance gap recovered (RouteLLM) over strong-call shares in [0, 1]."""
    hull_s, hull_pgr = pgr_curve(strong_share, qualities, weak_quality, strong_quality)
    hull_s = np.append(hull_s, 1.0)
    hull_pgr = np.append(hull_pgr, hull_pgr[-1])
    return float(np.sum((hull_s[1:] - hull_s[:-1]) * (hull_pgr[1:] + hull_pgr[:-1]) / 2.0))


def cpt(strong_share: np.ndarray, qualities: np.ndarray, weak_quality: float,
        strong_quality: float, target_pgr: float) -> float:
    """Call-performance threshold (RouteLLM): the least share of strong calls reaching
    ``target_pgr`` (e.g. 0.5 for CPT(50%)), read off the frontier."""
    hull_s, hull_pgr = pgr_curve(strong_share, qualities, weak_quality, strong_quality)
    if target_pgr <= hull_pgr[0]:
        return float(hull_s[0])
    reach = np.flatnonzero(hull_pgr >= target_pgr)
    if reach.size == 0:
        return float("nan")
    j = int(reach[0])
    s0, s1, p0, p1 = hull_s[j - 1], hull_s[j], hull_pgr[j - 1], hull_pgr[j]
    return float(s0 + (target_pgr - p0) * (s1 - s0) / (p1 - p0))


def bootstrap_auc(scores: np.ndarray, costs: np.ndarray, choices: np.ndarray, *,
                  n_resamples: int = 200, seed: int = 0,
                  level: float = 0.95) -> tuple[float, float]:
    """Percentile confidence interval of ``auc`` over resampled evaluation prompts."""
    choices = np.atleast_2d(choices)
    n = scores.shape[0]
    rows = np.arange(n)
    chosen_s, chosen_c = scores[rows, choices], costs[rows, choices]  # (L, n)
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        values[b] = auc(chosen_c[:, idx].mean(axis=1), chosen_s[:, idx].mean(axis=1))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_prompts_seeds(outcomes: Sequence[tuple[np.ndarray, np.ndarray]],
                            runs: Sequence[Sequence[Sequence[np.ndarray]]], *,
                            metric: str = "auc", n_resamples: int = 1000,
                            seed: int = 0) -> np.ndarray:
    """Joint bootstrap replicates, over test prompts and seeds, of the mean over tasks of
    the mean over seeds of ``metric`` (``"auc"``, or ``"quality_at_0"``: the quality at
    the first trade-off, x100) for several routers at once.

    ``outcomes[t]``: task t's scored test prompts, ``(scores, costs)``, each (n_t, m_t),
    costs normalised. ``runs[r][t][s]``: router r's (L, n_t) choices on task t at seed s;
    every router has the same k seeds in one order (seed s is one seed for all: the
    pairing). Each replicate draws k of the seeds with replacement (one draw for all
    tasks), then, for every task, n_t of its prompts with replacement
    (``bootstrap_draws``); every router is scored on that one draw. Returns (R, B) replicate values: percentiles of a row give a
    router's interval, of the difference of two rows the paired interval of their
    difference."""
    if not runs or len(outcomes) == 0 or any(len(r) != len(outcomes) for r in runs):
        raise ValueError("bootstrap_prompts_seeds needs, for every router, runs on every task")
    n_seeds = len(runs[0][0])
    if n_seeds == 0 or any(len(per_seed) != n_seeds for r in runs for per_seed in r):
        raise ValueError("bootstrap_prompts_seeds needs the same seeds for every router and task")
    if metric not in ("auc", "quality_at_0"):
        raise ValueError(f"unknown metric {metric!r}")
    picks, draws = bootstrap_draws([scores.shape[0] for scores, _ in outcomes], n_seeds,
                                   n_resamples, seed)
    weights = [draw_weights(idx, scores.shape[0])  # per task, (n_t, B)
               for idx, (scores, _) in zip(draws, outcomes)]
    columns = np.arange(n_resamples)[:, None]
    values = np.zeros((len(runs), n_resamples))
    for t, (scores, costs) in enumerate(outcomes):
        rows = np.arange(scores.shape[0])
        known: dict[bytes, np.ndarray] = {}  # a deterministic router's seeds route alike
        for r, by_task in enumerate(runs):
            by_seed = np.empty((n_seeds, n_resamples))
            for s, choices in enumerate(by_task[t]):
                choices = np.atleast_2d(np.asarray(choices, dtype=np.int64))
                key = choices.tobytes() + bytes(str(choices.shape), "ascii")
                if key not in known:
                    if metric == "quality_at_0":
                        known[key] = 100.0 * (scores[rows, choices[0]] @ weights[t])
                    else:
                        cost, quality = _resampled_points(scores, costs, choices, weights[t])
                        known[key] = auc_many(cost.T, quality.T)
                by_seed[s] = known[key]
            values[r] += by_seed[picks, columns].mean(axis=1) / len(outcomes)
    return values


def _resampled_points(scores: np.ndarray, costs: np.ndarray, choices: np.ndarray,
                      weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (L, B) mean cost and quality of (L, n) ``choices`` on B weighted resamples of
    the n prompts (``weights`` (n, B)). A trade-off's choices differ from the previous
    one's on few prompts, so each is the previous means plus those prompts' changes (a
    full product only where many changed): on 10,000 prompts, a tenth of the work."""
    n = scores.shape[0]
    rows = np.arange(n)
    chosen_q, chosen_c = scores[rows, choices], costs[rows, choices]
    changes = (choices[1:] != choices[:-1]).sum(axis=1)
    full = np.flatnonzero(np.concatenate([[True], changes * 4 >= n]))  # one product for all
    quality = np.empty((choices.shape[0], weights.shape[1]))
    cost = np.empty_like(quality)
    quality[full], cost[full] = chosen_q[full] @ weights, chosen_c[full] @ weights
    for i in np.setdiff1d(np.arange(1, choices.shape[0]), full):  # in order: i - 1 is done
        changed = np.flatnonzero(choices[i] != choices[i - 1])
        part = weights[changed]
        quality[i] = quality[i - 1] + (chosen_q[i, changed] - chosen_q[i - 1, changed]) @ part
        cost[i] = cost[i - 1] + (chosen_c[i, changed] - chosen_c[i - 1, changed]) @ part
    return cost, quality


def paired_bootstrap_auc(scores: np.ndarray, costs: np.ndarray,
                         choices_a: Sequence[np.ndarray], choices_b: Sequence[np.ndarray], *,
                         n_resamples: int = 1000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """Mean AUC difference a - b over paired runs (``choices_a[i]`` against
    ``choices_b[i]``, e.g. one per seed), and its percentile interval over resampled
    evaluation prompts: every replicate draws one set of prompts for all runs, so the
    interval is of the difference, not of two independent AUCs."""
    if len(choices_a) != len(choices_b) or not choices_a:
        raise ValueError("paired_bootstrap_auc needs as many runs of a as of b, at least one")
    n = scores.shape[0]
    rows = np.arange(n)
    chosen = [(scores[rows, np.atleast_2d(c)], costs[rows, np.atleast_2d(c)])
              for c in [*choices_a, *choices_b]]
    k = len(choices_a)

    def difference(idx: np.ndarray | slice) -> float:
        aucs = [auc(c[:, idx].mean(axis=1), s[:, idx].mean(axis=1)) for s, c in chosen]
        return float(np.mean(aucs[:k]) - np.mean(aucs[k:]))

    rng = np.random.default_rng(seed)
    values = [difference(rng.integers(0, n, size=n)) for _ in range(n_resamples)]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha]) if values else (np.nan, np.nan)
    return difference(slice(None)), float(low), float(high)


# --- paired comparisons over seeds and prompts (the studies' verdicts, issue 19) -------------
#: the metrics a paired comparison resamples, in the order of every (..., 3) array below:
#: the frontier AUC, quality at lam = 0 (score x 100) and quality at a fixed budget
#: (score x 100 at the hull's point of normalised cost ``budget``)
PAIRED_METRICS = ("auc", "quality_at_0", "quality_at_budget")
#: one-sided tail probabilities at which a comparison's bootstrap replicates are kept
#: (``tail_quantiles``): enough to read a Bonferroni-corrected interval for up to 100
#: comparisons at alpha = 0.05 without storing the replicates
TAIL_PROBABILITIES = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


def cost_spread(costs: np.ndarray) -> float:
    """1 - the cheapest model's mean cost / the dearest model's (costs (n, m), any unit,
    NaN = unknown): 0 when every model costs the same, near 1 when one is far cheaper.
    Normalised so the dearest model's mean is 1, the cheapest sits at 1 - spread."""
    means = np.nanmean(np.asarray(costs, dtype=float), axis=0)
    means = means[np.isfinite(means)]
    if means.size == 0 or means.max() <= 0:
        return float("nan")
    return float(1.0 - means.min() / means.max())


def budget_of(costs: np.ndarray) -> float:
    """The fixed budget of ``quality_at_budget``: halfway between the cheapest model's
    mean normalised cost and the dearest's (1), on normalised ``costs`` (n, m)."""
    means = np.nanmean(np.asarray(costs, dtype=float), axis=0)
    return float((np.nanmin(means) + np.nanmax(means)) / 2.0)


def quality_at(costs: np.ndarray, qualities: np.ndarray, budget: float) -> float:
    """The hull's quality (x 100) at normalised cost ``budget``: interpolated between its
    vertices, flat right of the last; NaN when no operating point costs that little."""
    return _hull_quality(*frontier(costs, qualities), budget)


def _hull_quality(hull_c: np.ndarray, hull_q: np.ndarray, budget: float) -> float:
    if budget < hull_c[0]:
        return float("nan")
    return 100.0 * float(np.interp(budget, hull_c, hull_q))


def _three(point_c: np.ndarray, point_q: np.ndarray, budget: float) -> tuple[float, ...]:
    """``PAIRED_METRICS`` of one set of operating points (point 0: lam = 0)."""
    hull = frontier(point_c, point_q)
    return hull_area(*hull), 100.0 * float(point_q[0]), _hull_quality(*hull, budget)


def run_metrics(scores: np.ndarray, costs: np.ndarray, choices: np.ndarray, budget: float,
                prompt_idx: np.ndarray | None = None) -> np.ndarray:
    """``PAIRED_METRICS`` of one run's (L, n) ``choices``: (3,) on every prompt, or
    (B, 3) on each row of ``prompt_idx`` (B, n), a resample of the prompts."""
    choices = np.atleast_2d(choices)
    rows = np.arange(scores.shape[0])
    chosen_s, chosen_c = scores[rows, choices], costs[rows, choices]  # (L, n)
    if prompt_idx is None:
        return np.array(_three(chosen_c.mean(axis=1), chosen_s.mean(axis=1), budget))
    return np.array([_three(chosen_c[:, idx].mean(axis=1), chosen_s[:, idx].mean(axis=1),
                            budget) for idx in prompt_idx])


def frontier_metrics(scores: np.ndarray, costs: np.ndarray, budget: float,
                     prompt_idx: np.ndarray | None = None) -> np.ndarray:
    """``PAIRED_METRICS`` of the single-model frontier (the hull of the m models used
    alone; its quality at lam = 0 is the best model's): (3,) or (B, 3) as ``run_metrics``."""
    def one(idx: np.ndarray | slice) -> tuple[float, ...]:
        point_c, point_q = costs[idx].mean(axis=0), scores[idx].mean(axis=0)
        hull = frontier(point_c, point_q)
        return hull_area(*hull), 100.0 * float(point_q.max()), _hull_quality(*hull, budget)

    if prompt_idx is None:
        return np.array(one(slice(None)))
    return np.array([one(idx) for idx in prompt_idx])


def bootstrap_draws(n_prompts: int | Sequence[int], n_seeds: int, n_resamples: int,
                    seed: int) -> tuple[np.ndarray, Any]:
    """The draws of the two-stage bootstrap over seeds and prompts, the one rule every
    interval over seeds and prompts uses (studies, boards): (B, n_seeds) seed indices,
    then (B, n_prompts) prompt indices, both with replacement (seeded). ``n_prompts`` a
    list: one (B, n_t) draw per task, after the one seed draw they all share. Every run
    compared under one set of draws sees the same resamples, so differences and sums over
    conditions are paired."""
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))

    def prompts(n: int) -> np.ndarray:
        return rng.integers(0, n, size=(n_resamples, n), dtype=np.int32) if n \
            else np.zeros((n_resamples, 0), dtype=np.int32)

    if isinstance(n_prompts, (int, np.integer)):
        return seeds, prompts(int(n_prompts))
    return seeds, [prompts(int(n)) for n in n_prompts]


def draw_weights(prompt_idx: np.ndarray, n_prompts: int) -> np.ndarray:
    """(n_prompts, B) weights of a (B, n_prompts) prompt draw: how often each prompt was
    drawn in each replicate, over n (a weighted mean over prompts is then a product)."""
    n_resamples = prompt_idx.shape[0]
    flat = prompt_idx.astype(np.int64) + np.arange(n_resamples)[:, None] * n_prompts
    counts = np.bincount(flat.ravel(), minlength=n_resamples * n_prompts)
    return np.ascontiguousarray(counts.reshape(n_resamples, n_prompts).T) / max(n_prompts, 1)


def seed_means(per_seed: np.ndarray, seed_idx: np.ndarray) -> np.ndarray:
    """(B, ...) means over each replicate's drawn seeds of ``per_seed`` (k, B, ...): the
    seed stage of the two-stage bootstrap."""
    replicate = np.arange(seed_idx.shape[0])[:, None]
    return per_seed[seed_idx, replicate].mean(axis=1)


def tail_quantiles(replicates: np.ndarray) -> dict[str, list[float]]:
    """The bootstrap replicates' ``TAIL_PROBABILITIES`` quantiles, lower and upper:
    ``{"p": [...], "low": [q(p)...], "high": [q(1 - p)...]}`` (NaN replicates left out;
    NaN when none is finite)."""
    values = np.asarray(replicates, dtype=float)
    values = values[np.isfinite(values)]
    p = np.asarray(TAIL_PROBABILITIES)
    if values.size == 0:
        nan = [float("nan")] * p.size
        return {"p": p.tolist(), "low": nan, "high": list(nan)}
    return {"p": p.tolist(), "low": np.quantile(values, p).tolist(),
            "high": np.quantile(values, 1.0 - p).tolist()}


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> list[float]:
    """The central ``level`` percentile interval of the finite replicates ([NaN, NaN]
    when none is)."""
    values = np.asarray(replicates, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [float("nan"), float("nan")]
    alpha = (1.0 - level) / 2.0
    return np.quantile(values, [alpha, 1.0 - alpha]).tolist()


def paired_seed_prompt_bootstrap(scores: np.ndarray, costs: np.ndarray,
                                 choices_a: Sequence[np.ndarray],
                                 choices_b: Sequence[np.ndarray] | None, *,
                                 n_resamples: int = 1000, seed: int = 0,
                                 budget: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``PAIRED_METRICS`` of a - b, mean over paired runs (``choices_a[i]`` and
    ``choices_b[i]``: one seed's refits), and its (B, 3) replicates under a two-stage
    bootstrap: each replicate draws the seeds with replacement, then the prompts, and
    scores every drawn run on those prompts. ``choices_b`` None: b is the single-model
    frontier. ``budget`` defaults to ``budget_of(costs)``."""
    if (choices_b is not None and len(choices_a) != len(choices_b)) or not choices_a:
        raise ValueError("paired_seed_prompt_bootstrap needs as many runs of a as of b, "
                         "at least one")
    budget = budget_of(costs) if budget is None else budget
    seed_idx, prompt_idx = bootstrap_draws(scores.shape[0], len(choices_a), n_resamples, seed)

    def side(runs: Sequence[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        if runs is None:
            return (frontier_metrics(scores, costs, budget),
                    frontier_metrics(scores, costs, budget, prompt_idx))
        point = np.mean([run_metrics(scores, costs, c, budget) for c in runs], axis=0)
        per_seed = np.stack([run_metrics(scores, costs, c, budget, prompt_idx) for c in runs])
        return point, seed_means(per_seed, seed_idx)

    (point_a, rep_a), (point_b, rep_b) = side(choices_a), side(choices_b)
    return point_a - point_b, rep_a - rep_b
