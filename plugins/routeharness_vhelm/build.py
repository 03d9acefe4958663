"""Build ``vhelm-mm`` from a HELM suite's raw per-instance outputs (HELM run-output format:
VHELM's published suites, or any suite run with HELM on custom or new models).

Reads ``<benchmark_output>/runs/<suite>/<run>/`` (``run_spec.json``,
``per_instance_stats.json``, and ``instances.json`` or ``scenario_state.json``; format in
docs/multimodal.md and the VHELM FORMAT note), from a local directory or from the published
bucket URL (downloaded with a progress bar, resuming partial files with HTTP Range), and the
suite's HELM model files (``prod_env/model_deployments.yaml`` and ``model_metadata.yaml``,
``--prod-env``; by default the ``prod_env`` beside ``benchmark_output``) to name its models.

Per run: the model is ``run_spec.adapter_spec.model`` (else the model its
``model_deployment`` serves); the run key is the run name without ``model=``; per-instance
stats repeated per metric class are merged by (instance id, perturbation, trial); the score
is the run group's main metric (``main_name`` of the suite's schema:
``runs/<suite>/schema.json`` if present, else the copy of HELM's schema_vhelm.yaml for that
suite), with prometheus_vision (1-5) mapped to (x - 1) / 4 and toxic_frac to 1 - toxic_frac;
cost = num_prompt_tokens x input price + num_output_tokens x output price (USD per million
tokens: the card's price table, added to or overridden by ``--prices FILE``; image tokens
are not counted upstream). Rows are joined across models by (run key, instance id,
perturbation); the group is the scenario (the run name before ``:``); the first image of the
instance is embedded (found in the suite's folders or ``--images-dir``; none with
``--text-only``, which builds the task ``vhelm-mm-text-only``). Every check runs before the
dataset is written, whole, at the end: a failed build leaves ``--out`` as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
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
    image_bytes,
    task_from_table,
    write_task,
)
from routeharness_vhelm.download import (
    BASE_URL,
    DownloadError,
    fetch_url,
    image_cache_path,
    image_url,
    is_url,
    local_image,
    mirror_suite,
    read_json,
)
from routeharness_vhelm.prices import FORMAT_HINT, Price, card_prices, read_prices
from routeharness_vhelm.prod_env import HelmModels, read_prod_env

NAME = "vhelm-mm"
#: the name of a ``--text-only`` build: another task (no images), and every table says so
TEXT_ONLY_NAME = "vhelm-mm-text-only"
TEXT_ONLY_NOTE = ("text-only build (--text-only): no image column; routers and encoders see "
                  "the question text alone, so its numbers are not comparable with vhelm-mm "
                  "built with images")
DEFAULT_SUITE = "v2.1.0"
METRICS_FILE = Path(__file__).parent / "data" / "main_metrics.json"
# a bias probe whose "correct" reference is "unclear": not an accuracy to route on
EXCLUDED_SCENARIOS = ("pairs",)
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 20241101
BUILD_VERSION = 2


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


@dataclass
class Run:
    """One run directory: its spec, the run key and scenario, the HELM model and
    deployment it evaluated, and ``column``, the candidate's name in the task."""

    path: Path
    spec: dict[str, Any]
    name: str
    key: str
    scenario: str
    model: str
    deployment: str
    column: str = ""


def read_runs(suite_dir: Path, helm: HelmModels) -> list[Run]:
    """Every run of the suite with ``per_instance_stats.json`` but the excluded scenarios,
    in name order: only ``run_spec.json`` is read. The model is ``adapter_spec.model``, else
    the model the ``prod_env`` names for ``adapter_spec.model_deployment``. A model run
    through several deployments in the suite is one candidate per deployment (named by the
    deployment: they may differ in price and answers); else the candidate is the model."""
    run_dirs = sorted(p for p in suite_dir.iterdir()
                      if p.is_dir() and (p / "per_instance_stats.json").is_file())
    if not run_dirs:
        raise RouteHarnessError(f"{suite_dir}: no run directories with per_instance_stats.json")
    runs = []
    for run_dir in run_dirs:
        spec = read_json(run_dir / "run_spec.json")
        if not isinstance(spec, dict):
            raise DataError("must be a JSON object (a RunSpec)",
                            source=str(run_dir / "run_spec.json"))
        name = str(spec.get("name") or run_dir.name)
        key, scenario = run_key(name)
        if scenario in EXCLUDED_SCENARIOS:
            continue
        adapter = spec.get("adapter_spec") or {}
        deployment = str(adapter.get("model_deployment") or "")
        model = str(adapter.get("model") or (helm.model_of(deployment) if deployment else ""))
        if not model:
            raise DataError("adapter_spec has no model", source=str(run_dir / "run_spec.json"))
        runs.append(Run(run_dir, spec, name, key, scenario, model, deployment or model))
    deployments: dict[str, set[str]] = {}
    for run in runs:
        deployments.setdefault(run.model, set()).add(run.deployment)
    for run in runs:
        run.column = run.deployment if len(deployments[run.model]) > 1 else run.model
    return runs


