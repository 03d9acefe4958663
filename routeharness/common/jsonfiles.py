"""What is left of the untyped JSON file layer: ``write_json`` (data encoded with the
``Number`` codec: NaN and infinity as ``"nan"``, ``"inf"``; written atomically) and
``read_json`` (a schema-tagged JSON object from a regular file), used only by a saved
router's manifest (``routeharness.deploy.saved``) until it becomes a contract model.
Every other file goes through ``routeharness.common.contract``; the typed readers that
were here (``number``, ``text``, ``get``, ``mapping``...) were replaced by it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import FileReadError, read_regular_file, write_text


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
