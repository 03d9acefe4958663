"""routeharness: a plugin-based evaluation harness for LLM routers.

The names in ``__all__`` are the public API that plugins import, e.g.
``from routeharness import BaseRouter, UTILITY, hookimpl``; everything else is internal
and may change. They are imported on first use (PEP 562 ``__getattr__``), so
``import routeharness`` itself imports no numpy, torch or datasets.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it (the one place each is exported from)
_PUBLIC: dict[str, str] = {
    "hookimpl": "routeharness.plugins.hookspecs",
    "BaseRouter": "routeharness.routers.base",
    "select": "routeharness.routers.base",
    "UTILITY": "routeharness.routers.base",
    "SELECTION": "routeharness.routers.base",
    "Tags": "routeharness.routers.base",
    "NotFittedError": "routeharness.routers.base",
    "one_torch_thread": "routeharness.routers.base",
    "Outcomes": "routeharness.data.dataset",
    "RoutingData": "routeharness.data.dataset",
    "RoutingTask": "routeharness.data.dataset",
    "ModelInfo": "routeharness.data.dataset",
    "RouteHarnessError": "routeharness.common.errors",
    "DataError": "routeharness.common.errors",
    "PluginError": "routeharness.common.errors",
    "task_from_table": "routeharness.data.readers",
    "write_task": "routeharness.data.readers",
}

__all__ = [
    "SELECTION",
    "UTILITY",
    "BaseRouter",
    "DataError",
    "ModelInfo",
    "NotFittedError",
    "Outcomes",
    "PluginError",
    "RouteHarnessError",
    "RoutingData",
    "RoutingTask",
    "Tags",
    "__version__",
    "hookimpl",
    "one_torch_thread",
    "select",
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
