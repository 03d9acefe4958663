"""Built-in router plugin: ridge regression onto every model's score and cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="linear", target="routeharness_linear.router:RidgeRouter",
             description="ridge regression onto each model's score and cost (utility router)")
