"""How the conformance checks fit and route a router: a fresh copy with the router's
check settings, fitted on a mock problem, routed through the harness's own path
(``routeharness.evaluation.scoring.route_split``) at the checks' trade-offs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from routeharness.evaluation.protocol import lambda_sweep
from routeharness.evaluation.scoring import route_split
from routeharness.routers.base import accepts_random_state, clone, tags_of
from routeharness.testing import mock

#: the trade-offs the checks sweep: quality only, the protocol's range in decades, cost
#: only (0, 1e-3, 1e-2, ..., 1e3, inf)
LAMBDAS: tuple[float, ...] = lambda_sweep(7)


def fresh_copy(router: Any, **overrides: Any) -> Any:
    """An unfitted copy with ``random_state=0`` when the router takes one (reproducible),
    and the router's declared ``tags["check_params"]`` applied: smaller settings (fewer
    epochs) under which the contract still holds and the checks run in seconds, as
    scikit-learn's checks lower ``max_iter``."""
    new = clone(router)
    if accepts_random_state(type(new)) and getattr(new, "random_state", None) is None:
        new.set_params(random_state=0)
    check_params = tags_of(new).check_params
    if check_params:
        new.set_params(**check_params)
    if overrides:
        new.set_params(**overrides)
    return new


def fit_on(router: Any, problem: mock.MockProblem) -> Any:
    return router.fit(problem.X_train, problem.train)


def routes_of(router: Any, problem: mock.MockProblem, X: np.ndarray | None = None,
            data: Any = None, lams: Iterable[float] = LAMBDAS) -> np.ndarray:
    """(L, n) choices through the harness's own path (``scoring.route_split``)."""
    X = problem.X_test if X is None else X
    data = problem.test if data is None else data
    return route_split(router, X, data, list(lams), problem.cost_scale)
