"""kNN routers over L2-normalised embeddings (cosine similarity, faiss search).

Utility variant (``knn``): each model's predicted score and cost is the mean over the k
nearest training prompts, uniform or weighted by inverse cosine distance. A missing cell
(a model added with outcomes on some prompts: ``routeharness update``) counts as
``prior`` outcomes at the model's shrunk global mean (``table.shrunk_means``; its mean
cost for costs): with w the weights of the neighbours holding an outcome and u those of
the neighbours missing one, the estimate is ``(sum w s + prior u mean) / (w + prior u)``.
The rule acts only on sparse models (``routeharness.sparse_models``: outcomes on fewer
than half of the training prompts); every other model's estimate, and so every route on
a table without a sparse model (every built-in task), is the plain mean of the
neighbours' known cells, as before the rule (``sparse_params``: ``prior`` is tuned only
on a table with a sparse model). ``prior = 0`` is the rule off: the raw mean of the
neighbours that have an outcome. A row whose search found no neighbour falls back to the
training means.
Selection variant (``knn-vote``): each neighbour votes, with the same weights, for its
best model at the trade-off; the vote's winner routes (vote ties: the model cheaper on
average). A neighbour with several best models (common with 0/1 scores) votes by the
``tie_break`` rule, which is tuned: "cheapest" or "best-average".

The search (``index``, a speed choice, never tuned): ``flat`` (exact, the default),
``ivf`` (inverted lists, ``nprobe`` of ``nlist`` lists scanned), ``hnsw`` (a graph) or
``auto`` (flat below ``AUTO_HNSW_FROM`` training prompts, else hnsw). ivf without
``nprobe`` scans the fewest lists whose recall@k, measured on a sample of training
prompts, reaches ``recall`` (default ``search.TARGET_RECALL``; ``knn:index=ivf,recall=0.99``;
a number in (0, 1], not given with ``nprobe``; no effect on flat or hnsw). ``plan_index``
gives the settings a fit uses (``index_plan_`` after ``fit``, ``search_settings()`` for
a result record); ``recall_at_k`` measures an approximate index against the exact one.
The last index built and the last search are kept for the next fit and search on the
same vectors (tuning): see ``routeharness_knn.search``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import SELECTION, UTILITY, BaseRouter, StateError, Tags, best_models
from routeharness_knn.search import (
    AUTO_HNSW_FROM,
    INDEXES,
    IndexPlan,
    build_index,
    clear_index_cache,
    normalise,
    plan_index,
    recall_at_k,
    search,
)
from routeharness_knn.table import LookupTable

__all__ = ["AUTO_HNSW_FROM", "INDEXES", "IndexPlan", "KNNRouter", "KNNVoteRouter",
           "build_index", "clear_index_cache", "plan_index", "recall_at_k"]

WEIGHTINGS = ("uniform", "distance")


class _KNNBase(LookupTable, BaseRouter):
    tags: ClassVar[Tags] = Tags(deterministic=True, saveable=True, updatable=True,
                                online=True)

    def __init__(self, k: int = 10, weighting: str = "uniform", index: str = "flat",
                 nprobe: int | None = None, ef_search: int | None = None,
                 recall: float | None = None, random_state: int | None = None):
        self.k = k
        self.weighting = weighting
        self.index = index
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.recall = recall
        self.random_state = random_state

    def validate_params(self) -> None:
        """``k`` an integer >= 1, ``weighting`` and ``index`` known names, ``nprobe`` and
        ``ef_search`` positive integers or None, ``recall`` in (0, 1] or None and not
        with ``nprobe`` (the ranges ``fit`` and a saved router's manifest are held to)."""
        k = self.k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        plan_index(1, int(k), self.index, self.nprobe, self.ef_search, self.recall)

    def check_sizes(self, *, models: int, dimension: int, n_train: int) -> None:
        """The table is ``n_train`` prompts of ``dimension``-d vectors x ``models``."""
        if self.X_.shape != (n_train, dimension) or self.scores_.shape != (n_train, models):
            raise StateError(f"{type(self).__name__}: the state's table holds vectors "
                             f"{self.X_.shape} and outcomes {self.scores_.shape}; the "
                             f"manifest says {n_train} training prompts, {dimension}-d "
                             f"embeddings and {models} models")

    def fit(self, X: np.ndarray, outcomes: Any) -> _KNNBase:
        self.validate_params()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != outcomes.n:
            raise ValueError(f"X has shape {X.shape} but outcomes have {outcomes.n} rows")
        plan = plan_index(X.shape[0], int(self.k), self.index, self.nprobe, self.ef_search,
                          self.recall)
        # the lookup table (routeharness_knn.table): the one place that sets it, for fit,
        # a restored state and an update alike
        self._set_table(X, np.asarray(outcomes.scores, dtype=np.float64),
                        np.asarray(outcomes.costs, dtype=np.float64), plan)
        return self

    def search_settings(self) -> dict[str, Any]:
        """The search this fit uses, for a result record: the resolved ``IndexPlan``
        (kind, n, ivf's nlist and nprobe with the target recall and the sample recall
        that chose it, hnsw's M,
        efConstruction and efSearch)."""
        self._check_fitted()
        return self.index_plan_.to_dict()

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices (n, k) and their weights (n, k), rows summing to 1 (a slot
        the search left empty has weight 0; a row with none falls back to the means)."""
        self._check_fitted()
        k = min(int(self.k), self.index_.ntotal)
        prefetch = max([k, *self.param_grid.get("k", [])])
        similarity, index = search(self.index_, self.index_plan_, normalise(X), k, prefetch)
        found = index >= 0  # ivf may find fewer than k in the lists it scans
        if self.weighting == "uniform":
            weights = found.astype(np.float64)
        else:
            distance = np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
            weights = np.where(found, 1.0 / (distance + 1e-6), 0.0)
        total = weights.sum(axis=1, keepdims=True)
        return np.where(found, index, 0), weights / np.maximum(total, 1e-300)

    @staticmethod
    def _weighted_nanmean(values: np.ndarray, weights: np.ndarray, fallback: np.ndarray,
                          complete: bool = False) -> np.ndarray:
        """values (n, k, m), weights (n, k) -> (n, m), skipping NaN cells. ``complete``
        (no NaN in the training matrix): the same products and sums, formed in
        ``values`` (a fresh gather) with one (n, k, m) array instead of four."""
        if complete:
            w = np.repeat(weights[:, :, None], values.shape[2], axis=2)
            np.multiply(values, w, out=values)
        else:
            known = ~np.isnan(values)
            w = weights[:, :, None] * known
            values = np.nan_to_num(values) * w
        total = w.sum(axis=1)
        mean = values.sum(axis=1) / np.maximum(total, 1e-300)
        return np.where(total > 0, mean, fallback[None, :])


class KNNRouter(_KNNBase):
    """Utility kNN: (scores_hat, costs_hat) are neighbour means; a missing neighbour
    outcome counts as ``prior`` outcomes at the model's shrunk mean (module doc)."""

    kind = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "k": [1, 3, 5, 10, 20, 50, 100], "weighting": ["uniform", "distance"],
        "prior": [0.0, 0.25, 1.0]}
    #: a tie on validation AUC: the larger k (a smoother, more conservative estimate: the
    #: mean of more neighbours, nearer the training mean far from the training prompts),
    #: then uniform weights, then the larger prior (the more conservative estimate)
    tie_preference: ClassVar[dict[str, Any]] = {"k": "larger",
                                                "weighting": ["uniform", "distance"],
                                                "prior": "larger"}
    #: ``prior`` acts only on sparse models: tuned only on a table with one
    sparse_params: ClassVar[tuple[str, ...]] = ("prior",)
    #: a router saved before ``prior`` existed skipped missing cells; one saved before
    #: ``recall`` calibrated ivf to ``TARGET_RECALL`` (its kept plan holds the nprobe)
    params_added: ClassVar[dict[str, Any]] = {"prior": 0.0, "recall": None}

    def __init__(self, k: int = 10, weighting: str = "uniform", index: str = "flat",
                 nprobe: int | None = None, ef_search: int | None = None,
                 prior: float = 1.0, recall: float | None = None,
                 random_state: int | None = None):
        super().__init__(k=k, weighting=weighting, index=index, nprobe=nprobe,
                         ef_search=ef_search, recall=recall, random_state=random_state)
        self.prior = prior

    def validate_params(self) -> None:
        """The kNN ranges, and ``prior`` a finite number >= 0."""
        super().validate_params()
        prior = self.prior
        if isinstance(prior, bool) or not isinstance(prior, (int, float, np.integer,
                                                             np.floating)) \
                or not np.isfinite(prior) or prior < 0:
            raise ValueError(f"prior must be a finite number >= 0, got {prior!r}")

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        index, weights = self._neighbours(X)
        scores_hat = self._estimate(self.scores_[index], weights, self.score_means_,
                                    self.complete_[0], index, scores=True)
        costs_hat = self._estimate(self.costs_[index], weights, self.cost_means_,
                                   self.complete_[1], index, scores=False)
        return scores_hat, costs_hat

    def _estimate(self, values: np.ndarray, weights: np.ndarray, fallback: np.ndarray,
                  complete: bool, index: np.ndarray, scores: bool) -> np.ndarray:
        """values (n, k, m) of the neighbours ``index`` (n, k), weights (n, k) -> (n, m):
        the mean of the known neighbour cells; for a sparse model (``sparse_``) each
        missing cell counted as ``prior`` outcomes at the model's shrunk mean plus the
        neighbour's difficulty, within [0, 1] (``scores``), or at its mean cost. Every
        other model's column is the plain mean, the same computation as without the
        rule."""
        prior, sparse = float(self.prior), self.sparse_
        ruled = None
        if prior > 0 and sparse.any():
            prior_means = self.score_priors_ if scores else self.cost_means_
            offsets = self.row_offsets_[index] if scores else None
            clip = scores
            part = values[:, :, sparse]  # a copy: the plain mean may work in ``values``
            known = ~np.isnan(part)
            w = weights[:, :, None] * known
            gap = weights[:, :, None] * ~known
            imputed = np.broadcast_to(prior_means[None, None, sparse], part.shape)
            if offsets is not None:
                imputed = imputed + offsets[:, :, None]
            if clip:
                imputed = np.clip(imputed, 0.0, 1.0)
            total = w.sum(axis=1) + prior * gap.sum(axis=1)
            sums = (np.nan_to_num(part) * w).sum(axis=1) + prior * (gap * imputed).sum(axis=1)
            ruled = np.where(total > 0, sums / np.maximum(total, 1e-300),
                             fallback[None, sparse])
        mean = self._weighted_nanmean(values, weights, fallback, complete)
        if ruled is not None:
            mean[:, sparse] = ruled
        return mean


