"""Reference routers (random, best single, cheapest). The oracle is not a router: the
harness computes it from the test labels as a reference row (``scoring.oracle_reference``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import SELECTION, BaseRouter, RouterState, StateError, Tags, select


def _restore_index(router: BaseRouter, state: RouterState, name: str) -> BaseRouter:
    """``BaseRouter.set_state`` of a state holding one non-negative integer ``name`` and
    nothing else."""
    names = sorted(set(state.arrays) | set(state.values))
    value = state.values.get(name)
    if names != [name] or isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"{type(router).__name__}: the state must hold one non-negative "
                         f"integer {name!r}, got {names} ({value!r})")
    return BaseRouter.set_state(router, state)


class RandomRouter(BaseRouter):
    """A uniformly random model per prompt, whatever the trade-off."""

    kind = SELECTION
    #: saveable: the state is ``n_models_``; routing draws from ``random_state`` as before
    tags: ClassVar[Tags] = Tags(pickle=True, saveable=True)

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

    def set_state(self, state: RouterState) -> RandomRouter:
        """Restores ``n_models_`` (checked: one non-negative integer)."""
        return _restore_index(self, state, "n_models_")


class _ConstantRouter(BaseRouter):
    kind = SELECTION
    tags: ClassVar[Tags] = Tags(deterministic=True, pickle=True, saveable=True)

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        return np.full(len(X), self.model_index_, dtype=np.int64)

    def set_state(self, state: RouterState) -> BaseRouter:
        """Restores ``model_index_`` (checked: one non-negative integer)."""
        return _restore_index(self, state, "model_index_")

    def check_sizes(self, *, models: int, dimension: int, n_train: int) -> None:
        """The model routed to must be one of the ``models``."""
        if not 0 <= self.model_index_ < models:
            raise StateError(f"{type(self).__name__}: the state routes to model "
                             f"{self.model_index_}, the manifest lists {models} models")


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
