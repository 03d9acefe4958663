"""kNN routers over L2-normalised embeddings (cosine similarity, faiss search).

Utility variant (``knn``): each model's predicted score and cost is the mean over the k
nearest training prompts, uniform or weighted by inverse cosine distance; missing cells
are skipped (a model with no neighbour outcome falls back to its training mean).
Selection variant (``knn-vote``): each neighbour votes, with the same weights, for its
best model at the trade-off; the vote's winner routes (vote ties: the model cheaper on
average). A neighbour with several best models (common with 0/1 scores) votes by the
``tie_break`` rule, which is tuned: "cheapest" or "best-average".

The search (``index``, a speed choice, never tuned): ``flat`` (exact, the default),
``ivf`` (inverted lists, ``nprobe`` of ``nlist`` lists scanned), ``hnsw`` (a graph) or
``auto`` (flat below ``AUTO_HNSW_FROM`` training prompts, else hnsw). ``plan_index``
gives the settings a fit uses (``index_plan_`` after ``fit``); ``recall_at_k`` measures
an approximate index against the exact one. The last approximate index built is kept
for the next fit on the same vectors (tuning), see ``_reuse_or_build``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from routeharness.base import SELECTION, UTILITY, BaseRouter, Tags, best_models

WEIGHTINGS = ("uniform", "distance")
INDEXES = ("flat", "ivf", "hnsw", "auto")
#: ``index="auto"`` searches exactly below this many training prompts, with hnsw above
AUTO_HNSW_FROM = 50_000
#: hnsw graph degree and build-time beam width (fixed: speed/recall, not routing quality)
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80
#: the k-means seed of ivf: fixed, not ``random_state``, so the index (and every route)
#: is a function of the data alone, as the ``deterministic`` tag promises
IVF_SEED = 20250518
#: ivf's k-means trains on at most this many points a list (a seeded sample above it):
#: 4x faster than faiss's 256 at 10^5-10^6 prompts, the lists as good for search
IVF_TRAIN_PER_LIST = 64


@dataclass(frozen=True)
class IndexPlan:
    """The search one fit uses: ``kind`` is flat, ivf or hnsw (``auto`` resolved);
    ``nlist``/``nprobe`` for ivf, ``m``/``ef_construction``/``ef_search`` for hnsw."""

    kind: str
    n: int
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def plan_index(n: int, k: int, index: str = "flat", nprobe: int | None = None,
               ef_search: int | None = None) -> IndexPlan:
    """The settings for ``n`` training prompts and ``k`` neighbours. ivf: ``nlist`` about
    4 sqrt(n), at most n/39 (faiss's k-means wants 39 points a centroid), ``nprobe``
    default nlist/8, but at least enough lists for about 10 * k candidates (k = 100 on
    a small set needs more than an eighth), never above nlist; hnsw: M 32,
    efConstruction 80, ``ef_search`` default max(2k, 64) and never below k. An unknown ``index`` is a one-line ``ValueError``."""
    if index not in INDEXES:
        raise ValueError(f"index must be one of {INDEXES}, got {index!r}")
    nprobe, ef_search = _positive("nprobe", nprobe), _positive("ef_search", ef_search)
    kind = ("hnsw" if n >= AUTO_HNSW_FROM else "flat") if index == "auto" else index
    if kind == "ivf":
        nlist = int(min(max(1, round(4 * np.sqrt(n))), max(1, n // 39)))
        # default: an eighth of the lists, and enough lists for about 10 * k candidates
        probe = max(nlist // 8, -(-10 * k * nlist // n)) if nprobe is None else nprobe
        return IndexPlan("ivf", n, nlist=nlist, nprobe=min(probe, nlist))
    if kind == "hnsw":
        ef = max(2 * k, 64) if ef_search is None else ef_search
        return IndexPlan("hnsw", n, m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION,
                         ef_search=max(ef, k))
    return IndexPlan("flat", n)


def build_index(X: np.ndarray, plan: IndexPlan) -> Any:
    """A faiss inner-product index over the rows of ``X`` (already L2-normalised), built
    by ``plan``; deterministic: ivf's k-means is seeded, hnsw is built on one thread
    (its parallel insertion order, and so its graph, would vary run to run)."""
    import faiss

    d = X.shape[1]
    if plan.kind == "ivf":
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, plan.nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = IVF_SEED
        index.cp.min_points_per_centroid = 1  # the plan already keeps 39 per list
        index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
        index.train(X)
        index.add(X)
        index.nprobe = plan.nprobe
        return index
    if plan.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, plan.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = plan.ef_construction
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.add(X)
        finally:
            faiss.omp_set_num_threads(before)
        index.hnsw.efSearch = plan.ef_search
        return index
    index = faiss.IndexFlatIP(d)
    index.add(X)
    return index


#: the last approximate index built, keyed by its data and build settings: tuning fits
#: one router per configuration on the same training set, and an hnsw or ivf build
#: (seconds to minutes) would otherwise be repeated for each; one entry, so at most one
#: index is held beyond its routers. Search settings are not in the key: each router
#: sets its own before searching.
_LAST_BUILD: dict[tuple[Any, ...], Any] = {}


def _reuse_or_build(X: np.ndarray, plan: IndexPlan) -> Any:
    """``build_index``, reusing the previous build for identical data and settings."""
    if plan.kind == "flat":  # copying the vectors is the whole build
        return build_index(X, plan)
    import hashlib

    digest = hashlib.blake2b(memoryview(np.ascontiguousarray(X)), digest_size=16).hexdigest()
    key = (digest, X.shape, plan.kind, plan.nlist, plan.m, plan.ef_construction)
    if key not in _LAST_BUILD:
        _LAST_BUILD.clear()
        _LAST_BUILD[key] = build_index(X, plan)
    return _LAST_BUILD[key]


def clear_index_cache() -> None:
    """Drop the kept approximate index (frees its memory once no router holds it)."""
    _LAST_BUILD.clear()


def _set_search(index: Any, plan: IndexPlan) -> None:
    if plan.kind == "ivf":
        index.nprobe = plan.nprobe
    elif plan.kind == "hnsw":
        index.hnsw.efSearch = plan.ef_search


def recall_at_k(X_train: np.ndarray, X_query: np.ndarray, k: int, index: str = "hnsw",
                nprobe: int | None = None, ef_search: int | None = None) -> float:
    """Mean share of each query's exact k nearest training rows (cosine) that ``index``
    also returns: measured against a flat index, not assumed."""
    train, query = _normalise(X_train), _normalise(X_query)
    k = min(int(k), train.shape[0])
    _, exact = build_index(train, IndexPlan("flat", train.shape[0])).search(query, k)
    plan = plan_index(train.shape[0], k, index, nprobe, ef_search)
    _, found = build_index(train, plan).search(query, k)
    hits = sum(len(set(a.tolist()) & set(b[b >= 0].tolist())) for a, b in zip(exact, found))
    return hits / float(exact.size)


def _normalise(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class _KNNBase(BaseRouter):
    tags: ClassVar[Tags] = Tags(deterministic=True)

    def __init__(self, k: int = 10, weighting: str = "uniform", index: str = "flat",
                 nprobe: int | None = None, ef_search: int | None = None,
                 random_state: int | None = None):
        self.k = k
        self.weighting = weighting
        self.index = index
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Any) -> _KNNBase:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k!r}")
        X = _normalise(X)
        if X.shape[0] != outcomes.n:
            raise ValueError(f"X has {X.shape[0]} rows but outcomes have {outcomes.n}")
        plan = plan_index(X.shape[0], int(self.k), self.index, self.nprobe, self.ef_search)
        self.index_ = _reuse_or_build(X, plan)
        self.index_plan_ = plan
        self.scores_ = np.asarray(outcomes.scores, dtype=np.float64)
        self.costs_ = np.asarray(outcomes.costs, dtype=np.float64)
        self.score_means_ = np.nan_to_num(np.nanmean(self.scores_, axis=0), nan=0.0)
        self.cost_means_ = np.nan_to_num(np.nanmean(self.costs_, axis=0), nan=0.0)
        self.n_models_ = outcomes.m
        return self

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices (n, k) and their weights (n, k), rows summing to 1 (a slot
        the search left empty has weight 0; a row with none falls back to the means)."""
        self._check_fitted()
        k = min(int(self.k), self.index_.ntotal)
        _set_search(self.index_, self.index_plan_)  # the index may be shared: see below
        similarity, index = self.index_.search(_normalise(X), k)
        found = index >= 0  # ivf may find fewer than k in the lists it scans
        if self.weighting == "uniform":
            weights = found.astype(np.float64)
        else:
            distance = np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
            weights = np.where(found, 1.0 / (distance + 1e-6), 0.0)
        total = weights.sum(axis=1, keepdims=True)
        return np.where(found, index, 0), weights / np.maximum(total, 1e-300)

    @staticmethod
    def _weighted_nanmean(values: np.ndarray, weights: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """values (n, k, m), weights (n, k) -> (n, m), skipping NaN cells."""
        known = ~np.isnan(values)
        w = weights[:, :, None] * known
        total = w.sum(axis=1)
        mean = (np.nan_to_num(values) * w).sum(axis=1) / np.maximum(total, 1e-300)
        return np.where(total > 0, mean, fallback[None, :])


class KNNRouter(_KNNBase):
    """Utility kNN: (scores_hat, costs_hat) are neighbour means."""

    kind = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "k": [1, 3, 5, 10, 20, 50, 100], "weighting": ["uniform", "distance"]}

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        index, weights = self._neighbours(X)
        scores_hat = self._weighted_nanmean(self.scores_[index], weights, self.score_means_)
        costs_hat = self._weighted_nanmean(self.costs_[index], weights, self.cost_means_)
        return scores_hat, costs_hat


class KNNVoteRouter(_KNNBase):
    """Selection kNN: weighted vote of the neighbours' best models at the trade-off."""

    kind = SELECTION
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "k": [3, 5, 10, 20, 50, 100], "weighting": ["uniform", "distance"],
        "tie_break": ["cheapest", "best-average"]}

    def __init__(self, k: int = 10, weighting: str = "uniform", tie_break: str = "cheapest",
                 index: str = "flat", nprobe: int | None = None, ef_search: int | None = None,
                 random_state: int | None = None):
        super().__init__(k=k, weighting=weighting, index=index, nprobe=nprobe,
                         ef_search=ef_search, random_state=random_state)
        self.tie_break = tie_break

    def _vote(self, index: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
        labels = best_models(self.scores_, self.costs_, lam, self.tie_break)[index]  # (n, k)
        votes = np.zeros((index.shape[0], self.n_models_))
        np.add.at(votes, (np.arange(index.shape[0])[:, None], labels), weights)
        # ties in the vote go to the model cheaper on average in training
        top = votes >= votes.max(axis=1, keepdims=True) - 1e-12
        return np.where(top, self.cost_means_[None, :], np.inf).argmin(axis=1)

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        index, weights = self._neighbours(X)
        return self._vote(index, weights, lam)

    def route_sweep(self, X: np.ndarray, lams: np.ndarray,
                    groups: np.ndarray | None = None) -> np.ndarray:
        index, weights = self._neighbours(X)  # search once for every trade-off
        return np.stack([self._vote(index, weights, lam) for lam in lams])
