"""LLMRouterBench (formerly OpenRouterBench; ynulihao/LLMRouterBench, the Hub's
NPULH/LLMRouterBench ``bench-release.tar.gz``), docs/formats/llmrouterbench.md: one JSON
result file per dataset x split x model, ``<dataset>/<split>/<model>/<timestamp>.json``
under ``results/bench/``, each ``{"dataset_name", "split", "model_name", "records": [...]}``
with per-record ``index``, ``origin_query``, ``prompt``, ``score``, ``cost`` (USD),
``prompt_tokens``, ``completion_tokens``. Written from the repository's README and
``baselines/data_loader.py`` at commit 5aa32c9; not checked against a real file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    number,
    read_json_file,
    require_object,
    shown,
)

NAME = "llmrouterbench"
DOC = "docs/formats/llmrouterbench.md"
EXPECTED = ("LLMRouterBench result files (<dataset>/<split>/<model>/<timestamp>.json with "
            "dataset_name, split, model_name, records)")
_TIMESTAMP = re.compile(r"(\d{8})_(\d{6})\.json$")
HEADER = ("dataset_name", "split", "model_name", "records")


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*.json") if p.is_file())


def looks_like(source: Path) -> bool:
    if not source.is_dir():
        return False
    for path in _files(source)[:1]:
        with open(path, "rb") as handle:
            head = handle.read(65536)
        return b'"records"' in head and b'"model_name"' in head
    return False


def _text(value: Any) -> str:
    """A query as text: lists and objects (a chat) as their JSON, as upstream's loader
    writes them."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _latest(files: list[tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    """Upstream's rule: the file whose name ends in the latest ``YYYYMMDD_HHMMSS.json``
    (a name without one sorts first; then by name, for a rule that does not depend on
    file times)."""
    def key(item: tuple[Path, dict[str, Any]]) -> tuple[str, str]:
        match = _TIMESTAMP.search(item[0].name)
        return (match.group(1) + match.group(2) if match else "", item[0].name)

    return max(files, key=key)


def read(source: Path) -> Imported:
    if not source.is_dir():
        raise WrongFormat(f"expected a folder of {EXPECTED} (results/bench, extracted from "
                          "bench-release.tar.gz)", source=str(source))
    paths = _files(source)
    if not paths:
        raise WrongFormat(f"no .json files: not a folder of {EXPECTED}", source=str(source))
    grouped: dict[tuple[str, str, str], list[tuple[Path, dict[str, Any]]]] = {}
    demo = 0
    for path in paths:
        data = require_object(read_json_file(path, EXPECTED, DOC), str(path), None,
                              "a result file")
        absent = [k for k in HEADER if k not in data]
        if absent:
            raise WrongFormat(f"no {absent[0]!r} field: not {EXPECTED}", source=str(path))
        if data.get("demo") is True:
            demo += 1
            continue
        key = tuple(str(data[k]) for k in HEADER[:3])
        grouped.setdefault(key, []).append((path, data))  # type: ignore[arg-type]
    imported = Imported(format=NAME, source=str(source), cost_field="records[].cost",
                        token_fields="prompt_tokens and completion_tokens")
    imported.description = ("LLMRouterBench (ynulihao/LLMRouterBench) per-prompt, per-model "
                            "results, imported")
    imported.license = "MIT (ynulihao/LLMRouterBench)"
    imported.built_from = ("https://github.com/ynulihao/LLMRouterBench (results/bench; "
                           "bench-release.tar.gz on the Hub as NPULH/LLMRouterBench)")
    rows: dict[tuple[str, str, str], int] = {}
    older = 0
    for key in sorted(grouped):
        dataset, split, model = key
        path, data = _latest(grouped[key])
        older += len(grouped[key]) - 1
        where = str(path)
        records = data["records"]
        if not isinstance(records, list):
            raise DataError(f"records must be a list, got {type(records).__name__}",
                            source=where)
        for row, record in enumerate(records):
            record = require_object(record, where, row, "a record")
            if "index" not in record:
                raise DataError("the record has no 'index' field", source=where, row=row)
            index = record["index"]
            if isinstance(index, bool) or not isinstance(index, (int, str)):
                raise DataError(f"index must be an integer or text, got {shown(index)}",
                                source=where, row=row)
            query = _text(record.get("origin_query")) or _text(record.get("prompt"))
            prompt_key = (dataset, split, str(index))
            if prompt_key in rows:
                i = rows[prompt_key]
                if imported.prompts[i] != query:
                    first = imported.origins[i]
                    raise DataError(f"the query of {dataset}/{split} index {index} differs "
                                    f"from the one at {first[0]}, row {first[1]}",
                                    source=where, row=row)
            else:
                i = rows[prompt_key] = imported.add_row(f"{dataset}/{split}/{index}", query,
                                                        dataset, (where, row))
            score = number(record.get("score"), where, row, "score", allow_none=True)
            cost = number(record.get("cost"), where, row, "cost", allow_none=True)
            if cost is not None and cost < 0:
                raise DataError(f"cost is negative ({cost})", source=where, row=row)
            imported.set_cell(
                i, model, score, (where, row), cost=cost,
                input_tokens=number(record.get("prompt_tokens"), where, row, "prompt_tokens",
                                    allow_none=True),
                output_tokens=number(record.get("completion_tokens"), where, row,
                                     "completion_tokens", allow_none=True))
    if older:
        imported.notes.append(f"{older} older result file{'s' if older > 1 else ''} of a "
                              "dataset x split x model skipped (the latest by the timestamp "
                              "in its name is read)")
    if demo:
        imported.notes.append(f"{demo} demo result file{'s' if demo > 1 else ''} skipped")
    splits = sorted({k[1] for k in grouped})
    imported.notes.append(f"the benchmark splits read ({', '.join(splits)}) are part of "
                          "each row's id, not routing splits")
    return imported
