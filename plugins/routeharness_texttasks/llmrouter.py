"""LLMRouter's default routing data as a routing task: 14 tasks x 9 NIM-served models.

Mirror layout (../shared/data/llmrouter, from ``ulab-uiuc/LLMRouter``):
``dcrouter_preprocessed__{train,test}.json`` (question, scores per model),
``example_data__query_data__default_query_{train,test}.jsonl`` (task_name per query: the
group, joined on the question text) and ``example_data__llm_candidates__default_llm.json``
(price table, USD per million input/output tokens).

The 119 test questions that also appear word for word in train are removed from test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routeharness import SCORE_PREFIX, DataError
from routeharness_texttasks import common

NAME = "llmrouter"
SCORES_FILE = "dcrouter_preprocessed__{part}.json"
QUERY_FILE = "example_data__query_data__default_query_{part}.jsonl"
PRICE_FILE = "example_data__llm_candidates__default_llm.json"
REQUIRED = (SCORES_FILE.format(part="train"), SCORES_FILE.format(part="test"),
            QUERY_FILE.format(part="train"), QUERY_FILE.format(part="test"), PRICE_FILE)
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 20250601
DEFAULT_OUTPUT_TOKENS = 256


def _check_prices(source: Path, card: Any) -> dict[str, tuple[float, float]]:
    """The card's price table, checked against the upstream one (a change is a new version)."""
    path = source / PRICE_FILE
    upstream = common.read_json(path)
    prices = common.model_prices(card)
    for name, (price_in, price_out) in prices.items():
        entry = upstream.get(name) if isinstance(upstream, dict) else None
        if not isinstance(entry, dict):
            raise DataError(f"model {name!r} of the task card is not in the price table",
                            source=str(path))
        if (float(entry.get("input_price", -1)), float(entry.get("output_price", -1))) != (
                price_in, price_out):
            raise DataError(f"prices of {name!r} ({entry.get('input_price')}, "
                            f"{entry.get('output_price')}) differ from the task card "
                            f"({price_in}, {price_out}): a changed price table is a new task "
                            "version", source=str(path), column=name)
    return prices


def _task_of_query(path: Path) -> dict[str, str]:
    """question text -> task name, first occurrence wins (6 train questions are in two)."""
    out: dict[str, str] = {}
    for row, record in enumerate(common.read_jsonl(path)):
        query, task = record.get("query"), record.get("task_name")
        if not isinstance(query, str) or not isinstance(task, str):
            raise DataError("needs string 'query' and 'task_name'", source=str(path), row=row)
        out.setdefault(query, task)
    return out


def build_columns(source: Path, card: Any) -> dict[str, list[Any]]:
    """Canonical columns (with ``split``) from the mirror files."""
    models = [m["name"] for m in card.models]
    prices = _check_prices(source, card)
    output_tokens = float(card.cost.get("output_tokens_assumed", DEFAULT_OUTPUT_TOKENS))
    columns = common.empty_columns(models)
    train_questions: set[str] = set()
    for part in ("train", "test"):
        path = source / SCORES_FILE.format(part=part)
        records = common.question_records(path, models)
        groups = _task_of_query(source / QUERY_FILE.format(part=part))
        for row, record in enumerate(records):
            question = record["question"]
            if part == "train":
                train_questions.add(question)
            elif question in train_questions:
                continue  # leaked: the same question is in train (see the card's notes)
            group = groups.get(question)
            if group is None:
                raise DataError("question not found in the query file "
                                f"{QUERY_FILE.format(part=part)}", source=str(path), row=row,
                                column="question")
            columns["id"].append(f"llmrouter-{part}-{row:05d}")
            columns["prompt"].append(question)
            columns["group"].append(group)
            columns["split"].append(part)
            tokens_in = common.prompt_tokens(question)
            for name in models:
                value = float(record["scores"][name])
                if not 0.0 <= value <= 1.0:
                    raise DataError(f"score {value!r} outside [0, 1]", source=str(path),
                                    row=row, column=f"scores.{name}")
                columns[SCORE_PREFIX + name].append(value)
            common.append_costs(columns, models, prices, tokens_in, output_tokens)
    common.move_validation_rows(columns, VALIDATION_FRACTION, VALIDATION_SEED)
    return columns


load, build = common.mirror_loader(NAME, REQUIRED, "LLMRouter", build_columns)
