"""AlpacaEval 2.0 as a routing task: 805 instructions x 55 models.

Score: the judge's (weighted_alpaca_eval_gpt4_turbo) probability that the model's answer
beats the reference (gpt4_1106_preview), i.e. upstream ``preference - 1``, in [0, 1].
Cost: output tokens estimated as answer characters / 4, times the model's output price
(USD per million tokens) from the task card. Cells without an annotation are missing.

Two source layouts:
- the upstream repository (``tatsu-lab/alpaca_eval``):
  ``results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json``;
- the offline mirror (../shared/data/alpacaeval): ``*_prompts.jsonl``,
  ``*_winrate_vs_ref.csv`` and ``*_output_chars.csv`` (derived from the former).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import COST_PREFIX, SCORE_PREFIX, DataError, RouteHarnessError, carve_validation
from routeharness_texttasks import common

NAME = "alpacaeval"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
# NullModel and gpt4_gamed are deliberate attacks on the judge; gpt4_1106_preview is the
# reference itself (always 0.5)
EXCLUDED_MODELS = ("NullModel", "gpt4_gamed", "gpt4_1106_preview")
PROMPTS_FILE = f"{ANNOTATOR}_prompts.jsonl"
WINRATE_FILE = f"{ANNOTATOR}_winrate_vs_ref.csv"
CHARS_FILE = f"{ANNOTATOR}_output_chars.csv"
MIRROR_FILES = (PROMPTS_FILE, WINRATE_FILE, CHARS_FILE)
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.1  # of all prompts
SPLIT_SEED = 20240805


def assign_splits(ids: list[str], groups: list[str]) -> list[str]:
    """Seeded split stratified by sub-dataset: 30% test, 10% validation, 60% train."""
    test = carve_validation(ids, groups, TEST_FRACTION, SPLIT_SEED)
    rest = np.flatnonzero(~test)
    validation = carve_validation([ids[i] for i in rest], [groups[i] for i in rest],
                                  VALIDATION_FRACTION / (1 - TEST_FRACTION), SPLIT_SEED + 1)
    split = np.where(test, "test", "train").astype(object)
    split[rest[validation]] = "validation"
    return split.tolist()


def _canonical_columns(ids: list[str], prompts: list[str], groups: list[str],
                       models: list[str], scores: dict[str, list[float]],
                       chars: dict[str, list[float]], card: Any) -> dict[str, list[Any]]:
    prices = common.model_prices(card)
    columns: dict[str, list[Any]] = {"id": ids, "prompt": prompts, "group": groups,
                                     "split": assign_splits(ids, groups)}
    for name in models:
        columns[SCORE_PREFIX + name] = [None if math.isnan(v) else v for v in scores[name]]
    for name in models:
        price = prices[name][1]
        columns[COST_PREFIX + name] = [
            None if math.isnan(s) or math.isnan(c) else common.approx_tokens(c) * price / 1e6
            for s, c in zip(scores[name], chars[name])]
    return columns


def _card_models(card: Any, found: list[str], source: str) -> list[str]:
    """The card's models, in card order; every one must be in the source."""
    known = [m["name"] for m in card.models]
    for name in found:
        if name not in known and name not in EXCLUDED_MODELS:
            raise DataError(f"model {name!r} is not in the task card's price table "
                            f"({card.path}); add it to build this source", source=source)
    missing = [name for name in known if name not in found]
    if missing:
        raise DataError(f"models of the task card missing from the source: {missing}",
                        source=source)
    return known


def _read_matrix(path: Path) -> tuple[list[str], dict[str, list[float]], list[str]]:
    """A wide CSV ``prompt_id, <model>...`` -> (models, columns, prompt ids)."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader)
        if not header or header[0] != "prompt_id":
            raise DataError("first column must be 'prompt_id'", source=str(path), row=None,
                            column=header[0] if header else None)
        models = header[1:]
        values: dict[str, list[float]] = {m: [] for m in models}
        prompt_ids = []
        for row, record in enumerate(reader):
            if len(record) != len(header):
                raise DataError(f"{len(record)} fields, the header has {len(header)}",
                                source=str(path), row=row)
            prompt_ids.append(record[0])
            for name, cell in zip(models, record[1:]):
                try:
                    values[name].append(float(cell) if cell.strip() else math.nan)
                except ValueError:
                    raise DataError(f"not a number: {cell[:40]!r}", source=str(path), row=row,
                                    column=name) from None
    return models, values, prompt_ids


def columns_from_mirror(source: Path, card: Any) -> dict[str, list[Any]]:
    """Canonical columns (with ``split``) from the mirror's three files."""
    prompts = common.read_jsonl(source / PROMPTS_FILE)
    models_w, winrate, ids_w = _read_matrix(source / WINRATE_FILE)
    models_c, chars, ids_c = _read_matrix(source / CHARS_FILE)
    if models_w != models_c or ids_w != ids_c:
        raise DataError(f"{CHARS_FILE} and {WINRATE_FILE} disagree on models or prompt ids",
                        source=str(source / CHARS_FILE))
    by_id = {str(p.get("prompt_id")): p for p in prompts}
    texts, groups = [], []
    for row, prompt_id in enumerate(ids_w):
        record = by_id.get(prompt_id)
        if record is None:
            raise DataError(f"prompt_id {prompt_id!r} not in {PROMPTS_FILE}",
                            source=str(source / WINRATE_FILE), row=row, column="prompt_id")
        texts.append(record["instruction"])
        groups.append(record["dataset"])
    for name in models_w:
        for row, value in enumerate(winrate[name]):
            if not math.isnan(value) and not 0.0 <= value <= 1.0:
                raise DataError(f"win probability {value!r} outside [0, 1]",
                                source=str(source / WINRATE_FILE), row=row, column=name)
    models = _card_models(card, models_w, str(source / WINRATE_FILE))
    ids = [common.stable_id("ae", text) for text in texts]
    return _canonical_columns(ids, texts, groups, models, winrate, chars, card)


