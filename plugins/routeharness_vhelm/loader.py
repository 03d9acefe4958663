"""Load a built ``vhelm-mm`` dataset (``routeharness data build vhelm-mm ... --out DIR``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routeharness import RouteHarnessError

NAME = "vhelm-mm"
HOW_TO_BUILD = ("build it first: routeharness data build vhelm-mm --source DIR_OR_URL "
                "[--suite v2.1.0] --out DIR (DIR_OR_URL: a HELM benchmark_output folder, or "
                "https://storage.googleapis.com/crfm-helm-public/vhelm/benchmark_output), "
                "then pass --data-dir DIR")


def find_built(data_dir: Path | None) -> Path:
    """The built dataset folder: ``data_dir`` itself or ``data_dir/vhelm-mm``."""
    if data_dir is None:
        raise RouteHarnessError(f"task {NAME} has no embedded data; {HOW_TO_BUILD}")
    for folder in (data_dir, data_dir / NAME):
        meta = folder / "routing.json"
        if meta.is_file() and (folder / "dataset_dict.json").is_file():
            try:
                name = json.loads(meta.read_text(encoding="utf-8")).get("name")
            except ValueError:
                name = None
            if name == NAME:
                return folder
    raise RouteHarnessError(f"{data_dir}: no built {NAME} dataset here; {HOW_TO_BUILD}")


def load(card: Any, data_dir: Path | None = None, **options: Any) -> Any:
    """The built dataset, with the card attached (name, version, group descriptions)."""
    from routeharness import load_local

    if options:
        raise RouteHarnessError(f"task {NAME}: unknown option(s) {sorted(options)}")
    folder = find_built(data_dir)
    task = load_local(folder)
    meta = json.loads((folder / "routing.json").read_text(encoding="utf-8"))
    task.name, task.card = NAME, card
    task.version = card.version if card is not None else task.version
    task.revision = f"suite {meta.get('suite')} (build {meta.get('build_version')})"
    descriptions = card.group_descriptions() if card is not None else {}
    task.group_descriptions = {g: descriptions.get(g, "") for g in task.groups}
    task.notes = list(meta.get("notes", []))
    return task
