"""The protocol's fixed facts: the trade-off sweep, the reference rows, and ``Protocol``,
everything that fixes the numbers (recorded in every result file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from routeharness.base import TIE_BREAK

DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, *np.logspace(-3, 3, 49).tolist(), float("inf"))
REFERENCE_ROUTERS = ("best-single", "random", "oracle")


@dataclass(frozen=True)
class Protocol:
    """Everything that fixes the numbers; recorded in every result file."""

    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    seeds: tuple[int, ...] = (0,)
    tune: bool = True
    max_configs: int = 24
    n_bootstrap: int = 200
    tie_break: str = TIE_BREAK
    fit_on: str = "train"
    tune_on: str = "validation"
    evaluate_on: str = "test"
    cost_normalisation: str = ("routing: train's most expensive model's mean cost = 1; "
                               "metrics: the evaluated split's most expensive model's mean cost = 1")
    missing_scores: str = "rows with a missing score are excluded from tuning and test metrics"
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lambdas"] = [("inf" if np.isinf(x) else x) for x in self.lambdas]
        out["seeds"] = list(self.seeds)
        return out
