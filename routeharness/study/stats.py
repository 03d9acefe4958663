"""Pure statistics for the studies: rank correlations, the percentile bootstrap and two
intrinsic-dimension estimators. numpy only (scipy is not needed): arrays in, numbers out.

Distances here are Euclidean on the rows as given; a caller that wants cosine geometry
normalises the rows first (on the unit sphere, squared Euclidean = 2 x cosine distance,
a monotone map, so neighbours and distance ratios keep their meaning).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: rows per block of the chunked neighbour search: a block's distance matrix is
#: CHUNK x n float32 (40 MB at n = 5,000 ... 25,000), whatever n is.
CHUNK = 1024


@dataclass(frozen=True)
class Dimension:
    """An intrinsic-dimension estimate. ``estimator``: "twonn" or "mle"; ``k``: the
    neighbourhood size (2 for TwoNN); ``n_points``: distinct points used; ``n_dropped``:
    exact duplicates of a sampled point, removed before the neighbour search (their
    zero distance would make the estimators' logarithms infinite)."""

    estimator: str
    value: float
    n_points: int
    n_dropped: int
    k: int

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- ranks and correlations -------------------------------------------------------------

def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(n,) -> the index of each value among the sorted distinct values, and their count."""
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.ravel(), len(distinct)


def _ranks_of(codes: np.ndarray, n_distinct: int, index: np.ndarray | None = None) -> np.ndarray:
    """Ranks (1-based, ties averaged) of the values ``codes[index]`` among themselves.

    Counting per distinct value makes a resample's ranks O(n) without sorting again: a
    value occurring c times after the values below it (cumulative count C) has rank
    C - (c - 1) / 2."""
    picked = codes if index is None else codes[index]
    counts = np.bincount(picked, minlength=n_distinct).astype(float)
    average_rank = np.cumsum(counts) - (counts - 1.0) / 2.0
    return average_rank[picked]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else float("nan")


def _paired_finite(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{what} needs two equally long vectors, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation of two equally long vectors (ties get their average
    rank; items where either value is NaN are left out). NaN when either is constant."""
    x, y = _paired_finite(x, y, "spearman")
    if x.size < 2:
        return float("nan")
    return _pearson(_ranks_of(*_dense_codes(x)), _ranks_of(*_dense_codes(y)))


def spearman_resampler(x: Any, y: Any) -> Callable[[np.ndarray], float]:
    """``index -> spearman(x[index], y[index])`` for ``bootstrap_ci``, re-ranking each
    resample (ties averaged) in O(n) from ranks precomputed once. x, y must be finite."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("spearman_resampler needs two equally long finite vectors")
    codes_x, distinct_x = _dense_codes(x)
    codes_y, distinct_y = _dense_codes(y)

    def value(index: np.ndarray) -> float:
        return _pearson(_ranks_of(codes_x, distinct_x, index),
                        _ranks_of(codes_y, distinct_y, index))

    return value


def kendall_tau(a: Any, b: Any) -> float:
    """Kendall's tau-b between two score vectors over the same items (e.g. the routers'
    AUC under two encoders): concordant minus discordant pairs, corrected for ties on
    either side. Items where either score is NaN are left out; NaN when fewer than two
    items remain or either side is all tied. O(n^2) memory: meant for short vectors."""
    a, b = _paired_finite(a, b, "kendall_tau")
    if a.size < 2:
        return float("nan")
    upper = np.triu_indices(a.size, k=1)
    sign_a = np.sign(a[:, None] - a[None, :])[upper]
    sign_b = np.sign(b[:, None] - b[None, :])[upper]
    untied_a = np.count_nonzero(sign_a)
    untied_b = np.count_nonzero(sign_b)
    if untied_a == 0 or untied_b == 0:
        return float("nan")
    return float(np.sum(sign_a * sign_b) / np.sqrt(float(untied_a) * float(untied_b)))


def percentile_band(replicates: np.ndarray, level: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` band of (r, ...) replicates over axis 0, from their finite
    values: two arrays of the trailing shape, NaN where no replicate is finite."""
    replicates = np.asarray(replicates, dtype=float)
    if replicates.shape[0] == 0:
        nan = np.full(replicates.shape[1:], np.nan)
        return nan, nan
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():  # an all-NaN column gives NaN, as it should
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(replicates, [alpha, 1.0 - alpha], axis=0)
    return low, high


def bootstrap_ci(values_fn: Callable[[np.ndarray], float], n: int, *, n_resamples: int,
                 seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of a statistic over resampled items: each replicate draws n
    item indices 0..n-1 with replacement (seeded) and calls ``values_fn(index)``.
    Replicates that give NaN (e.g. a constant resample) are left out; (NaN, NaN) when
    none is finite."""
    if n < 1 or n_resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError("bootstrap_ci needs n >= 1, n_resamples >= 1 and 0 < level < 1")
    rng = np.random.default_rng(seed)
    values = np.array([values_fn(rng.integers(0, n, size=n)) for _ in range(n_resamples)],
                      dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --- neighbours and intrinsic dimension ---------------------------------------------------

def distinct_sample(X: Any, *, max_points: int, seed: int) -> tuple[np.ndarray, int]:
    """Up to ``max_points`` rows of X (a seeded sample without replacement when there
    are more), less exact duplicates of an earlier sampled row: (points float64, number
    of duplicates dropped)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 3 or not np.isfinite(X).all():
        raise ValueError("intrinsic dimension needs a finite (n, d) array with n >= 3")
    if X.shape[0] > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(X.shape[0], max_points,
                                                          replace=False))
        X = X[pick]
    rows = np.ascontiguousarray(X).view(np.dtype((np.void, X.dtype.itemsize * X.shape[1])))
    _, first = np.unique(rows.ravel(), return_index=True)
    keep = np.sort(first)
    return X[keep], int(X.shape[0] - keep.size)


