"""RouterArena's cached per-model results (docs/formats/routerarena.md): one JSON object
per line per model file (``cached_results/<model>.jsonl``), and the price table
``cost.json`` (``model_cost/cost.json`` upstream). Checked against the real files of
RouteWorks/RouterArena at commit 4714a9a (``../shared/data/routerarena``).

Read: ``global_index`` (the row id; its part before the first ``_`` is the group, the
source benchmark: ``MMLUPro_biology_12`` is ``MMLUPro``), ``question`` (the prompt, the same in every model's file), ``llm_selected`` (the
model), ``evaluation_result.score`` (clipped to [0, 1]), ``evaluation_result.inference_cost``
(USD), ``token_usage`` (a dict, or a Python dict literal as text: ``ast.literal_eval``,
never ``eval``), ``success`` (false: a missing cell), ``provider``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    number,
    read_jsonl,
    read_price_table,
    require_object,
    text_field,
)

NAME = "routerarena"
DOC = "docs/formats/routerarena.md"
EXPECTED = "RouterArena results (JSON lines with global_index, question, evaluation_result)"
_SUFFIX = re.compile(r"_\d+$")


def group_of(index: str) -> str:
    """The source benchmark of a ``global_index``: its part before the first ``_``
    (``MMLUPro_biology_12`` -> ``MMLUPro``, ``SuperGLUE-Wic_3`` -> ``SuperGLUE-Wic``)."""
    return _SUFFIX.sub("", index).split("_", 1)[0] or index


def _folders(source: Path) -> tuple[Path, Path | None]:
    """The folder of result files and the price table: SOURCE itself (``cost.json``
    beside the files), or a RouterArena checkout (``cached_results/``,
    ``model_cost/cost.json``)."""
    if (source / "cached_results").is_dir():
        table = source / "model_cost" / "cost.json"
        return source / "cached_results", table if table.is_file() else None
    table = source / "cost.json"
    return source, table if table.is_file() else None


def looks_like(source: Path) -> bool:
    if not source.is_dir():
        return False
    folder, _ = _folders(source)
    for path in sorted(folder.glob("*.jsonl"))[:1]:
        with open(path, "rb") as handle:
            return b'"global_index"' in handle.read(4096)
    return False


def token_usage(value: Any, source: str, row: int) -> dict[str, Any]:
    """``token_usage``: a dict, or a Python dict literal as a string (parsed with
    ``ast.literal_eval``, which evaluates no code)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError("token_usage is text that is not a dict literal",
                            source=source, row=row) from None
    return require_object(value, source, row, "token_usage")


def read(source: Path) -> Imported:
    if not source.is_dir():
        raise WrongFormat(f"expected a folder of {EXPECTED} (one <model>.jsonl per model, "
                          "cost.json beside them)", source=str(source))
    folder, table_path = _folders(source)
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise WrongFormat(f"no .jsonl files: not a folder of {EXPECTED}", source=str(folder))
    imported = Imported(format=NAME, source=str(source),
                        cost_field="evaluation_result.inference_cost",
                        token_fields="token_usage's input_tokens and output_tokens")
    imported.prices = read_price_table(table_path) if table_path else None
    imported.description = ("RouterArena (RouteWorks) cached per-model results, imported: "
                            "prompts from ~40 benchmarks, scores by each benchmark's metric")
    imported.license = "Apache-2.0 (RouteWorks/RouterArena)"
    imported.built_from = ("https://github.com/RouteWorks/RouterArena (cached_results/*.jsonl, "
                           "model_cost/cost.json)")
    rows: dict[str, int] = {}
    clipped, failed = [], 0
    for path in files:
        for row, record in read_jsonl(path, EXPECTED, DOC):
            where = str(path)
            record = require_object(record, where, row, "a RouterArena result")
            if "global_index" not in record:
                raise WrongFormat(f"the record has no 'global_index': not {EXPECTED}",
                                  source=where, row=row)
            index = text_field(record, "global_index", where, row)
            question = text_field(record, "question", where, row)
            model = text_field(record, "llm_selected", where, row)
            if index in rows:
                i = rows[index]
                if imported.prompts[i] != question:
                    first = imported.origins[i]
                    raise DataError(f"the question of {index!r} differs from the one at "
                                    f"{first[0]}, row {first[1]}", source=where, row=row)
            else:
                i = rows[index] = imported.add_row(index, question, group_of(index),
                                                   (where, row))
            provider = record.get("provider")
            if isinstance(provider, str) and provider:
                imported.model_info.setdefault(model, {})["provider"] = provider
            if record.get("success") is False:
                imported.set_cell(i, model, None, (where, row))
                failed += 1
                continue
            result = require_object(record.get("evaluation_result"), where, row,
                                    "evaluation_result")
            score = number(result.get("score"), where, row, "evaluation_result.score")
            if not 0.0 <= score <= 1.0:
                clipped.append(f"{index} x {model} ({score:.4g})")
                score = min(1.0, max(0.0, score))
            cost = number(result.get("inference_cost"), where, row,
                          "evaluation_result.inference_cost", allow_none=True)
            if cost is not None and cost < 0:
                raise DataError(f"evaluation_result.inference_cost is negative ({cost})",
                                source=where, row=row)
            tokens_in = tokens_out = None
            if record.get("token_usage") is not None:
                usage = token_usage(record["token_usage"], where, row)
                tokens_in = number(usage.get("input_tokens"), where, row,
                                   "token_usage.input_tokens", allow_none=True)
                tokens_out = number(usage.get("output_tokens"), where, row,
                                    "token_usage.output_tokens", allow_none=True)
            imported.set_cell(i, model, score, (where, row), cost=cost,
                              input_tokens=tokens_in, output_tokens=tokens_out)
    if imported.prices is not None:  # the price table's order, then the files'
        order = list(imported.prices.prices)
        imported.models.sort(key=lambda m: order.index(m) if m in order else len(order))
    if clipped:
        imported.notes.append(f"{len(clipped)} score{'s' if len(clipped) > 1 else ''} outside "
                              f"[0, 1] clipped: {', '.join(clipped[:5])}"
                              + (" ..." if len(clipped) > 5 else ""))
    if failed:
        imported.notes.append(f"{failed} call{'s' if failed > 1 else ''} with success false: "
                              "missing cells")
    return imported
