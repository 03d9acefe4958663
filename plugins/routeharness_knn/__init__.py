"""Built-in router plugin: k-nearest-neighbour routers (cosine similarity, faiss)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="knn", target="routeharness_knn.router:KNNRouter",
             description="kNN utility router: mean score and cost of the k nearest training prompts")
    register(name="knn-vote", target="routeharness_knn.router:KNNVoteRouter",
             description="kNN selection router: the k nearest prompts vote for their best model")
