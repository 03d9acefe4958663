"""The one validation layer: every file and message that crosses a boundary (task cards,
board definitions, result files and their records, submissions, verification records,
router manifests, ``route`` input lines, ``serve`` requests) is a pydantic v2 model
derived from ``Contract``, parsed here and nowhere else.

- ``Contract``: unknown keys refused, nothing coerced (``"1"`` is not an int, ``true`` is
  not a number), values frozen. Sequences are ``list`` fields, never ``tuple`` (strict
  validation takes a list for a list only, and parsed JSON has lists), and mapping keys
  are strings (as in JSON). ``OpenContract`` keeps unknown keys and writes them back
  (result files written by a newer version).
- ``check(Model, data, where)``: a value (parsed JSON or YAML) as ``Model``, or the first
  problem as one line naming ``where`` (a file) and the key's JSON path:
  ``results.json: records[2].metrics.auc: expected a number, got "x"``.
- ``parse_json`` / ``parse_yaml``: text as data, a key given twice refused (JSON
  ``object_pairs_hook``, a YAML loader of our own), nesting and encodings errors one line;
  JSON and the bytes of every file through the one text reader (``textinput``).
- ``read_json`` / ``read_yaml``: a regular file through both.
- ``Number``: the JSON number codec of files the harness writes: ``NaN`` and infinity are
  the strings ``"nan"``, ``"inf"``, ``"-inf"`` on disk and floats in memory; ``null`` is
  "not available". ``dump_json`` writes a model with it (never a bare ``NaN`` token).

pydantic over msgspec: the contracts need per-field constraints and cross-field checks
(``model_validator``), error locations to name the key of a bad value, and JSON Schema
generation for docs/schemas/ (``json_schema``); pydantic does all four, FastAPI (``serve``)
speaks it natively, and it is already in the dependency tree. Its import (~0.1 s) is paid
only by commands that read such a file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from routeharness.common import textinput
from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import FileReadError

__all__ = ["FLOAT32_MAX", "Contract", "Field", "FiniteFloat", "Float32Vector", "NonNegative",
           "Number", "OpenContract", "check", "dump_json", "json_schema", "parse_json", "parse_yaml", "problem_line",
           "read_json", "read_yaml"]

M = TypeVar("M", bound=BaseModel)


class Contract(BaseModel):
    """A typed value crossing a boundary: unknown keys refused, nothing coerced, frozen.
    Its validator is built when first used, not at import (``defer_build``): a command
    starts without building the models it never reads."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              arbitrary_types_allowed=False, validate_default=False,
                              defer_build=True)


class OpenContract(Contract):
    """A ``Contract`` that keeps keys it does not know and writes them back unchanged."""

    model_config = ConfigDict(extra="allow")


# --- numbers ---------------------------------------------------------------------------------
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
               "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}


def _decode_number(value: Any) -> Any:
    """``"nan"``/``"inf"``/``"-inf"`` (any case; ``"Infinity"`` too) -> float; a numpy
    scalar -> its Python number; anything else as is, for the type check to judge."""
    if isinstance(value, str) and value.strip().lower() in _NON_FINITE:
        return _NON_FINITE[value.strip().lower()]
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _encode_number(value: int | float | None) -> int | float | str | None:
    if value is None or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


#: a number in a file the harness writes: finite, ``"nan"``, ``"inf"``, ``"-inf"``, or
#: null (not available); an int stays an int (a file read and written back is unchanged)
Number = Annotated[
    int | float | None, BeforeValidator(_decode_number),
    PlainSerializer(_encode_number, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"},
                              {"enum": ["nan", "inf", "-inf"]}]}),
]
#: a finite number (an int is accepted)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: a finite number >= 0
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: the largest float32 (a vector is stored and routed as float32)
FLOAT32_MAX = 3.4028234663852886e38


def _float32_range(values: list[float]) -> list[float]:
    if values and max(map(abs, values)) > FLOAT32_MAX:
        at = next(i for i, v in enumerate(values) if abs(v) > FLOAT32_MAX)
        raise ValueError(f"[{at}]: {values[at]:g} is outside float32's range (at most "
                         f"{FLOAT32_MAX:.4g} in size)")
    return values


#: a vector of finite numbers that float32 holds (an embedding)
Float32Vector = Annotated[list[FiniteFloat], AfterValidator(_float32_range)]


