"""Hook specifications: what a routeharness plugin can provide.

Each ``register_*`` hook hands the plugin a ``register`` callback that takes keyword
arguments only. A plugin module implements any subset with ``@hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("routeharness")
hookimpl = pluggy.HookimplMarker("routeharness")


@hookspec
def register_routers(register: Callable[..., None]) -> None:
    """Register routers: ``register(name=..., target="module:Class", description=...)``.

    ``target`` is a ``"module:attribute"`` string (imported lazily, on first use) or the
    class itself. The class follows the estimator contract in ``routeharness.base``.
    """


@hookspec
def register_encoders(register: Callable[..., None]) -> None:
    """Register encoders: ``register(name=..., target="module:factory", description=...)``.

    The factory is called as ``factory(arg)`` where ``arg`` is the text after ``name:``
    in ``--encoder name:arg`` (or ``None``) and returns a ``routeharness.encoders.Encoder``.
    """


@hookspec
def register_tasks(register: Callable[..., None]) -> None:
    """Register tasks: ``register(name=..., card="path/to/card.yaml", loader="module:function")``.

    ``loader(card, data_dir=..., **options)`` returns a ``routeharness.data.RoutingTask``.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``routeharness`` CLI group ``cli``."""
