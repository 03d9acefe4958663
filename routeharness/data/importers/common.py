"""What every importer shares: reading a source's files (regular files only, pickles
refused, a file cut short named as such), the outcome table an importer fills
(``Imported``), the cost rule, the split rule, and writing the result through the
canonical writer (``readers.task_from_table`` then ``readers.write_task``), so that an
imported dataset passes the project's one validation or nothing is written.

The cost rule (docs/formats/README.md): with ``--prices FILE``, tokens x that table; else
the source's real per-call cost where it has one; else the source's tokens x the source's
own price table; else no cost: every scored call gets the same placeholder cost
(``PLACEHOLDER_COST``), said in the dataset's notes and on the command line.

The split rule: the source's own splits where it has them (a validation split carved from
train when it has none); else a seeded split by prompt text within each group
(``TEST_FRACTION`` to test, ``VALIDATION_FRACTION`` to validation, the rest train;
``DEFAULT_SEED``), so that a prompt text is in one split only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError, RouteHarnessError, one_line
from routeharness.data.raw import read_bytes, regular_file

#: the seeded split of sources without their own splits
DEFAULT_SEED = 20250601
TEST_FRACTION = 0.2
#: of all prompts (0.125 of what is left after test)
VALIDATION_FRACTION = 0.1
#: the validation split carved from a source's own train split when it has no validation
CARVED_VALIDATION_FRACTION = 0.1
#: the cost of every scored call when the source has no cost (a placeholder, not USD)
PLACEHOLDER_COST = 1.0
#: the fields of a price table (RouterArena's ``cost.json`` layout), USD per million tokens
PRICE_FIELDS = ("input_token_price_per_million", "output_token_price_per_million")
#: how a pickle starts (protocol 2 and later: PROTO opcode, then the protocol number)
_PICKLE_PROTOCOLS = range(2, 6)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".joblib")
#: the names the splits go by in the sources
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation",
               "val": "validation", "valid": "validation", "dev": "validation",
               "test": "test"}


class WrongFormat(DataError):
    """The source is not laid out as the format says (raised by an importer when its
    expected files or fields are absent); ``import_source`` adds which format it looks
    like."""


# --- reading ---------------------------------------------------------------------------------
def is_pickle(path: Path, head: bytes | None = None) -> bool:
    """Whether ``path`` is (or is named like) a pickle: never opened as one here."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    if head is None:
        try:
            with open(path, "rb") as handle:
                head = handle.read(2)
        except OSError:
            return False
    return len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS


def refuse_pickle(path: Path, expected: str, doc: str, head: bytes | None = None) -> None:
    """One line when ``path`` is a pickle where ``expected`` is expected; nothing of it is
    run (routeharness never unpickles a file: unpickling runs code from it)."""
    if is_pickle(path, head):
        raise DataError(f"a pickle where {expected} is expected: routeharness never "
                        "unpickles a file (unpickling runs code from it); convert it "
                        f"first, only if you trust it ({doc})", source=str(path))


def read_text(path: Path, expected: str, doc: str) -> str:
    """A regular UTF-8 text file (a byte-order mark allowed), pickles refused."""
    data = read_bytes(path)
    refuse_pickle(path, expected, doc, data[:2])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}); expected {expected}",
                        source=str(path)) from None


def parse_json(text: str, source: str, *, row: int | None = None,
               last: bool = True) -> Any:
    """JSON text -> data: NaN/Infinity, a key given twice and bad JSON refused, one line
    naming the file (and row); the ``last`` text of a file stopping before its value ends
    (a string or value still open at the end) is named as cut short."""
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"key {key!r} given twice")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError:
        raise DataError("JSON nested too deeply", source=source, row=row) from None
    except json.JSONDecodeError as exc:
        open_at_end = (exc.pos >= len(text.rstrip())
                       or exc.msg.startswith("Unterminated string"))
        cut = (" (the file ends inside this value: cut short?)"
               if last and text.strip() and open_at_end else "")
        raise DataError(f"invalid JSON: {str(exc)[:160]}{cut}", source=source,
                        row=row) from None
    except ValueError as exc:
        raise DataError(f"invalid JSON: {str(exc)[:160]}", source=source, row=row) from None