def _results_dir(source: Path) -> Path | None:
    for candidate in (source / "results", source):
        if candidate.is_dir() and any(candidate.glob(f"*/{ANNOTATOR}/annotations.json")):
            return candidate
    return None


def columns_from_results(results: Path, card: Any) -> dict[str, list[Any]]:
    """Canonical columns from upstream ``results/<model>/<annotator>/annotations.json``.

    Score = ``preference - 1`` (upstream preference is in [1, 2]: 2 = the model wins);
    answer length = ``len(output_2)``. Prompts are keyed by instruction text.
    """
    order: dict[str, int] = {}
    texts: list[str] = []
    groups: list[str] = []
    per_model: dict[str, dict[int, tuple[float, float]]] = {}
    for path in sorted(results.glob(f"*/{ANNOTATOR}/annotations.json")):
        model = path.parent.parent.name
        if model in EXCLUDED_MODELS:
            continue
        records = common.read_json(path)
        if not isinstance(records, list):
            raise DataError("expected a JSON list of annotations", source=str(path))
        cells: dict[int, tuple[float, float]] = {}
        for row, record in enumerate(records):
            if not isinstance(record, dict) or not isinstance(record.get("instruction"), str):
                raise DataError("annotation without an 'instruction'", source=str(path),
                                row=row, column="instruction")
            if record.get("generator_2") not in (None, model):
                raise DataError(f"generator_2 is {record.get('generator_2')!r}, expected "
                                f"{model!r} (the folder name)", source=str(path), row=row,
                                column="generator_2")
            text = record["instruction"]
            if text not in order:
                order[text] = len(texts)
                texts.append(text)
                groups.append(str(record.get("dataset") or "unknown"))
            preference = record.get("preference")
            output = record.get("output_2")
            if preference is None or (isinstance(preference, float) and math.isnan(preference)):
                cells[order[text]] = (math.nan, math.nan)
                continue
            try:
                score = float(preference) - 1.0
            except (TypeError, ValueError):
                raise DataError(f"preference {preference!r} is not a number", source=str(path),
                                row=row, column="preference") from None
            if not 0.0 <= score <= 1.0:
                raise DataError(f"preference {preference!r} outside [1, 2]", source=str(path),
                                row=row, column="preference")
            if not isinstance(output, str):
                raise DataError("missing model answer", source=str(path), row=row,
                                column="output_2")
            cells[order[text]] = (score, float(len(output)))
        per_model[model] = cells
    if not per_model:
        raise RouteHarnessError(f"{results}: no results/<model>/{ANNOTATOR}/annotations.json")
    known = [m["name"] for m in card.models]
    for name in per_model:
        if name not in known:
            raise DataError(f"model {name!r} is not in the task card's price table "
                            f"({card.path}); add it to build this source",
                            source=str(results / name))
    # a build from part of the results (e.g. one model) keeps the card's order
    models = [name for name in known if name in per_model]
    scores = {m: [per_model[m].get(i, (math.nan, math.nan))[0] for i in range(len(texts))]
              for m in models}
    chars = {m: [per_model[m].get(i, (math.nan, math.nan))[1] for i in range(len(texts))]
             for m in models}
    ids = [common.stable_id("ae", text) for text in texts]
    return _canonical_columns(ids, texts, groups, models, scores, chars, card)


def _card_subset(card: Any, names: list[str]) -> Any:
    return card.model_copy(update={"models": [m for m in card.models if m["name"] in names]})


def load(card: Any, data_dir: Path | None = None, **_: Any) -> Any:
    """The AlpacaEval task: from ``data_dir`` (the mirror, or an upstream checkout with
    ``results/``) if given, else the copy embedded in the package."""
    if data_dir is None:
        return common.load_embedded(card)
    data_dir = Path(data_dir)
    for candidate in (data_dir / NAME, data_dir):
        if all((candidate / f).is_file() for f in MIRROR_FILES):
            return common.columns_to_task(columns_from_mirror(candidate, card), card,
                                          str(candidate))
        results = _results_dir(candidate)
        if results is not None:
            columns = columns_from_results(results, card)
            names = [c[len(SCORE_PREFIX):] for c in columns if c.startswith(SCORE_PREFIX)]
            return common.columns_to_task(columns, _card_subset(card, names), str(results))
    raise RouteHarnessError(f"{data_dir}: no AlpacaEval data ({PROMPTS_FILE}, ... or "
                            f"results/<model>/{ANNOTATOR}/annotations.json) here or in "
                            f"{data_dir / NAME}")


def build(source_dir: str | Path, out_dir: str | Path) -> Path:
    """``routeharness data build alpacaeval``: upstream layout -> canonical dataset."""
    card = common.load_card_of(NAME)
    task = load(card, data_dir=Path(source_dir))
    return common.save_canonical(task, Path(out_dir), task.card, str(source_dir))
