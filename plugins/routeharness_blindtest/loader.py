"""Load BlindTest from the shared data folder as a multimodal routing task.

Source layout (``<data dir>/blindtest/`` or the blindtest folder itself):
``items.csv`` (one row per image + question item: ``item_id, task, subtask, prompt_variant,
question, image`` (path relative to the folder), ``image_bytes, source_path_example``, then
per model the correctness in [0, 1] (mean over trials) and ``<model>_n`` trials) and
``images/<sha1>.png``; the CI subset is the same layout under ``ci_subset/``.

Rows: ``prompt`` = the question, ``group`` = the task (7), ``image`` = the PNG, stored with
the ``datasets.Image`` feature (by path, decoded only when an encoder reads it). Scores as
upstream. Cost per call (USD) = the model's price per image + estimated input and output
tokens x its token prices, all from the task card's price table (see ``call_cost``).
Splits: seeded and stratified by task, and by *image*: the 4,740 distinct images are
assigned to train / validation / test, so an image (asked with several question wordings)
never appears in two splits.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import (
    COST_PREFIX,
    SCORE_PREFIX,
    DataError,
    RouteHarnessError,
    RoutingTask,
    carve_validation,
    task_from_table,
)

NAME = "blindtest"
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.1  # of all images
SPLIT_SEED = 20240709
CHARS_PER_TOKEN = 4
OUTPUT_TOKENS = 50
ITEM_COLUMNS = ("item_id", "task", "question", "image")


def find_source(data_dir: Path | None, subset: str | None = None) -> Path:
    """The folder holding ``items.csv`` and ``images/`` (the CI subset's for ``subset='ci'``)."""
    if data_dir is None:
        raise RouteHarnessError(
            "task blindtest reads the BlindTest data, which is not embedded in the package: "
            "pass --data-dir DIR (or set ROUTEHARNESS_DATA=DIR), where DIR holds "
            "blindtest/items.csv and blindtest/images/ (e.g. ../shared/data)")
    for base in (data_dir / "blindtest", data_dir):
        folder = base / "ci_subset" if subset == "ci" else base
        if (folder / "items.csv").is_file():
            return folder
    raise RouteHarnessError(f"{data_dir}: no blindtest/items.csv here (nor items.csv); pass "
                            "--data-dir pointing at the folder that holds blindtest/")


def call_cost(model: dict[str, Any], question: str, output_tokens: int = OUTPUT_TOKENS) -> float:
    """USD of one call: one image, the question's tokens (chars / 4, rounded up) in, and
    ``output_tokens`` out, at the model's prices from the card."""
    input_tokens = math.ceil(len(question) / CHARS_PER_TOKEN)
    return (float(model["price_per_image"])
            + input_tokens * float(model["price_input_per_mtok"]) / 1e6
            + output_tokens * float(model["price_output_per_mtok"]) / 1e6)


def read_items(folder: Path, models: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``items.csv`` -> canonical columns (+ ``image`` absolute paths), checked cell by cell."""
    path = folder / "items.csv"
    source = str(path)
    names = [m["name"] for m in models]
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "image": []}
    for name in names:
        columns[SCORE_PREFIX + name] = []
        columns[COST_PREFIX + name] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in (*ITEM_COLUMNS, *names):
            if column not in header:
                raise DataError(f"missing column {column!r}", source=source, column=column)
        for row, record in enumerate(reader):
            image = folder / record["image"]
            if not image.is_file():
                raise DataError(f"image file {image} does not exist", source=source, row=row,
                                column="image")
            columns["id"].append(f"blindtest-{record['item_id']}")
            columns["prompt"].append(record["question"])
            columns["group"].append(record["task"])
            columns["image"].append(str(image))
            for model in models:
                raw = record[model["name"]].strip()
                try:
                    score = float(raw) if raw else float("nan")
                except ValueError:
                    raise DataError(f"not a number: {raw[:40]!r}", source=source, row=row,
                                    column=model["name"]) from None
                columns[SCORE_PREFIX + model["name"]].append(score)
                columns[COST_PREFIX + model["name"]].append(call_cost(model, record["question"]))
    if not columns["id"]:
        raise DataError("no items", source=source)
    return columns


def assign_splits(images: list[str], groups: list[str]) -> np.ndarray:
    """Split of each row, by image: 30% of each task's distinct images to test, 10% of all
    to validation (seeded), the rest to train. (n,) array of split names."""
    keys = sorted({(g, Path(i).name) for i, g in zip(images, groups)})
    key_ids = [k[1] for k in keys]
    key_groups = [k[0] for k in keys]
    test = carve_validation(key_ids, key_groups, TEST_FRACTION, SPLIT_SEED)
    rest = np.flatnonzero(~test)
    validation = carve_validation([key_ids[i] for i in rest], [key_groups[i] for i in rest],
                                  VALIDATION_FRACTION / (1 - TEST_FRACTION), SPLIT_SEED + 1)
    split_of = np.where(test, "test", "train").astype(object)
    split_of[rest[validation]] = "validation"
    lookup = {key: split_of[i] for i, key in enumerate(keys)}
    return np.asarray([lookup[(g, Path(i).name)] for i, g in zip(images, groups)], dtype=object)


def load(card: Any, data_dir: Path | None = None, subset: str | None = None,
         **options: Any) -> RoutingTask:
    """The BlindTest task (``subset='ci'``: the 224-item CI subset) from ``data_dir``."""
    import datasets

    if options:
        raise RouteHarnessError(f"task {NAME}: unknown option(s) {sorted(options)}")
    if subset not in (None, "ci"):
        raise RouteHarnessError(f"task {NAME}: subset must be 'ci' or absent, got {subset!r}")
    folder = find_source(data_dir, subset)
    models = list(card.models)
    for model in models:
        for key in ("price_per_image", "price_input_per_mtok", "price_output_per_mtok"):
            if not isinstance(model.get(key), (int, float)):
                raise RouteHarnessError(f"{card.path}: model {model['name']!r} needs a numeric "
                                        f"{key} (the cost model)")
    columns = read_items(folder, models)
    columns["split"] = list(assign_splits(columns["image"], columns["group"]))
    features = datasets.Features({
        "id": datasets.Value("string"), "prompt": datasets.Value("string"),
        "group": datasets.Value("string"), "image": datasets.Image(),
        "split": datasets.Value("string"),
        **{k: datasets.Value("float64") for k in columns if k.startswith((SCORE_PREFIX,
                                                                          COST_PREFIX))}})
    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict(columns, features=features)
    items = str(folder / "items.csv")
    notes = ["only 30 distinct question texts: a text-only encoder sees which template a "
             "question is, nothing more; the routing signal beyond that is in the image"]
    try:  # table row i is items.csv row i: a problem is reported there
        return task_from_table(table, name=f"{NAME}-ci" if subset == "ci" else NAME,
                               version=card.version, source=str(folder),
                               models=card.model_infos(), card=card, revision=card.revision,
                               group_descriptions=card.group_descriptions(), notes=notes,
                               origins=[(items, row) for row in range(len(table))])
    except DataError as exc:  # a score is items.csv's model column (costs come from the card)
        if exc.column is None or not exc.column.startswith(SCORE_PREFIX):
            raise
        raise DataError(exc.detail, source=exc.source, row=exc.row,
                        column=exc.column[len(SCORE_PREFIX):]) from None


def load_ci(card: Any, data_dir: Path | None = None, **options: Any) -> RoutingTask:
    """``blindtest-ci``: the CI subset (224 items, 32 per task)."""
    return load(card, data_dir=data_dir, subset="ci", **options)
