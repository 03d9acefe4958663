"""Built-in router plugin: reference routers (random, best single, cheapest); the oracle
is a reference the harness computes from the test labels, not a router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="random", target="routeharness_baselines.routers:RandomRouter",
             description="a uniformly random model for every prompt")
    register(name="best-single", target="routeharness_baselines.routers:BestSingleRouter",
             description="the model with the best mean training score, for every prompt")
    register(name="cheapest", target="routeharness_baselines.routers:CheapestRouter",
             description="the model with the lowest mean training cost, for every prompt")
