"""The kNN routers' lookup table as plain data, and its maintenance: what ``routeharness
fit`` saves (``get_state``), ``route`` restores (``set_state``) and ``update`` extends
(``update_outcomes``) without retraining.

The state is the training vectors exactly as ``fit`` received them, the outcome table
(scores and normalised costs, NaN where missing), the per-model means and the resolved
search plan; an approximate index (ivf, hnsw: minutes of k-means or graph at 10^5-10^6
prompts) is kept too, as faiss's bytes (``RouterState.indexes``, the saved router's
``index.safetensors``) with its sha256 and the digest of the vectors it indexes, and
loaded instead of built; the exact index is the normalised vectors, made again. Either
way a restored router routes exactly as the fitted one. An update is the same as fitting on
the extended table (the harness checks it: ``benchmarks/maintenance.py``): new rows are
appended, new models are appended columns, and the index is rebuilt for the new size.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np

from routeharness import RouterState, StateError, sparse_models
from routeharness_knn.search import (
    IndexPlan,
    deserialise,
    plan_index,
    prepare,
    serialise,
    vectors_digest,
)

#: the name of the kept index in ``RouterState.indexes``
INDEX = "index_"

#: how many outcomes the pool's mean counts as in a model's shrunk mean
#: (``shrunk_means``). Fixed, not tuned: validation cannot see it on a complete table, and
#: a new model's first outcomes are rarely a random sample of the prompts (a team
#: evaluates it where it is convenient), so 20 lucky ones must not outweigh the pool
POOL_PRIOR_OUTCOMES = 50.0


def column_means(table: np.ndarray) -> np.ndarray:
    """Each model's mean over its known cells (0 for a model without any)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty column: "mean of empty"
        return np.nan_to_num(np.nanmean(table, axis=0), nan=0.0)


def shrunk_means(scores: np.ndarray, strength: float | None = None) -> np.ndarray:
    """Each model's mean score shrunk toward the pool's mean (the mean of the models'
    means) by how many outcomes it rests on: ``(n_j mean_j + c pool) / (n_j + c)`` with
    ``c = POOL_PRIOR_OUTCOMES`` (or ``strength``): a Beta prior centred on the pool,
    worth ``c`` outcomes. A model of thousands of outcomes keeps its mean; a new model
    of 20 is pulled most of the way to the pool; one of none gets the pool's mean."""
    scores = np.asarray(scores, dtype=np.float64)
    n = (~np.isnan(scores)).sum(axis=0).astype(np.float64)
    means = column_means(scores)
    if not n.any():
        return means
    c = POOL_PRIOR_OUTCOMES if strength is None else float(strength)
    pool = float(means[n > 0].mean())
    return (n * means + c * pool) / np.maximum(n + c, 1e-300)


def row_offsets(scores: np.ndarray, sparse: np.ndarray) -> np.ndarray:
    """(n,) how each training prompt's outcomes differ from its models' means (the mean
    residual over the models that are not sparse, 0 where it has none): how much easier
    or harder the prompt is than average. A sparse model's missing outcome there is
    taken as its shrunk mean plus this (a two-way additive baseline: model quality plus
    prompt difficulty)."""
    dense = ~np.asarray(sparse, dtype=bool)
    if not dense.any() or not scores.shape[0]:
        return np.zeros(scores.shape[0])
    part = scores[:, dense]
    residual = part - column_means(part)[None, :]
    known = ~np.isnan(residual)
    count = known.sum(axis=1)
    return np.where(count > 0, np.nan_to_num(residual).sum(axis=1) / np.maximum(count, 1), 0.0)


class LookupTable:
    """Mixin of the kNN routers (which define ``k``, ``index``, ``nprobe``, ``ef_search``,
    ``recall``
    and set ``X_``, ``scores_``, ``costs_``, ``index_``, ``index_plan_`` in ``fit``)."""

    def get_state(self) -> RouterState:
        self._check_fitted()  # type: ignore[attr-defined]
        values: dict[str, Any] = {"index_plan_": self.index_plan_.to_dict()}
        indexes = {}
        blob = serialise(self.index_, self.index_plan_)
        if blob is not None:
            indexes[INDEX] = blob
            values["index_check_"] = {"sha256": hashlib.sha256(blob).hexdigest(),
                                      "vectors": vectors_digest(self.X_)}
        return RouterState(
            arrays={"X_": np.ascontiguousarray(self.X_), "scores_": self.scores_,
                    "costs_": self.costs_},
            values=values, indexes=indexes)

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
        built, digest = self._saved_index(state, X, plan)
        self._set_table(X, scores, costs, plan, built, digest)
        return self

    def _saved_index(self, state: RouterState, X: np.ndarray,
                     plan: IndexPlan) -> tuple[Any, str | None]:
        """The state's kept index, checked (its sha256 and the vectors it indexes, as
        recorded beside it; then ``deserialise``'s checks), with the vectors' digest;
        (None, None) when the state keeps none (flat, or saved before indexes were kept:
        built as before)."""
        name = type(self).__name__
        blob = state.indexes.get(INDEX)
        check = state.values.get("index_check_")
        if blob is None and check is None:
            return None, None
        if plan.kind == "flat" or blob is None or not isinstance(check, dict):
            raise StateError(f"{name}: the saved search index and the state's "
                             f"'index_check_' do not go together for a {plan.kind} index",
                             "indexes")
        if hashlib.sha256(blob).hexdigest() != check.get("sha256"):
            raise StateError(f"{name}: the saved search index is not the one whose sha256 "
                             "the state's 'index_check_' records (changed after it was "
                             "saved); refit", "indexes")
        digest = vectors_digest(X)
        if digest != check.get("vectors"):
            raise StateError(f"{name}: the saved search index was built from other vectors "
                             "than the state's X_; refit", "indexes")
        try:
            return deserialise(blob, plan, X.shape[0], X.shape[1]), digest
        except ValueError as exc:
            raise StateError(f"{name}: the saved search index: {exc}", "indexes") from None

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
                          self.ef_search, self.recall)  # type: ignore[attr-defined]
        self._set_table(X, scores, costs, plan)
        return self

    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> Any:
        """Online learning (``Tags.online``): the rows just routed are appended to the
        table with what was observed of them (NaN cells unobserved: under bandit feedback
        every model but the chosen one; the estimate treats them as any missing cell:
        ``KNNRouter``'s ``prior`` rule). Columns beyond the table's are new
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
                   plan: IndexPlan, built: Any = None, digest: str | None = None) -> None:
        self.index_, self.index_plan_ = prepare(X, plan, min(int(self.k), X.shape[0]),  # type: ignore[attr-defined]
                                                built, digest)
        self.X_ = X
        self.scores_, self.costs_ = scores, costs
        self.score_means_ = column_means(scores)
        self.cost_means_ = column_means(costs)
        self.sparse_ = sparse_models(scores)  # the models ``prior`` acts on
        # what the sparse rule imputes with (``KNNRouter._estimate``): only when it acts
        self.score_priors_ = shrunk_means(scores) if self.sparse_.any() else None
        self.row_offsets_ = row_offsets(scores, self.sparse_) if self.sparse_.any() else None
        self.n_models_ = scores.shape[1]
        self.complete_ = (not np.isnan(scores).any(), not np.isnan(costs).any())
