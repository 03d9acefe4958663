"""LLMRouter's routing-data format (GitHub ``ulab-uiuc/LLMRouter``), read and written.

A folder holding a ``.pt`` dict of query embeddings beside routing JSON lines (a record per
query x model) is a task: ``routeharness.data.readers`` recognises it and calls ``read_folder``,
whose table goes through the one validation. A query x model without a record is a missing
cell (NaN), never a zero. The ``.pt`` is read with ``torch.load(weights_only=True)`` only;
its vectors are the splits' ``embeddings`` (``--encoder precomputed``). Problems name the
file, the 0-based record row (non-blank lines) and the field. docs/formats/llmrouter.md.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routeharness.common.errors import DataError, RouteHarnessError, one_line
from routeharness.common.files import new_folder
from routeharness.data.columns import COST_PREFIX, EMBEDDING, SCORE_PREFIX, SPLITS
from routeharness.data.raw import Raw, read_bytes

if TYPE_CHECKING:
    import numpy as np

    from routeharness.data.dataset import RoutingTask
    from routeharness.data.validation import Problems

SPLIT_WORDS = {"train": "train", "test": "test", "validation": "validation",
               "val": "validation", "valid": "validation", "dev": "validation"}
ROUTING_FILE = "default_routing_{split}_data.jsonl"  # the names write_llmrouter gives
EMBEDDINGS_FILE = "query_embeddings.pt"
CANDIDATES_FILE = "default_llm.json"
DEFAULT_GROUP = "default"
VALIDATION_FRACTION = 0.1  # of each group of train, when there is no validation file
VALIDATION_SEED = 20251201
_SIDECAR = "routing.json"  # the project's sidecar, never a candidate file


def is_llmrouter_folder(names: list[str]) -> bool:
    """True when a folder's file names are LLMRouter's layout: it holds a ``.pt`` file."""
    return any(name.endswith(".pt") for name in names)


@dataclass
class _Query:
    """One query of a split, as its records describe it (``row``: its first record)."""

    text: str
    group: str
    query_id: str
    source: str
    row: int
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


Splits = dict[str, dict[int, _Query]]  # split -> embedding_id -> its query


def read_folder(folder: Path, names: list[str], raw: Raw, problems: Problems) -> None:
    """Fill ``raw`` (its parts and models) from an LLMRouter folder, adding what is wrong
    to ``problems`` (a folder that cannot be read at all raises a ``DataError``)."""
    from routeharness.data.dataset import ModelInfo, carve_validation
    from routeharness.data.validation import Part

    if raw.models:
        raise DataError("'models' is not read beside LLMRouter files: the models are the "
                        "records' model_name", source=str(folder / _SIDECAR), column="models")
    pts = [name for name in names if name.endswith(".pt")]
    candidates = [name for name in names if name.endswith(".json") and name != _SIDECAR
                  and "embedding" not in name.lower()]
    for kind, found in (("a .pt file of query embeddings", pts),
                        ("a candidate file (model -> prices)", candidates)):
        if len(found) > 1:
            raise DataError(f"{len(found)} files ({' and '.join(found)}) where one is read: "
                            f"keep {kind}", source=str(folder))
    prices = _read_candidates(folder / candidates[0]) if candidates else {}
    vectors = _read_pt(folder / pts[0])
    jsonl = [name for name in names if name.endswith(".jsonl")]
    records: Splits = {split: {} for split in SPLITS}
    by_split: dict[str | None, str] = {}
    for name in [n for n in jsonl if "routing" in n.lower()] or jsonl:
        found = sorted({SPLIT_WORDS[w] for w in re.split(r"[^a-z0-9]+", name.lower())
                        if w in SPLIT_WORDS})
        split = found[0] if len(found) == 1 else None
        if len(found) > 1 or (split is not None and split in by_split):
            raise DataError(f"one file per split: the name says {' and '.join(found)}" + (
                f", as {by_split[split]} does" if split in by_split else ""),
                source=str(folder / name))
        by_split[split] = name
        _read_records(folder / name, split, records, prices, vectors, problems)
    for split in [s for s in ("train", "test") if not records[s] and not problems.items]:
        problems.add(DataError(f"no routing records for split {split!r}", source=str(folder)))
    if problems.items:
        return
    if not records["validation"]:  # LLMRouter's has none: carved from train, seeded
        train = records["train"]
        mask = carve_validation([q.query_id for q in train.values()],
                                [q.group for q in train.values()], VALIDATION_FRACTION,
                                VALIDATION_SEED)
        for key in [k for k, moved in zip(list(train), mask) if moved]:
            records["validation"][key] = train.pop(key)
    seen = dict.fromkeys(m for queries in records.values() for q in queries.values()
                         for m in q.scores)
    order = [m for m in prices if m in seen] + [m for m in seen if m not in prices]
    raw.models = [ModelInfo(name, description=_text(p.get("feature")) or "",
                            provider=_text(p.get("service")), size=_text(p.get("size")),
                            price_input_per_mtok=p.get("input_price"),
                            price_output_per_mtok=p.get("output_price"))
                  for name, p in ((name, prices.get(name, {})) for name in order)]
    dimension = len(next(iter(vectors.values())))
    for split, queries in records.items():
        table, sources, rows = _table(queries, order, vectors, dimension)
        one = len(set(sources)) == 1
        raw.parts[split] = Part(table, sources[0] if one else str(folder), rows if one else None)


def _read_records(path: Path, split: str | None, records: Splits,
                  prices: dict[str, dict[str, Any]], vectors: dict[int, Any],
                  problems: Problems) -> None:
    """Every record of one routing file into ``records``; problems with their rows."""
    from routeharness.data.textio import unique_keys

    lines = [line for line in _text_of(path).split("\n") if line.strip()]
    if not lines:
        raise DataError("no records (empty file)", source=str(path))
    for row, line in enumerate(lines):
        def bad(message: str, column: str | None = None, row: int = row) -> None:
            problems.add(DataError(message, source=str(path), row=row, column=column))

        try:
            record = json.loads(line, object_pairs_hook=unique_keys)
        except ValueError as exc:  # invalid JSON, or a key given twice
            bad(f"invalid JSON line: {exc}")
            continue
        if not isinstance(record, dict):
            bad("each line must be a JSON object (one query x model record)")
        else:
            _add_record(record, split, records, prices, vectors, bad, (str(path), row))


def _text_of(path: Path) -> str:

    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        source=str(path)) from None


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]  # a value as the record wrote it, cut short


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _within(value: Any, top: float = 1e300) -> bool:
    """A JSON number (not a boolean) in [0, top]: NaN, infinity and 400-digit integers not."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= min(top, 1e300))


