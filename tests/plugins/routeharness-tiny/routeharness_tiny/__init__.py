"""A third-party plugin: the router that always picks the second-cheapest model."""

from __future__ import annotations

import numpy as np

from routeharness.base import SELECTION, BaseRouter
from routeharness.hookspecs import hookimpl


class SecondCheapestRouter(BaseRouter):
    kind = SELECTION

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, outcomes):
        order = np.argsort(np.nanmean(outcomes.costs, axis=0), kind="stable")
        self.model_index_ = int(order[min(1, len(order) - 1)])
        return self

    def route(self, X, lam, groups=None):
        self._check_fitted()
        return np.full(len(X), self.model_index_)


@hookimpl
def register_routers(register):
    register(name="second-cheapest", target=SecondCheapestRouter,
             description="always the second-cheapest model (test plugin)")