def candidates(runs: list[Run]) -> dict[str, list[Run]]:
    """{candidate name: its runs}, in the order the candidates first appear."""
    by_column: dict[str, list[Run]] = {}
    for run in runs:
        by_column.setdefault(run.column, []).append(run)
    return by_column


def price_candidates(by_column: dict[str, list[Run]], card: dict[str, Price],
                     given: dict[str, Price], given_from: str | None, suite: str
                     ) -> dict[str, Price]:
    """The price of each candidate: from ``--prices`` (by candidate, model or deployment
    name), else from the task card. Every candidate without one is named in one line."""
    prices, unpriced = {}, []
    for column, runs in by_column.items():
        names = [column, runs[0].model, *sorted({r.deployment for r in runs})]
        price = next((given[n] for n in names if n in given), None) \
            or next((card[n] for n in names if n in card), None)
        if price is None:
            deployments = sorted({r.deployment for r in runs} - {column})
            unpriced.append(column + (f" (deployment {', '.join(deployments)})"
                                      if deployments else ""))
        else:
            prices[column] = price
    if unpriced:
        more = f", or add to {given_from}" if given_from else ""
        raise RouteHarnessError(
            f"{len(unpriced)} of {len(by_column)} models in suite {suite!r} "
            f"{'has' if len(unpriced) == 1 else 'have'} no price: "
            f"{', '.join(unpriced)}; pass --prices FILE{more} ({FORMAT_HINT}; a model in "
            f"the file adds to or overrides the {NAME} card's prices)")
    return prices


def collect(suite_dir: Path, suite: str, runs: list[Run], prices: dict[str, Price]
            ) -> dict[str, Any]:
    """Every run of the suite -> rows joined across candidates (see the module
    docstring)."""
    metrics = main_metrics(suite_dir, suite)
    rows: dict[str, dict[str, Any]] = {}
    models: list[str] = []
    for run in runs:
        run_dir, spec, run_name, scenario, model = (run.path, run.spec, run.name,
                                                    run.scenario, run.column)
        groups = [g for g in spec.get("groups", []) if g in metrics]
        if not groups:
            raise DataError(f"none of the run's groups {spec.get('groups')} has a main metric "
                            f"in the {suite} schema", source=str(run_dir / "run_spec.json"))
        main = metrics[groups[0]]
        augmented = bool((spec.get("data_augmenter_spec") or {}).get("perturbation_specs")) \
            or "data_augmentation=" in run_name
        if model not in models:
            models.append(model)
        price = prices[model]
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
            cost = (np.nan_to_num(prompt_tokens) * price.input_per_mtok
                    + np.nan_to_num(output_tokens) * price.output_per_mtok) / 1e6
            row_id = f"{run.key}|{instance_id}|{pert}"
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
            if model in row["scores"]:
                raise DataError(f"{model} has two results for instance {instance_id!r} "
                                f"({pert}) of {run.key}: two runs of one model",
                                source=str(run_dir))
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


