"""The kNN routers' lookup table as plain data, and its maintenance: what ``routeharness
fit`` saves (``get_state``), ``route`` restores (``set_state``) and ``update`` extends
(``update_outcomes``) without retraining.

The state is the training vectors exactly as ``fit`` received them, the outcome table
(scores and normalised costs, NaN where missing), the per-model means and the resolved
search plan; the index is rebuilt from them by the same deterministic build, so a
restored router routes exactly as the fitted one. An update is the same as fitting on
the extended table (the harness checks it: ``benchmarks/maintenance.py``): new rows are
appended, new models are appended columns, and the index is rebuilt for the new size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from routeharness import RouterState, StateError
from routeharness_knn.search import IndexPlan, plan_index, prepare


class LookupTable:
    """Mixin of the kNN routers (which define ``k``, ``index``, ``nprobe``, ``ef_search``
    and set ``X_``, ``scores_``, ``costs_``, ``index_``, ``index_plan_`` in ``fit``)."""

    def get_state(self) -> RouterState:
        self._check_fitted()  # type: ignore[attr-defined]
        return RouterState(
            arrays={"X_": np.ascontiguousarray(self.X_), "scores_": self.scores_,
                    "costs_": self.costs_},
            values={"index_plan_": self.index_plan_.to_dict()})

    def set_state(self, state: RouterState) -> Any:
        try:
            X = np.asarray(state.arrays["X_"])
            scores = np.asarray(state.arrays["scores_"], dtype=np.float64)
            costs = np.asarray(state.arrays["costs_"], dtype=np.float64)
            plan = IndexPlan(**state.values["index_plan_"])
        except (KeyError, TypeError) as exc:
            raise StateError(f"{type(self).__name__}: an incomplete state ({exc})") from None
        if X.ndim != 2 or scores.ndim != 2 or scores.shape != costs.shape or \
                scores.shape[0] != X.shape[0]:
            raise StateError(f"{type(self).__name__}: state shapes disagree (vectors "
                             f"{X.shape}, scores {scores.shape}, costs {costs.shape})")
        self._set_table(X, scores, costs, plan)
        return self

    def outcome_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The table as fitted or last updated: scores and normalised costs (n, m)."""
        self._check_fitted()  # type: ignore[attr-defined]
        return self.scores_, self.costs_

    def update_outcomes(self, X_new: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                        rows: np.ndarray | None = None, X_rows: np.ndarray | None = None
                        ) -> Any:
        """The table replaced by ``scores``/``costs`` (n + n_new, m'): the old rows first
        (cells filled in, models appended as columns), then the rows of the new prompts,
        whose vectors are ``X_new`` (n_new, d); ``rows`` (r,) of the old table get the
        vectors ``X_rows`` (r, d) (prompts replaced). The same as ``fit`` on the whole
        table."""
        self._check_fitted()  # type: ignore[attr-defined]
        X_old = self.X_
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            X_rows = np.asarray(X_rows, dtype=X_old.dtype)
            if rows.ndim != 1 or X_rows.shape != (len(rows), X_old.shape[1]) or \
                    (len(rows) and not 0 <= rows.min() <= rows.max() < len(X_old)):
                raise ValueError(f"replaced rows {rows.shape} and vectors {X_rows.shape} do "
                                 f"not fit a table of {X_old.shape}")
            X_old = X_old.copy()
            X_old[rows] = X_rows
        X_new = np.asarray(X_new, dtype=self.X_.dtype)
        n_old, m_old = self.scores_.shape
        scores = np.asarray(scores, dtype=np.float64)
        costs = np.asarray(costs, dtype=np.float64)
        if X_new.ndim != 2 or (len(X_new) and X_new.shape[1] != self.X_.shape[1]):
            raise ValueError(f"new vectors of shape {X_new.shape}; the table's are "
                             f"{self.X_.shape[1]}-d")
        if scores.shape != costs.shape or scores.shape[0] != n_old + len(X_new) or \
                scores.shape[1] < m_old:
            raise ValueError(f"the updated table is {scores.shape} (costs {costs.shape}); "
                             f"expected {n_old + len(X_new)} rows and at least {m_old} models")
        X = np.concatenate([X_old, X_new]) if len(X_new) else X_old
        plan = plan_index(X.shape[0], int(self.k), self.index, self.nprobe,  # type: ignore
                          self.ef_search)  # type: ignore[attr-defined]
        self._set_table(X, scores, costs, plan)
        return self

    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> Any:
        """Online learning (``Tags.online``): the rows just routed are appended to the
        table with what was observed of them (NaN cells unobserved: under bandit feedback
        every model but the chosen one; the neighbour means skip them, a model with no
        neighbour outcome falls back to its mean). Columns beyond the table's are new
        models (a call without rows only adds them). The same as ``update_outcomes``."""
        self._check_fitted()  # type: ignore[attr-defined]
        X = np.asarray(X, dtype=self.X_.dtype)
        scores = np.asarray(scores, dtype=np.float64)
        costs = np.asarray(costs, dtype=np.float64)
        n_old, m_old = self.scores_.shape
        if scores.ndim != 2 or scores.shape != costs.shape or scores.shape[0] != len(X) \
                or scores.shape[1] < m_old:
            raise ValueError(f"partial_fit: {len(X)} rows with scores {scores.shape} and "
                             f"costs {costs.shape}; expected (rows, >= {m_old} models)")
        m = scores.shape[1]

        def merged(old: np.ndarray, new: np.ndarray) -> np.ndarray:
            wide = np.full((n_old + len(new), m), np.nan)
            wide[:n_old, :m_old] = old
            wide[n_old:] = new
            return wide

        return self.update_outcomes(X.reshape(len(X), self.X_.shape[1]),
                                    merged(self.scores_, scores), merged(self.costs_, costs))

    def _set_table(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                   plan: IndexPlan) -> None:
        self.index_, self.index_plan_ = prepare(X, plan, min(int(self.k), X.shape[0]))  # type: ignore[attr-defined]
        self.X_ = X
        self.scores_, self.costs_ = scores, costs
        self.score_means_ = np.nan_to_num(np.nanmean(scores, axis=0), nan=0.0)
        self.cost_means_ = np.nan_to_num(np.nanmean(costs, axis=0), nan=0.0)
        self.n_models_ = scores.shape[1]
        self.complete_ = (not np.isnan(scores).any(), not np.isnan(costs).any())
