"""The plugin manager: entry points first, then the built-ins, with blocking and tracing.

Environment:
- ``ROUTEHARNESS_LOAD_PLUGINS=a,b``: load only these plugins (built-ins included);
  an empty value loads none.
- ``ROUTEHARNESS_BLOCK_PLUGINS=a,b``: never load these.
- ``ROUTEHARNESS_TRACE_PLUGINS=1``: print every hook call to stderr.
A plugin is named by its entry-point name (third party) or its short name (``knn`` for
the built-in ``routeharness_knn``); the module name works too.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from routeharness import __version__, hookspecs

ENTRY_POINT_GROUP = "routeharness"
BUILTIN_PREFIX = "routeharness_"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "routeharness_baselines",
    "routeharness_knn",
    "routeharness_mlp",
    "routeharness_linear",
    "routeharness_routerdc",
    "routeharness_sentence_transformers",
    "routeharness_routerbench",
    "routeharness_graphrouter",
    "routeharness_bandit",
    "routeharness_texttasks",
    "routeharness_vision",
    "routeharness_blindtest",
    "routeharness_vhelm",
)


@dataclass
class PluginInfo:
    """One plugin as loaded (or failed to load): what ``routeharness plugins`` lists."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


_pm: pluggy.PluginManager | None = None
_infos: list[PluginInfo] = []


def _env_set(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _allowed(name: str, module: str) -> bool:
    load, block = _env_set("ROUTEHARNESS_LOAD_PLUGINS"), _env_set("ROUTEHARNESS_BLOCK_PLUGINS")
    keys = {name, module}
    if block and keys & block:
        return False
    return load is None or bool(keys & load)


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(impl.name for impl in (pm.get_hookcallers(plugin) or []))


def _register(pm: pluggy.PluginManager, module_obj: object, info: PluginInfo) -> None:
    if pm.has_plugin(info.name):
        other = next(i for i in _infos if i.name == info.name and i.error is None)
        info.error = (f"plugin name {info.name!r} is already taken by "
                      f"{other.distribution} {other.version}")
        _infos.append(info)
        return
    pm.register(module_obj, name=info.name)
    info.hooks = _hooks_of(pm, module_obj)
    _infos.append(info)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "?"
        if dist == "routeharness" or not _allowed(ep.name, ep.value.split(":")[0]):
            continue
        info = PluginInfo(ep.name, ep.value, dist, version, builtin=False)
        try:
            module_obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            _infos.append(info)
            continue
        _register(pm, module_obj, info)


def _load_builtins(pm: pluggy.PluginManager) -> None:
    for module in DEFAULT_PLUGINS:
        name = module.removeprefix(BUILTIN_PREFIX)
        if not _allowed(name, module):
            continue
        info = PluginInfo(name, module, "routeharness", __version__, builtin=True)
        try:
            module_obj = importlib.import_module(module)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            _infos.append(info)
            continue
        _register(pm, module_obj, info)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first call."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("routeharness")
        pm.add_hookspecs(hookspecs)
        _infos.clear()
        _load_entry_points(pm)
        _load_builtins(pm)
        if os.environ.get("ROUTEHARNESS_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda msg: sys.stderr.write(str(msg)))
            pm.enable_tracing()
        _pm = pm
    return _pm


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests; after installing a plugin in-process)."""
    global _pm
    _pm = None
    _infos.clear()
    from routeharness import registry

    registry.reset()


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen: loaded ones with their hooks, failed ones with their error."""
    get_plugin_manager()
    return list(_infos)


def plugin_distribution(plugin_name: str) -> tuple[str, str]:
    """(distribution, version) of a loaded plugin; ('unknown', '?') for one added by hand."""
    for info in plugin_infos():
        if info.name == plugin_name and info.error is None:
            return info.distribution, info.version
    return "unknown", "?"


def failed_plugins() -> list[PluginInfo]:
    return [info for info in plugin_infos() if info.error is not None]
