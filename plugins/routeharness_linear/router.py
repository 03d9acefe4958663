"""Ridge regression router: the simplest parametric baseline.

One ridge regression per model and per target (score, normalised cost), solved in closed
form with an unpenalised intercept. Missing cells (NaN scores) are left out of that model's
fit only, so a model with few outcomes falls back towards its mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import BaseRouter, DataError, RouterState, StateError, Tags


def ridge_fit(X: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge for every column of ``Y`` (n, t) with NaN cells left out.

    Returns ``(W, b)``: (d, t) weights and (t,) intercepts; the intercept is not penalised
    (the inputs and targets are centred per column on the rows that column uses)."""
    d = X.shape[1]
    W = np.zeros((d, Y.shape[1]))
    b = np.zeros(Y.shape[1])
    observed = ~np.isnan(Y)
    # columns with the same observed rows share one factorisation (the usual case: all)
    patterns: dict[bytes, list[int]] = {}
    for j in range(Y.shape[1]):
        patterns.setdefault(np.packbits(observed[:, j]).tobytes(), []).append(j)
    for columns in patterns.values():
        rows = observed[:, columns[0]]
        if not rows.any():
            continue  # a model with no outcome predicts 0 (it never wins on score)
        Xr, Yr = X[rows], Y[rows][:, columns]
        x_mean, y_mean = Xr.mean(axis=0), Yr.mean(axis=0)
        Xc, Yc = Xr - x_mean, Yr - y_mean
        if len(Xc) >= d:  # primal: (d, d) system
            A = Xc.T @ Xc + alpha * np.eye(d)
            Wc = np.linalg.solve(A, Xc.T @ Yc)
        else:  # dual: (n, n) system, cheaper when there are fewer rows than dimensions
            K = Xc @ Xc.T + alpha * np.eye(len(Xc))
            Wc = Xc.T @ np.linalg.solve(K, Yc)
        W[:, columns] = Wc
        b[columns] = y_mean - x_mean @ Wc
    return W, b


class RidgeRouter(BaseRouter):
    """Utility router: ridge regressions predict each model's score and cost.

    ``alpha`` is the L2 penalty on standardised-scale embeddings (the embeddings are used as
    given: sentence encoders already normalise them). Predicted scores are clipped to [0, 1]
    and predicted costs to at least 1e-6 normalised units (a negative cost would make the
    most expensive model look free at large trade-offs)."""

    param_grid: ClassVar[dict[str, list[Any]]] = {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
    #: a tie on validation AUC: the stronger penalty (the smaller, more conservative fit)
    tie_preference: ClassVar[dict[str, Any]] = {"alpha": "larger"}
    tags: ClassVar[Tags] = Tags(deterministic=True, pickle=True, saveable=True)

    def __init__(self, alpha: float = 1.0, random_state: int | None = None):
        self.alpha = alpha
        self.random_state = random_state  # unused: the closed form has no randomness

    def fit(self, X: np.ndarray, outcomes: Any) -> RidgeRouter:
        """``X``: (n, d) training embeddings; ``outcomes``: their scores and costs (n, m)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != outcomes.n:
            raise DataError(f"linear: X has shape {X.shape}, expected ({outcomes.n}, d)")
        self.validate_params()
        m = outcomes.m
        Y = np.concatenate([np.asarray(outcomes.scores, dtype=np.float64),
                            np.asarray(outcomes.costs, dtype=np.float64)], axis=1)
        self.coef_, self.intercept_ = ridge_fit(X, Y, float(self.alpha))
        self.n_models_ = m
        return self

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(scores_hat, costs_hat), both (n, m): scores in [0, 1], costs in normalised units."""
        self._check_fitted()
        out = np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_
        m = self.n_models_
        return np.clip(out[:, :m], 0.0, 1.0), np.maximum(out[:, m:], 1e-6)

    def validate_params(self) -> None:
        """``alpha``: a finite number > 0."""
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or \
                not 0 < alpha < float("inf"):
            raise ValueError(f"linear: alpha must be a finite number > 0, got {alpha!r}")

    def check_sizes(self, *, models: int, dimension: int, n_train: int) -> None:
        """``coef_`` is (dimension, 2 x models)."""
        if self.coef_.shape != (dimension, 2 * models):
            raise StateError(f"linear: the state's coef_ has shape {self.coef_.shape}, the "
                             f"manifest says {dimension}-d embeddings and {models} models "
                             f"(expected {(dimension, 2 * models)})")

    def set_state(self, state: RouterState) -> RidgeRouter:
        """``get_state()``'s ``coef_`` (d, 2m), ``intercept_`` (2m,) and ``n_models_`` m,
        checked against each other; anything else is a one-line ``StateError``."""
        names = set(state.arrays) | set(state.values)
        if names != {"coef_", "intercept_", "n_models_"}:
            raise StateError(f"linear: the state holds {sorted(names)}, expected "
                             "['coef_', 'intercept_', 'n_models_']")
        coef, intercept, m = state.arrays.get("coef_"), state.arrays.get("intercept_"), \
            state.values.get("n_models_")
        if (coef is None or intercept is None or not isinstance(m, int) or coef.ndim != 2
                or coef.shape[1] != 2 * m or intercept.shape != (2 * m,)):
            raise StateError(f"linear: the state's coef_ {getattr(coef, 'shape', None)} and "
                             f"intercept_ {getattr(intercept, 'shape', None)} do not fit "
                             f"n_models_={m!r} (expected (d, 2m) and (2m,))")
        return super().set_state(state)
