"""The router contract (scikit-learn style) and helpers every router shares.

- ``__init__`` only stores hyper-parameters, each under its own name;
- ``fit(X, outcomes)`` learns from training embeddings ``X`` (n, d) and their
  ``routeharness.data.Outcomes`` and returns ``self``; fitted state ends in ``_``;
- randomness only through a ``random_state`` hyper-parameter;
- a *utility* router implements ``predict(X, groups=None) -> (scores_hat, costs_hat)``,
  both (n, m), and the harness picks ``argmax(scores_hat - lam * costs_hat)``;
- a *selection* router implements ``route(X, lam, groups=None) -> (n,)`` model indices.
Costs are in normalised units (the most expensive model's mean training cost is 1).
The harness holds the test labels: a router never sees them.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from routeharness.errors import RouteHarnessError

UTILITY, SELECTION = "utility", "selection"

#: tie rule: among models of equal utility, the one with the lower (predicted) cost wins,
#: then the lower index. Stated in every result record.
TIE_BREAK = "cheapest"


class NotFittedError(RouteHarnessError):
    """A router was used before ``fit``."""


def select(scores_hat: np.ndarray, costs_hat: np.ndarray, lam: float,
           tie_key: np.ndarray | None = None) -> np.ndarray:
    """Model index per row maximising ``scores_hat - lam * costs_hat``; ``lam = inf``
    means cost only. Ties go to the cheaper model (``TIE_BREAK``), or to the lowest
    ``tie_key`` (m,) when given. A missing cell (NaN score or cost) never wins."""
    missing = np.isnan(scores_hat) | np.isnan(costs_hat)
    scores_hat = np.where(np.isnan(scores_hat), -np.inf, scores_hat)
    costs_hat = np.where(np.isnan(costs_hat), np.inf, costs_hat)
    if np.isinf(lam):
        utility = -costs_hat
        default_key = -scores_hat  # among equally cheap, the better one
    else:
        with np.errstate(invalid="ignore"):  # 0 * inf for a missing cost at lam = 0
            utility = scores_hat - lam * costs_hat
        default_key = costs_hat
    # a missing cell never wins (a NaN utility would poison the row's maximum)
    utility = np.where(missing, -np.inf, utility)
    tie_key = default_key if tie_key is None else np.broadcast_to(tie_key, utility.shape)
    best = utility.max(axis=1, keepdims=True)
    tolerance = 1e-12 * np.maximum(1.0, np.abs(best))
    candidates = utility >= best - tolerance
    return np.where(candidates, tie_key, np.inf).argmin(axis=1)


TIE_RULES = ("cheapest", "best-average")


def best_models(scores: np.ndarray, costs: np.ndarray, lam: float,
                tie_break: str = TIE_BREAK) -> np.ndarray:
    """The label of each training row at trade-off ``lam``: its best model by actual
    outcome (for selection routers). With 0/1 scores most rows have several best models:
    ``tie_break="cheapest"`` labels the cheapest of them, ``"best-average"`` the one with
    the best mean training score (then the cheaper)."""
    if tie_break == "cheapest":
        return select(scores, costs, lam)
    if tie_break == "best-average":
        with warnings.catch_warnings():  # a model with no outcome at all: mean 0
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nan_to_num(np.nanmean(scores, axis=0), nan=0.0)
            mean_costs = np.nan_to_num(np.nanmean(costs, axis=0), nan=0.0)
        order = np.lexsort((mean_costs, -means))  # rank: best average first, then cheaper
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return select(scores, costs, lam, tie_key=rank.astype(float))
    raise ValueError(f"tie_break must be one of {TIE_RULES}, got {tie_break!r}")


class BaseRouter:
    """Base class giving ``get_params``/``set_params``, ``route`` for utility routers,
    the fitted check, and the sweep over trade-offs. Subclasses set ``kind`` and
    ``param_grid`` (the hyper-parameter grid the harness tunes on validation)."""

    kind: ClassVar[str] = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    #: capability flags: "oracle" (needs the evaluated labels: upper bound only),
    #: "deterministic" (same result without a seed), "needs_groups", "pickle".
    tags: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseRouter:
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no hyper-parameter {name!r}; "
                                 f"it has {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self) -> None:
        if not any(name.endswith("_") and not name.startswith("_") for name in vars(self)):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def fit(self, X: np.ndarray, outcomes: Any) -> BaseRouter:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} is a {self.kind} router: no predict()")

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        """Model index (n,) for each prompt at trade-off ``lam``."""
        if self.kind != UTILITY:
            raise NotImplementedError(f"{type(self).__name__} must implement route()")
        scores_hat, costs_hat = self.predict(X, groups)
        return select(scores_hat, costs_hat, lam)

    def route_sweep(self, X: np.ndarray, lams: np.ndarray,
                    groups: np.ndarray | None = None) -> np.ndarray:
        """(L, n) model indices, one row per trade-off. Utility routers predict once."""
        if self.kind == UTILITY:
            scores_hat, costs_hat = self.predict(X, groups)
            return np.stack([select(scores_hat, costs_hat, lam) for lam in lams])
        return np.stack([np.asarray(self.route(X, lam, groups)) for lam in lams])


def clone(router: Any) -> Any:
    """A new, unfitted router with the same hyper-parameters."""
    return type(router)(**router.get_params())


def accepts_random_state(router_cls: type) -> bool:
    return "random_state" in inspect.signature(router_cls.__init__).parameters


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting. Routers'
    networks are small: on a busy 2-core machine a second spinning thread slows a fit
    down several-fold instead of speeding it up. Never changes the setting globally."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
