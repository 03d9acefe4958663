"""JSON files the harness writes and reads back: the value codec (NaN and infinity as
the strings "nan", "inf", "-inf"; ``null`` = not available), typed readers that name the
JSON path of a value of the wrong shape, atomic writes that refuse a path they cannot
write in one line, reads of regular files with a schema tag, and the provenance every
file records (git commit, platform). Used by ``records`` and ``boards``."""

from __future__ import annotations

import json
import math
import numbers as _numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import (
    FileReadError,
    read_regular_file,
    write_text,
)


class RecordFormatError(RouteHarnessError):
    """A result or submission file whose JSON does not have the expected shape."""


# --- JSON values ------------------------------------------------------------------------------
def encode(value: Any) -> Any:
    """``value`` as JSON-able data: non-finite floats as "nan" / "inf" / "-inf", tuples as
    lists, numpy scalars as Python numbers."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def shape_error(path: str, expected: str, value: Any) -> RecordFormatError:
    shown = json.dumps(value)[:60] if isinstance(value, (str, int, float, bool)) or value is None \
        else type(value).__name__
    return RecordFormatError(f"{path}: expected {expected}, got {shown}")


def number(value: Any, path: str) -> float | None:
    """A JSON number (as is: an int stays an int), null (None: not available) or a
    non-finite string ("nan", "inf", "-inf"; "Infinity" too) -> a float."""
    if value is None:
        return None
    if isinstance(value, _numbers.Real) and not _is_bool(value):  # numpy scalars too
        return value  # a file read and written back is byte-for-byte the same JSON
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf",
                                                           "infinity", "-infinity"):
        return float(value.strip().lower().replace("infinity", "inf"))
    raise shape_error(path, "a number", value)


def numbers(value: Any, path: str) -> tuple[float | None, ...]:
    if not isinstance(value, list):
        raise shape_error(path, "a list of numbers", value)
    return tuple(number(v, f"{path}[{i}]") for i, v in enumerate(value))


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise shape_error(path, "a string", value)
    return value


def optional_text(value: Any, path: str) -> str | None:
    return None if value is None else text(value, path)


def integer(value: Any, path: str) -> int:
    if _is_bool(value) or not isinstance(value, _numbers.Integral) or value < 0:
        raise shape_error(path, "a non-negative integer", value)
    return int(value)


def in_range(value: Any, path: str, low: float = 0.0, high: float | None = None) -> float | None:
    """``number``, finite and in [low, high] (no upper bound when ``high`` is None), or null."""
    out = number(value, path)
    if out is not None and not (math.isfinite(out) and low <= out
                                and (high is None or out <= high)):
        upper = "inf)" if high is None else f"{high:g}]"
        raise shape_error(path, f"a finite number in [{low:g}, {upper} or null", value)
    return out


def seed(value: Any, path: str) -> int:
    """A seed: an integer in [0, 2**32)."""
    out = integer(value, path)
    if out >= 2**32:
        raise shape_error(path, "an integer seed in [0, 2**32)", value)
    return out


def lambdas(value: Any, path: str) -> tuple[float, ...]:
    """Trade-off weights: a list of numbers >= 0, "inf" allowed (older files wrote it)."""
    out = numbers(value, path)
    for i, lam in enumerate(out):
        if lam is None or math.isnan(lam) or lam < 0:
            raise shape_error(f"{path}[{i}]", 'a number >= 0 or "inf"', value[i])
    return out  # type: ignore[return-value]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise shape_error(path, "true or false", value)
    return value


def mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise shape_error(path, "an object", value)
    return value


def exact_keys(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    """A ``RecordFormatError`` naming the keys of ``keys`` that ``data`` lacks and the
    ones it has beyond them."""
    missing = [k for k in keys if k not in data]
    unknown = sorted(set(data) - set(keys))
    if missing or unknown:
        raise RecordFormatError(", ".join(
            ([f"missing key(s) {missing}"] if missing else [])
            + ([f"unknown key(s) {unknown}"] if unknown else [])))


def items(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise shape_error(path, "a list", value)
    return value


def anything(value: Any, path: str) -> Any:
    return value


def get(data: dict[str, Any], key: str, path: str, read: Callable[[Any, str], Any],
        default: Any = ...) -> Any:
    """``read(data[key])`` with ``path.key`` in errors; a missing key is an error unless a
    ``default`` is given."""
    where = f"{path}.{key}" if path else key
    if key not in data:
        if default is ...:
            raise RecordFormatError(f"{where}: missing")
        return default
    return read(data[key], where)


def _extra(data: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


# --- files ------------------------------------------------------------------------------------------
def write_json(data: dict[str, Any], path: str | Path, what: str = "output") -> Path:
    """``data`` encoded (no NaN or infinity as bare tokens), written atomically."""
    return write_text(json.dumps(encode(data), indent=1, allow_nan=False) + "\n", path, what)


def read_json(path: str | Path, what: str, schema: str) -> dict[str, Any]:
    """A JSON object with ``"schema": schema`` from a regular file; one line otherwise."""
    path = Path(path)
    try:
        raw = read_regular_file(path, what)
    except FileReadError as exc:
        if not path.exists() and not path.is_symlink():
            raise RouteHarnessError(f"{path}: no such {what}") from None
        raise RouteHarnessError(f"{path}: cannot read the {what}: {exc.reason}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RouteHarnessError(f"{path}: not valid JSON ({str(exc)[:120]})") from None
    found = data.get("schema") if isinstance(data, dict) else None
    if found != schema:
        raise RouteHarnessError(f"{path}: not a routeharness {what} (schema {found!r}, "
                                f"expected {schema!r})")
    return data


def read_as(path: str | Path, parse: Callable[[dict[str, Any]], Any], what: str,
            schema: str) -> Any:
    """``parse(read_json(path))``, a shape error prefixed with the file's path."""
    data = read_json(path, what, schema)
    try:
        return parse(data)
    except RecordFormatError as exc:
        raise RecordFormatError(f"{path}: {exc}") from None
