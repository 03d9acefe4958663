"""Is model performance local in embedding space? The statistics behind ``study
locality`` (arXiv 2505.12601's argument for kNN routing), pure numpy on arrays.

On seeded random pairs of training prompts, distinct and drawn without replacement:
the cosine distance and the agreement of their outcomes (1 - mean |score difference|
over the models known for both; for 0/1 scores that is the share of models with the
same outcome), and whether they share a best model (their SETS of best models, ties
kept, intersect: no column order decides). Then: the rank correlation of distance and
agreement with a bootstrap interval; agreement by distance decile and each prompt's
nearest training neighbour against a random one, both against a null band, the latter
with an interval from a bootstrap over the query prompts; the intrinsic dimension.

The null bands come from shuffled pairings of prompts with outcomes: the score rows are
permuted across prompts and the same pairs scored again. Shuffling the pairs'
agreements against their distances instead would treat pairs as independent, but pairs
share prompts and nearest neighbours repeat (hubs): on outcomes independent of the
prompt that band was too narrow (the nearest-minus-random difference fell outside a
bootstrap interval over queries in 5 of 20 synthetic tasks; outside this band in 8 of
140 draws, the nominal 5%).
Pairs of identical texts are counted apart and left out of everything else: a dataset
with many duplicate prompts (LLMRouter's) would otherwise show locality at distance 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.study.stats import (
    Dimension,
    bootstrap_ci,
    distinct_sample,
    mle_from_distances,
    nearest_unlike,
    neighbour_distances,
    percentile_band,
    random_unlike,
    spearman,
    spearman_resampler,
    twonn_from_distances,
)

LEVEL = 0.95
N_DECILES = 10
#: at most this many query prompts for the nearest-neighbour comparison, and points for
#: the intrinsic dimension: enough for a tight mean, a bounded cost on large tasks
MAX_QUERIES = 5000


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation of pair distance with an outcome statistic, and its
    percentile bootstrap interval over pairs. Pairs that share a prompt are not
    independent, which the interval ignores: with outcomes independent of the prompt and
    20,000 pairs it covered 0 in 32 of 40 tasks of 300 prompts, 37 of 40 of 3,000."""

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decile:
    """Pairs in one distance decile (1 = closest): the distance range [low, high], the
    mean distance, mean agreement, share with the same best model, the number of pairs,
    and the null band (2.5 and 97.5 percentiles of this decile's mean agreement when
    score rows are shuffled across prompts)."""

    decile: int
    distance_low: float
    distance_high: float
    mean_distance: float
    agreement: float
    best_same: float
    n: int
    null_low: float
    null_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Neighbours:
    """Each query prompt with its nearest other training prompt of a different text
    against one random other prompt of a different text: mean agreement, the paired
    difference (nearest - random) with its null band (2.5 and 97.5 percentiles when
    score rows are shuffled across prompts) and its interval and standard error from a
    bootstrap over the query prompts (``_ci95``, ``_se``); the same for the shares of
    pairs that share a best model (``best_same``), with the nearest pairs' share under
    the null (``nn_best_same_null``: its chance level). ``nn_with_duplicates``: queries
    whose exact duplicates were skipped; ``nn_dropped``: queries left out (no model
    known for both in either pair, or no other text)."""

    nn_queries: int
    nn_agreement: float
    random_agreement: float
    nn_minus_random: float
    nn_minus_random_null_low: float
    nn_minus_random_null_high: float
    nn_minus_random_ci95: tuple[float, float]
    nn_minus_random_se: float
    nn_best_same: float
    random_best_same: float
    nn_best_same_null: float
    nn_best_minus_random: float
    nn_best_minus_random_null_low: float
    nn_best_minus_random_null_high: float
    nn_best_minus_random_ci95: tuple[float, float]
    nn_best_minus_random_se: float
    nn_with_duplicates: int
    nn_dropped: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Locality:
    """The locality statistics of one task's training prompts under one embedding.

    ``binary``: every known score is 0 or 1 (agreement is then the share of models with
    the same outcome). ``n_pairs``: distinct pairs drawn (without replacement; at most
    ``n_pairs_possible``, n(n-1)/2); ``n_pairs_used``: those in the statistics;
    ``n_no_common``: pairs with no model known for both (dropped);
    ``n_duplicate_pairs``: pairs of identical texts (reported apart, with their mean
    agreement ``duplicate_agreement``, NaN when none). ``best_same_share``: pairs whose
    sets of best models intersect (``best_rule``), ``best_same_chance`` its mean when
    score rows are shuffled across prompts (its level by chance)."""

    n_prompts: int
    n_models: int
    binary: bool
    seed: int
    n_pairs: int
    n_pairs_possible: int
    n_pairs_used: int
    n_no_common: int
    n_duplicate_pairs: int
    duplicate_agreement: float
    mean_agreement: float
    best_rule: str
    best_same_share: float
    best_same_chance: float
    agreement_correlation: Correlation
    best_same_correlation: Correlation
    deciles: tuple[Decile, ...]
    neighbours: Neighbours
    dimensions: tuple[Dimension, ...]
    n_bootstrap: int
    n_null: int

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready (NaN kept): the correlations as ``spearman`` and
        ``spearman_ci95`` (``best_same_spearman``...), the neighbours' fields as they are."""
        nested = ("agreement_correlation", "best_same_correlation", "deciles", "neighbours",
                  "dimensions")
        out = {key: value for key, value in self.__dict__.items() if key not in nested}
        for name, correlation in (("spearman", self.agreement_correlation),
                                  ("best_same_spearman", self.best_same_correlation)):
            out[name] = correlation.value
            out[f"{name}_ci95"] = [correlation.ci_low, correlation.ci_high]
        out.update({key: list(value) if isinstance(value, tuple) else value
                    for key, value in self.neighbours.to_dict().items()})
        out["deciles"] = [row.to_dict() for row in self.deciles]
        out["dimensions"] = [dimension.to_dict() for dimension in self.dimensions]
        return out


