"""Built-in router plugin: GraphRouter (Feng et al., ICLR 2025), a GNN over a graph of
task, query and LLM nodes, trained by masked edge prediction (PyTorch Geometric)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_routers(register: Callable[..., Any]) -> None:
    register(name="graphrouter", target="routeharness_graphrouter.router:GraphRouter",
             description="GraphRouter: 2-layer GNN on task/query/LLM nodes predicting each "
                         "query-LLM edge's score and cost (masked edge prediction)")
