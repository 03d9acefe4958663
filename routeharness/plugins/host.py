"""The plugin host: the built-ins, then entry points, with blocking and tracing.

Environment:
- ``ROUTEHARNESS_LOAD_PLUGINS=a,b``: load only these plugins (built-ins included);
  an empty value loads none.
- ``ROUTEHARNESS_BLOCK_PLUGINS=a,b``: never load these.
  A name in either that matches no plugin, or an empty LOAD value, is one warning line on
  stderr (once per process); an unknown-name error says which of them is set.
- ``ROUTEHARNESS_TRACE_PLUGINS=1``: print every hook call to stderr (the ``register_*``
  hooks included: each plugin's implementation is called through pluggy on its own).
A plugin is named by its entry-point name (third party) or its short name (``knn`` for
the built-in ``routeharness_knn``); the module name works too.

All plugin state (the pluggy manager, what loaded or failed, and what is built from the
hooks, such as ``routeharness.plugins.registry``'s registries) lives in one ``PluginHost``;
``get_host().reset()`` forgets all of it. This module imports nothing else of the core
but the hook specifications: ``routeharness.plugins.registry`` depends on it, never the reverse.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from routeharness import __version__
from routeharness.common.errors import one_line
from routeharness.plugins import hookspecs

ENTRY_POINT_GROUP = "routeharness"
#: the hook specifications a plugin may implement
HOOKS = frozenset(name for name, obj in vars(hookspecs).items()
                  if hasattr(obj, f"{ENTRY_POINT_GROUP}_spec"))
BUILTIN_PREFIX = "routeharness_"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "routeharness_baselines",
    "routeharness_knn",
    "routeharness_mlp",
    "routeharness_linear",
    "routeharness_routerdc",
    "routeharness_sentence_transformers",
    "routeharness_lexical",
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
    """One plugin as loaded (or failed): what ``routeharness plugins`` lists.

    ``loaded``: registered with the plugin manager (its hooks are called). ``error``: why
    it failed to import, or which of its hooks failed (then that hook's names are skipped
    and its other hooks still count); ``None`` when all is well.
    """

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    loaded: bool = False


def hook_failure(hook: str, plugin: str, exc: Exception) -> str:
    """The one-line report of ``plugin``'s ``hook`` raising ``exc``."""
    if getattr(exc, "plugin", None) == plugin and isinstance(getattr(exc, "detail", None), str):
        return exc.detail  # a PluginError that already names the hook and what is wrong
    return f"{hook} raised {one_line(exc, with_type=True)}"