# --- input --------------------------------------------------------------------------------

def _check_inputs(X: Any, scores: Any, texts: Sequence[str], k_values: Sequence[int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(unit rows of X float64, scores float64), or a one-line RouteHarnessError."""
    X = np.asarray(X, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 1:
        raise RouteHarnessError(f"locality: embeddings must be an (n, d) array with n >= 3, "
                                f"got shape {X.shape}")
    if scores.ndim != 2 or scores.shape[0] != X.shape[0] or scores.shape[1] < 1:
        raise RouteHarnessError(f"locality: scores must be (n, m) with n = {X.shape[0]} "
                                f"(the embeddings' rows), got shape {scores.shape}")
    if len(texts) != X.shape[0]:
        raise RouteHarnessError(f"locality: {len(texts)} texts for {X.shape[0]} embeddings")
    if not np.isfinite(X).all():
        raise RouteHarnessError("locality: the embeddings contain NaN or infinity")
    known = scores[~np.isnan(scores)]
    if known.size == 0 or np.isinf(known).any() or known.min() < 0 or known.max() > 1:
        raise RouteHarnessError("locality: scores must be in [0, 1] (NaN = missing), with "
                                "at least one known")
    if not k_values or any(int(k) < 2 for k in k_values):
        raise RouteHarnessError(f"locality: k_values must be integers >= 2, got {k_values}")
    norms = np.linalg.norm(X, axis=1)
    if (norms == 0).any():
        raise RouteHarnessError(f"locality: embedding row {int(np.argmin(norms))} is all "
                                "zeros (no cosine distance)")
    return X / norms[:, None], scores


def _text_codes(texts: Sequence[str]) -> np.ndarray:
    """(n,) int: equal codes for equal texts."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(str(text), len(seen)) for text in texts], dtype=np.int64)


# --- pairs ----------------------------------------------------------------------------------

#: how "the same best model" is decided: no column order, ties kept
BEST_RULE = "sets of best models intersect (ties kept)"
#: two scores within this are tied (graded scores are rounded, 0/1 are exact)
TIE = 1e-9


def _pair_outcomes(scores: np.ndarray, i: np.ndarray, j: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Agreement and best-model-shared (as 0/1 float) of pairs (i, j), over the models
    known for both; NaN for both where no model is. A prompt's best models are every
    model within ``TIE`` of its highest score among those models; a pair shares a best
    model when the two sets intersect, so the order of the model columns never decides
    (with 0/1 scores a prompt every model gets right, or wrong, shares its best with
    every other prompt: the null's chance level counts that in)."""
    a, b = scores[i], scores[j]
    known = ~np.isnan(a) & ~np.isnan(b)
    n_known = known.sum(axis=1)
    difference = np.where(known, np.abs(a - b), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = 1.0 - difference / n_known
    masked_a = np.where(known, a, -np.inf)
    masked_b = np.where(known, b, -np.inf)
    best_a = known & (masked_a >= masked_a.max(axis=1, keepdims=True) - TIE)
    best_b = known & (masked_b >= masked_b.max(axis=1, keepdims=True) - TIE)
    same = (best_a & best_b).any(axis=1).astype(float)
    none = n_known == 0
    agreement[none] = np.nan
    same[none] = np.nan
    return agreement, same


def distinct_pairs(n: int, count: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``min(count, n(n-1)/2)`` distinct unordered pairs i < j of 0..n-1, drawn
    uniformly without replacement (every pair when count reaches n(n-1)/2), in a random
    order."""
    total = n * (n - 1) // 2
    if count >= total or total <= 4 * count or total <= 2_000_000:
        first, second = np.triu_indices(n, k=1)
        pick = rng.permutation(total) if count >= total else rng.choice(total, count,
                                                                         replace=False)
        return first[pick], second[pick]
    # a small share of many pairs: draw, drop repeats, draw again for what is missing
    keys = np.empty(0, dtype=np.int64)
    while keys.size < count:
        want = int((count - keys.size) * 1.1) + 16
        a = rng.integers(0, n, size=want)
        b = rng.integers(0, n - 1, size=want)
        b = b + (b >= a)
        new = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
        _, first_seen = np.unique(new, return_index=True)
        new = new[np.sort(first_seen)]
        keys = np.concatenate([keys, new[~np.isin(new, keys)]])
    keys = keys[:count]
    return keys // n, keys % n


def _cosine_distances(unit: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(i.size)
    for start in range(0, i.size, 4096):
        block = slice(start, start + 4096)
        out[block] = 1.0 - np.einsum("ij,ij->i", unit[i[block]], unit[j[block]])
    return np.clip(out, 0.0, 2.0)


def _correlation(distance: np.ndarray, values: np.ndarray, *, n_bootstrap: int,
                 seed: int) -> Correlation:
    value = spearman(distance, values)
    if n_bootstrap < 1 or distance.size < 2:
        return Correlation(value, float("nan"), float("nan"))
    low, high = bootstrap_ci(spearman_resampler(distance, values), distance.size,
                             n_resamples=n_bootstrap, seed=seed, level=LEVEL)
    return Correlation(value, low, high)


def _decile_bins(distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decile edges of the pairs' distances and each pair's decile (0..9)."""
    edges = np.quantile(distance, np.linspace(0.0, 1.0, N_DECILES + 1))
    bins = np.clip(np.searchsorted(edges[1:-1], distance, side="right"), 0, N_DECILES - 1)
    return edges, bins


def _binned_means(bins: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N_DECILES,) mean of the finite values in each decile (NaN where none)."""
    finite = np.isfinite(values)
    total = np.bincount(bins[finite], weights=values[finite], minlength=N_DECILES)
    count = np.bincount(bins[finite], minlength=N_DECILES)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _deciles(distance: np.ndarray, agreement: np.ndarray, same: np.ndarray,
             edges: np.ndarray, bins: np.ndarray, null: np.ndarray) -> tuple[Decile, ...]:
    """One row per non-empty decile; ``null``: (n_null, N_DECILES) decile means."""
    counts = np.bincount(bins, minlength=N_DECILES)
    mean_distance = _binned_means(bins, distance)
    mean_agreement = _binned_means(bins, agreement)
    share = _binned_means(bins, same)
    null_low, null_high = percentile_band(null, LEVEL)
    return tuple(Decile(d + 1, float(edges[d]), float(edges[d + 1]), float(mean_distance[d]),
                        float(mean_agreement[d]), float(share[d]), int(counts[d]),
                        float(null_low[d]), float(null_high[d]))
                 for d in range(N_DECILES) if counts[d] > 0)


# --- nearest neighbour against random -------------------------------------------------------

@dataclass(frozen=True)
class _Comparison:
    """Queries with their nearest and random partners (all usable indices)."""

    queries: np.ndarray
    nearest: np.ndarray
    partner: np.ndarray
    n_with_duplicates: int
    n_sampled: int

    def outcomes(self, scores: np.ndarray) -> tuple[np.ndarray, ...]:
        """Agreement and best-same of nearest and random pairs, on queries where both
        pairs have a model known for both."""
        near_agree, near_same = _pair_outcomes(scores, self.queries, self.nearest)
        rand_agree, rand_same = _pair_outcomes(scores, self.queries, self.partner)
        both = np.isfinite(near_agree) & np.isfinite(rand_agree)
        return near_agree[both], rand_agree[both], near_same[both], rand_same[both]

    def differences(self, scores: np.ndarray) -> tuple[float, float, float]:
        """Mean nearest - random agreement, the same for sharing a best model, and the
        nearest pairs' share (NaN when no query is usable)."""
        near_agree, rand_agree, near_same, rand_same = self.outcomes(scores)
        if not near_agree.size:
            return float("nan"), float("nan"), float("nan")
        return (float(np.mean(near_agree - rand_agree)),
                float(np.mean(near_same - rand_same)), float(np.mean(near_same)))


def _comparison(unit: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> _Comparison:
    n = unit.shape[0]
    queries = np.sort(rng.choice(n, min(n, MAX_QUERIES), replace=False))
    nearest = nearest_unlike(unit, codes, queries)
    partner = random_unlike(codes, queries, rng)
    n_with_duplicates = int(np.count_nonzero(np.bincount(codes)[codes[queries]] > 1))
    usable = (nearest >= 0) & (partner >= 0)
    return _Comparison(queries[usable], nearest[usable], partner[usable], n_with_duplicates,
                       int(queries.size))


def _query_bootstrap(values: np.ndarray, n_bootstrap: int, seed: int
                     ) -> tuple[tuple[float, float], float]:
    """95% percentile interval and standard error of the mean of per-query ``values``
    over queries resampled with replacement (NaN without a bootstrap or queries)."""
    if n_bootstrap < 1 or values.size < 2:
        return (float("nan"), float("nan")), float("nan")
    rng = np.random.default_rng([seed, 0x9E37])
    means = np.array([values[rng.integers(0, values.size, size=values.size)].mean()
                      for _ in range(n_bootstrap)])
    low, high = np.quantile(means, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return (float(low), float(high)), float(means.std(ddof=1))


def _neighbours(comparison: _Comparison, scores: np.ndarray, null: np.ndarray,
                n_bootstrap: int, seed: int) -> Neighbours:
    """``null``: (n_null, 3) ``_Comparison.differences`` of shuffled score rows."""
    near_agree, rand_agree, near_same, rand_same = comparison.outcomes(scores)
    nan = float("nan")

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else nan

    low, high = percentile_band(null[:, :2], LEVEL)
    agree_ci, agree_se = _query_bootstrap(near_agree - rand_agree, n_bootstrap, seed)
    best_ci, best_se = _query_bootstrap(near_same - rand_same, n_bootstrap, seed + 1)
    chance = float(np.nanmean(null[:, 2])) if null.size and np.isfinite(null[:, 2]).any() \
        else nan
    return Neighbours(int(near_agree.size), mean(near_agree), mean(rand_agree),
                      mean(near_agree - rand_agree), float(low[0]), float(high[0]),
                      agree_ci, agree_se, mean(near_same), mean(rand_same), chance,
                      mean(near_same - rand_same), float(low[1]), float(high[1]), best_ci,
                      best_se, comparison.n_with_duplicates,
                      comparison.n_sampled - int(near_agree.size))


# --- the study ------------------------------------------------------------------------------

def dimensions(unit: np.ndarray, k_values: Sequence[int], *, seed: int) -> tuple[Dimension, ...]:
    """TwoNN and the MLE at each k, from one neighbour search on up to MAX_QUERIES seeded
    distinct rows (exact duplicates dropped and counted)."""
    points, dropped = distinct_sample(unit, max_points=MAX_QUERIES, seed=seed)
    k_max = max(2, *(int(k) for k in k_values))
    if points.shape[0] <= k_max:
        return ()
    distances = neighbour_distances(points, k_max)
    out = [Dimension("twonn", twonn_from_distances(distances[:, :2]), points.shape[0],
                     dropped, 2)]
    out += [Dimension("mle", mle_from_distances(distances, int(k)), points.shape[0], dropped,
                      int(k)) for k in k_values]
    return tuple(out)


def locality(X: Any, scores: Any, texts: Sequence[str], *, n_pairs: int = 20000,
             seed: int = 0, n_bootstrap: int = 1000, n_null: int = 200,
             k_values: Sequence[int] = (10, 20)) -> Locality:
    """The locality statistics of training prompts.

    X: (n, d) embeddings (rows are normalised here; distance = 1 - cosine). scores:
    (n, m) outcomes in [0, 1], NaN = missing (a pair compares only the models known for
    both). texts: the n prompt texts (identical texts = duplicates). ``n_pairs``: distinct
    pairs, drawn without replacement (all of them when there are fewer). ``n_bootstrap``
    resamples of pairs for the correlations' intervals and of query prompts for the
    nearest-against-random intervals; ``n_null`` shuffles of score rows across prompts
    for the null bands. Seeded: the same inputs and seed give the same
    numbers. Raises RouteHarnessError on bad input.
    """
    if n_pairs < 1 or n_bootstrap < 0 or n_null < 0:
        raise RouteHarnessError("locality: n_pairs must be >= 1, n_bootstrap and n_null >= 0")
    unit, scores = _check_inputs(X, scores, texts, k_values)
    codes = _text_codes(texts)
    known = scores[~np.isnan(scores)]
    binary = bool(np.isin(known, (0.0, 1.0)).all())
    rng = np.random.default_rng(seed)
    n = unit.shape[0]

    i, j = distinct_pairs(n, n_pairs, rng)
    drawn = int(i.size)
    agreement, same = _pair_outcomes(scores, i, j)
    no_common = np.isnan(agreement)
    duplicate = (codes[i] == codes[j]) & ~no_common
    used = ~no_common & ~duplicate
    duplicate_agreement = float(agreement[duplicate].mean()) if duplicate.any() else float("nan")
    i, j, agreement, same = i[used], j[used], agreement[used], same[used]
    if i.size < 2:
        raise RouteHarnessError(f"locality: only {i.size} of {n_pairs} pairs have "
                                "different texts and a model known for both")
    distance = _cosine_distances(unit, i, j)
    edges, bins = _decile_bins(distance)
    comparison = _comparison(unit, codes, rng)
    # one shuffle of the score rows across prompts per replicate, for both null bands
    null_deciles = np.empty((n_null, N_DECILES))
    null_best_share = np.empty(n_null)
    null_difference = np.empty((n_null, 3))
    for replicate in range(n_null):
        shuffled = scores[rng.permutation(n)]
        null_agreement, null_same = _pair_outcomes(shuffled, i, j)
        null_deciles[replicate] = _binned_means(bins, null_agreement)
        null_best_share[replicate] = np.nanmean(null_same)
        null_difference[replicate] = comparison.differences(shuffled)
    return Locality(
        n_prompts=n, n_models=scores.shape[1], binary=binary, seed=seed, n_pairs=drawn,
        n_pairs_possible=n * (n - 1) // 2, n_pairs_used=int(i.size),
        n_no_common=int(no_common.sum()), n_duplicate_pairs=int(duplicate.sum()),
        duplicate_agreement=duplicate_agreement, mean_agreement=float(agreement.mean()),
        best_rule=BEST_RULE, best_same_share=float(same.mean()),
        best_same_chance=float(null_best_share.mean()) if n_null else float("nan"),
        agreement_correlation=_correlation(distance, agreement, n_bootstrap=n_bootstrap,
                                           seed=seed),
        best_same_correlation=_correlation(distance, same, n_bootstrap=n_bootstrap,
                                           seed=seed + 1),
        deciles=_deciles(distance, agreement, same, edges, bins, null_deciles),
        neighbours=_neighbours(comparison, scores, null_difference, n_bootstrap, seed),
        dimensions=dimensions(unit, k_values, seed=seed),
        n_bootstrap=n_bootstrap, n_null=n_null)