def _add_record(record: dict[str, Any], split: str | None, records: Splits,
                prices: dict[str, dict[str, Any]], vectors: dict[int, Any], bad: Any,
                where: tuple[str, int]) -> None:
    own = record.get("split")
    if own not in (*SPLITS, None) or (split and own not in (None, split)) or not (split or own):
        return bad(f"split {_shown(own)}: the file's name says {split!r}" if split else
                   f"split must be one of {list(SPLITS)} (or named by the file's name), got "
                   f"{_shown(own)}", "split")
    split = split or own
    performance = record.get("performance")
    if not _within(performance, 1.0):
        return bad(f"performance must be a number in [0, 1], got {_shown(performance)} (a "
                   "missing cell has no record)", "performance")
    embedding_id = record.get("embedding_id")
    if isinstance(embedding_id, float) and embedding_id.is_integer():
        embedding_id = int(embedding_id)  # pandas writes an int column holding nulls so
    if not isinstance(embedding_id, int) or isinstance(embedding_id, bool):
        return bad(f"embedding_id must be an integer key of the .pt file, got "
                   f"{_shown(embedding_id)} (LLMRouter writes null when it could not embed "
                   "the query)", "embedding_id")
    if embedding_id not in vectors:
        return bad(f"embedding_id {embedding_id} is not in the .pt file", "embedding_id")
    values = {"query": record.get("query"), "model_name": record.get("model_name"),
              "task_name": record.get("task_name", DEFAULT_GROUP),
              "query_id": record.get("query_id", f"{split}-{embedding_id}")}
    for key, value in values.items():
        if not isinstance(value, str):
            return bad(f"{key} must be a string, got {_shown(value)}", key)
    model = values["model_name"]
    cost = _cost(record, prices.get(model), bad)
    if cost is None:
        return None
    query = records[split].setdefault(embedding_id, _Query(
        values["query"], values["task_name"], values["query_id"], *where))
    for key, theirs in (("query", query.text), ("task_name", query.group),
                        ("query_id", query.query_id)):
        if values[key] != theirs:
            return bad(f"embedding_id {embedding_id} has another {key} in row {query.row} of "
                       f"{query.source}: one query per embedding_id", key)
    if model in query.scores:
        return bad(f"a second record of embedding_id {embedding_id} x model {model!r} (the "
                   f"query starts at row {query.row}): one record per query x model",
                   "model_name")
    query.scores[model], query.costs[model] = float(performance), cost
    return None


