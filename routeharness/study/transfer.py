"""``study transfer``: does a router fitted on one task route another task's prompts?

Fit on the source task's train split (tuned on its validation split), test on the target
task's test split, both restricted to the models the two pools share: matched by name, or
through a user's alias table (``--aliases FILE``, ``read_aliases``). Each transferred run
is set against the same router fitted in task (on the target's own train split, tuned on
its validation split) and scored on the same test prompts, paired over seeds and prompts.
Fewer than two shared models is one line, before any prompt is embedded.

``results["SOURCE->TARGET"]``: ``source``, ``target``, ``shared_models`` (each with its
name in either pool), ``sizes`` (the training, validation and test prompts of each
condition), ``routers`` (per router: ``in_task`` and ``transferred``, each AUC, quality
at lambda 0 and RouterArena's score at lambda 0, mean and std over seeds;
``transferred_vs_in_task``, the paired difference with its intervals; ``vs_frontier``,
the transferred router against the target's single-model frontier; ``vs_knn``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from routeharness.common.contract import Contract, Field, check, read_yaml
from routeharness.common.errors import RouteHarnessError
from routeharness.data.dataset import RoutingData, RoutingTask
from routeharness.results.records import Name
from routeharness.results.tables import ReportTable, fmt
from routeharness.study.common import StudySettings, compact, cost_flag, diff_cell, flagged
from routeharness.study.record import StudyResult
from routeharness.study.runs import (
    against_frontier,
    auc_of,
    comparison,
    embed,
    paired,
    run_all,
    versus,
)

#: the routers a transfer study runs without ``-r``
DEFAULT_ROUTERS = ("knn", "linear", "mlp")
#: a transfer needs at least this many shared models (one model is no routing)
MIN_SHARED = 2
ALIAS_COLUMNS = ("model", "same_as")
ALIAS_HINT = ("an alias table is YAML (aliases: {MODEL: SAME_AS, ...}) or CSV with the "
              "header model,same_as")


class AliasFile(Contract):
    """``--aliases FILE``: model names that stand for one model. A name in either pool is
    matched through the table (``same_as``); a name the table does not list stands for
    itself, so ``SOURCE_NAME: TARGET_NAME`` matches two names directly."""

    aliases: dict[Name, Name] = Field(description="a model's name -> the name it stands for")


def read_aliases(path: str | Path) -> dict[str, str]:
    """An alias table (YAML ``aliases:`` mapping, or CSV ``model,same_as``), strictly read;
    every problem one line naming the file (and the CSV row)."""
    from routeharness.common.files import FileReadError
    from routeharness.common.textinput import decode, read_file_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        table = read_yaml(path, AliasFile, "alias table")
    elif suffix == ".csv":
        try:
            raw = read_file_bytes(path, "alias table")
        except FileReadError as exc:
            what = "no such alias table" if not path.exists() else \
                f"cannot read the alias table: {exc.reason}"
            raise RouteHarnessError(f"{path}: {what}") from None
        table = check(AliasFile, {"aliases": _csv_aliases(decode(raw, str(path)), path)},
                      str(path))
    else:
        raise RouteHarnessError(f"{path}: the alias table must be .yaml, .yml or .csv "
                                f"({ALIAS_HINT})")
    if not table.aliases:
        raise RouteHarnessError(f"{path}: the alias table is empty ({ALIAS_HINT})")
    return dict(table.aliases)


def _csv_aliases(text: str, path: Path) -> dict[str, str]:
    rows = [row for row in csv.reader(text.splitlines())]
    if not rows or [cell.strip() for cell in rows[0]] != list(ALIAS_COLUMNS):
        raise RouteHarnessError(f"{path}: row 1 must be the header "
                                f"{','.join(ALIAS_COLUMNS)} ({ALIAS_HINT})")
    out: dict[str, str] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != 2 or not all(cell.strip() for cell in cells):
            raise RouteHarnessError(f"{path}: row {number}: two names expected "
                                    f"(model,same_as), got {len(cells)} cell(s)")
        model, same_as = (cell.strip() for cell in cells)
        if model in out:
            raise RouteHarnessError(f"{path}: row {number}: model {model!r} is given twice")
        out[model] = same_as
    return out


def shared_models(source: RoutingTask, target: RoutingTask,
                  aliases: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The models both pools hold, in the source's order: ``{"model": the shared name,
    "source": its name there, "target": its name there}``. Fewer than ``MIN_SHARED`` is
    one line naming both pools' sizes."""
    aliases = aliases or {}

    def names(task: RoutingTask) -> dict[str, str]:
        out: dict[str, str] = {}
        for model in task.models:
            same = aliases.get(model.name, model.name)
            if same in out:
                raise RouteHarnessError(f"task {task.name!r}: models {out[same]!r} and "
                                        f"{model.name!r} both stand for {same!r} in the "
                                        "alias table")
            out[same] = model.name
        return out

    in_source, in_target = names(source), names(target)
    shared = [{"model": same, "source": own, "target": in_target[same]}
              for same, own in in_source.items() if same in in_target]
    if len(shared) < MIN_SHARED:
        listed = ", ".join(s["model"] for s in shared) or "none"
        raise RouteHarnessError(
            f"tasks {source.name!r} ({len(source.models)} models) and {target.name!r} "
            f"({len(target.models)} models) share {len(shared)} model(s) ({listed}); a "
            f"transfer needs at least {MIN_SHARED}: match names with --aliases FILE")
    return shared


