"""The vhelm-mm price table: the task card's prices, added to or overridden by a
``--prices FILE`` that a user writes for the models of their own suite.

A price file is CSV or YAML (by its extension) with exactly these columns (keys), all
required: ``model`` (a HELM model name, or a deployment name), ``price_input_per_mtok`` and
``price_output_per_mtok`` (USD per million tokens, finite, >= 0), ``source`` (where the
price comes from) and ``date`` (when it held: ``YYYY-MM`` or ``YYYY-MM-DD``). YAML: a list
of mappings with these keys. Any problem is one ``DataError`` line naming the file and
the row (CSV: numbered as a spreadsheet shows them, the header being row 1) or entry
(YAML: the first price is entry 1), and the column.
"""

from __future__ import annotations

import csv
import datetime
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeharness import DataError, RouteHarnessError

COLUMNS = ("model", "price_input_per_mtok", "price_output_per_mtok", "source", "date")
PRICE_COLUMNS = ("price_input_per_mtok", "price_output_per_mtok")
FORMAT_HINT = ("CSV or YAML with the columns model, price_input_per_mtok, "
               "price_output_per_mtok (USD per million tokens), source, date")
_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?")


@dataclass(frozen=True)
class Price:
    """One model's token prices (USD per million tokens) and where they come from."""

    input_per_mtok: float
    output_per_mtok: float
    source: str
    date: str
    origin: str  # the task card, or the --prices file that gave it

    def note(self) -> str:
        return f"price: {self.source} ({self.date}; from {self.origin})"


def card_prices(card: Any) -> dict[str, Price]:
    """The task card's price table: {model name: Price}."""
    as_of = str(card.cost.get("prices_as_of", "")) if card.cost is not None else ""
    origin = f"task card {card.name} v{card.version}"
    return {m["name"]: Price(float(m["price_input_per_mtok"]), float(m["price_output_per_mtok"]),
                             "the card's price table", as_of, origin)
            for m in card.models
            if m.get("price_input_per_mtok") is not None
            and m.get("price_output_per_mtok") is not None}


def read_prices(path: str | Path) -> dict[str, Price]:
    """A ``--prices`` file (CSV or YAML, see the module docstring), strictly read:
    {model: Price}."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise RouteHarnessError(f"{path}: a price file must be .csv, .yaml or .yml "
                                f"({FORMAT_HINT})")
    if not path.is_file():
        raise RouteHarnessError(f"{path}: price file not found (or not a regular file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the price file: {exc}", source=str(path)) from None
    entries = _csv_entries(text, path) if suffix == ".csv" else _yaml_entries(text, path)
    prices: dict[str, Price] = {}
    first_seen: dict[str, str] = {}
    for where, entry in entries:
        model, price = _price(entry, where, path)
        if model in prices:
            raise DataError(f"{where}: model {model!r} is priced twice (first at "
                            f"{first_seen[model]}); give each model once", source=str(path))
        prices[model], first_seen[model] = price, where
    if not prices:
        raise DataError(f"no prices in the file ({FORMAT_HINT})", source=str(path))
    return prices


def _csv_entries(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise DataError(f"empty price file ({FORMAT_HINT})", source=str(path))
    header = [cell.strip() for cell in rows[0]]
    _check_keys(header, "row 1 (the header)", path)
    entries = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(header):
            raise DataError(f"row {number}: {len(cells)} cells, but the header has "
                            f"{len(header)}", source=str(path))
        entries.append((f"row {number}", dict(zip(header, cells))))
    return entries


def _yaml_entries(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    import yaml

    try:
        data = unique_key_yaml(text)
    except yaml.YAMLError as exc:
        raise DataError(yaml_problem(exc), source=str(path)) from None
    if not isinstance(data, list):
        raise DataError(f"must be a YAML list of prices, one mapping each ({FORMAT_HINT})",
                        source=str(path))
    entries = []
    for number, entry in enumerate(data, start=1):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: must be a mapping with the keys {', '.join(COLUMNS)}",
                            source=str(path))
        _check_keys([str(k) for k in entry], where, path)
        entries.append((where, entry))
    return entries


def _check_keys(keys: list[str], where: str, path: Path) -> None:
    for key in keys:
        if key not in COLUMNS:
            raise DataError(f"{where}: unknown column {key!r} (the columns are "
                            f"{', '.join(COLUMNS)})", source=str(path))
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise DataError(f"{where}: column {repeated[0]!r} given twice", source=str(path))
    missing = [c for c in COLUMNS if c not in keys]
    if missing:
        raise DataError(f"{where}: missing column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} ({FORMAT_HINT})", source=str(path))


def _price(entry: dict[str, Any], where: str, path: Path) -> tuple[str, Price]:
    def fail(column: str, problem: str) -> DataError:
        return DataError(f"{where}, column {column!r}: {problem}", source=str(path))

    model = entry["model"]
    if not isinstance(model, str) or not model.strip():
        raise fail("model", "must be a model name")
    if model != model.strip():
        raise fail("model", f"{model!r} has leading or trailing whitespace")
    values = []
    for column in PRICE_COLUMNS:
        value = entry[column]
        if isinstance(value, str):  # CSV cells are text; a YAML number is not quoted
            if path.suffix.lower() != ".csv":
                raise fail(column, f"{value!r} is not a number (USD per million tokens)")
            try:
                value = float(value)
            except ValueError:
                raise fail(column, f"{entry[column]!r} is not a number (USD per million "
                                   "tokens)") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(column, f"{value!r} is not a number (USD per million tokens)")
        value = float(value)
        if not math.isfinite(value):
            raise fail(column, f"{entry[column]!r} is not a finite number")
        if value < 0:
            raise fail(column, f"{entry[column]!r} is negative (a price is >= 0)")
        values.append(value)
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise fail("source", "must say where the price comes from (a URL or a name)")
    date = entry["date"]
    if isinstance(date, datetime.date):  # YAML reads an unquoted 2024-11-01 as a date
        date = date.isoformat()
    if not isinstance(date, str) or not _valid_date(date.strip()):
        raise fail("date", f"{date!r} is not a date (YYYY-MM or YYYY-MM-DD)")
    return model, Price(values[0], values[1], source.strip(), date.strip(), str(path))


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        datetime.date.fromisoformat(text if len(text) == 10 else f"{text}-01")
    except ValueError:
        return False
    return True


def _unique_key_loader() -> Any:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` refusing a key given twice in one mapping."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def yaml_problem(exc: Exception) -> str:
    """A YAML parse error as a short line: where (line, column) and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"invalid YAML{where}: {' '.join(str(problem).split())}"


def unique_key_yaml(text: str) -> Any:
    """YAML text as data, refusing a key given twice in one mapping (HELM's model files)."""
    import yaml

    return yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader
