"""Name -> lazy ``"module:attr"`` targets for routers, encoders and tasks.

Plugins register names through the ``register_*`` hooks, each handed a ``Registrar``:
a ``register`` callback that takes the keywords of its kind only (``KEYWORDS``) and
checks every name and target, so a plugin's mistake is a one-line ``PluginError`` that
names the plugin, the kind and the keyword. The registry remembers which plugin (and
distribution) registered each name, so a duplicate name is an error that names both.
Targets are imported only when used, so listings stay instant.

A plugin whose hook raises (a bad keyword, a bug of its own) is reported as failed and
what it registered in that call is dropped; the other plugins keep working. Two plugins
claiming one name stop the run: the harness cannot know which one is meant.

The registries are cached on the plugin host (``routeharness.plugins.host``), which owns all
plugin state; this module depends on it, never the reverse.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from routeharness.common.errors import PluginError, UnknownNameError, one_line
from routeharness.plugins.host import PluginHost, env_note, get_host, hook_failure

KINDS = ("router", "encoder", "task")
HOOK_OF_KIND = {"router": "register_routers", "encoder": "register_encoders",
                "task": "register_tasks"}
#: the keywords ``register`` takes, per kind; ``target`` is the class, encoder factory or
#: task loader; a task's ``card`` (a YAML path) and ``build`` (a ``data build`` target)
#: are kept in ``Entry.options``
KEYWORDS = {"router": ("name", "target", "description"),
            "encoder": ("name", "target", "description"),
            "task": ("name", "target", "card", "build", "description")}
#: a name is what users type (``--router NAME``, ``--task NAME:GROUP``): no whitespace,
#: and no ':' (the separator of a spec's argument)
NAME_PATTERN = re.compile(r"[^\s:]+")
_TARGET_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Entry:
    """One registered name. ``target`` is ``"module:attr"`` or the object itself;
    ``options`` holds a task's ``card`` and ``build`` where given."""

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
                f"({self.distribution}): cannot import {self.target!r}: {one_line(exc, with_type=True)}"
            ) from exc
        return obj


class Registrar:
    """The ``register`` callback handed to one plugin's ``register_<kind>s`` hook: it
    checks each call and collects the entries, which count only if the hook returns."""

    def __init__(self, kind: str, plugin: str, distribution: str, version: str):
        self.kind, self.plugin = kind, plugin
        self.distribution, self.version = distribution, version
        self.entries: list[Entry] = []
        self.closed = False

    def __repr__(self) -> str:  # what ROUTEHARNESS_TRACE_PLUGINS shows for each call
        return f"<register {self.kind}s of plugin {self.plugin!r}>"

    def _error(self, what: str) -> PluginError:
        return PluginError(f"{HOOK_OF_KIND[self.kind]}: {what}", plugin=self.plugin)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        allowed = KEYWORDS[self.kind]
        if self.closed:
            raise self._error(f"register() called after the hook returned ({self.kind} "
                              f"{kwargs.get('name')!r})")
        if args:
            raise self._error(f"register() takes keyword arguments only "
                              f"({', '.join(allowed)}), got {len(args)} positional")
        name = kwargs.get("name")
        label = f"{self.kind} {name!r}" if isinstance(name, str) else f"a {self.kind}"
        unknown = [key for key in kwargs if key not in allowed]
        if unknown:
            hint = " (a task's loader is target=)" if unknown[0] == "loader" else ""
            raise self._error(f"{label}: unknown keyword {unknown[0]!r}{hint}; "
                              f"{self.kind}s take {', '.join(allowed)}")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise self._error(f"{label}: invalid name {name!r}: a name is non-empty text "
                              f"without whitespace or ':'")
        if any(entry.name == name for entry in self.entries):
            raise self._error(f"{label} registered twice")
        options: dict[str, Any] = {}
        for key in ("target", "build"):
            if key in kwargs or key == "target":
                self._check_target(label, key, kwargs.get(key))
                if key == "build":
                    options[key] = kwargs[key]
        description = kwargs.get("description", "")
        if not isinstance(description, str):
            raise self._error(f"{label}: description must be text, "
                              f"not {type(description).__name__}")
        if "card" in kwargs:
            card = kwargs["card"]
            if not isinstance(card, (str, os.PathLike)) or not str(card):
                raise self._error(f"{label}: card must be the path of a task card, "
                                  f"got {card!r}")
            options["card"] = str(card)
        self.entries.append(Entry(self.kind, name, kwargs["target"], self.plugin,
                                  self.distribution, self.version,
                                  " ".join(description.split()), options))

    def _check_target(self, label: str, key: str, target: Any) -> None:
        if target is None:
            raise self._error(f"{label}: no {key} ('module:attribute' or a callable)")
        if isinstance(target, str):
            if not _TARGET_PATTERN.fullmatch(target):
                raise self._error(f"{label}: {key} {target!r} is not 'module:attribute'")
        elif not callable(target):
            raise self._error(f"{label}: {key} must be 'module:attribute' or a callable, "
                              f"got {type(target).__name__}")


class Registry:
    """The names of one kind. ``failures``: one line per plugin that failed to load or
    whose hook for this kind failed (shown when a name is not found)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self.failures: list[str] = []

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
            note = ("; failed plugins: " + "; ".join(self.failures)) if self.failures else ""
            note += env_note()
            raise UnknownNameError(self.kind, name, self.names(), note=note) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def _collect(host: PluginHost, kind: str) -> Registry:
    registry = Registry(kind)
    hook = HOOK_OF_KIND[kind]
    for plugin, call in host.implementations(hook):
        registrar = Registrar(kind, plugin, *host.distribution(plugin))
        try:
            call(register=registrar)
        except Exception as exc:  # one plugin's bug must not take the others down
            host.fail(plugin, hook_failure(hook, plugin, exc))
            continue
        finally:
            registrar.closed = True
        for entry in registrar.entries:
            registry.add(entry)
    registry.failures = [f"{i.name!r} ({i.error})" for i in host.failed()]
    return registry


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (router, encoder or task), built on first use."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}")
    host = get_host()
    registry = host.registries.get(kind)
    if registry is None:
        registry = host.registries[kind] = _collect(host, kind)
    return registry


def collect_all() -> dict[str, Registry]:
    """Every registry, so that every plugin's registration hooks have run (``plugins``
    listing: a hook that fails shows as a failed plugin)."""
    return {kind: get_registry(kind) for kind in KINDS}
