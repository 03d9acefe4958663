"""Load RouterBench from the upstream CSV layout, the embedded copy, or (opt-in) the Hub.

Upstream layout: ``<dir>/{arc_challenge,mbpp,winograde}_{train,test}.csv`` (or those files
under ``<dir>/routerbench/``), as re-exported by RouterDC. The embedded copy
(``data/routerbench.parquet``) is produced from those files by
``scripts/build_routerbench_embedded.py`` and holds prompts, scores and costs (no responses).
``data/embeddings/`` is a seed of the embedding cache (``embedding/cache.py``): the
default encoder's vectors of every prompt, made by ``scripts/build_routerbench_seed.py``
with the real encoder; the cache uses it only for that encoder and revision.
"""

from __future__ import annotations

import ast
import csv
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import (
    COST_PREFIX,
    SCORE_PREFIX,
    DataError,
    ModelInfo,
    RouteHarnessError,
    RoutingTask,
    carve_validation,
    task_from_table,
)

FILE_STEMS = ("arc_challenge", "mbpp", "winograde")
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 20250519
EMBEDDED_PATH = Path(__file__).parent / "data" / "routerbench.parquet"
#: the embedding-cache seed shipped with the task (the cache's own layout)
SEED_DIR = Path(__file__).parent / "data" / "embeddings"
HUB_REPO = "withmartian/routerbench"
HUB_FILE = "routerbench_0shot.pkl"


def _upstream_dir(data_dir: Path) -> Path:
    for candidate in (data_dir / "routerbench", data_dir):
        if all((candidate / f"{stem}_{part}.csv").is_file()
               for stem in FILE_STEMS for part in ("train", "test")):
            return candidate
    raise RouteHarnessError(
        f"{data_dir}: no RouterBench CSV files ({FILE_STEMS[0]}_train.csv, ...) here or in "
        f"{data_dir / 'routerbench'}")


def _parse_prompt(raw: str, source: str, row: int) -> str:
    """Upstream prompts are Python list literals as strings: parse, never eval."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"prompt is not a list literal ({exc.__class__.__name__})",
                        source=source, row=row, column="prompt") from None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise DataError("prompt literal must be a string or a list of strings", source=source,
                    row=row, column="prompt")


def _float_cell(raw: str, source: str, row: int, column: str) -> float:
    if raw.strip() == "":
        return float("nan")
    try:
        return float(raw)
    except ValueError:
        raise DataError(f"not a number: {raw[:40]!r}", source=source, row=row,
                        column=column) from None


def read_upstream_csv(path: Path, models: list[str]) -> dict[str, list[Any]]:
    """One upstream CSV -> canonical columns (no embed_text yet), with ``_index`` (the
    upstream row index) and ``_origin`` ((file, row) of each row, for messages)."""
    csv.field_size_limit(2**31 - 1)
    source = str(path)
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "_index": [],
                                     "_origin": []}
    for name in models:
        columns[SCORE_PREFIX + name] = []
        columns[COST_PREFIX + name] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for name in models:
            for column in (name, f"{name}|total_cost"):
                if column not in header:
                    raise DataError(f"missing column {column!r}", source=source, column=column)
        for row, record in enumerate(reader):
            columns["id"].append(record["sample_id"])
            columns["_index"].append(record.get("") or str(row))
            columns["_origin"].append((source, row))
            columns["prompt"].append(_parse_prompt(record["prompt"], source, row))
            columns["group"].append(record["eval_name"])
            for name in models:
                columns[SCORE_PREFIX + name].append(_float_cell(record[name], source, row, name))
                cost_column = f"{name}|total_cost"
                columns[COST_PREFIX + name].append(
                    _float_cell(record[cost_column], source, row, cost_column))
    return columns


def _common_prefix(texts: list[str]) -> str:
    if len(texts) < 2:
        return ""
    low, high = min(texts), max(texts)
    size = 0
    while size < min(len(low), len(high)) and low[size] == high[size]:
        size += 1
    return low[:size]


def shared_prefix_stripped(prompts: list[str], groups: list[str]) -> list[str]:
    """Each prompt without the prefix shared by every prompt of its group."""
    prefixes = {g: _common_prefix([p for p, pg in zip(prompts, groups) if pg == g])
                for g in set(groups)}
    out = []
    for prompt, group in zip(prompts, groups):
        rest = prompt[len(prefixes[group]):].strip()
        out.append(rest or prompt)
    return out


def build_columns(data_dir: Path, models: list[str]) -> dict[str, list[Any]]:
    """All upstream rows as canonical columns with a ``split`` column (train/validation/test),
    and ``_origin``: the upstream (file, row) of each, which is not a data column."""
    directory = _upstream_dir(data_dir)
    merged: dict[str, list[Any]] = {}
    for stem in FILE_STEMS:
        for part in ("train", "test"):
            columns = read_upstream_csv(directory / f"{stem}_{part}.csv", models)
            columns["split"] = [part] * len(columns["id"])
            for key, values in columns.items():
                merged.setdefault(key, []).extend(values)
    # upstream reuses a few sample_ids (8 in ARC-Challenge) for different rows: those get
    # the upstream row index appended, which keeps every id unique and stable
    counts: dict[str, int] = {}
    for identifier in merged["id"]:
        counts[identifier] = counts.get(identifier, 0) + 1
    merged["id"] = [f"{i}#{x}" if counts[i] > 1 else i
                    for i, x in zip(merged["id"], merged.pop("_index"))]
    is_train = np.asarray([s == "train" for s in merged["split"]])
    train_rows = np.flatnonzero(is_train)
    moved = carve_validation([merged["id"][i] for i in train_rows],
                             [merged["group"][i] for i in train_rows],
                             VALIDATION_FRACTION, VALIDATION_SEED)
    for i in train_rows[moved]:
        merged["split"][i] = "validation"
    merged["embed_text"] = shared_prefix_stripped(merged["prompt"], merged["group"])
    return merged


def columns_to_task(columns: dict[str, list[Any]] | Any, models: list[ModelInfo],
                    source: str, card: Any, revision: str | None) -> RoutingTask:
    """Canonical columns (or a table) with a ``split`` column -> the validated task, through
    the one validation (``task_from_table``). With an ``_origin`` entry (``build_columns``)
    a problem names the upstream CSV file, row and column."""
    origins = columns.get("_origin") if isinstance(columns, dict) else None
    if origins is not None:
        columns = {k: v for k, v in columns.items() if k != "_origin"}
    try:
        return task_from_table(columns, name=card.name, version=card.version, source=source,
                               models=models, card=card, revision=revision,
                               group_descriptions=card.group_descriptions(), origins=origins)
    except DataError as exc:
        if origins is None or exc.column is None:
            raise
        raise DataError(exc.detail, source=exc.source, row=exc.row,
                        column=upstream_column(exc.column)) from None


def upstream_column(column: str) -> str:
    """The upstream CSV column of a canonical one: ``score:M`` is ``M``, ``cost:M`` is
    ``M|total_cost``; other columns keep their name."""
    if column.startswith(SCORE_PREFIX):
        return column[len(SCORE_PREFIX):]
    if column.startswith(COST_PREFIX):
        return f"{column[len(COST_PREFIX):]}|total_cost"
    return column


def load(card: Any, data_dir: Path | None = None, trust_hub_pickle: bool = False,
         **_: Any) -> RoutingTask:
    """The RouterBench task: from ``data_dir`` (upstream CSVs) if given, else the
    embedded copy; ``trust_hub_pickle=True`` reads the Hub's pickled DataFrame instead."""
    models = card.model_infos()
    names = [m.name for m in models]
    if data_dir is not None:
        columns = build_columns(data_dir, names)
        return _seeded(columns_to_task(columns, models, str(_upstream_dir(data_dir)), card,
                                       card.revision))
    if trust_hub_pickle:
        return _load_hub_pickle(card, models)
    if not EMBEDDED_PATH.is_file():
        raise RouteHarnessError(f"the embedded RouterBench copy is missing ({EMBEDDED_PATH}); "
                                "reinstall routeharness or pass --data-dir")
    import pyarrow.parquet as pq

    table = pq.read_table(EMBEDDED_PATH)
    return _seeded(columns_to_task(table, models, f"embedded:{EMBEDDED_PATH.name}", card,
                                   card.revision))


