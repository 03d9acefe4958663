"""LinUCB (Li, Chu, Langford and Schapire, WWW 2010: "A contextual-bandit approach to
personalized news article recommendation", the disjoint model) on the prompt
embeddings, as a utility router that learns online.

Each model j has a ridge regression of its score on the L2-normalised embedding with a
constant feature, ``A_j = ridge * I + sum x x^T`` and ``b_j = sum score * x`` over the
prompts whose outcome of j is known. Its predicted score is the upper confidence bound
``theta_j . x + alpha * sqrt(x^T A_j^-1 x)`` (``theta_j = A_j^-1 b_j``); its predicted
cost is the mean of its observed normalised costs. The harness picks
``argmax(score_ucb - lam * cost)``, so the bonus makes the router try the models it knows
least about, and ``alpha = 0`` is the greedy ridge router. ``fit`` starts the statistics
from the training outcomes (a warm start); ``partial_fit`` adds each observed cell by a
Sherman-Morrison update of ``A_j^-1`` (no refit), and a model added as a new column starts
at ``A = ridge * I`` with the mean cost of the others until its own costs are seen.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import UTILITY, BaseRouter, DataError, Tags


def _features(X: np.ndarray) -> np.ndarray:
    """The L2-normalised embedding and a constant 1: (n, d + 1)."""
    X = np.asarray(X, dtype=np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return np.hstack([X, np.ones((len(X), 1))])


class LinUCBRouter(BaseRouter):
    """Disjoint LinUCB over the models. Hyper-parameters: ``alpha`` (the width of the
    confidence bonus, in score units; 0 is greedy), ``ridge`` (the prior precision of each
    model's regression), ``random_state`` (unused: LinUCB is deterministic)."""

    kind = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {"alpha": [0.0, 0.1, 0.5, 1.0],
                                                  "ridge": [1.0, 10.0]}
    #: a tie on validation AUC: the smaller bonus (test routes are scored greedily), then
    #: the stronger prior
    tie_preference: ClassVar[dict[str, Any]] = {"alpha": "smaller", "ridge": "larger"}
    tags: ClassVar[Tags] = Tags(deterministic=True, online=True, pickle=True)

    def __init__(self, alpha: float = 1.0, ridge: float = 1.0, random_state: int | None = None):
        self.alpha = alpha
        self.ridge = ridge
        self.random_state = random_state

    def validate_params(self) -> None:
        """``alpha`` a finite number >= 0, ``ridge`` a finite number > 0."""
        for name, low, strict in (("alpha", 0.0, False), ("ridge", 0.0, True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value) or value < low or (strict and value == low):
                raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} "
                                 f"{low:g}, got {value!r}")

    def fit(self, X: np.ndarray, outcomes: Any) -> LinUCBRouter:
        """The statistics of every model from the training outcomes (NaN cells skipped)."""
        self.validate_params()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != outcomes.n:
            raise DataError(f"LinUCBRouter.fit: X has shape {X.shape}, expected "
                            f"({outcomes.n}, d) to match the outcomes")
        Z = _features(X)
        scores = np.asarray(outcomes.scores, dtype=np.float64)
        costs = np.asarray(outcomes.costs, dtype=np.float64)
        m, p = scores.shape[1], Z.shape[1]
        self.dimension_ = int(X.shape[1])
        self.A_inv_ = np.empty((m, p, p))
        self.b_ = np.zeros((m, p))
        for j in range(m):
            known = ~np.isnan(scores[:, j])
            Zj = Z[known]
            self.A_inv_[j] = np.linalg.inv(float(self.ridge) * np.eye(p) + Zj.T @ Zj)
            self.b_[j] = Zj.T @ scores[known, j]
        known_cost = ~np.isnan(costs)
        self.cost_sum_ = np.where(known_cost, costs, 0.0).sum(axis=0)
        self.cost_count_ = known_cost.sum(axis=0).astype(np.float64)
        self.n_models_ = m
        return self

    def _cost_means(self) -> np.ndarray:
        seen = self.cost_count_ > 0
        prior = float(np.mean(self.cost_sum_[seen] / self.cost_count_[seen])) if seen.any() \
            else 0.0
        return np.where(seen, self.cost_sum_ / np.maximum(self.cost_count_, 1.0), prior)

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(upper confidence bounds of the scores, mean observed costs), both (n, m)."""
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.dimension_:
            raise DataError(f"LinUCBRouter.predict: X has shape {X.shape}, expected "
                            f"(n, {self.dimension_})")
        Z = _features(X)
        theta = np.einsum("jpq,jq->jp", self.A_inv_, self.b_)           # (m, p)
        mean = Z @ theta.T                                                # (n, m)
        width = np.sqrt(np.maximum(np.einsum("np,jpq,nq->nj", Z, self.A_inv_, Z), 0.0))
        scores_hat = mean + float(self.alpha) * width
        return scores_hat, np.broadcast_to(self._cost_means(), scores_hat.shape).copy()

    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray
                    ) -> LinUCBRouter:
        """Each observed cell added to its model's statistics (Sherman-Morrison); extra
        columns are new models, starting from the prior."""
        self._check_fitted()
        X = np.asarray(X)
        scores = np.asarray(scores, dtype=np.float64)
        costs = np.asarray(costs, dtype=np.float64)
        m_old = self.n_models_
        if scores.ndim != 2 or scores.shape != costs.shape or scores.shape[0] != len(X) \
                or scores.shape[1] < m_old or (len(X) and X.shape[-1] != self.dimension_):
            raise ValueError(f"partial_fit: {len(X)} rows with scores {scores.shape} and "
                             f"costs {costs.shape}; expected (rows, >= {m_old} models) and "
                             f"{self.dimension_}-d vectors")
        extra = scores.shape[1] - m_old
        if extra:
            p = self.b_.shape[1]
            fresh = np.broadcast_to(np.eye(p) / float(self.ridge), (extra, p, p))
            self.A_inv_ = np.concatenate([self.A_inv_, fresh])
            self.b_ = np.vstack([self.b_, np.zeros((extra, p))])
            self.cost_sum_ = np.append(self.cost_sum_, np.zeros(extra))
            self.cost_count_ = np.append(self.cost_count_, np.zeros(extra))
            self.n_models_ = scores.shape[1]
        if not len(X):
            return self
        Z = _features(X.reshape(len(X), self.dimension_))
        for i, j in zip(*np.nonzero(~np.isnan(scores))):
            z, A_inv = Z[i], self.A_inv_[j]
            Az = A_inv @ z
            A_inv -= np.outer(Az, Az) / (1.0 + z @ Az)
            self.b_[j] += scores[i, j] * z
        known_cost = ~np.isnan(costs)
        self.cost_sum_ += np.where(known_cost, costs, 0.0).sum(axis=0)
        self.cost_count_ += known_cost.sum(axis=0)
        return self