class KNNVoteRouter(_KNNBase):
    """Selection kNN: weighted vote of the neighbours' best models at the trade-off."""

    kind = SELECTION
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "k": [3, 5, 10, 20, 50, 100], "weighting": ["uniform", "distance"],
        "tie_break": ["cheapest", "best-average"]}
    #: a tie on validation AUC: the larger k, uniform weights, then the default label rule
    tie_preference: ClassVar[dict[str, Any]] = {
        "k": "larger", "weighting": ["uniform", "distance"],
        "tie_break": ["cheapest", "best-average"]}
    #: a router saved before ``recall`` existed calibrated ivf to ``TARGET_RECALL``
    params_added: ClassVar[dict[str, Any]] = {"recall": None}

    def __init__(self, k: int = 10, weighting: str = "uniform", tie_break: str = "cheapest",
                 index: str = "flat", nprobe: int | None = None, ef_search: int | None = None,
                 recall: float | None = None, random_state: int | None = None):
        super().__init__(k=k, weighting=weighting, index=index, nprobe=nprobe,
                         ef_search=ef_search, recall=recall, random_state=random_state)
        self.tie_break = tie_break

    def validate_params(self) -> None:
        """The kNN ranges, and ``tie_break`` one of the tie rules (its grid: both)."""
        super().validate_params()
        rules = tuple(self.param_grid["tie_break"])
        if self.tie_break not in rules:
            raise ValueError(f"tie_break must be one of {rules}, got {self.tie_break!r}")

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
