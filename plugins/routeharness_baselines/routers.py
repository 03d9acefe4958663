"""Reference routers (random, best single, cheapest). The oracle is not a router: the
harness computes it from the test labels as a reference row (``scoring.oracle_reference``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness.base import SELECTION, BaseRouter, Tags, select


class RandomRouter(BaseRouter):
    """A uniformly random model per prompt, whatever the trade-off."""

    kind = SELECTION
    tags: ClassVar[Tags] = Tags(pickle=True)

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Any) -> RandomRouter:
        self.n_models_ = outcomes.m
        return self

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        # the same draw for every trade-off: random routing ignores lam
        rng = np.random.default_rng(self.random_state)
        return rng.integers(0, self.n_models_, size=len(X))


class _ConstantRouter(BaseRouter):
    kind = SELECTION
    tags: ClassVar[Tags] = Tags(deterministic=True, pickle=True)

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        return np.full(len(X), self.model_index_, dtype=np.int64)


class BestSingleRouter(_ConstantRouter):
    """The model with the best mean training score (ties: the cheaper one)."""

    def fit(self, X: np.ndarray, outcomes: Any) -> BestSingleRouter:
        means = np.nanmean(outcomes.scores, axis=0)[None, :]
        self.model_index_ = int(select(means, np.nanmean(outcomes.costs, axis=0)[None, :], 0.0)[0])
        return self


class CheapestRouter(_ConstantRouter):
    """The model with the lowest mean training cost (ties: the better one)."""

    def fit(self, X: np.ndarray, outcomes: Any) -> CheapestRouter:
        means = np.nanmean(outcomes.costs, axis=0)[None, :]
        scores = np.nanmean(outcomes.scores, axis=0)[None, :]
        self.model_index_ = int(select(scores, means, np.inf)[0])
        return self
