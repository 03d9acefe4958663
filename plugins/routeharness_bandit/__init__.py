"""Built-in router plugin: LLM Bandit (Li, arXiv 2502.02743), a preference-conditioned
routing policy over IRT model identity vectors; one trained policy serves every trade-off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="bandit", target="routeharness_bandit.router:BanditRouter",
             description="LLM Bandit: one preference-conditioned softmax policy for every "
                         "trade-off, over IRT model identity vectors (add_model for new LLMs)")
