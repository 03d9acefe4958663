"""Built-in router plugin: multi-layer perceptron routers (PyTorch, CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="mlp", target="routeharness_mlp.router:MLPRouter",
             description="MLP utility router: one network predicts every model's score and cost")
    register(name="mlp-select", target="routeharness_mlp.router:MLPSelectRouter",
             description="MLP selection router: a classifier onto the best model, conditioned "
                         "on the trade-off")
