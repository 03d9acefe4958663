"""Built-in router plugin: RouterDC (Chen et al., NeurIPS 2024), dual contrastive routing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="routerdc", target="routeharness_routerdc.router:RouterDCRouter",
             description="RouterDC: query head + LLM embeddings, dual contrastive loss "
                         "(Chen et al. 2024)")
