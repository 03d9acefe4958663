"""RouterDC's in-distribution data (``datasets/split2_model7``) as a routing task.

Mirror layout (../shared/data/routerdc, from ``shuhao02/RouterDC``): a JSON list
``[{"question", "scores": {model: value}}]`` per task and part, ``<task>_train.json`` /
``<task>_test.json`` (GSM8K: ``gsm8k-train.json`` / ``gsm8k-test.json``).

The data has no licence upstream, so it is not shipped in the package: it is read from
``--data-dir DIR``, DIR holding these files, a ``routerdc/`` folder of them, or a checkout
of the upstream repository (``datasets/split2_model7/``).

Scores follow RouterDC's own evaluation: for multiple-choice tasks the stored value is
the gold option's probability when the argmax was right, else 0, and any value above 0
counts as correct (1.0); generation tasks (GSM8K, HumanEval) store the fraction of correct
samples, used as is. Test questions that also appear in a train file are removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routeharness import SCORE_PREFIX, DataError
from routeharness_texttasks import common

NAME = "routerdc"
# group -> (train file, test file, multiple choice?)
FILES: dict[str, tuple[str, str, bool]] = {
    "mmlu": ("mmlu_train.json", "mmlu_test.json", True),
    "gsm8k": ("gsm8k-train.json", "gsm8k-test.json", False),
    "cmmlu": ("cmmlu_train.json", "cmmlu_test.json", True),
    "arc-challenge": ("arc_challenge_train.json", "arc_challenge_test.json", True),
    "arc-easy": ("arc_easy_train.json", "arc_easy_test.json", True),
    "humaneval": ("humaneval_train.json", "humaneval_test.json", False),
}
REQUIRED = tuple(name for train, test, _ in FILES.values() for name in (train, test))
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 20240926
DEFAULT_OUTPUT_TOKENS = 256


def routerdc_score(value: float, multiple_choice: bool) -> float:
    """RouterDC's rule: multiple choice -> 1.0 if value > 0 else 0.0; generation -> value."""
    if multiple_choice:
        return 1.0 if value > 0 else 0.0
    return float(value)


def build_columns(source: Path, card: Any) -> dict[str, list[Any]]:
    """Canonical columns (with ``split``) from the mirror files."""
    models = [m["name"] for m in card.models]
    prices = common.model_prices(card)
    output_tokens = float(card.cost.get("output_tokens_assumed", DEFAULT_OUTPUT_TOKENS))
    columns = common.empty_columns(models)
    loaded = {(group, part): common.question_records(source / FILES[group][i], models)
              for group in FILES for i, part in enumerate(("train", "test"))}
    train_questions = {r["question"] for group in FILES for r in loaded[(group, "train")]}
    for part in ("train", "test"):
        for group, (train_file, test_file, multiple_choice) in FILES.items():
            path = source / (train_file if part == "train" else test_file)
            for row, record in enumerate(loaded[(group, part)]):
                question = record["question"]
                if part == "test" and question in train_questions:
                    continue  # leaked into train upstream (see the card's notes)
                columns["id"].append(f"routerdc-{group}-{part}-{row:05d}")
                columns["prompt"].append(question)
                columns["group"].append(group)
                columns["split"].append(part)
                tokens_in = common.prompt_tokens(question)
                for name in models:
                    raw = float(record["scores"][name])
                    if not 0.0 <= raw <= 1.0 + 1e-9:
                        raise DataError(f"score {raw!r} outside [0, 1]", source=str(path),
                                        row=row, column=f"scores.{name}")
                    columns[SCORE_PREFIX + name].append(
                        min(1.0, routerdc_score(raw, multiple_choice)))
                common.append_costs(columns, models, prices, tokens_in, output_tokens)
    common.move_validation_rows(columns, VALIDATION_FRACTION, VALIDATION_SEED)
    return columns


# in a checkout of the upstream repository the files are in datasets/split2_model7/
UPSTREAM_SUBDIR = "datasets/split2_model7"
load, build = common.mirror_loader(NAME, REQUIRED, "RouterDC", build_columns, embedded=False,
                                   subdirs=(UPSTREAM_SUBDIR,))
