"""Name -> lazy ``"module:attr"`` targets for routers, encoders and tasks.

Plugins register names through the ``register_*`` hooks; the registry remembers which
plugin (and distribution) registered each, so a duplicate name is an error that names
both. Targets are imported only when used, so listings stay instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from routeharness.errors import PluginError, UnknownNameError

KINDS = ("router", "encoder", "task")
_HOOK_OF_KIND = {"router": "register_routers", "encoder": "register_encoders",
                 "task": "register_tasks"}


@dataclass(frozen=True)
class Entry:
    """One registered name. ``target`` is ``"module:attr"`` or the object itself."""

    kind: str
    name: str
    target: Any
    plugin: str
    distribution: str
    version: str
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """Import and return the target (a class, a factory or a loader function)."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} "
                f"({self.distribution}): cannot import {self.target!r}: {exc}"
            ) from exc
        return obj


class Registry:
    """The names of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        if entry.name in self._entries:
            first = self._entries[entry.name]
            raise PluginError(
                f"duplicate {self.kind} name {entry.name!r}: registered by plugin "
                f"{first.plugin!r} ({first.distribution} {first.version}) and by plugin "
                f"{entry.plugin!r} ({entry.distribution} {entry.version})"
            )
        self._entries[entry.name] = entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries


_registries: dict[str, Registry] | None = None


def reset() -> None:
    global _registries
    _registries = None


def _collect(kind: str) -> Registry:
    from routeharness.plugins import get_plugin_manager, plugin_distribution

    pm = get_plugin_manager()
    registry = Registry(kind)
    caller = getattr(pm.hook, _HOOK_OF_KIND[kind])
    # call each implementation on its own, so each name knows its plugin
    for impl in reversed(caller.get_hookimpls()):
        dist, version = plugin_distribution(impl.plugin_name)

        def register(*, name: str, target: Any = None, description: str = "",
                     _plugin: str = impl.plugin_name, _dist: str = dist,
                     _version: str = version, **options: Any) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_plugin!r} registered a {kind} with no name")
            registry.add(Entry(kind, name, target, _plugin, _dist, _version,
                               description, dict(options)))

        impl.function(register=register)
    return registry


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (router, encoder or task), built on first use."""
    global _registries
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}")
    if _registries is None:
        _registries = {}
    if kind not in _registries:
        _registries[kind] = _collect(kind)
    return _registries[kind]
