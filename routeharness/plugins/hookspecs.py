"""Hook specifications: what a routeharness plugin can provide.

Each ``register_*`` hook hands the plugin a ``register`` callback that takes keyword
arguments only, those of its kind (``routeharness.plugins.registry.KEYWORDS``); an unknown
keyword, or a name that is empty or holds whitespace or ':', is a ``PluginError``. A
plugin module implements any subset with ``@hookimpl`` (``from routeharness import
hookimpl``). Every hook is documented in docs/plugin-hooks.md and has a test that calls
it (tests/test_plugin_boundary.py).
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
    class itself. The class follows the estimator contract in ``routeharness.routers.base``.
    """


@hookspec
def register_encoders(register: Callable[..., None]) -> None:
    """Register encoders: ``register(name=..., target="module:factory", description=...)``.

    The factory is called as ``factory(arg)`` where ``arg`` is the text after ``name:``
    in ``--encoder name:arg`` (or ``None``) and returns a ``routeharness.embedding.encoders.Encoder``.
    """


@hookspec
def register_tasks(register: Callable[..., None]) -> None:
    """Register tasks: ``register(name=..., target="module:load", card="card.yaml",
    build="module:build", description=...)`` (``card`` and ``build`` optional).

    ``load(card, data_dir=..., **options)`` returns a ``routeharness.data.dataset.RoutingTask``;
    ``build(source, out_dir, **options)`` converts upstream files (``data build``).
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``routeharness`` CLI group ``cli``.

    A command name already taken (a built-in or another plugin's) is an error: the
    plugin's commands are dropped and it is reported as failed.
    """
