"""A nearest-centroid utility router.

Training prompts are grouped by k-means (cosine geometry: embeddings are L2-normalised)
into ``n_clusters`` clusters; each cluster keeps the mean score and mean cost of every
model over its prompts. A new prompt gets the means of its nearest centroid as
``(scores_hat, costs_hat)``, and the harness picks ``argmax(scores_hat - lam * costs_hat)``.
It is kNN with the neighbourhoods fixed in advance: cheaper to store and to query.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import UTILITY, BaseRouter, Tags


def _normalise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _nanmean(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Column means skipping NaN; ``fallback`` where a column has no value."""
    known = ~np.isnan(values)
    total = known.sum(axis=0)
    mean = np.nan_to_num(values).sum(axis=0) / np.maximum(total, 1)
    return np.where(total > 0, mean, fallback)


class NearestCentroidRouter(BaseRouter):
    """Utility router: each cluster's mean (score, cost) per model.

    Hyper-parameters: ``n_clusters`` (at most the number of training prompts),
    ``n_iter`` (k-means iterations), ``random_state`` (k-means initialisation).
    Fitted: ``centroids_`` (c, d) unit vectors, ``cluster_scores_`` and
    ``cluster_costs_`` (c, m), costs in the harness's normalised units.
    """

    kind = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {"n_clusters": [2, 4, 8, 16, 32, 64]}
    #: configurations tied on validation AUC: the fewer clusters (coarser means, the more
    #: conservative estimate)
    tie_preference: ClassVar[dict[str, Any]] = {"n_clusters": "smaller"}
    tags: ClassVar[Tags] = Tags(pickle=True)

    def __init__(self, n_clusters: int = 16, n_iter: int = 25,
                 random_state: int | None = None):
        self.n_clusters = n_clusters
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Any) -> NearestCentroidRouter:
        """X: (n, d) training embeddings; outcomes: their ``routeharness.Outcomes``."""
        if int(self.n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters!r}")
        X = _normalise(X)
        if X.shape[0] != outcomes.n:
            raise ValueError(f"X has {X.shape[0]} rows but outcomes have {outcomes.n}")
        rng = np.random.default_rng(self.random_state)
        c = min(int(self.n_clusters), X.shape[0])
        centroids = X[rng.choice(X.shape[0], size=c, replace=False)]
        for _ in range(int(self.n_iter)):
            assignment = np.argmax(X @ centroids.T, axis=1)
            moved = centroids.copy()
            for j in range(c):
                members = X[assignment == j]
                if len(members):  # an empty cluster keeps its centroid
                    moved[j] = members.mean(axis=0)
            moved = _normalise(moved)
            if np.allclose(moved, centroids):
                break
            centroids = moved
        assignment = np.argmax(X @ centroids.T, axis=1)
        scores = np.asarray(outcomes.scores, dtype=np.float64)
        costs = np.asarray(outcomes.costs, dtype=np.float64)
        score_means = np.nan_to_num(np.nanmean(scores, axis=0))
        cost_means = np.nan_to_num(np.nanmean(costs, axis=0))
        self.centroids_ = centroids
        self.cluster_scores_ = np.stack([_nanmean(scores[assignment == j], score_means)
                                         for j in range(c)])
        self.cluster_costs_ = np.stack([_nanmean(costs[assignment == j], cost_means)
                                        for j in range(c)])
        return self

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(scores_hat, costs_hat), both (n, m): the nearest centroid's means."""
        self._check_fitted()
        nearest = np.argmax(_normalise(X) @ self.centroids_.T, axis=1)
        return self.cluster_scores_[nearest], self.cluster_costs_[nearest]