# --- images -----------------------------------------------------------------------------------
def gather_images(locations: list[str], root: Path, images_dir: Path | None,
                  base_url: str | None, fetch: Callable[[str, Path], Path] | None,
                  cache: Path) -> dict[str, dict[str, Any]]:
    """{location: {"bytes", "path"}} for each image location: a local file (the suite's
    ``benchmark_output/`` or ``images_dir``, see ``image_candidates``), else downloaded (a
    URL location; a relative one when the source is a URL, from under it). After the first
    download that cannot reach its server, nothing more is tried. Any image missing: one
    line (how many, the first, what to pass), before anything is written."""
    found: dict[str, Path] = {}
    remote = []
    missing = []
    for location in locations:
        path = local_image(location, root, images_dir)
        if path is not None:
            found[location] = path
        elif is_url(location) or base_url is not None:
            remote.append(location)
        else:
            missing.append(location)
    unreachable = None
    for location in remote:
        if fetch is None or unreachable is not None:
            missing.append(location)
            continue
        try:
            found[location] = fetch(image_url(location, base_url or BASE_URL),
                                    image_cache_path(location, cache))
        except DownloadError as exc:
            missing.append(location)
            if exc.status is None:
                unreachable = exc
    if missing:
        order = {loc: i for i, loc in enumerate(locations)}
        first = min(missing, key=order.__getitem__)
        where = [str(root)] + ([str(images_dir)] if images_dir is not None else [])
        failed = sum(1 for loc in missing if loc in remote)
        detail = (f"not under {' or '.join(where)}" if not is_url(first) else "a URL")
        if failed:
            detail += (f"; {failed} could not be downloaded"
                       + (" (no connection: offline?)" if unreachable is not None or fetch is None
                          else ""))
        raise RouteHarnessError(
            f"{len(missing)} of {len(locations)} images are missing (first: {first}, "
            f"{detail}); pass --images-dir DIR (a folder holding HELM's scenarios/ tree), or "
            f"--text-only to build a text-only task without them")
    return {loc: {"bytes": image_bytes(path), "path": path.name} for loc, path in found.items()}


# --- the build --------------------------------------------------------------------------------
def check_new_output(out_dir: Path) -> None:
    """``out_dir`` must not exist or be an empty folder: checked before any work (the
    dataset is written whole at the end, so a failed build leaves it as it was)."""
    if out_dir.is_symlink() or (out_dir.exists() and (not out_dir.is_dir()
                                                      or any(out_dir.iterdir()))):
        raise RouteHarnessError(f"{out_dir}: exists and is not an empty directory (the "
                                "dataset is written to a new one): choose a new --out")


def download_cache(source: str) -> Path:
    """Where the raw files of a source are downloaded (resumed by the next build of the
    same source; removed after a build that succeeds): under routeharness's cache."""
    from routeharness import default_cache_dir

    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    return default_cache_dir() / "vhelm-downloads" / digest


