"""Built-in router plugin: LLM Bandit (Li, arXiv 2502.02743), a preference-conditioned
routing policy over IRT model identity vectors; one trained policy serves every trade-off;
and LinUCB (Li et al., WWW 2010), the standard contextual bandit, on the embeddings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="bandit", target="routeharness_bandit.router:BanditRouter",
             description="LLM Bandit: one preference-conditioned softmax policy for every "
                         "trade-off, over IRT model identity vectors (add_model for new LLMs)")
    register(name="linucb", target="routeharness_bandit.linucb:LinUCBRouter",
             description="LinUCB contextual bandit: a ridge regression per model on the "
                         "embedding plus a confidence bonus; learns online")