def _restricted(data: RoutingData, own: Sequence[str], models: list[Any]) -> RoutingData:
    """A split cut to the models ``own`` (their names in this pool), named as ``models``."""
    index = [data.model_names.index(name) for name in own]
    return replace(data, scores=data.scores[:, index], costs=data.costs[:, index],
                   models=models)


def transfer_tasks(source: RoutingTask, target: RoutingTask,
                   shared: list[dict[str, str]]) -> tuple[RoutingTask, RoutingTask]:
    """(in task, transferred): the target on its own splits, and the source's train and
    validation splits with the target's test split; both cut to the shared models, named
    by their shared names (the source's model descriptions)."""
    models = [replace(next(m for m in source.models if m.name == s["source"]), name=s["model"])
              for s in shared]
    in_source = [s["source"] for s in shared]
    in_target = [s["target"] for s in shared]
    inside = replace(target, splits={split: _restricted(data, in_target, models)
                                     for split, data in target.splits.items()})
    moved = replace(target, name=f"{source.name}->{target.name}", card=None,
                    source=f"{source.source} -> {target.source}",
                    group_descriptions={**target.group_descriptions,
                                        **source.group_descriptions},
                    splits={"train": _restricted(source.splits["train"], in_source, models),
                            "validation": _restricted(source.splits["validation"], in_source,
                                                      models),
                            "test": _restricted(target.splits["test"], in_target, models)})
    return inside, moved


def run(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
        aliases: dict[str, str] | None = None, alias_file: str | None = None,
        settings: StudySettings | None = None) -> StudyResult:
    """Fit on ``tasks[0]``, test on ``tasks[1]`` (module docstring)."""
    from routeharness.embedding.encoders import choose_encoder
    from routeharness.evaluation.matrix import load_tasks

    settings = settings or StudySettings()
    if len(tasks) != 2:
        raise RouteHarnessError(f"study transfer takes exactly two tasks, -t SOURCE -t "
                                f"TARGET (got {len(tasks)})")
    protocol, reporter = settings.protocol, settings.reporter
    routers, plans, reference = comparison(list(routers) or list(DEFAULT_ROUTERS))
    source, target = load_tasks(tasks, data_dir=settings.data_dir, reporter=reporter,
                                task_options=settings.task_options)
    shared = shared_models(source, target, aliases)
    inside, moved = transfer_tasks(source, target, shared)
    spec = choose_encoder(encoder, [source, target])
    enc, (embedded_in, embedded_moved) = embed([inside, moved], spec,
                                               cache_dir=settings.cache_dir, reporter=reporter)
    key = f"{source.name}->{target.name}"
    result = StudyResult.new("transfer", {"routers": routers, "tasks": list(tasks),
                                          "aliases": alias_file}, protocol)
    result.add_encoder(enc)
    result.add_task(source)
    result.add_task(target)
    runs_in = run_all(plans, embedded_in, protocol, reporter, f"{target.name}: in task",
                      executor=settings.executor)
    runs_moved = run_all(plans, embedded_moved, protocol, reporter,
                         f"{source.name} -> {target.name}: transferred",
                         executor=settings.executor)
    result.runs.extend(compact(r, condition="in task", source=target.name,
                               target=target.name) for r in runs_in.values())
    result.runs.extend(compact(r, condition="transferred", source=source.name,
                               target=target.name) for r in runs_moved.values())
    seeds, n_boot = protocol.seeds, settings.paired_bootstrap
    entries: dict[str, Any] = {}
    for plan in plans:
        label = plan.label
        pair = {**{("transferred", s): runs_moved[(label, s)] for s in seeds},
                **{("in task", s): runs_in[(label, s)] for s in seeds}}
        entries[label] = {
            "in_task": _numbers(runs_in, label, seeds),
            "transferred": _numbers(runs_moved, label, seeds),
            "transferred_vs_in_task": paired(pair, "transferred", "in task", seeds,
                                             n_bootstrap=n_boot, seed=seeds[0]),
            "vs_frontier": against_frontier(runs_moved, label, seeds, n_boot),
            "vs_knn": versus(runs_moved, label, reference, seeds, n_boot)}
    sizes = {"in task": {s: d.n for s, d in inside.splits.items()},
             "transferred": {s: d.n for s, d in moved.splits.items()},
             "test scored": int(inside.splits["test"].complete_rows().sum())}
    result.results[key] = {"source": source.name, "target": target.name,
                           "shared_models": shared, "sizes": sizes, "routers": entries}
    return result


def _numbers(runs: dict, label: str, seeds: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in ("auc", "quality_at_0", "arena_score"):
        out[metric], out[metric + "_std"] = auc_of(runs, label, seeds, metric)
    return out


def tables(result: StudyResult) -> list[ReportTable]:
    """Per pair: in-task and transferred AUC on the target's test prompts, the paired
    change and where the transferred router stands against the single-model frontier."""
    out = []
    for summary in result.results.values():
        target = summary["target"]
        shared = summary["shared_models"]
        sizes = summary["sizes"]
        table = ReportTable(
            flagged(f"{summary['source']} → {target}: test AUC on {target}'s "
                    f"{sizes['test scored']} scored test prompts, {len(shared)} shared models",
                    cost_flag(result, target)),
            ["router", "in-task AUC", "transferred AUC", "AUC change [95% CI]", "in-task Q@λ0",
             "transferred Q@λ0", "Q@λ0 change [95% CI]", "transferred Arena@λ0",
             "transferred vs frontier: AUC [95% CI]", "Q@λ0 [95% CI]"],
            right=set(range(1, 10)))
        for label, entry in summary["routers"].items():
            inside, moved = entry["in_task"], entry["transferred"]
            change, frontier = entry["transferred_vs_in_task"], entry["vs_frontier"]
            table.add([label, fmt(inside["auc"], inside["auc_std"]),
                       fmt(moved["auc"], moved["auc_std"]), diff_cell(change),
                       fmt(inside["quality_at_0"], inside["quality_at_0_std"]),
                       fmt(moved["quality_at_0"], moved["quality_at_0_std"]),
                       diff_cell(change.get("quality_at_0")),
                       fmt(moved.get("arena_score"), moved.get("arena_score_std")),
                       diff_cell(frontier), diff_cell(frontier.get("quality_at_0"))])
        names = ", ".join(s["model"] if s["source"] == s["target"] else
                          f"{s['model']} ({s['source']} / {s['target']})" for s in shared)
        table.note = (
            f"in task: fitted on {target}'s train split ({sizes['in task']['train']} "
            f"prompts), tuned on its validation split; transferred: fitted on "
            f"{summary['source']}'s train split ({sizes['transferred']['train']} prompts), "
            f"tuned on its validation split. Both route the same test prompts among the "
            f"shared models: {names}. changes: transferred minus in task, paired over "
            "seeds and test prompts; vs frontier: the transferred router minus the "
            "single-model frontier on the same prompts (its AUC; at λ = 0, the best model "
            "alone); Arena: RouterArena's score at λ = 0 (docs/metrics.md); - : not "
            "measured"
            + (f"; models matched through {result.params['aliases']}"
               if result.params.get("aliases") else ""))
        out.append(table)
    return out