def neighbour_distances(X: np.ndarray, k: int) -> np.ndarray:
    """(n, k) Euclidean distances of each row to its k nearest other rows, ascending.

    Candidates come from chunked float32 matrix products (|x|^2 + |y|^2 - 2 x.y, self
    excluded) with two spare neighbours; their distances are then recomputed exactly in
    float64, so cancellation in the product never decides a small distance."""
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"{k} neighbours need more than {k} distinct points, got {n}")
    candidates = min(k + 2, n - 1)
    X32 = X.astype(np.float32)
    sq = np.einsum("ij,ij->i", X32, X32)
    out = np.empty((n, k))
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = sq[start:stop, None] + sq[None, :] - 2.0 * (X32[start:stop] @ X32.T)
        block[np.arange(stop - start), np.arange(start, stop)] = np.inf
        near = np.argpartition(block, candidates - 1, axis=1)[:, :candidates]
        exact = np.column_stack([np.linalg.norm(X[start:stop] - X[near[:, c]], axis=1)
                                 for c in range(candidates)])
        out[start:stop] = np.sort(exact, axis=1)[:, :k]
    return out


def twonn_from_distances(distances: np.ndarray, *, discard: float = 0.1) -> float:
    """TwoNN (Facco et al. 2017) from each point's two nearest distances (columns 0, 1):
    mu = r2 / r1 is Pareto with exponent d, so -log(1 - F(mu)) = d log(mu); d is the
    least-squares slope through the origin, the largest ``discard`` share of mu left out
    (the empirical F is 1 at the top and the tail is the noisiest)."""
    if not 0.0 <= discard < 1.0:
        raise ValueError("discard must be in [0, 1)")
    mu = np.sort(distances[:, 1] / distances[:, 0])
    n = mu.size
    keep = min(int(np.floor(n * (1.0 - discard))), n - 1)  # F = 1 has no logarithm
    x = np.log(mu[:keep])
    y = -np.log(1.0 - np.arange(1, keep + 1) / n)
    denominator = float(np.dot(x, x))
    return float(np.dot(x, y) / denominator) if denominator > 0 else float("nan")


def mle_from_distances(distances: np.ndarray, k: int) -> float:
    """Levina-Bickel maximum likelihood at k neighbours with MacKay and Ghahramani's
    correction: per point, 1/m(x) = mean_{j<k} log(T_k / T_j); the estimate is the
    inverse of the mean of these inverses (averaging the inverses is the unbiased way
    to pool the per-point likelihoods)."""
    if not 2 <= k <= distances.shape[1]:
        raise ValueError(f"mle needs 2 <= k <= {distances.shape[1]}, got {k}")
    logs = np.log(distances[:, :k])
    inverse = np.mean(logs[:, k - 1:k] - logs[:, :k - 1], axis=1)
    mean_inverse = float(np.mean(inverse))
    return 1.0 / mean_inverse if mean_inverse > 0 else float("nan")


def twonn_dimension(X: Any, *, discard: float = 0.1, max_points: int = 5000,
                    seed: int = 0) -> Dimension:
    """TwoNN intrinsic dimension of the rows of X (n, d), Euclidean, on up to
    ``max_points`` seeded rows with exact duplicates dropped (and counted)."""
    points, dropped = distinct_sample(X, max_points=max_points, seed=seed)
    value = twonn_from_distances(neighbour_distances(points, 2), discard=discard)
    return Dimension("twonn", value, points.shape[0], dropped, 2)


def mle_dimension(X: Any, k: int, *, max_points: int = 5000, seed: int = 0) -> Dimension:
    """Levina-Bickel (MacKay-Ghahramani) intrinsic dimension of the rows of X at k
    neighbours, Euclidean, on up to ``max_points`` seeded rows, duplicates dropped."""
    points, dropped = distinct_sample(X, max_points=max_points, seed=seed)
    value = mle_from_distances(neighbour_distances(points, k), k)
    return Dimension("mle", value, points.shape[0], dropped, k)


def nearest_unlike(unit: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query row, the row of largest dot product with it (on unit rows: the
    nearest in cosine distance) among the rows whose label differs from the query's
    (labels: (n,) ints, e.g. equal for identical texts); -1 where there is none.
    Chunked float32 products."""
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], labels)  # each row's label block in ``order``
    counts = np.bincount(labels)
    unit32 = unit.astype(np.float32)
    nearest = np.empty(queries.size, dtype=np.int64)
    for start in range(0, queries.size, CHUNK):
        rows = queries[start:start + CHUNK]
        similarity = unit32[rows] @ unit32.T
        for r, query in enumerate(rows):  # the query itself and rows of its label
            first = starts[query]
            similarity[r, order[first:first + counts[labels[query]]]] = -np.inf
        best = np.argmax(similarity, axis=1)
        best[np.isneginf(similarity[np.arange(rows.size), best])] = -1
        nearest[start:start + CHUNK] = best
    return nearest


def random_unlike(labels: np.ndarray, queries: np.ndarray, rng: np.random.Generator,
                  *, tries: int = 50) -> np.ndarray:
    """One uniformly drawn row per query whose label differs from the query's (-1 where
    ``tries`` draws found none)."""
    n = labels.size
    partner = np.full(queries.size, -1, dtype=np.int64)
    todo = np.arange(queries.size)
    for _ in range(tries):
        if todo.size == 0:
            break
        draw = rng.integers(0, n - 1, size=todo.size)
        draw = draw + (draw >= queries[todo])
        ok = labels[draw] != labels[queries[todo]]
        partner[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return partner
