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

import numpy as np

from routeharness.data import COST_PREFIX, SCORE_PREFIX, DataError, carve_validation
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
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "split": []}
    for name in models:
        columns[SCORE_PREFIX + name] = []
    for name in models:
        columns[COST_PREFIX + name] = []
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
                price_in, price_out = prices[name]
                columns[COST_PREFIX + name].append(
                    (tokens_in * price_in + output_tokens * price_out) / 1e6)
    is_train = np.asarray([s == "train" for s in columns["split"]])
    train_rows = np.flatnonzero(is_train)
    moved = carve_validation([columns["id"][i] for i in train_rows],
                             [columns["group"][i] for i in train_rows],
                             VALIDATION_FRACTION, VALIDATION_SEED)
    for i in train_rows[moved]:
        columns["split"][i] = "validation"
    return columns


def load(card: Any, data_dir: Path | None = None, **_: Any) -> Any:
    """The LLMRouter task: from ``data_dir`` (the mirror layout) if given, else the copy
    embedded in the package."""
    if data_dir is None:
        return common.load_embedded(card)
    source = common.find_source(Path(data_dir), NAME, REQUIRED, "LLMRouter")
    return common.columns_to_task(build_columns(source, card), card, str(source))


def build(source_dir: str | Path, out_dir: str | Path) -> Path:
    """``routeharness data build llmrouter``: mirror layout -> canonical dataset."""
    card = common.load_card_of(NAME)
    task = load(card, data_dir=Path(source_dir))
    return common.save_canonical(task, Path(out_dir), card, str(source_dir))
