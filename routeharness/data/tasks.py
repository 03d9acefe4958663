"""Task loading by spec (``routeharness.data.spec``: ``NAME``, ``NAME:GROUP``, a path,
``PATH:GROUP``, ``hub:ORG/NAME[@REVISION][:GROUP]``), ``data info`` and ``data build``.

Task cards live in ``routeharness.data.cards``; reading and validating a user's dataset in
``routeharness.data.readers``. The names below stay importable from here for plugins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError, RouteHarnessError, one_line
from routeharness.data.cards import DatasetSidecar, TaskCard, load_card, parse_card
from routeharness.data.dataset import RoutingTask
from routeharness.data.raw import Raw
from routeharness.data.readers import SIDECAR, read_sidecar, sidecar_models, to_task, validate_path
from routeharness.data.readers import load_path as _load_path
from routeharness.data.spec import HUB_PREFIX, parse_hub_spec, parse_task_spec, split_spec


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """``--data-dir`` if given, else ``$ROUTEHARNESS_DATA``, else None (embedded default)."""
    value = data_dir if data_dir is not None else os.environ.get("ROUTEHARNESS_DATA")
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise RouteHarnessError(f"data directory {path} does not exist")
    return path


def load_task(spec: str, *, data_dir: str | Path | None = None, **options: Any) -> Any:
    """Load a task by spec as a checked ``RoutingTask`` (narrowed to its group, if any).
    ``allow_leaks=True`` keeps test prompts that repeat train or validation ones."""
    from routeharness.data.dataset import check_task
    from routeharness.plugins.registry import get_registry

    registry = get_registry("task")
    allow_leaks = bool(options.pop("allow_leaks", False))
    parsed = parse_task_spec(spec, registry.names())
    if parsed.kind == "hub":
        if options:
            raise RouteHarnessError(f"{spec}: unknown option(s) {sorted(options)}")
        task = load_hub(parsed.name, parsed.revision, check_leaks=not allow_leaks)
    elif parsed.kind == "path":
        if options:
            raise RouteHarnessError(f"{spec}: unknown option(s) {sorted(options)}")
        task = _load_path(parsed.path, check_leaks=not allow_leaks)
    else:
        entry = registry.get(parsed.name)
        card_path = entry.options.get("card")
        card = load_card(card_path) if card_path else None
        loader = entry.load()
        task = loader(card, data_dir=resolve_data_dir(data_dir), **options)
        check_task(task)
    if parsed.group is not None:
        task = task.restrict_to_group(parsed.group)
        check_task(task)  # a group's rows must still be scorable (costs, complete rows)
    return task


def load_local(path: str | Path) -> Any:
    """A user's dataset in any local layout (docs/dataset-format.md), validated; leaked
    test prompts are allowed here (``load_task`` refuses them unless told otherwise)."""
    return _load_path(Path(path), check_leaks=False)


def load_hub(repo: str, revision: str | None = None, *, check_leaks: bool = False) -> Any:
    """A Hub dataset in the canonical layout (splits train/validation/test), loaded with
    ``datasets.load_dataset`` (no remote code) and validated like a local one; an optional
    ``routing.json`` in the repository gives name, version and models (checked strictly).
    Failure to reach it is one line."""
    import datasets
    from huggingface_hub.utils import logging as hub_logging

    from routeharness.data.readers import _add_dict
    from routeharness.data.validation import Enough, Problems

    label = repo + (f"@{revision}" if revision else "")
    datasets.disable_progress_bars()
    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()  # its retry warnings would bury the one-line error
    try:
        dataset_dict = datasets.load_dataset(repo, revision=revision)
    except Exception as exc:  # network, auth, missing repo: all a user can act on
        detail = one_line(exc)
        raise RouteHarnessError(f"cannot load Hub dataset {label!r}: {detail} (offline? "
                                "download it and pass the local directory instead)") from None
    finally:
        hub_logging.set_verbosity(verbosity)
    meta = _hub_sidecar(repo, revision)
    raw = Raw(f"hub:{label}", meta=meta, models=sidecar_models(meta),
              revision=revision or "main", default_name=repo.split("/")[-1])
    problems = Problems(1)
    try:
        _add_dict(dataset_dict, f"hub:{label}", raw, problems)
    except Enough:
        raise problems.items[0] from None
    return to_task(raw, check_leaks=check_leaks)


def _hub_sidecar(repo: str, revision: str | None) -> DatasetSidecar:
    try:
        from huggingface_hub import hf_hub_download

        local = Path(hf_hub_download(repo, SIDECAR, repo_type="dataset", revision=revision))
    except Exception:  # the sidecar is optional
        return DatasetSidecar()
    return read_sidecar(local.parent, local.read_bytes())


def task_info(task: RoutingTask) -> dict[str, Any]:
    """What ``routeharness data info`` shows: sizes per split and group, each model's mean
    score (x100) and mean cost (USD per call) per split, missing cells, the best single
    model and the oracle per split, and prompts duplicated within or leaked across splits.
    Means skip missing cells; the oracle is over rows with every score present. ``task``
    is loaded with ``allow_leaks=True`` so that leaks are counted, not refused; rows with
    identical embeddings are ``embed.identical_embedding_info``."""
    import numpy as np

    from routeharness.data.columns import SPLITS
    from routeharness.data.dataset import duplicate_prompts, find_leaks

    splits = [s for s in SPLITS if s in task.splits]
    sizes = {s: {g: int((task.splits[s].groups == g).sum()) for g in task.groups}
             for s in splits}
    models = []
    for j, model in enumerate(task.models):
        models.append({
            "model": model.name,
            "score": {s: _nanmean(task.splits[s].scores[:, j]) * 100 for s in splits},
            "cost_usd": {s: _nanmean(task.splits[s].costs[:, j]) for s in splits},
            "missing": {s: int(np.isnan(task.splits[s].scores[:, j]).sum()) for s in splits},
        })
    best, oracle = {}, {}
    for s in splits:
        data = task.splits[s]
        means = [_nanmean(data.scores[:, j]) for j in range(data.m)]
        top = int(np.nanargmax(means)) if not all(np.isnan(means)) else 0
        best[s] = {"model": data.model_names[top], "score": means[top] * 100}
        complete = data.complete_rows()
        oracle[s] = (float(data.scores[complete].max(axis=1).mean()) * 100
                     if complete.any() else float("nan"))
    info = {
        "name": task.name, "version": task.version, "source": task.source,
        "revision": task.revision, "splits": splits, "groups": task.groups,
        "sizes": sizes, "models": models, "best_single": best, "oracle": oracle,
        "missing_cells": {s: int(np.isnan(task.splits[s].scores).sum()) for s in splits},
        "incomplete_rows": {s: int((~task.splits[s].complete_rows()).sum()) for s in splits},
        "duplicates": {s: duplicate_prompts(task.splits[s]) for s in splits},
        "leaks": {pair: len(rows) for pair, rows in find_leaks(task).items()},
    }
    return info


def _nanmean(values: Any) -> float:
    import numpy as np

    values = np.asarray(values, dtype=float)
    known = values[~np.isnan(values)]
    return float(known.mean()) if known.size else float("nan")


def build_task(name: str, source: str | Path, out: str | Path, **options: Any) -> Any:
    """``routeharness data build``: the registered task's builder converts the upstream
    layout in ``source`` (a directory, or an http(s) URL for builders that download) into
    the canonical dataset in ``out``; returns it, loaded back. ``options`` (e.g. ``suite``)
    go to the builder."""
    from routeharness.plugins.registry import Entry, get_registry

    entry = get_registry("task").get(name)
    target = entry.options.get("build")
    if not target:
        raise RouteHarnessError(f"task {name!r} has no builder (its plugin registers none)")
    if not str(source).startswith(("http://", "https://")):
        source = Path(source).expanduser()
        if not source.is_dir():
            raise RouteHarnessError(f"{source}: source directory does not exist")
    builder = Entry("task", name, target, entry.plugin, entry.distribution,
                    entry.version).load()
    out_dir = builder(source, Path(out).expanduser(), **options)
    return load_local(Path(out_dir))


__all__ = [
    "HUB_PREFIX",
    "SIDECAR",
    "DataError",
    "TaskCard",
    "build_task",
    "load_card",
    "load_hub",
    "load_local",
    "load_task",
    "parse_card",
    "parse_hub_spec",
    "resolve_data_dir",
    "split_spec",
    "task_info",
    "validate_path",
]