def read_json_file(path: Path, expected: str, doc: str) -> Any:
    return parse_json(read_text(path, expected, doc), str(path))


def read_jsonl(path: Path, expected: str, doc: str) -> Iterator[tuple[int, Any]]:
    """(row, record) of a JSON-lines file; rows count non-blank lines from 0."""
    text = read_text(path, expected, doc)
    lines = [line for line in text.split("\n") if line.strip()]
    for row, line in enumerate(lines):
        last = row == len(lines) - 1 and not text.endswith("\n")
        yield row, parse_json(line, str(path), row=row, last=last)


def read_csv_rows(path: Path, expected: str, doc: str,
                  required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV file as dicts (row = 0-based data row), streamed; a missing
    required column, a header naming a column twice, and a row with another number of
    fields than the header (at the end of the file: cut short) are one line naming it."""
    regular_file(path)
    with open(path, "rb") as handle:
        refuse_pickle(path, expected, doc, handle.read(2))
    csv.field_size_limit(2**31 - 1)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        row = -1
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"empty file; expected {expected}", source=str(path))
            if len(set(header)) != len(header):
                twice = next(h for h in header if header.count(h) > 1)
                raise DataError(f"column {twice!r} given twice in the header",
                                source=str(path))
            missing = [c for c in required if c not in header]
            if missing:
                shown_header = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
                raise DataError(f"no column {missing[0]!r}: not {expected} (header: "
                                f"{shown_header})", source=str(path))
            for row, values in enumerate(reader):
                if len(values) != len(header):
                    last = next(reader, None) is None
                    cut = " (the last row: the file is cut short?)" if last else ""
                    raise DataError(f"{len(values)} fields where the header has "
                                    f"{len(header)}{cut}", source=str(path), row=row)
                yield row, dict(zip(header, values))
        except csv.Error as exc:
            raise DataError(f"cannot read the CSV: {one_line(exc)} (cut short?)",
                            source=str(path), row=row + 1 if row >= 0 else None) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({one_line(exc)})", source=str(path)) from None


def read_parquet(path: Path, expected: str, doc: str) -> Any:
    """A parquet file as a ``pyarrow.Table``; a pickle or a file that is not parquet (or
    is cut short) is one line naming it."""
    import pyarrow.parquet as pq

    regular_file(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    refuse_pickle(path, expected, doc, head[:2])
    try:
        return pq.read_table(str(path))
    except Exception as exc:  # pyarrow raises several types for a bad or truncated file
        hint = " (cut short?)" if head == b"PAR1" else ""
        raise DataError(f"cannot read parquet file{hint}: {one_line(exc)}; expected "
                        f"{expected}", source=str(path)) from None


def number(value: Any, source: str, row: int | None, field_name: str, *,
           allow_none: bool = False) -> float | None:
    """A finite JSON number (not a boolean); None only where ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{field_name} must be a number, got {shown(value)}", source=source,
                        row=row)
    if not math.isfinite(value):
        raise DataError(f"{field_name} must be a finite number, got {value}", source=source,
                        row=row)
    return float(value)


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text_field(record: dict[str, Any], key: str, source: str, row: int | None,
               what: str = "record") -> str:
    if key not in record:
        raise DataError(f"the {what} has no {key!r} field", source=source, row=row)
    value = record[key]
    if not isinstance(value, str):
        raise DataError(f"{key} must be text, got {shown(value)}", source=source, row=row)
    return value


def require_object(value: Any, source: str, row: int | None, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{what} must be a JSON object, got {type(value).__name__}",
                        source=source, row=row)
    return value


