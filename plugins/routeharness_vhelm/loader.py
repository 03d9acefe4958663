"""Load a built ``vhelm-mm`` dataset (``routeharness data build vhelm-mm ... --out DIR``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routeharness import RouteHarnessError

NAME = "vhelm-mm"
#: a ``--text-only`` build (no images): loaded under its own name, without the card's
#: image encoder default
TEXT_ONLY_NAME = "vhelm-mm-text-only"
HOW_TO_BUILD = ("build it first: routeharness data build vhelm-mm --source DIR_OR_URL "
                "[--suite v2.1.0] --out DIR [--prices FILE] (DIR_OR_URL: a HELM "
                "benchmark_output folder, or "
                "https://storage.googleapis.com/crfm-helm-public/vhelm/benchmark_output), "
                "then pass --data-dir DIR")


def find_built(data_dir: Path | None) -> Path:
    """The built dataset folder: ``data_dir`` itself, ``data_dir/vhelm-mm`` or
    ``data_dir/vhelm-mm-text-only``."""
    if data_dir is None:
        raise RouteHarnessError(f"task {NAME} has no embedded data; {HOW_TO_BUILD}")
    for folder in (data_dir, data_dir / NAME, data_dir / TEXT_ONLY_NAME):
        meta = folder / "routing.json"
        if meta.is_file() and (folder / "dataset_dict.json").is_file():
            try:
                name = json.loads(meta.read_text(encoding="utf-8")).get("name")
            except ValueError:
                name = None
            if name in (NAME, TEXT_ONLY_NAME):
                return folder
    raise RouteHarnessError(f"{data_dir}: no built {NAME} dataset here; {HOW_TO_BUILD}")


def load(card: Any, data_dir: Path | None = None, **options: Any) -> Any:
    """The built dataset, with the card attached (name, version, group descriptions); a
    text-only build keeps its own name and gets no card (its default encoder is then the
    harness's text encoder, not the card's image one)."""
    from routeharness import load_local

    if options:
        raise RouteHarnessError(f"task {NAME}: unknown option(s) {sorted(options)}")
    folder = find_built(data_dir)
    task = load_local(folder)
    meta = json.loads((folder / "routing.json").read_text(encoding="utf-8"))
    text_only = meta.get("name") == TEXT_ONLY_NAME
    task.name, task.card = (TEXT_ONLY_NAME, None) if text_only else (NAME, card)
    task.version = card.version if card is not None else task.version
    task.revision = (f"suite {meta.get('suite')} (build {meta.get('build_version')}"
                     + (", text-only)" if text_only else ")"))
    descriptions = card.group_descriptions() if card is not None else {}
    task.group_descriptions = {g: descriptions.get(g, "") for g in task.groups}
    task.notes = list(meta.get("notes", []))
    return task
