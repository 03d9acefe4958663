"""Build ``vhelm-mm`` from VHELM's raw per-instance outputs (HELM run-output format).

Reads ``<benchmark_output>/runs/<suite>/<run>/`` (``run_spec.json``,
``per_instance_stats.json``, and ``instances.json`` or ``scenario_state.json``; format in
docs/multimodal.md and the VHELM FORMAT note), from a local directory or from the published
bucket URL (downloaded with a progress bar, resuming partial files with HTTP Range).

Per run: the model is ``run_spec.adapter_spec.model``; the run key is the run name without
``model=``; per-instance stats repeated per metric class are merged by (instance id,
perturbation, trial); the score is the run group's main metric (``main_name`` of the suite's
schema: ``runs/<suite>/schema.json`` if present, else the copy of HELM's schema_vhelm.yaml
for that suite), with prometheus_vision (1-5) mapped to (x - 1) / 4 and toxic_frac to
1 - toxic_frac; cost = num_prompt_tokens x input price + num_output_tokens x output price
(USD per million tokens, the card's price table; image tokens are not counted upstream).
Rows are joined across models by (run key, instance id, perturbation); the group is the
scenario (the run name before ``:``); the first image of the instance is embedded.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import (
    COST_PREFIX,
    SCORE_PREFIX,
    SPLITS,
    DataError,
    ModelInfo,
    RouteHarnessError,
    carve_validation,
    task_from_table,
    write_task,
)
from routeharness_vhelm.download import (
    BASE_URL,
    fetch_url,
    image_bytes,
    mirror_suite,
    read_json,
)

NAME = "vhelm-mm"
DEFAULT_SUITE = "v2.1.0"
METRICS_FILE = Path(__file__).parent / "data" / "main_metrics.json"
# a bias probe whose "correct" reference is "unclear": not an accuracy to route on
EXCLUDED_SCENARIOS = ("pairs",)
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 20241101
BUILD_VERSION = 1


# --- reading the run files ----------------------------------------------------------------
def run_key(run_name: str) -> tuple[str, str]:
    """``"vqa:model=a_b,groups=vqa_base"`` -> (``"vqa:groups=vqa_base"``, ``"vqa"``):
    the run without its model (identical across models), and the scenario."""
    scenario, _, args = run_name.partition(":")
    kept = [part for part in args.split(",") if part and not part.startswith("model=")]
    return (f"{scenario}:{','.join(kept)}" if kept else scenario), scenario


def base_key(run_name: str) -> str:
    """The run without model, data augmentation and groups: the same instance ids across a
    scenario's base and augmented runs (used to keep an instance in one split)."""
    scenario, _, args = run_name.partition(":")
    kept = [p for p in args.split(",") if p and not p.startswith(("model=", "data_augmentation=",
                                                                  "groups="))]
    return f"{scenario}:{','.join(kept)}"


def perturbation_key(perturbation: dict[str, Any] | None) -> str:
    """'original', or the perturbation's name and a short hash of its full description."""
    if not perturbation:
        return "original"
    digest = hashlib.sha256(json.dumps(perturbation, sort_keys=True).encode()).hexdigest()[:8]
    return f"{perturbation.get('name', 'perturbed')}-{digest}"


def _stat_mean(stat: dict[str, Any]) -> float:
    if stat.get("count", 0) == 0:
        return float("nan")  # an empty stat (e.g. a judge output that did not parse)
    if "mean" in stat:
        return float(stat["mean"])
    return float(stat["sum"]) / float(stat["count"])