# --- price tables -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceTable:
    """USD per million input and output tokens, per model, and the file it came from."""

    prices: dict[str, tuple[float, float]]
    source: str

    def for_model(self, model: str) -> tuple[float, float]:
        if model not in self.prices:
            raise DataError(f"no price for model {model!r} (the table prices "
                            f"{len(self.prices)} model{'s' if len(self.prices) != 1 else ''})",
                            source=self.source)
        return self.prices[model]


def read_price_table(path: Path) -> PriceTable:
    """A price table: a JSON object ``{model: {"input_token_price_per_million": x,
    "output_token_price_per_million": y}}`` (RouterArena's ``cost.json``); a price that is
    negative, not a number or missing is one line naming the model and field."""
    data = read_json_file(path, "a JSON price table", "docs/formats/README.md")
    source = str(path)
    if not isinstance(data, dict) or not data:
        raise DataError("a price table is a JSON object {model: {"
                        + ", ".join(f'"{f}": USD' for f in PRICE_FIELDS) + "}}",
                        source=source)
    prices = {}
    for model, entry in data.items():
        if not isinstance(entry, dict):
            raise DataError(f"model {model!r}: its prices must be an object with "
                            f"{' and '.join(PRICE_FIELDS)}", source=source)
        pair = []
        for name in PRICE_FIELDS:
            where = f"model {model!r}, field {name!r}"
            if name not in entry:
                raise DataError(f"{where}: missing", source=source)
            value = entry[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise DataError(f"{where}: not a finite number ({shown(value)})",
                                source=source)
            if value < 0:
                raise DataError(f"{where}: negative price {value} (USD per million tokens "
                                "must be >= 0)", source=source)
            pair.append(float(value))
        prices[str(model)] = (pair[0], pair[1])
    return PriceTable(prices, source)


# --- the outcome table ---------------------------------------------------------------------------
@dataclass
class Imported:
    """What an importer read: one row per prompt, one cell per prompt x model.

    ``scores[i][m]`` in [0, 1] (None: no cell), ``costs[i][m]`` the source's USD per call
    (None: none), ``input_tokens``/``output_tokens`` the call's tokens (None: unknown),
    ``origins[i]`` the (file, row) row ``i`` was read from, ``cell_origins[(i, m)]`` the
    record a cell came from (for messages). ``splits[i]`` is the source's split or None.
    """

    format: str
    source: str
    models: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    splits: list[str | None] = field(default_factory=list)
    images: list[Any] | None = None
    origins: list[tuple[str, int]] = field(default_factory=list)
    scores: list[dict[str, float]] = field(default_factory=list)
    costs: list[dict[str, float]] = field(default_factory=list)
    input_tokens: list[dict[str, float]] = field(default_factory=list)
    output_tokens: list[dict[str, float]] = field(default_factory=list)
    cell_origins: dict[tuple[int, str], tuple[str, int | None]] = field(default_factory=dict)
    #: the source's own price table, when it has one
    prices: PriceTable | None = None
    #: what the source calls its per-call cost and its tokens (for the notes)
    cost_field: str = "cost"
    #: what the source's per-call cost is, when it is not a real cost (for the notes)
    cost_described: str = ""
    token_fields: str = "input and output tokens"
    model_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_descriptions: dict[str, str] = field(default_factory=dict)
    description: str = ""
    license: str = ""
    built_from: str = ""
    revision: str = ""
    #: how the source's own splits were read (None: the source has none)
    own_splits: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_row(self, identifier: str, prompt: str, group: str, origin: tuple[str, int], *,
                split: str | None = None, image: Any = None) -> int:
        self.ids.append(identifier)
        self.prompts.append(prompt)
        self.groups.append(group)
        self.splits.append(split)
        self.origins.append(origin)
        if image is not None or self.images is not None:
            if self.images is None:
                self.images = [None] * (len(self.ids) - 1)
            self.images.append(image)
        for table in (self.scores, self.costs, self.input_tokens, self.output_tokens):
            table.append({})
        return len(self.ids) - 1

    def add_model(self, model: str) -> None:
        if model not in self.models:
            self.models.append(model)

    def set_cell(self, row: int, model: str, score: float | None, origin: tuple[str, int | None],
                 *, cost: float | None = None, input_tokens: float | None = None,
                 output_tokens: float | None = None) -> None:
        self.add_model(model)
        if (row, model) in self.cell_origins:
            first = self.cell_origins.get((row, model))
            seen = f" (first at {first[0]}, row {first[1]})" if first else ""
            raise DataError(f"a second outcome of prompt {self.ids[row]!r} x model "
                            f"{model!r}{seen}: one per prompt x model", source=origin[0],
                            row=origin[1])
        self.cell_origins[(row, model)] = origin
        if score is None:
            return
        self.scores[row][model] = score
        if cost is not None:
            self.costs[row][model] = cost
        if input_tokens is not None:
            self.input_tokens[row][model] = input_tokens
        if output_tokens is not None:
            self.output_tokens[row][model] = output_tokens


# --- costs -------------------------------------------------------------------------------------
def _has_tokens(imported: Imported, row: int, model: str) -> bool:
    return model in imported.input_tokens[row] and model in imported.output_tokens[row]


def _token_cost(imported: Imported, table: PriceTable, row: int, model: str) -> float:
    if not _has_tokens(imported, row, model):
        source, at = imported.cell_origins.get((row, model), (imported.source, None))
        raise DataError(f"no token counts for model {model!r}: the cost is tokens x the "
                        f"price table ({table.source})", source=source, row=at)
    price_in, price_out = table.for_model(model)
    return (imported.input_tokens[row][model] * price_in
            + imported.output_tokens[row][model] * price_out) / 1e6


def settle_costs(imported: Imported, prices: PriceTable | None) -> tuple[list[dict[str, float]], str]:
    """Every scored cell's cost in USD (or the placeholder), and the sentence saying
    which rule gave it (the cost rule at the top of this module)."""
    cells = [(row, model) for row, scores in enumerate(imported.scores) for model in scores]
    costs: list[dict[str, float]] = [{} for _ in imported.scores]
    if prices is not None:
        if not any(_has_tokens(imported, r, m) for r, m in cells):
            raise RouteHarnessError(f"{imported.source}: --prices needs token counts, and "
                                    f"this {imported.format} source has none (see "
                                    f"docs/formats/{imported.format}.md)")
        for row, model in cells:
            costs[row][model] = _token_cost(imported, prices, row, model)
        return costs, (f"cost: {imported.token_fields} x the price table {prices.source} "
                       "(USD per million tokens, given with --prices)")
    real = [(r, m) for r, m in cells if m in imported.costs[r]]
    if real and any(imported.costs[r][m] > 0 for r, m in real):
        for row, model in cells:
            if model not in imported.costs[row]:
                source, at = imported.cell_origins.get((row, model), (imported.source, None))
                raise DataError(f"model {model!r} has a score but no {imported.cost_field}: "
                                "every scored call needs its cost", source=source, row=at)
            costs[row][model] = imported.costs[row][model]
        return costs, "cost: " + (imported.cost_described or
                                  f"the real USD per call the source records "
                                  f"({imported.cost_field})")
    if imported.prices is not None and any(_has_tokens(imported, r, m) for r, m in cells):
        for row, model in cells:
            costs[row][model] = _token_cost(imported, imported.prices, row, model)
        return costs, (f"cost: {imported.token_fields} x the source's price table "
                       f"{imported.prices.source} (USD per million tokens)")
    for row, model in cells:
        costs[row][model] = PLACEHOLDER_COST
    what = "its recorded costs are all 0" if real else "it records no cost"
    if any(_has_tokens(imported, r, m) for r, m in cells):
        what += " and no price table for its token counts (pass --prices FILE)"
    return costs, (f"no cost: {what}; every scored call is given the same placeholder "
                   f"cost {PLACEHOLDER_COST:g} (not USD), so only quality-only numbers "
                   "(lam = 0) mean anything")


# --- splits ----------------------------------------------------------------------------------------
def split_name(value: Any, source: str, row: int | None) -> str:
    name = SPLIT_NAMES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if name is None:
        raise DataError(f"unknown split {shown(value)} (expected one of "
                        f"{', '.join(sorted(SPLIT_NAMES))})", source=source, row=row)
    return name


def seeded_splits(keys: Sequence[str], groups: Sequence[str], seed: int) -> list[str]:
    """Train / validation / test by prompt text within each group: the distinct keys of a
    group (sorted) are permuted with ``seed``; ``TEST_FRACTION`` of them go to test and
    ``VALIDATION_FRACTION`` to validation (rounded; a group of one or two prompts stays in
    train). Rows sharing a key share a split, so no prompt text is in two splits."""
    from routeharness.data.dataset import carve_validation

    first_group: dict[str, str] = {}
    for key, group in zip(keys, groups):
        first_group.setdefault(key, group)
    distinct = sorted(first_group)
    distinct_groups = [first_group[k] for k in distinct]
    test = carve_validation(distinct, distinct_groups, TEST_FRACTION, seed)
    rest = [k for k, t in zip(distinct, test) if not t]
    rest_groups = [g for g, t in zip(distinct_groups, test) if not t]
    validation = carve_validation(rest, rest_groups, VALIDATION_FRACTION / (1 - TEST_FRACTION),
                                  seed + 1)
    split_of = {k: "test" for k, t in zip(distinct, test) if t}
    split_of.update({k: ("validation" if v else "train") for k, v in zip(rest, validation)})
    return [split_of[k] for k in keys]


def seeded_split_note(seed: int) -> str:
    return (f"splits: the source has none; a seeded split by prompt text within each group "
            f"(seed {seed}): {TEST_FRACTION:.0%} test, {VALIDATION_FRACTION:.0%} validation, "
            "the rest train (routeharness.data.importers.common.seeded_splits; groups of one "
            "or two prompts stay in train)")


def _keys(imported: Imported) -> list[str]:
    from routeharness.data.columns import prompt_key

    images = imported.images or [None] * len(imported.prompts)
    return [prompt_key(p, i) for p, i in zip(imported.prompts, images)]


def settle_splits(imported: Imported, seed: int | None) -> tuple[list[str], list[bool], list[str]]:
    """The split of every row, which rows to keep, and notes: the source's own splits
    (validation carved from train when it has none), or the seeded split; validation and
    test rows repeating an earlier split's prompt are dropped (and counted), so that
    ``eval`` accepts the dataset."""
    from routeharness.data.dataset import carve_validation

    notes: list[str] = []
    keys = _keys(imported)
    own = [s for s in imported.splits if s is not None]
    if own and len(own) != len(imported.splits):
        raise DataError("some prompts have a split and others none", source=imported.source)
    if not own:
        chosen = DEFAULT_SEED if seed is None else seed
        splits = seeded_splits(keys, imported.groups, chosen)
        notes.append(seeded_split_note(chosen))
    else:
        if seed is not None:
            raise RouteHarnessError(f"{imported.source}: --seed applies to sources without "
                                    f"their own splits; {imported.format} has its own "
                                    f"({imported.own_splits})")
        splits = [str(s) for s in own]
        notes.append(f"splits: the source's own ({imported.own_splits})")
        if "validation" not in splits:
            train = [i for i, s in enumerate(splits) if s == "train"]
            moved = carve_validation([imported.ids[i] for i in train],
                                     [imported.groups[i] for i in train],
                                     CARVED_VALIDATION_FRACTION, DEFAULT_SEED)
            for i, move in zip(train, moved):
                if move:
                    splits[i] = "validation"
            notes.append(f"the source has no validation split: {CARVED_VALIDATION_FRACTION:.0%} "
                         f"of each group of train moved to validation "
                         f"(carve_validation, seed {DEFAULT_SEED})")
    keep = [True] * len(splits)
    seen: dict[str, set[str]] = {"train": set(), "validation": set()}
    for i, split in enumerate(splits):
        if split == "train":
            seen["train"].add(keys[i])
    for i, split in enumerate(splits):
        if split == "validation":
            if keys[i] in seen["train"]:
                keep[i] = False
            else:
                seen["validation"].add(keys[i])
    dropped = {"validation": 0, "test": 0}
    for i, split in enumerate(splits):
        if split == "validation" and not keep[i]:
            dropped["validation"] += 1
        elif split == "test" and (keys[i] in seen["train"] or keys[i] in seen["validation"]):
            keep[i] = False
            dropped["test"] += 1
    for split, count in dropped.items():
        if count:
            message = (f"{count} {split} prompt{'s' if count > 1 else ''} repeating an "
                       f"earlier split's prompt word for word dropped (leaks)")
            notes.append(message)
            imported.warnings.append(message)
    return splits, keep, notes


# --- writing ---------------------------------------------------------------------------------------
@dataclass
class Written:
    """What ``finish`` wrote, for the command's summary line."""

    path: Path
    name: str
    sizes: dict[str, int]
    models: int
    groups: int
    cost_rule: str
    warnings: list[str]


def finish(imported: Imported, out: Path, *, name: str, seed: int | None = None,
           prices: PriceTable | None = None) -> Written:
    """The imported outcomes -> the canonical dataset in ``out`` (new or empty), through
    the one validation; nothing is written when anything is wrong."""
    import numpy as np

    from routeharness.data.columns import COST_PREFIX, SCORE_PREFIX
    from routeharness.data.dataset import ModelInfo
    from routeharness.data.readers import task_from_table, write_task

    if not imported.ids:
        raise DataError(f"no prompts found: not a {imported.format} source",
                        source=imported.source)
    costs, cost_rule = settle_costs(imported, prices)
    splits, keep, split_notes = settle_splits(imported, seed)
    rows = [i for i, k in enumerate(keep) if k]
    columns: dict[str, list[Any]] = {
        "id": [imported.ids[i] for i in rows],
        "prompt": [imported.prompts[i] for i in rows],
        "group": [imported.groups[i] for i in rows],
        "split": [splits[i] for i in rows],
    }
    if imported.images is not None:
        columns["image"] = [imported.images[i] for i in rows]
    for model in imported.models:
        columns[SCORE_PREFIX + model] = [imported.scores[i].get(model, np.nan) for i in rows]
        columns[COST_PREFIX + model] = [costs[i].get(model, np.nan) for i in rows]
    notes = [f"imported from {imported.format} ({imported.source}) by routeharness data "
             "import", cost_rule, *split_notes, *imported.notes]
    used_prices = prices or imported.prices
    models = []
    for model in imported.models:
        info = dict(imported.model_info.get(model, {}))
        if used_prices is not None and model in used_prices.prices:
            info["price_input_per_mtok"], info["price_output_per_mtok"] = \
                used_prices.prices[model]
        models.append(ModelInfo.from_dict({"name": model, **info}))
    task = task_from_table(columns, name=name, version=1, source=imported.source,
                           models=models, group_descriptions=imported.group_descriptions,
                           notes=notes, origins=[imported.origins[i] for i in rows])
    meta: dict[str, Any] = {
        "description": imported.description or f"imported from {imported.format}",
        "source": f"{imported.format}: {imported.source}",
        "notes": notes,
        "counts": {split: task.splits[split].n for split in task.splits},
    }
    for key in ("license", "built_from", "revision"):
        if getattr(imported, key):
            meta[key] = getattr(imported, key)
    path = write_task(task, out, meta=meta)
    if cost_rule.startswith("no cost"):
        imported.warnings.append(cost_rule)
    return Written(path, task.name, {s: d.n for s, d in task.splits.items()},
                   len(task.models), len(task.groups), cost_rule, imported.warnings)
