"""The full RouterBench (withmartian/routerbench on the Hugging Face Hub), as parquet
(docs/formats/routerbench-full.md). Upstream ships only pickled pandas DataFrames
(``routerbench_0shot.pkl``, ``routerbench_5shot.pkl``); routeharness never unpickles, so
the user converts the file once (the page gives the one line) and imports the parquet.

Wide layout (one row per prompt), the same columns as the CSV re-export mirrored in
``../shared/data/routerbench`` (checked there): ``sample_id``, ``prompt`` (text, a list of
turns, or a Python list literal as text: ``ast.literal_eval``), ``eval_name`` (the group),
and per model ``<model>`` (the score), ``<model>|total_cost`` (USD of that call),
``<model>|model_response`` (not read); ``oracle_model_to_route_to`` is not read.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    is_pickle,
    read_parquet,
    refuse_pickle,
    shown,
)

NAME = "routerbench-full"
DOC = "docs/formats/routerbench-full.md"
EXPECTED = ("RouterBench as parquet (sample_id, prompt, eval_name, <model>, "
            "<model>|total_cost)")
COST_SUFFIX = "|total_cost"
REQUIRED = ("sample_id", "prompt", "eval_name")


def _file(source: Path) -> Path:
    """The parquet file: SOURCE itself, or the one ``.parquet`` in the folder SOURCE."""
    if not source.is_dir():
        return source
    parquets = sorted(source.glob("*.parquet"))
    if len(parquets) == 1:
        return parquets[0]
    if len(parquets) > 1:
        raise DataError(f"{len(parquets)} parquet files ({', '.join(p.name for p in parquets)}):"
                        " pass one of them (0-shot and 5-shot are separate tasks)",
                        source=str(source))
    pickles = sorted(p for p in source.iterdir() if p.is_file() and is_pickle(p))
    if pickles:
        refuse_pickle(pickles[0], "parquet", DOC)
    raise WrongFormat(f"no .parquet file: expected {EXPECTED}", source=str(source))


def looks_like(source: Path) -> bool:
    try:
        path = _file(source)
    except DataError:
        return False
    if path.name.lower().startswith("routerbench") and is_pickle(path):
        return True
    if path.suffix.lower() != ".parquet":
        return False
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(str(path)).names
    except Exception:  # not parquet
        return False
    return all(c in names for c in REQUIRED) and any(n.endswith(COST_SUFFIX) for n in names)


def prompt_text(value: Any, source: str, row: int) -> str:
    """A prompt: text; a list of turns (joined by newlines); or a Python list literal as
    text (the CSV re-export's form), parsed with ``ast.literal_eval``, never ``eval``."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str) and value.startswith("[") and value.rstrip().endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            value = parsed
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise DataError(f"prompt must be text or a list of texts, got {shown(value)}",
                    source=source, row=row)


def _cell(value: Any, source: str, row: int, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"column {column!r} must hold numbers, got {shown(value)}",
                        source=source, row=row)
    return None if math.isnan(value) else float(value)


def read(source: Path) -> Imported:
    path = _file(source)
    if path.suffix.lower() != ".parquet":
        refuse_pickle(path, "parquet", DOC)
        raise WrongFormat(f"expected a .parquet file of {EXPECTED}", source=str(path))
    table = read_parquet(path, EXPECTED, DOC)
    where = str(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise WrongFormat(f"no column {missing[0]!r}: not {EXPECTED}", source=where)
    models = [c[:-len(COST_SUFFIX)] for c in table.column_names if c.endswith(COST_SUFFIX)]
    if not models:
        raise WrongFormat(f"no '<model>{COST_SUFFIX}' column: not {EXPECTED}", source=where)
    absent = [m for m in models if m not in table.column_names]
    if absent:
        raise DataError(f"column {absent[0] + COST_SUFFIX!r} has no score column "
                        f"{absent[0]!r}", source=where)
    imported = Imported(format=NAME, source=str(path), cost_field="<model>|total_cost")
    imported.description = ("RouterBench (Martian), imported from its full pickled release "
                            "converted to parquet")
    imported.license = "MIT (withmartian/routerbench)"
    imported.built_from = ("https://huggingface.co/datasets/withmartian/routerbench "
                           f"({path.stem}, converted from pickle to parquet by the user)")
    ids = [str(v) for v in table.column("sample_id").to_pylist()]
    groups = table.column("eval_name").to_pylist()
    prompts = table.column("prompt").to_pylist()
    scores = {m: table.column(m).to_pylist() for m in models}
    costs = {m: table.column(m + COST_SUFFIX).to_pylist() for m in models}
    counts: dict[str, int] = {}
    for identifier in ids:
        counts[identifier] = counts.get(identifier, 0) + 1
    repeated = 0
    for row in range(table.num_rows):
        identifier = ids[row]
        if counts[identifier] > 1:  # upstream reuses a few sample_ids for different rows
            identifier = f"{identifier}#{row}"
            repeated += 1
        group = groups[row]
        if not isinstance(group, str):
            raise DataError(f"eval_name must be text, got {shown(group)}", source=where, row=row)
        i = imported.add_row(identifier, prompt_text(prompts[row], where, row), group,
                             (where, row))
        for model in models:
            score = _cell(scores[model][row], where, row, model)
            cost = _cell(costs[model][row], where, row, model + COST_SUFFIX)
            imported.set_cell(i, model, score, (where, row), cost=cost)
    if repeated:
        imported.notes.append(f"{repeated} rows share a sample_id with another row: their "
                              "id is sample_id#<row>")
    return imported