def build(source: str | Path, out_dir: Path, suite: str | None = None, download: bool = True,
          prices: str | Path | None = None, prod_env: str | Path | None = None,
          images_dir: str | Path | None = None, text_only: bool = False,
          **options: Any) -> Path:
    """``routeharness data build vhelm-mm --source DIR_OR_URL [--suite S] --out DIR
    [--prices FILE] [--prod-env DIR] [--images-dir DIR] [--text-only]``: writes a
    ``datasets`` DatasetDict (train/validation/test; images embedded, none with
    ``text_only``) and a ``routing.json`` (models with prices and their sources, suite,
    counts) to ``out_dir``, whole at the end (a failed build writes nothing); returns it."""
    import datasets

    from routeharness import load_card, task_card_path

    if options:
        raise RouteHarnessError(f"vhelm-mm build: unknown option(s) {sorted(options)}")
    out_dir = Path(out_dir).expanduser()
    check_new_output(out_dir)
    card = load_card(task_card_path(NAME))
    given = read_prices(prices) if prices is not None else {}
    images_root = Path(images_dir).expanduser() if images_dir is not None else None
    if images_root is not None and not images_root.is_dir():
        raise RouteHarnessError(f"{images_root}: --images-dir is not a folder")
    text = str(source)
    cache = download_cache(text if is_url(text) else str(Path(text).expanduser().resolve()))
    fetch = fetch_url if download else None
    if is_url(text):
        if fetch is None:
            raise RouteHarnessError(f"{text} is a URL and downloads are off")
        root = mirror_suite(text, suite or DEFAULT_SUITE, cache, fetch)
        base_url = text
    else:
        root, base_url = Path(text).expanduser(), None
        if not root.is_dir():
            raise RouteHarnessError(f"{root}: source directory does not exist")
    root, suite_dir, suite = find_suite_dir(root, suite)
    if prod_env is None and base_url is None and (root.parent / "prod_env").is_dir():
        prod_env = root.parent / "prod_env"  # HELM's default --local-path, beside the output
    helm = read_prod_env(prod_env)
    runs = read_runs(suite_dir, helm)
    by_column = candidates(runs)
    priced = price_candidates(by_column, card_prices(card), given,
                              str(prices) if prices is not None else None, suite)
    collected = collect(suite_dir, suite, runs, priced)
    rows, models = collected["rows"], collected["models"]
    complete = {rid: r for rid, r in rows.items() if len(r["scores"]) == len(models)}
    if not complete:
        raise RouteHarnessError(f"{suite_dir}: no instance has results for all {len(models)} "
                                "models")
    ordered = sorted(complete)
    unit_split = assign_splits([complete[r]["unit"] for r in ordered],
                               [complete[r]["group"] for r in ordered])
    split_names = set(unit_split.values())
    for split in SPLITS:
        if split not in split_names:
            raise RouteHarnessError(f"{suite_dir}: too few instances for a {split} split "
                                    f"({len(ordered)} rows)")
    images: dict[str, dict[str, Any]] = {}
    if not text_only:
        locations = list(dict.fromkeys(complete[r]["images"][0] for r in ordered
                                       if complete[r]["images"]))
        images = gather_images(locations, root, images_root, base_url, fetch, cache / "images")
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "split": []}
    if not text_only:
        columns["image"] = []
    for model in models:
        columns[SCORE_PREFIX + model] = []
        columns[COST_PREFIX + model] = []
    for rid in ordered:
        row = complete[rid]
        columns["id"].append(rid)
        columns["prompt"].append(row["prompt"])
        columns["group"].append(row["group"])
        columns["split"].append(unit_split[row["unit"]])
        if not text_only:
            columns["image"].append(images[row["images"][0]] if row["images"] else None)
        for model in models:
            columns[SCORE_PREFIX + model].append(row["scores"][model])
            columns[COST_PREFIX + model].append(row["costs"][model])
    features = datasets.Features({
        "id": datasets.Value("string"), "prompt": datasets.Value("string"),
        "group": datasets.Value("string"), "split": datasets.Value("string"),
        **({} if text_only else {"image": datasets.Image()}),
        **{k: datasets.Value("float64") for k in columns if k.startswith((SCORE_PREFIX,
                                                                          COST_PREFIX))}})
    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict(columns, features=features)
    card_models = {m["name"]: dict(m.items()) for m in card.models}
    model_dicts = [model_record(column, by_column[column], card_models, helm, priced[column])
                   for column in models]
    name = TEXT_ONLY_NAME if text_only else NAME
    source_label = base_url or str(root)
    # the one validation, then the one writer: a bad build writes no dataset
    task = task_from_table(table, name=name, version=card.version, source=source_label,
                           models=[ModelInfo.from_dict(m) for m in model_dicts],
                           card=None if text_only else card)
    notes = ["num_prompt_tokens counts text only: image input tokens are not in the cost",
             "rows are instances with a main-metric value for every model"]
    if text_only:
        notes.insert(0, TEXT_ONLY_NOTE)
    meta = {
        "build_version": BUILD_VERSION, "suite": suite, "source": source_label,
        "description": (f"TEXT-ONLY build of {NAME} (--text-only): " if text_only else "")
        + " ".join(str(card.description).split()),
        "built_from": f"HELM suite {suite} at {source_label}"
        + (f"; models named by {helm.folder}" if helm.folder is not None else "")
        + (f"; prices from {prices} and the task card" if prices is not None
           else "; prices from the task card")
        + ("; text only (--text-only): no images" if text_only else
           f"; {len(images)} images" + (f" (looked for under {images_root} too)"
                                        if images_root is not None else "")),
        "models": model_dicts,
        "counts": {"rows": len(ordered), "dropped_incomplete": len(rows) - len(complete),
                   **{s: task.splits[s].n for s in SPLITS}},
        "notes": notes,
    }
    if not text_only:  # loaded by its path, it is embedded as the card says, images too
        meta["encoder"] = card.encoder
    write_task(task, out_dir, meta=meta)
    if cache.is_dir():  # everything is read and written: the raw copy is no longer needed
        shutil.rmtree(cache, ignore_errors=True)
    return out_dir


def model_record(column: str, runs: list[Run], card_models: dict[str, dict[str, Any]],
                 helm: HelmModels, price: Price) -> dict[str, Any]:
    """A candidate's record for the task and ``routing.json``: the card's (by candidate or
    model name) where it has one, else what the ``prod_env`` says (display name and
    description, creator, size, deployment and tokenizer facts); the price used and its
    source in ``notes``."""
    model = runs[0].model
    deployments = sorted({r.deployment for r in runs})
    known = card_models.get(column) or card_models.get(model)
    record = dict(known) if known else helm.describe(model, deployments)
    notes = record.pop("notes", [])
    notes = [notes] if isinstance(notes, str) else list(notes)
    record["name"] = column
    if not record.get("description"):
        record["description"] = model if column == model else f"{model} via {column}"
    record["price_input_per_mtok"] = price.input_per_mtok
    record["price_output_per_mtok"] = price.output_per_mtok
    record["notes"] = [*notes, price.note()]
    return record