def _seeded(task: RoutingTask) -> RoutingTask:
    """The task with the shipped embedding seed (its prompts are keyed by content, so a
    prompt the seed lacks, or another encoder, is simply encoded)."""
    return replace(task, embedding_seeds=(str(SEED_DIR),)) if SEED_DIR.is_dir() else task


def _load_hub_pickle(card: Any, models: list[ModelInfo]) -> RoutingTask:
    """Opt-in only: the Hub copy is a pickled pandas DataFrame, and unpickling runs code."""
    import pandas as pd
    from huggingface_hub import hf_hub_download

    warnings.warn(f"unpickling {HUB_REPO}/{HUB_FILE} from the Hugging Face Hub: a pickle can "
                  "run arbitrary code; use it only if you trust that repository",
                  stacklevel=2)
    path = hf_hub_download(HUB_REPO, HUB_FILE, repo_type="dataset")
    frame = pd.read_pickle(path)
    keep = frame["eval_name"].isin([g["name"] for g in card.groups])
    frame = frame[keep].reset_index(drop=True)
    names = [m.name for m in models]
    columns: dict[str, list[Any]] = {
        "id": frame["sample_id"].astype(str).tolist(),
        "prompt": [_parse_prompt(p, HUB_FILE, i) if isinstance(p, str) and p.startswith("[")
                   else str(p) for i, p in enumerate(frame["prompt"])],
        "group": frame["eval_name"].astype(str).tolist(),
    }
    for name in names:
        columns[SCORE_PREFIX + name] = frame[name].astype(float).tolist()
        columns[COST_PREFIX + name] = frame[f"{name}|total_cost"].astype(float).tolist()
    # the Hub pickle has no train/test split: a seeded 30% per group is test
    test = carve_validation(columns["id"], columns["group"], 0.3, VALIDATION_SEED + 1)
    split = np.where(test, "test", "train").astype(object)
    train_rows = np.flatnonzero(~test)
    moved = carve_validation([columns["id"][i] for i in train_rows],
                             [columns["group"][i] for i in train_rows],
                             VALIDATION_FRACTION, VALIDATION_SEED)
    split[train_rows[moved]] = "validation"
    columns["split"] = split.tolist()
    columns["embed_text"] = shared_prefix_stripped(columns["prompt"], columns["group"])
    return columns_to_task(columns, models, f"hub:{HUB_REPO}/{HUB_FILE}", card, "hub-pickle")
