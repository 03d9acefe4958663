"""The hand-written strict validator for YAML/JSON mappings that came before
``routeharness.common.contract`` (task cards, dataset and cache sidecars, upstreams files
and manifests are contracts now); board definitions still use it. Unknown keys, missing
keys, wrong types and values out of range are errors naming the file and the key;
nothing is coerced."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeharness.common.errors import RouteHarnessError

#: a value check: returns a problem ("must be >= 0") or None
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its accepted types, whether it is required, and an optional
    check of its value. ``int`` never accepts ``bool``; ``float`` accepts ``int``."""

    types: type | tuple[type, ...]
    required: bool = False
    check: Check | None = None


def type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def is_type(value: Any, types: type | tuple[type, ...]) -> bool:
    """``isinstance`` without Python's surprises: a bool is not an int, an int is a float."""
    accepted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return isinstance(value, accepted)


def check_mapping(data: Any, fields: Mapping[str, Field], where: str,
                  error: type[RouteHarnessError] = RouteHarnessError) -> dict[str, Any]:
    """``data`` as a dict after checking it against ``fields``; the first problem is raised
    as ``error`` with ``where`` (file and, for nested mappings, the key path) in front."""
    if not isinstance(data, dict):
        raise error(f"{where}: must be a mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    missing = [k for k, f in fields.items() if f.required and k not in data]
    if missing:
        raise error(f"{where}: missing required key(s) {missing}")
    for key, value in data.items():
        spec = fields[key]
        if not is_type(value, spec.types):
            raise error(f"{where}: key {key!r} must be {type_name(spec.types)}, "
                        f"got {type(value).__name__}")
        problem = spec.check(value) if spec.check is not None else None
        if problem:
            raise error(f"{where}: key {key!r} {problem}, got {value!r}")
    return dict(data)


def positive(value: Any) -> str | None:
    return None if _finite(value) and value > 0 else "must be a finite number > 0"


def non_negative(value: Any) -> str | None:
    return None if _finite(value) and value >= 0 else "must be a finite number >= 0"


def non_empty(value: Any) -> str | None:
    return None if (str(value).strip() if isinstance(value, str) else value) else \
        "must not be empty"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def check_items(items: Any, fields: Mapping[str, Field], where: str,
                error: type[RouteHarnessError] = RouteHarnessError,
                unique: str | None = "name") -> list[dict[str, Any]]:
    """A list of mappings, each checked against ``fields`` (``where[i]`` in messages); with
    ``unique``, that key's value may not repeat (a model or group listed twice)."""
    if not isinstance(items, list):
        raise error(f"{where}: must be a list, got {type(items).__name__}")
    seen: set[Any] = set()
    out = []
    for i, item in enumerate(items):
        label = f"{where}[{i}]"
        if isinstance(item, dict) and unique is not None and isinstance(item.get(unique), str):
            label += f" ({item[unique]!r})"
        checked = check_mapping(item, fields, label, error)
        if unique is not None and unique in checked:
            if checked[unique] in seen:
                raise error(f"{where}: {unique} {checked[unique]!r} is listed twice")
            seen.add(checked[unique])
        out.append(checked)
    return out


def str_values(value: Any) -> str | None:
    """For a mapping of name -> description: every key and value a string."""
    bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    return f"must map names to strings (not {bad[0]!r})" if bad else None
