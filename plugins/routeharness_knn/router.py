"""kNN routers over L2-normalised embeddings (cosine similarity, exact faiss search).

Utility variant (``knn``): each model's predicted score and cost is the mean over the k
nearest training prompts, uniform or weighted by inverse cosine distance; missing cells
are skipped (a model with no neighbour outcome falls back to its training mean).
Selection variant (``knn-vote``): each neighbour votes, with the same weights, for its
best model at the trade-off; the vote's winner routes (vote ties: the model cheaper on
average). A neighbour with several best models (common with 0/1 scores) votes by the
``tie_break`` rule, which is tuned: "cheapest" or "best-average".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness.base import SELECTION, UTILITY, BaseRouter, Tags, best_models

WEIGHTINGS = ("uniform", "distance")


def _normalise(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class _KNNBase(BaseRouter):
    tags: ClassVar[Tags] = Tags(deterministic=True)

    def __init__(self, k: int = 10, weighting: str = "uniform", random_state: int | None = None):
        self.k = k
        self.weighting = weighting
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Any) -> _KNNBase:
        import faiss

        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k!r}")
        X = _normalise(X)
        if X.shape[0] != outcomes.n:
            raise ValueError(f"X has {X.shape[0]} rows but outcomes have {outcomes.n}")
        index = faiss.IndexFlatIP(X.shape[1])
        index.add(X)
        self.index_ = index
        self.scores_ = np.asarray(outcomes.scores, dtype=np.float64)
        self.costs_ = np.asarray(outcomes.costs, dtype=np.float64)
        self.score_means_ = np.nan_to_num(np.nanmean(self.scores_, axis=0), nan=0.0)
        self.cost_means_ = np.nan_to_num(np.nanmean(self.costs_, axis=0), nan=0.0)
        self.n_models_ = outcomes.m
        return self

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices (n, k) and their weights (n, k), rows summing to 1."""
        self._check_fitted()
        k = min(int(self.k), self.index_.ntotal)
        similarity, index = self.index_.search(_normalise(X), k)
        if self.weighting == "uniform":
            weights = np.ones_like(similarity, dtype=np.float64)
        else:
            distance = np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
            weights = 1.0 / (distance + 1e-6)
        return index, weights / weights.sum(axis=1, keepdims=True)

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
                 random_state: int | None = None):
        super().__init__(k=k, weighting=weighting, random_state=random_state)
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