def _cost(record: dict[str, Any], price: dict[str, Any] | None, bad: Any) -> float | None:
    """USD of one call: the record's ``cost``, else its tokens at the candidate prices
    (USD per million tokens); None after reporting why there is none."""
    if "cost" in record:
        cost = record["cost"]
        if _within(cost):
            return float(cost)
        return bad(f"cost must be a finite number >= 0 (USD), got {_shown(cost)}", "cost")
    total = 0.0
    for tokens, key in (("input_tokens", "input_price"), ("output_tokens", "output_price")):
        count = record.get(tokens)
        if not _within(count):
            return bad(f"no cost: give 'cost' (USD), or {tokens} (a number >= 0, got "
                       f"{_shown(count)}) and the model's prices in a candidate file", tokens)
        if price is None or price.get(key) is None:
            return bad(f"no {key} for model {record['model_name']!r} in a candidate file, "
                       "and the record has no 'cost'", "model_name")
        total += float(count) * float(price[key]) / 1e6
    return total


def _read_candidates(path: Path) -> dict[str, dict[str, Any]]:
    """LLMRouter's candidate file (``llm_data``): model -> metadata, with ``input_price``
    and ``output_price`` in USD per million tokens."""
    from routeharness.data.textio import unique_keys

    try:
        data = json.loads(_text_of(path), object_pairs_hook=unique_keys)
    except ValueError as exc:
        raise DataError(f"invalid JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError("a candidate file is a JSON object: model name -> {input_price, "
                        "output_price, ...}", source=str(path))
    for name, entry in data.items():
        for key in ("input_price", "output_price"):
            value = entry.get(key)
            if value is not None and not _within(value):
                raise DataError(f"{key} must be a finite number >= 0 (USD per million "
                                f"tokens), got {_shown(value)}", source=str(path),
                                column=f"{name}.{key}")
    return data


def _read_pt(path: Path) -> dict[int, Any]:
    """The ``.pt`` of query embeddings -> {embedding_id: float32 (d,)}: a dict of 1-d
    tensors of one dimension, finite numbers."""
    import numpy as np
    import torch


    try:
        loaded = torch.load(io.BytesIO(read_bytes(path)), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file it refuses or cannot read
        detail = one_line(exc)
        raise DataError("cannot read with torch.load(weights_only=True), which loads only "
                        f"tensors and plain containers: {detail}", source=str(path)) from None
    if not isinstance(loaded, dict) or not loaded:
        raise DataError(f"expected a dict embedding_id -> tensor, got {type(loaded).__name__}"
                        f" {str(loaded)[:40]}", source=str(path))
    out: dict[int, Any] = {}
    for key, tensor in loaded.items():
        def bad(message: str, key: Any = key) -> DataError:
            return DataError(f"key {str(key)[:40]}: {message}", source=str(path))

        if not isinstance(key, int) or isinstance(key, bool):
            raise bad(f"keys must be integer embedding ids, not {type(key).__name__}")
        if not (isinstance(tensor, torch.Tensor) and tensor.dim() == 1 and tensor.numel() > 0
                and tensor.is_floating_point()):
            raise bad("expected a 1-d float tensor, got " + (
                f"shape {list(tensor.shape)} {tensor.dtype}" if isinstance(tensor, torch.Tensor)
                else type(tensor).__name__))
        vector = tensor.detach().to(torch.float32).numpy()
        first = next(iter(out.items()), (key, vector))
        if len(vector) != len(first[1]):
            raise bad(f"embedding of dimension {len(vector)}, but key {first[0]!r} has "
                      f"{len(first[1])}: one dimension for all")
        if not np.isfinite(vector).all():
            k = int(np.flatnonzero(~np.isfinite(vector))[0])
            raise bad(f"value {k} is {float(vector[k])!r}: every number must be finite "
                      "(within float32's range)")
        out[key] = vector
    return out


def _table(queries: dict[int, _Query], models: list[str], vectors: dict[int, Any],
           dimension: int) -> tuple[Any, list[str], list[int]]:
    """One split's canonical table, and the file and record row of each of its rows."""
    import numpy as np
    import pyarrow as pa

    from routeharness.data.columns import embedding_array

    rows = list(queries.values())
    columns: dict[str, Any] = {"id": [q.query_id for q in rows],
                               "prompt": [q.text for q in rows],
                               "group": [q.group for q in rows]}
    for prefix, attribute in ((SCORE_PREFIX, "scores"), (COST_PREFIX, "costs")):
        for name in models:
            cells = [getattr(q, attribute).get(name) for q in rows]
            columns[prefix + name] = pa.array(cells, type=pa.float64())
    X = np.zeros((len(rows), dimension), dtype=np.float32)
    for i, key in enumerate(queries):
        X[i] = vectors[key]
    columns[EMBEDDING] = embedding_array(X)
    return pa.table(columns), [q.source for q in rows], [q.row for q in rows]


# --- the exporter ------------------------------------------------------------------------

def write_llmrouter(task: RoutingTask, folder: str | Path, *,
                    embeddings: dict[str, np.ndarray] | None = None) -> Path:
    """``task`` in LLMRouter's format in a new (or empty) ``folder`` (written to a
    temporary folder, then renamed); ``embeddings``: float32 (n, d) per split, the
    vectors of the ``.pt`` (default: the splits' own). docs/formats/llmrouter.md."""
    import numpy as np

    vectors = {split: (embeddings or {}).get(split, task.splits[split].embeddings)
               for split in SPLITS}
    width = None if vectors["train"] is None else np.shape(vectors["train"])[1:]
    for split, X in vectors.items():
        shape = None if X is None else np.shape(X)
        if shape is None or len(shape) != 2 or shape[0] != task.splits[split].n or (
                shape[1] < 1 or shape[1:] != width):
            raise RouteHarnessError(f"task {task.name!r}, split {split!r}: LLMRouter's "
                                    "format needs a query embedding per row, one dimension "
                                    f"d >= 1 for all splits, got shape {shape}")
    target = Path(folder).expanduser()
    try:
        with new_folder(target, "LLMRouter export") as work:
            _write_files(task, work, vectors)
    except RouteHarnessError as exc:
        raise DataError(str(exc).removeprefix(f"{target}: "), source=str(target)) from None
    return target


def _write_files(task: RoutingTask, out: Path, vectors: dict[str, Any]) -> None:
    import numpy as np
    import torch

    tensors: dict[int, Any] = {}
    for split in SPLITS:
        data = task.splits[split]
        X = np.asarray(vectors[split], dtype=np.float32)
        with open(out / ROUTING_FILE.format(split=split), "w", encoding="utf-8") as handle:
            for i in range(data.n):
                embedding_id = len(tensors)
                tensors[embedding_id] = torch.from_numpy(X[i].copy())  # its own storage
                extra = {"embedding_id": embedding_id, "query_id": data.ids[i]}
                for j, model in enumerate(data.model_names):
                    if not math.isnan(data.scores[i, j]):  # a missing cell has no record
                        record = {"task_name": str(data.groups[i]), "query": data.prompts[i],
                                  "model_name": model, "performance": float(data.scores[i, j]),
                                  "cost": float(data.costs[i, j]), **extra}
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    torch.save(tensors, out / EMBEDDINGS_FILE)
    candidates = {m.name: {k: v for k, v in (
        ("size", m.size), ("feature", m.description), ("input_price", m.price_input_per_mtok),
        ("output_price", m.price_output_per_mtok), ("model", m.name), ("service", m.provider))
        if v not in (None, "")} for m in task.models}
    (out / CANDIDATES_FILE).write_text(json.dumps(candidates, indent=2, ensure_ascii=False)
                                       + "\n", encoding="utf-8")
