"""routeharness: a plugin-based evaluation harness for LLM routers.

The names in ``__all__`` are the public API, the names plugins import, e.g.
``from routeharness import BaseRouter, UTILITY, hookimpl``; each is documented in
docs/api.md. Everything else (every ``routeharness.<module>``) is internal and may change;
the conformance kit ``routeharness.testing`` is public too. The names are imported on
first use (PEP 562 ``__getattr__``), so ``import routeharness`` itself imports no numpy,
torch or datasets.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it (the one place each is exported from),
#: grouped as docs/api.md is
_PUBLIC: dict[str, str] = {
    # hooks
    "hookimpl": "routeharness.plugins.hookspecs",
    # the router contract
    "BaseRouter": "routeharness.routers.base",
    "UTILITY": "routeharness.routers.base",
    "SELECTION": "routeharness.routers.base",
    "Tags": "routeharness.routers.base",
    "select": "routeharness.routers.base",
    "best_models": "routeharness.routers.base",
    "sparse_models": "routeharness.routers.base",
    "SPARSE_COVERAGE": "routeharness.routers.base",
    "one_torch_thread": "routeharness.routers.base",
    # the data model
    "Outcomes": "routeharness.data.dataset",
    "RoutingData": "routeharness.data.dataset",
    "RoutingTask": "routeharness.data.dataset",
    "ModelInfo": "routeharness.data.dataset",
    "TaskCard": "routeharness.data.cards",
    # building a task
    "SCORE_PREFIX": "routeharness.data.columns",
    "COST_PREFIX": "routeharness.data.columns",
    "SPLITS": "routeharness.data.columns",
    "task_from_table": "routeharness.data.readers",
    "write_task": "routeharness.data.readers",
    "load_local": "routeharness.data.tasks",
    "load_card": "routeharness.data.cards",
    "task_card_path": "routeharness.common.resources",
    "carve_validation": "routeharness.data.dataset",
    # encoders and the cache
    "Encoder": "routeharness.embedding.encoders",
    "get_encoder": "routeharness.embedding.encoders",
    "image_bytes": "routeharness.embedding.cache",
    "default_cache_dir": "routeharness.embedding.cache",
    "CacheWarning": "routeharness.embedding.cache",
    # saved state
    "RouterState": "routeharness.routers.state",
    "default_state": "routeharness.routers.state",
    "check_layout": "routeharness.routers.state",
    "module_arrays": "routeharness.routers.state",
    "load_module": "routeharness.routers.state",
    # errors
    "RouteHarnessError": "routeharness.common.errors",
    "one_line": "routeharness.common.errors",
    "DataError": "routeharness.common.errors",
    "PluginError": "routeharness.common.errors",
    "NotFittedError": "routeharness.routers.base",
    "StateError": "routeharness.routers.state",
}

__all__ = [
    "COST_PREFIX",
    "SCORE_PREFIX",
    "SELECTION",
    "SPARSE_COVERAGE",
    "SPLITS",
    "UTILITY",
    "BaseRouter",
    "CacheWarning",
    "DataError",
    "Encoder",
    "ModelInfo",
    "NotFittedError",
    "Outcomes",
    "PluginError",
    "RouteHarnessError",
    "RouterState",
    "RoutingData",
    "RoutingTask",
    "StateError",
    "Tags",
    "TaskCard",
    "__version__",
    "best_models",
    "carve_validation",
    "check_layout",
    "default_cache_dir",
    "default_state",
    "get_encoder",
    "hookimpl",
    "image_bytes",
    "load_card",
    "load_local",
    "load_module",
    "module_arrays",
    "one_line",
    "one_torch_thread",
    "select",
    "sparse_models",
    "task_card_path",
    "task_from_table",
    "write_task",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        # an AttributeError lets ``from routeharness import tasks`` import the submodule
        raise AttributeError(f"module 'routeharness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
