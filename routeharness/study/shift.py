"""``study shift``: routing prompts unlike the training ones, where a lookup table should
suffer most. Leave-one-group-out (train and tune on the other groups, test on the
held-out group's test prompts), or one named split (``--train-groups``/``--test-groups``).
Each held-out result is set against the same routers in distribution (trained on every
group, scored on the same test prompts), and each router against kNN, paired over the
test prompts. ``results[task]``: ``folds`` (test groups, train groups, test prompts) and
per fold and router: AUC and quality at lambda 0 out of and in distribution (mean and
std over seeds) and the paired difference to kNN out of distribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.results.sets import mean_std
from routeharness.results.tables import ReportTable
from routeharness.study.common import (
    StudySettings,
    compact,
    cost_flag,
    diff_cell,
    flagged,
    mean_cell,
)
from routeharness.study.record import StudyResult
from routeharness.study.runs import (
    against_frontier,
    auc_of,
    comparison,
    hold_out,
    prepare,
    run_all,
    versus,
)


def run(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
        train_groups: Sequence[str] | None = None, test_groups: Sequence[str] | None = None,
        settings: StudySettings | None = None) -> StudyResult:
    """Leave-one-group-out per task, or the named split when ``test_groups`` is given."""
    settings = settings or StudySettings()
    if train_groups and not test_groups:
        raise RouteHarnessError("--train-groups needs --test-groups")
    protocol, reporter = settings.protocol, settings.reporter
    routers, plans, reference = comparison(routers)
    labels = [p.label for p in plans]
    enc, embedded_tasks = prepare(tasks, encoder, data_dir=settings.data_dir,
                                  cache_dir=settings.cache_dir, reporter=reporter,
                                  task_options=settings.task_options)
    result = StudyResult.new("shift", {"routers": routers, "tasks": list(tasks),
                                       "train_groups": list(train_groups or []),
                                       "test_groups": list(test_groups or [])}, protocol)
    result.add_encoder(enc)
    for embedded in embedded_tasks:
        task = embedded.task
        result.add_task(task)
        groups, skipped = task.groups, []
        if test_groups:
            folds = [(list(test_groups), list(train_groups) if train_groups else
                      [g for g in groups if g not in test_groups])]
        elif len(groups) < 2:
            raise RouteHarnessError(f"task {task.name!r} has one group: nothing to hold out "
                                    "(study shift needs a task with groups)")
        else:  # a group with no test prompt (or none scored) cannot be held out
            tested = {str(g) for g, ok in zip(task.splits["test"].groups,
                                              task.splits["test"].complete_rows()) if ok}
            folds = [([g], [h for h in groups if h != g]) for g in groups if g in tested]
            skipped = [g for g in groups if g not in tested]
            if skipped:
                reporter.log(f"{task.name}: groups without scored test prompts are not held "
                             f"out: {', '.join(skipped)}")
        inside = run_all(plans, embedded, protocol, reporter, f"{task.name}: in distribution",
                         executor=settings.executor)
        result.runs.extend(compact(r, fold="in distribution") for r in inside.values())
        out = []
        for tested, trained in folds:
            derived = hold_out(embedded, tested, trained)
            runs = run_all(plans, derived, protocol, reporter,
                           f"{task.name}: held out {', '.join(tested)}",
                           executor=settings.executor)
            result.runs.extend(compact(r, test_groups=tested) for r in runs.values())
            fold: dict[str, Any] = {"test_groups": tested, "train_groups": trained,
                                    "n_test": derived.task.splits["test"].n,
                                    "n_train": derived.task.splits["train"].n, "routers": {}}
            for label in labels:
                auc, auc_std = auc_of(runs, label, protocol.seeds)
                q0, q0_std = auc_of(runs, label, protocol.seeds, "quality_at_0")
                in_auc, in_std = _in_distribution(inside, label, tested, protocol.seeds)
                fold["routers"][label] = {
                    "auc": auc, "auc_std": auc_std, "quality_at_0": q0,
                    "quality_at_0_std": q0_std, "in_distribution_auc": in_auc,
                    "in_distribution_auc_std": in_std,
                    "vs_knn": versus(runs, label, reference, protocol.seeds,
                                     settings.paired_bootstrap),
                    "vs_frontier": against_frontier(runs, label, protocol.seeds,
                                                    settings.paired_bootstrap)}
            out.append(fold)
        result.results[task.name] = {"folds": out, "routers": labels,
                                     "not_held_out": skipped}
    return result


def _in_distribution(runs: dict, label: str, tested: list[str],
                     seeds: Sequence[int]) -> tuple[float | None, float | None]:
    """AUC of the in-distribution run on the held-out groups' test prompts (its
    per-group AUC when one group is held out; else None: not computed)."""
    if len(tested) != 1:
        return None, None
    values = [runs[(label, s)].record.per_group.get(tested[0], {}).get("auc") for s in seeds]
    return mean_std(values)


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task: AUC out of distribution, in distribution, and the paired difference to
    kNN, per held-out fold and router."""
    out = []
    for task, summary in result.results.items():
        table = ReportTable(flagged(f"{task}: test AUC on held-out groups (trained without "
                                    "them)", cost_flag(result, task)),
                            ["held out", "test prompts", "router", "held-out AUC",
                             "in-distribution AUC", "drop", "vs kNN [95% CI]",
                             "vs frontier [95% CI]"],
                            right={1, 3, 4, 5, 6, 7})
        for i, fold in enumerate(summary["folds"]):
            for j, (label, entry) in enumerate(fold["routers"].items()):
                drop = (entry["in_distribution_auc"] - entry["auc"]
                        if entry["in_distribution_auc"] is not None and entry["auc"] is not None
                        else None)
                table.add([", ".join(fold["test_groups"]) if j == 0 else "",
                           str(fold["n_test"]) if j == 0 else "", label,
                           mean_cell(entry["auc"], entry["auc_std"]),
                           mean_cell(entry["in_distribution_auc"],
                                     entry["in_distribution_auc_std"]),
                           "-" if drop is None else f"{drop:+.2f}", diff_cell(entry["vs_knn"]),
                           diff_cell(entry.get("vs_frontier"))])
            if i < len(summary["folds"]) - 1:
                table.sections.add(len(table.rows) - 1)
        table.note = ("drop: in-distribution minus held-out AUC on the same test prompts; "
                      "vs kNN: AUC minus kNN's, held out, paired over test prompts; vs "
                      "frontier: AUC minus the single-model frontier's on the same prompts "
                      "(- : not measured in this file)")
        if summary.get("not_held_out"):
            table.note += ("; groups without scored test prompts, not held out: "
                           + ", ".join(summary["not_held_out"]))
        out.append(table)
    return out
