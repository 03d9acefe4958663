"""CSV and JSON-lines split files -> ``pyarrow.Table``, parsed here rather than by pandas
or ``datasets`` so that each file is read once and read as written:

- text columns (id, prompt, group, embed_text, split, image) stay strings: "NA", "None",
  "null", "" and "01" are text, not missing values or numbers;
- an ``embedding`` cell is a list of numbers (JSON) or its JSON text (CSV), checked by
  ``routeharness.data.columns.read_embeddings``; a JSON ``true`` in it stays refusable;
- score and cost cells are numbers; an empty cell, "NA", "N/A", "NaN", "null" or "None"
  is a missing cell; anything else stays text for the validator to report with its row;
- a column name given twice is an error (pandas would rename the second ``score:a.1``);
- CSV fields of any size (the csv module's default limit is 128 KiB);
- bytes that are not UTF-8, CSV rows with the wrong number of fields and JSON lines that
  do not parse are problems naming the 0-based data row.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.columns import COST_PREFIX, EMBEDDING, SCORE_PREFIX

NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})


def _raise_field_limit() -> None:
    limit = sys.maxsize
    while True:  # sys.maxsize overflows a C long on some platforms
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _decode(data: bytes, source: str, builder: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc, source, builder) from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, source: str, builder: str) -> DataError:
    prefix = raw[:exc.start].decode("utf-8", errors="replace")
    message = f"not UTF-8 text: byte {exc.start} (0x{raw[exc.start]:02x}) cannot be decoded"
    if builder == "csv":
        _raise_field_limit()
        records = list(csv.reader(io.StringIO(prefix)))
        header = records[0] if records else []
        if prefix.endswith(("\n", "\r")) or not records:
            row, position = len(records) - 1, 0
        else:
            row, position = len(records) - 2, len(records[-1]) - 1
        column = header[position] if 0 <= position < len(header) else None
        return DataError(message, source=source, row=row if row >= 0 else None, column=column)
    row = prefix.count("\n")
    keys = re.findall(r'"([^"\\]+)"\s*:', prefix.rsplit("\n", 1)[-1])
    return DataError(message, source=source, row=row, column=keys[-1] if keys else None)


def _is_number_column(name: str) -> bool:
    return name.startswith((SCORE_PREFIX, COST_PREFIX))


def _number_cells(values: list[Any]) -> list[Any]:
    """Floats and None where every cell is one; else the cells as text (None for missing),
    so that the validator names the first cell that is not a number."""
    out: list[Any] = []
    for value in values:
        if value is None or (isinstance(value, str) and value.strip().lower() in NA_TOKENS):
            out.append(None)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(float(value))
        else:
            try:
                out.append(float(value))
            except (TypeError, ValueError):
                return [None if v is None else str(v) for v in values]
    return out


def _table(columns: dict[str, list[Any]], source: str) -> Any:
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        cells = _number_cells(values) if _is_number_column(name) else values
        if name == EMBEDDING and any(isinstance(x, bool) for v in values
                                     if isinstance(v, list) for x in v):
            cells = [v if v is None else json.dumps(v) for v in values]  # Arrow: true = 1.0
        try:
            arrays[name] = pa.array(cells)
        except (pa.ArrowException, TypeError, ValueError):
            # mixed JSON types in a column: as text, for the validator to judge
            arrays[name] = pa.array([None if v is None else
                                     v if isinstance(v, str) else json.dumps(v)
                                     for v in cells], type=pa.string())
    return pa.table(arrays)


def _duplicate(header: list[str]) -> tuple[str, int, int] | None:
    first: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in first:
            return name, first[name], index
        first[name] = index
    return None


def read_csv(data: bytes, source: str,
             limit: int | None = None) -> tuple[Any | None, list[DataError]]:
    """(table, problems): the table is None when there is any problem."""
    text = _decode(data, source, "csv")
    _raise_field_limit()
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        return None, [DataError(f"malformed CSV: {exc}", source=source)]
    if not records:
        return None, [DataError("empty file: no header", source=source)]
    header, body = records[0], records[1:]
    twice = _duplicate(header)
    if twice is not None:
        name, first, second = twice
        return None, [DataError(f"column {name!r} appears twice in the header (columns "
                                f"{first + 1} and {second + 1}): one column per name",
                                source=source, column=name)]
    if not body:
        return None, [DataError("empty split: no rows (only a header)", source=source)]
    problems: list[DataError] = []
    for row, record in enumerate(body):
        if len(record) != len(header):
            short = len(record) < len(header)
            missing = f" (first missing column {header[len(record)]!r})" if short else ""
            problems.append(DataError(
                f"{len(record)} fields but the header has {len(header)}{missing}",
                source=source, row=row, column=header[len(record)] if short else None))
            if limit is not None and len(problems) >= limit:
                break
    if problems:
        return None, problems
    columns = {name: [r[j] for r in body] for j, name in enumerate(header)}
    if "image" in columns:  # an empty image cell: no image
        columns["image"] = [v if v != "" else None for v in columns["image"]]
    return _table(columns, source), []


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(f"key {key!r} appears twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json``'s ``object_pairs_hook`` refusing a key given twice in one object (``json``
    would keep the last): raises a ``ValueError`` naming the key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_json_rows(data: bytes, source: str,
                   limit: int | None = None) -> tuple[Any | None, list[DataError]]:
    """JSON lines (one object per line) or one JSON list of objects -> (table, problems)."""
    text = _decode(data, source, "json")
    problems: list[DataError] = []
    records: list[dict[str, Any]] = []

    def parse(chunk: str, row: int | None) -> Any:
        try:
            return json.loads(chunk, object_pairs_hook=unique_keys)
        except _DuplicateKey as exc:
            problems.append(DataError(f"key {exc.key!r} appears twice in one object: one "
                                      "column per name", source=source, row=row,
                                      column=exc.key))
        except json.JSONDecodeError as exc:
            where = (f"line {exc.lineno}: {exc.msg}" if row is None
                     else f"line: {exc.msg} (character {exc.pos})")
            problems.append(DataError(f"invalid JSON {where}", source=source, row=row))
        return None

    if text.lstrip().startswith("["):
        value = parse(text, None)
        if problems:
            return None, problems
        if not all(isinstance(v, dict) for v in value):
            return None, [DataError("a JSON list must hold one object per row", source=source)]
        records = value
    else:
        if not text.strip():
            return None, [DataError("empty split: no rows (empty file)", source=source)]
        for row, line in enumerate(line for line in text.split("\n") if line.strip()):
            value = parse(line, row)
            if value is not None and not isinstance(value, dict):
                problems.append(DataError("each line must be a JSON object", source=source,
                                          row=row))
            elif value is not None:
                records.append(value)
            if limit is not None and len(problems) >= limit:
                break
        if problems:
            return None, problems
    if not records:
        return None, [DataError("empty split: no rows", source=source)]
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {name: [r.get(name) for r in records] for name in names}
    for name in ("prompt", "embed_text", "split"):  # text, or missing: never a number
        for row, value in enumerate(columns.get(name, ())):
            if value is not None and not isinstance(value, str):
                problems.append(DataError(f"{name} must be a string, got {value!r}",
                                          source=source, row=row, column=name))
                if limit is not None and len(problems) >= limit:
                    return None, problems
    if problems:
        return None, problems
    for name in ("id", "group"):  # numbers as ids or group names: kept as text
        if name in columns:
            columns[name] = [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                             else v for v in columns[name]]
    return _table(columns, source), []
