"""SPROUT (CARROT-LLM-Routing/SPROUT on the Hub; Somerstep et al., "CARROT: A Cost Aware
Rate Optimal Router", arXiv 2502.03261), docs/formats/sprout.md: parquet files
``data/{train,validation,test}-*.parquet``, one row per prompt with ``key``, ``dataset``,
``dataset_level``, ``dataset_idx``, ``prompt``, ``golden_answer`` and one struct column per
model holding ``score``, ``num_input_tokens``, ``num_output_tokens`` (and the response).
SPROUT records tokens, not dollars: with ``--prices`` the cost is tokens x that table,
without it the dataset has no cost. Written from public code that reads the Hub files;
not checked against a real file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    read_parquet,
    refuse_pickle,
    shown,
    split_name,
)

NAME = "sprout"
DOC = "docs/formats/sprout.md"
EXPECTED = "SPROUT parquet (key, dataset, prompt, and a struct per model)"
META = ("key", "dataset", "dataset_level", "dataset_idx", "prompt", "golden_answer")


def _files(source: Path) -> dict[str, list[Path]]:
    """Split -> its parquet files: ``<split>-*.parquet`` or ``<split>.parquet``, in SOURCE
    or SOURCE/data."""
    folders = [source / "data", source] if (source / "data").is_dir() else [source]
    found: dict[str, list[Path]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.parquet")):
            stem = path.name.split("-", 1)[0].split(".", 1)[0]
            try:
                split = split_name(stem, str(path), None)
            except DataError:
                continue
            found.setdefault(split, []).append(path)
        if found:
            break
    return found


def looks_like(source: Path) -> bool:
    if not source.is_dir():
        return False
    files = _files(source)
    if not files:
        return False
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(str(next(iter(files.values()))[0])).names
    except Exception:  # not parquet
        return False
    return "prompt" in names and "dataset" in names and "key" in names


def _prompt(value: Any, source: str, row: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise DataError(f"prompt must be text, got {shown(value)}", source=source, row=row)


def _value(cell: dict[str, Any], key: str, source: str, row: int, model: str) -> float | None:
    value = cell.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise DataError(f"column {model!r}: {key} must be a number, got {shown(value)}",
                        source=source, row=row)
    return float(value)


def read(source: Path) -> Imported:
    if not source.is_dir():
        refuse_pickle(source, "SPROUT's parquet folder", DOC)
        raise WrongFormat("expected SPROUT's folder (data/train-*.parquet, "
                          "data/validation-*.parquet, data/test-*.parquet)", source=str(source))
    files = _files(source)
    if not files:
        raise WrongFormat("no train/validation/test parquet files: not SPROUT's folder "
                          "(data/train-*.parquet, ...)", source=str(source))
    imported = Imported(format=NAME, source=str(source),
                        token_fields="num_input_tokens and num_output_tokens")
    imported.description = ("SPROUT (CARROT, Somerstep et al. 2025): prompts from MMLU-Pro, "
                            "MATH, RAGBench and OpenHermes, each model's judged score and "
                            "token counts, imported")
    imported.license = ("none stated on the CARROT-LLM-Routing/SPROUT dataset card as far as "
                        "is known here: check the card before redistributing")
    imported.built_from = "https://huggingface.co/datasets/CARROT-LLM-Routing/SPROUT"
    imported.own_splits = ", ".join(f"{s}: {', '.join(p.name for p in paths)}"
                                    for s, paths in sorted(files.items()))
    for split, paths in sorted(files.items()):
        for path in paths:
            table = read_parquet(path, EXPECTED, DOC)
            where = str(path)
            for column in ("prompt", "dataset"):
                if column not in table.column_names:
                    raise WrongFormat(f"no column {column!r}: not {EXPECTED}", source=where)
            models = [c for c in table.column_names if c not in META]
            if not models:
                raise WrongFormat(f"no model columns: not {EXPECTED}", source=where)
            keys = (table.column("key").to_pylist() if "key" in table.column_names
                    else [None] * table.num_rows)
            prompts = table.column("prompt").to_pylist()
            groups = table.column("dataset").to_pylist()
            cells = {m: table.column(m).to_pylist() for m in models}
            for row in range(table.num_rows):
                key = keys[row]
                identifier = str(key) if key is not None else f"{split}-{path.stem}-{row}"
                if not isinstance(groups[row], str):
                    raise DataError(f"dataset must be text, got {shown(groups[row])}",
                                    source=where, row=row)
                i = imported.add_row(identifier, _prompt(prompts[row], where, row),
                                     groups[row], (where, row), split=split)
                for model in models:
                    cell = cells[model][row]
                    if cell is None:
                        imported.set_cell(i, model, None, (where, row))
                        continue
                    if not isinstance(cell, dict):
                        raise DataError(f"column {model!r} must hold a struct with score, "
                                        f"num_input_tokens, num_output_tokens; got "
                                        f"{shown(cell)}", source=where, row=row)
                    imported.set_cell(
                        i, model, _value(cell, "score", where, row, model), (where, row),
                        input_tokens=_value(cell, "num_input_tokens", where, row, model),
                        output_tokens=_value(cell, "num_output_tokens", where, row, model))
    return imported