def _env_set(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


_ENV_VARS = ("ROUTEHARNESS_LOAD_PLUGINS", "ROUTEHARNESS_BLOCK_PLUGINS")
_warned: set[str] = set()  # each warning once per process


def env_note() -> str:
    """The plugin-selection variables that are set, for an unknown-name error."""
    set_vars = [f"{var}={os.environ[var]!r}" for var in _ENV_VARS if var in os.environ]
    return f"; plugins selected by {', '.join(set_vars)}" if set_vars else ""


def _warn_env(candidates: set[str], names_shown: list[str]) -> None:
    """One line on stderr per variable naming plugins that match none (an empty
    ``ROUTEHARNESS_LOAD_PLUGINS`` loads none), once per process."""
    shown = ", ".join(sorted(names_shown)) or "none installed"
    for var in _ENV_VARS:
        names = _env_set(var)
        if names is None:
            continue
        unmatched = sorted(names - candidates)
        if var == _ENV_VARS[0] and not names:
            message = f"{var} is set but empty: no plugin is loaded"
        elif unmatched:
            message = (f"{var}: {', '.join(map(repr, unmatched))} match(es) no plugin "
                       f"(plugins: {shown})")
        else:
            continue
        if message not in _warned:
            _warned.add(message)
            sys.stderr.write(f"warning: {message}\n")


def _allowed(name: str, module: str) -> bool:
    load, block = _env_set("ROUTEHARNESS_LOAD_PLUGINS"), _env_set("ROUTEHARNESS_BLOCK_PLUGINS")
    keys = {name, module}
    if block and keys & block:
        return False
    return load is None or bool(keys & load)


class PluginHost:
    """Owns every piece of plugin state; ``reset()`` forgets it all in one call.

    ``registries`` is a cache that ``routeharness.plugins.registry`` fills (kind -> Registry);
    ``generation`` changes on every reset, so that holders of derived state (the CLI's
    plugin commands) know when to rebuild it.
    """

    def __init__(self) -> None:
        self._pm: pluggy.PluginManager | None = None
        self._infos: list[PluginInfo] = []
        self._candidates: set[str] = set()  # every plugin's names, loaded or not
        self._names: list[str] = []  # every plugin's name (not its module)
        self.registries: dict[str, Any] = {}
        self.generation = 0

    def reset(self) -> None:
        """Forget the loaded plugins and everything built from them."""
        self._pm = None
        self._infos = []
        self.registries.clear()
        self.generation += 1

    # --- loading ------------------------------------------------------------------------
    @property
    def pm(self) -> pluggy.PluginManager:
        """The pluggy plugin manager, loading the plugins on first use."""
        if self._pm is None:
            pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
            pm.add_hookspecs(hookspecs)
            self._pm, self._infos, self._candidates, self._names = pm, [], set(), []
            # built-ins first: a third-party plugin cannot take a built-in's plugin name
            self._load_builtins(pm)
            self._load_entry_points(pm)
            _warn_env(self._candidates, self._names)
            if os.environ.get("ROUTEHARNESS_TRACE_PLUGINS", "") not in ("", "0"):
                # sys.stderr looked up per message: the stream in use at call time
                pm.trace.root.setwriter(lambda msg: sys.stderr.write(str(msg)))
                pm.enable_tracing()
        return self._pm

    def add(self, plugin: object, name: str, *, distribution: str = "unknown",
            version: str = "?", module: str = "?") -> PluginInfo:
        """Register a plugin object by hand (tests; an application embedding the harness)."""
        info = PluginInfo(name, module, distribution, version, builtin=False)
        self._register(self.pm, plugin, info)
        return info

    def _register(self, pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
        if pm.has_plugin(info.name):
            other = self._info_of(info.name)
            taken_by = f"{other.distribution} {other.version}" if other else "another plugin"
            info.error = f"plugin name {info.name!r} is already taken by {taken_by}"
        else:
            try:
                pm.register(plugin, name=info.name)
            except Exception as exc:  # pluggy's validation: a hook's arguments misnamed
                info.error = one_line(exc, with_type=True)
            else:
                callers = pm.get_hookcallers(plugin) or []
                # a typo (register_router) would otherwise do nothing, silently; a hook
                # of a later version marked optionalhook=True is let through
                unknown = sorted(c.name for c in callers if c.spec is None and not any(
                    i.optionalhook for i in c.get_hookimpls() if i.plugin is plugin))
                if unknown:
                    pm.unregister(plugin)
                    info.error = (f"implements unknown hook {unknown[0]!r}; the hooks are "
                                  f"{', '.join(sorted(HOOKS))}")
                else:
                    info.loaded = True
                    info.hooks = sorted(c.name for c in callers)
        self._infos.append(info)

    def _load_entry_points(self, pm: pluggy.PluginManager) -> None:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            self._candidates |= {ep.name, ep.value.split(":")[0]}
            self._names.append(ep.name)
            if dist == "routeharness" or not _allowed(ep.name, ep.value.split(":")[0]):
                continue
            info = PluginInfo(ep.name, ep.value, dist, version, builtin=False)
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must not take the
                info.error = one_line(exc, with_type=True)  # others down (nor exit at import)
                self._infos.append(info)
                continue
            self._register(pm, plugin, info)

    def _load_builtins(self, pm: pluggy.PluginManager) -> None:
        for module in DEFAULT_PLUGINS:
            name = module.removeprefix(BUILTIN_PREFIX)
            self._candidates |= {name, module}
            self._names.append(name)
            if not _allowed(name, module):
                continue
            info = PluginInfo(name, module, "routeharness", __version__, builtin=True)
            try:
                plugin = importlib.import_module(module)
            except (Exception, SystemExit) as exc:
                info.error = one_line(exc, with_type=True)
                self._infos.append(info)
                continue
            self._register(pm, plugin, info)

    # --- what loaded ----------------------------------------------------------------------
    def infos(self) -> list[PluginInfo]:
        """Every plugin seen: loaded ones with their hooks, failed ones with their error."""
        self.pm  # noqa: B018 -- loads the plugins
        return list(self._infos)

    def _info_of(self, plugin_name: str) -> PluginInfo | None:
        return next((i for i in self._infos if i.name == plugin_name and i.loaded), None)

    def distribution(self, plugin_name: str) -> tuple[str, str]:
        """(distribution, version) of a loaded plugin; ('unknown', '?') for one added to
        the plugin manager by hand."""
        self.pm  # noqa: B018
        info = self._info_of(plugin_name)
        return (info.distribution, info.version) if info else ("unknown", "?")

    def failed(self) -> list[PluginInfo]:
        """Plugins that failed to import, or one of whose hooks failed."""
        return [info for info in self.infos() if info.error is not None]

    def fail(self, plugin_name: str, message: str) -> None:
        """Record that a loaded plugin's hook failed (``message``: one line)."""
        info = self._info_of(plugin_name)
        if info is None:  # registered with the plugin manager directly
            info = PluginInfo(plugin_name, "?", "unknown", "?", builtin=False, loaded=True)
            self._infos.append(info)
        info.error = message if info.error is None else f"{info.error}; {message}"

    # --- calling hooks ----------------------------------------------------------------------
    def implementations(self, hook_name: str) -> Iterator[tuple[str, Any]]:
        """Each plugin implementing ``hook_name``, in pluggy's call order, as (plugin name,
        a hook caller of that plugin's implementation alone).

        The callers go through pluggy (so tracing and call monitoring see every call), and
        one plugin at a time, so whatever a call registers, and any error it raises,
        belongs to that plugin.
        """
        pm = self.pm
        impls = list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))
        for impl in impls:
            others = [i.plugin for i in impls if i is not impl]
            try:
                caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
            except TypeError:  # pluggy keeps plugins in a set: an unhashable object
                self.fail(impl.plugin_name, f"{hook_name} not called: the plugin object "
                                            f"is unhashable (register a module or class)")
                continue
            yield impl.plugin_name, caller


_host = PluginHost()


def get_host() -> PluginHost:
    """The process-wide plugin host."""
    return _host


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first call."""
    return _host.pm


def reset_plugin_manager() -> None:
    """Forget the loaded plugins and the registries (tests; after an in-process install).
    Compatibility name for ``get_host().reset()``."""
    _host.reset()


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen: loaded ones with their hooks, failed ones with their error."""
    return _host.infos()


def plugin_distribution(plugin_name: str) -> tuple[str, str]:
    """(distribution, version) of a loaded plugin; ('unknown', '?') for one added by hand."""
    return _host.distribution(plugin_name)


def failed_plugins() -> list[PluginInfo]:
    """Plugins that failed to import, or one of whose hooks failed."""
    return _host.failed()