def merge_instance_stats(entries: list[dict[str, Any]], source: str
                         ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``per_instance_stats.json`` -> {(instance id, perturbation key): stats}. HELM writes one
    entry per metric class for the same instance: their stat lists are concatenated; the
    trials of one instance are kept together (averaged later)."""
    merged: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not isinstance(entries, list):
        raise DataError("must be a JSON list of per-instance stats", source=source)
    for row, entry in enumerate(entries):
        if not isinstance(entry, dict) or "instance_id" not in entry:
            raise DataError("entry without instance_id", source=source, row=row)
        key = (str(entry["instance_id"]), perturbation_key(entry.get("perturbation")))
        stats = entry.get("stats", [])
        for stat in stats:
            stat.setdefault("_trial", entry.get("train_trial_index", 0))
        merged.setdefault(key, []).extend(stats)
    return merged


def metric_value(stats: list[dict[str, Any]], name: str, split: str | None) -> float:
    """Mean over trials of stat ``name`` (on ``split`` where the stat names one)."""
    values = []
    for stat in stats:
        label = stat.get("name", {})
        if label.get("name") != name:
            continue
        if split is not None and label.get("split") not in (None, split):
            continue
        values.append(_stat_mean(stat))
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def normalise_score(metric: str, value: float) -> float:
    """A main metric value -> [0, 1], higher is better."""
    if math.isnan(value):
        return value
    if metric == "prometheus_vision":  # judge rubric 1-5
        return min(max((value - 1.0) / 4.0, 0.0), 1.0)
    if metric == "toxic_frac":  # lower is better
        return 1.0 - value
    return value


def instance_inputs(instance: dict[str, Any]) -> tuple[str, list[str]]:
    """(prompt text, image locations) of a HELM Instance: the text media objects joined
    (or ``input.text``), and every image object's ``location``."""
    data = instance.get("input", {})
    texts, images = [], []
    for obj in (data.get("multimedia_content") or {}).get("media_objects", []) or []:
        kind = str(obj.get("content_type", ""))
        if kind.startswith("image/") and obj.get("location"):
            images.append(str(obj["location"]))
        elif kind.startswith("text/") and obj.get("text"):
            texts.append(str(obj["text"]))
    if not texts and data.get("text"):
        texts.append(str(data["text"]))
    return "\n".join(texts).strip(), images


def read_instances(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """{(instance id, perturbation key): Instance} from ``instances.json``, else from
    ``scenario_state.json``'s request states."""
    path = run_dir / "instances.json"
    if path.is_file():
        items = read_json(path)
    elif (run_dir / "scenario_state.json").is_file():
        state = read_json(run_dir / "scenario_state.json")
        items = [rs["instance"] for rs in state.get("request_states", []) if "instance" in rs]
    else:
        raise DataError("neither instances.json nor scenario_state.json", source=str(run_dir))
    if not isinstance(items, list):
        raise DataError("must be a JSON list of instances", source=str(path))
    return {(str(item.get("id")), perturbation_key(item.get("perturbation"))): item
            for item in items}


def main_metrics(suite_dir: Path, suite: str) -> dict[str, dict[str, str]]:
    """{run group: {main_name, main_split}} from ``schema.json`` in the suite, else from
    the copy of HELM's schema for this suite (HEAD's for an unknown suite)."""
    schema = suite_dir / "schema.json"
    if schema.is_file():
        data = read_json(schema)
        groups = {}
        for group in data.get("run_groups", []):
            env = group.get("environment") or {}
            if "main_name" in env:
                groups[group["name"]] = {"main_name": env["main_name"],
                                         "main_split": env.get("main_split")}
        if groups:
            return groups
    table = json.loads(METRICS_FILE.read_text(encoding="utf-8"))["suites"]
    return table.get(suite, table["HEAD"])["groups"]


# --- the build --------------------------------------------------------------------------------
def find_suite_dir(root: Path, suite: str | None) -> tuple[Path, Path, str]:
    """(benchmark_output root, runs/<suite> dir, suite) from a source directory that is a
    benchmark_output folder, its parent, or a suite folder itself."""
    for candidate in (root, root / "benchmark_output"):
        runs = candidate / "runs"
        if runs.is_dir():
            suites = sorted(p.name for p in runs.iterdir() if p.is_dir())
            if suite is None:
                if len(suites) != 1:
                    raise RouteHarnessError(f"{runs}: choose a suite with --suite (found "
                                            f"{suites or 'none'})")
                suite = suites[0]
            if suite not in suites:
                raise RouteHarnessError(f"{runs}: no suite {suite!r} (found {suites})")
            return candidate, runs / suite, suite
    raise RouteHarnessError(f"{root}: not a HELM benchmark_output directory (expected "
                            "runs/<suite>/<run>/per_instance_stats.json)")


def collect(suite_dir: Path, suite: str, prices: dict[str, dict[str, float]]
            ) -> dict[str, Any]:
    """Every run of the suite -> rows joined across models (see the module docstring)."""
    metrics = main_metrics(suite_dir, suite)
    rows: dict[str, dict[str, Any]] = {}
    models: list[str] = []
    run_dirs = sorted(p for p in suite_dir.iterdir()
                      if p.is_dir() and (p / "per_instance_stats.json").is_file())
    if not run_dirs:
        raise RouteHarnessError(f"{suite_dir}: no run directories with per_instance_stats.json")
    for run_dir in run_dirs:
        spec = read_json(run_dir / "run_spec.json")
        run_name = str(spec.get("name") or run_dir.name)
        key, scenario = run_key(run_name)
        if scenario in EXCLUDED_SCENARIOS:
            continue
        adapter = spec.get("adapter_spec", {})
        model = adapter.get("model") or adapter.get("model_deployment")
        if not model:
            raise DataError("adapter_spec has no model", source=str(run_dir / "run_spec.json"))
        if model not in prices:
            raise DataError(f"model {model!r} has no price in the vhelm-mm price table (task "
                            "card models); add it to build a cost", source=str(run_dir))
        groups = [g for g in spec.get("groups", []) if g in metrics]
        if not groups:
            raise DataError(f"none of the run's groups {spec.get('groups')} has a main metric "
                            f"in the {suite} schema", source=str(run_dir / "run_spec.json"))
        main = metrics[groups[0]]
        augmented = bool(spec.get("data_augmenter_spec", {}).get("perturbation_specs")) \
            or "data_augmentation=" in run_name
        if model not in models:
            models.append(model)
        stats = merge_instance_stats(read_json(run_dir / "per_instance_stats.json"),
                                     str(run_dir / "per_instance_stats.json"))
        instances = read_instances(run_dir)
        for (instance_id, pert), instance_stats in stats.items():
            if augmented and pert == "original":
                continue  # the same instance is in the scenario's base run
            score = normalise_score(main["main_name"], metric_value(
                instance_stats, main["main_name"], main.get("main_split")))
            if math.isnan(score):
                continue
            prompt_tokens = metric_value(instance_stats, "num_prompt_tokens", None)
            output_tokens = metric_value(instance_stats, "num_output_tokens", None)
            if math.isnan(output_tokens):
                output_tokens = metric_value(instance_stats, "num_completion_tokens", None)
            price = prices[model]
            cost = (np.nan_to_num(prompt_tokens) * price["price_input_per_mtok"]
                    + np.nan_to_num(output_tokens) * price["price_output_per_mtok"]) / 1e6
            row_id = f"{key}|{instance_id}|{pert}"
            row = rows.get(row_id)
            if row is None:
                instance = instances.get((instance_id, pert))
                if instance is None:
                    raise DataError(f"instance {instance_id!r} ({pert}) has stats but is not in "
                                    "instances.json", source=str(run_dir))
                text, images = instance_inputs(instance)
                row = rows[row_id] = {"prompt": text, "images": images, "group": scenario,
                                      "unit": f"{base_key(run_name)}|{instance_id}",
                                      "metric": main["main_name"], "scores": {}, "costs": {}}
            row["scores"][model] = score
            row["costs"][model] = float(cost)
    return {"rows": rows, "models": models}


def assign_splits(units: list[str], groups: list[str]) -> dict[str, str]:
    """Split of each unit (one instance of a scenario, all its perturbations): seeded,
    stratified by group: 30% test, 10% validation, 60% train."""
    keys = sorted(set(zip(units, groups)))
    ids, key_groups = [k[0] for k in keys], [k[1] for k in keys]
    test = carve_validation(ids, key_groups, TEST_FRACTION, SPLIT_SEED)
    rest = np.flatnonzero(~test)
    validation = carve_validation([ids[i] for i in rest], [key_groups[i] for i in rest],
                                  VALIDATION_FRACTION / (1 - TEST_FRACTION), SPLIT_SEED + 1)
    split = np.where(test, "test", "train").astype(object)
    split[rest[validation]] = "validation"
    return {unit: str(s) for unit, s in zip(ids, split)}


def card_prices(card: Any) -> dict[str, dict[str, float]]:
    return {m["name"]: {"price_input_per_mtok": float(m["price_input_per_mtok"]),
                        "price_output_per_mtok": float(m["price_output_per_mtok"])}
            for m in card.models}


def build(source: str | Path, out_dir: Path, suite: str | None = None, download: bool = True,
          **options: Any) -> Path:
    """``routeharness data build vhelm-mm --source DIR_OR_URL [--suite S] --out DIR``:
    writes a ``datasets`` DatasetDict (train/validation/test, images embedded) and a
    ``routing.json`` (models with prices, suite, counts) to ``out_dir``; returns it."""
    import datasets

    from routeharness import load_card, task_card_path

    if options:
        raise RouteHarnessError(f"vhelm-mm build: unknown option(s) {sorted(options)}")
    card = load_card(task_card_path(NAME))
    prices = card_prices(card)
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / ".download").is_dir():
        raise RouteHarnessError(f"{out_dir} exists and is not empty: choose a new --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / ".download"
    fetch = fetch_url if download else None
    text = str(source)
    if text.startswith(("http://", "https://")):
        root = mirror_suite(text, suite or DEFAULT_SUITE, cache, fetch_url)
        base_url = text
    else:
        root, base_url = Path(text).expanduser(), None
        if not root.is_dir():
            raise RouteHarnessError(f"{root}: source directory does not exist")
    root, suite_dir, suite = find_suite_dir(root, suite)
    collected = collect(suite_dir, suite, prices)
    rows, models = collected["rows"], collected["models"]
    complete = {rid: r for rid, r in rows.items() if len(r["scores"]) == len(models)}
    if not complete:
        raise RouteHarnessError(f"{suite_dir}: no instance has results for all {len(models)} "
                                "models")
    ordered = sorted(complete)
    unit_split = assign_splits([complete[r]["unit"] for r in ordered],
                               [complete[r]["group"] for r in ordered])
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "image": [],
                                     "split": []}
    for model in models:
        columns[SCORE_PREFIX + model] = []
        columns[COST_PREFIX + model] = []
    for rid in ordered:
        row = complete[rid]
        image = None
        if row["images"]:
            data, name = image_bytes(row["images"][0], root, fetch, cache / "images",
                                     base_url or BASE_URL)
            image = {"bytes": data, "path": name}
        columns["id"].append(rid)
        columns["prompt"].append(row["prompt"])
        columns["group"].append(row["group"])
        columns["image"].append(image)
        columns["split"].append(unit_split[row["unit"]])
        for model in models:
            columns[SCORE_PREFIX + model].append(row["scores"][model])
            columns[COST_PREFIX + model].append(row["costs"][model])
    features = datasets.Features({
        "id": datasets.Value("string"), "prompt": datasets.Value("string"),
        "group": datasets.Value("string"), "image": datasets.Image(),
        "split": datasets.Value("string"),
        **{k: datasets.Value("float64") for k in columns if k.startswith((SCORE_PREFIX,
                                                                          COST_PREFIX))}})
    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict(columns, features=features)
    for split in SPLITS:
        if split not in columns["split"]:
            raise RouteHarnessError(f"{suite_dir}: too few instances for a {split} split "
                                    f"({len(ordered)} rows)")
    card_models = {m["name"]: m for m in card.models}
    model_dicts = [{k: v for k, v in card_models[m].items() if k != "notes"} for m in models]
    # the one validation, then the one writer: a bad build writes no dataset
    task = task_from_table(table, name=NAME, version=card.version, source=base_url or str(root),
                           models=[ModelInfo.from_dict(m) for m in model_dicts], card=card)
    meta = {
        "build_version": BUILD_VERSION, "suite": suite, "source": base_url or str(root),
        "models": model_dicts,
        "counts": {"rows": len(ordered), "dropped_incomplete": len(rows) - len(complete),
                   **{s: task.splits[s].n for s in SPLITS}},
        "notes": ["num_prompt_tokens counts text only: image input tokens are not in the cost",
                  "rows are instances with a main-metric value for every model"],
    }
    if cache.is_dir():  # everything is read: the raw copy is no longer needed
        shutil.rmtree(cache, ignore_errors=True)
    write_task(task, out_dir, meta=meta)
    return out_dir