# --- one line per problem --------------------------------------------------------------------
def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        text = str(value) if isinstance(value, textinput.IntegerText) else \
            json.dumps(value, ensure_ascii=False) if not isinstance(value, float) or \
            math.isfinite(value) else str(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return {dict: "an object", list: "a list", tuple: "a list"}.get(type(value),
                                                                   type(value).__name__)


def _path(loc: Sequence[Any], data: Any) -> str:
    """A pydantic location as a JSON path (``records[2].metrics.auc``); a list item that
    has a ``name`` shows it (``models[1] ('gpt-4')``)."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, (list, tuple)) and \
                -len(node) <= part < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str) and name:
                out += f" ({name!r})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


_EXPECTED = {
    "int_type": "an integer", "int_from_float": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "string_type": "a string",
    "bool_type": "true or false", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "none_required": "null", "set_type": "a list",
}


def _problem(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f", got {_shown(error.get('input'))}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "")
        return f"must be {op} {bound}{got}"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}{got}"
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        return f"must not be empty{got}"
    if kind == "union":
        return f"{error['msg']}{got}"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error") or error.get("msg", ""))
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = str(error.get("msg", kind))
    return message[0].lower() + message[1:] + got if message else kind


def problem_line(exc: ValidationError, where: str, data: Any = None) -> str:
    """The first problem of ``exc`` as one line: ``where: key.path: problem``. Unknown
    keys come first (a misspelt key is also a missing one; its name says more), and the
    unknown or missing keys of one object are listed together."""
    errors = exc.errors(include_url=False)
    for error in errors:  # a union's branches add their type to the location: drop it
        error["loc"] = tuple(p for p in error["loc"] if isinstance(p, int) or not (
            str(p).startswith(("function-", "nullable[", "list[", "dict[", "tagged-union"))
            or str(p) in ("int", "float", "str", "bool", "none")))
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    same = [e for e in errors if tuple(e["loc"]) == loc]
    deeper = [e for e in errors if len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc)]) == loc]
    if first["type"] in _EXPECTED and deeper:
        # a union branch took the value's kind (a list, an object) and failed inside it:
        # that is the problem, not the kinds the other branches expected
        first = next((e for e in deeper if e["type"] == "extra_forbidden"), deeper[0])
        loc = tuple(first["loc"])
        same = [e for e in errors if tuple(e["loc"]) == loc]
    if len(same) > 1 and all(e["type"] in _EXPECTED for e in same):
        # a value no branch of a union took: name every kind it may be
        kinds = list(dict.fromkeys(_EXPECTED[e["type"]] for e in same))
        if "a number" in kinds and "an integer" in kinds:
            kinds.remove("an integer")
        first = {**first, "type": "union", "msg": "expected " + " or ".join(kinds)}
    prefix = f"{where}: " if where else ""
    if first["type"] in ("extra_forbidden", "missing"):
        parent = loc[:-1]
        keys = sorted(str(e["loc"][-1]) for e in errors
                      if e["type"] == first["type"] and tuple(e["loc"][:-1]) == parent)
        at = _path(parent, data)
        what = "unknown key(s)" if first["type"] == "extra_forbidden" else \
            "missing required key(s)"
        return f"{prefix}{at + ': ' if at else ''}{what} {keys}"
    at, problem = _path(loc, data), _problem(first)
    if at and problem.startswith("["):  # a list's check naming the item: embedding[3]: ...
        return f"{prefix}{at}{problem}"
    return f"{prefix}{at + ': ' if at else ''}{problem}"


def check(model: type[M], data: Any, where: str = "",
          error: type[RouteHarnessError] = RouteHarnessError,
          context: dict[str, Any] | None = None) -> M:
    """``data`` validated as ``model`` (``context``: settings its validators read, such
    as a limit); the first problem raised as ``error``, one line."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise error(problem_line(exc, where, data)) from None


# --- text -> data ----------------------------------------------------------------------------
def parse_json(raw: bytes | str, where: str,
               error: type[RouteHarnessError] = RouteHarnessError) -> Any:
    """JSON text (UTF-8 bytes or str) as data, read by the one text reader
    (``textinput.parse_json``): a repeated key, bad UTF-8, nesting deeper than
    ``MAX_JSON_DEPTH``, a lone surrogate or bad JSON is one line naming ``where``; an
    integer too long to be a number is kept as its text."""
    return textinput.parse_json(raw, where, error)


def _yaml_loader() -> Any:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` refusing a key given twice in one mapping."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def parse_yaml(text: str, where: str,
               error: type[RouteHarnessError] = RouteHarnessError) -> Any:
    """YAML text as data (safe tags only); a repeated key or bad YAML is one line."""
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())
    except RecursionError:
        raise error(f"{where}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        detail = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise error(f"{where}: not valid YAML{line}: {detail}") from None


def _read_text(path: Path, what: str, error: type[RouteHarnessError]) -> bytes:
    try:
        return textinput.read_file_bytes(path, what)
    except FileReadError as exc:
        if not path.exists() and not path.is_symlink():
            raise error(f"{path}: no such {what}") from None
        raise error(f"{path}: cannot read the {what}: {exc.reason}") from None


def read_json(path: str | Path, model: type[M], what: str, *, schema: str | None = None,
              error: type[RouteHarnessError] = RouteHarnessError) -> M:
    """A JSON file as ``model``; with ``schema``, its ``"schema"`` key must say so
    (``not a routeharness <what>`` otherwise). Every problem one line naming the file."""
    path = Path(path)
    data = parse_json(_read_text(path, what, error), str(path), error)
    if schema is not None:
        found = data.get("schema") if isinstance(data, dict) else None
        if found != schema:
            raise error(f"{path}: not a routeharness {what} (schema {found!r}, expected "
                        f"{schema!r})")
    return check(model, data, str(path), error)


def read_yaml(path: str | Path, model: type[M], what: str, *,
              error: type[RouteHarnessError] = RouteHarnessError) -> M:
    """A YAML file as ``model``; every problem one line naming the file."""
    path = Path(path)
    text = textinput.check_text(textinput.decode(_read_text(path, what, error), str(path),
                                                 error), str(path), error)
    return check(model, parse_yaml(text, str(path), error), str(path), error)


# --- data -> text ----------------------------------------------------------------------------
def dump_json(model: BaseModel, *, exclude_none: bool = False) -> str:
    """``model`` as the JSON the harness writes: indented by one, non-finite numbers as
    strings (``Number``), keys in field order, unknown keys of an ``OpenContract`` kept."""
    data = model.model_dump(mode="json", exclude_none=exclude_none, by_alias=True)
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of ``model`` as a file's reader validates it (docs/schemas/)."""
    return model.model_json_schema(mode="validation")
