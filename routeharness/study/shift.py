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
from dataclasses import replace
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation.tuning import check_tune_on
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

#: ``study shift --tune-on``: tune on the training groups' validation split (as eval
#: does), on the training groups held out one at a time, or both, side by side
SHIFT_TUNINGS = ("validation", "groups", "both")


def run(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
        train_groups: Sequence[str] | None = None, test_groups: Sequence[str] | None = None,
        settings: StudySettings | None = None, tune_on: str = "validation") -> StudyResult:
    """Leave-one-group-out per task, or the named split when ``test_groups`` is given.
    ``tune_on``: ``validation`` (eval's tuning), ``groups`` (every run tuned on the
    training groups held out in turn) or ``both`` (the held-out runs tuned each way; the
    main numbers and the in-distribution runs are validation-tuned, the group-tuned ones
    are each router's ``tuned_on_groups``)."""
    settings = settings or StudySettings()
    if train_groups and not test_groups:
        raise RouteHarnessError("--train-groups needs --test-groups")
    if tune_on not in SHIFT_TUNINGS:
        raise RouteHarnessError(f"--tune-on must be one of {', '.join(SHIFT_TUNINGS)}, got "
                                f"{tune_on!r}")
    tunings = ["validation", "groups"] if tune_on == "both" else [tune_on]
    protocols = {t: replace(settings.protocol, tune_on=t) for t in tunings}
    protocol, reporter = protocols[tunings[0]], settings.reporter
    routers, plans, reference = comparison(routers)
    labels = [p.label for p in plans]
    enc, embedded_tasks = prepare(tasks, encoder, data_dir=settings.data_dir,
                                  cache_dir=settings.cache_dir, reporter=reporter,
                                  task_options=settings.task_options)
    params: dict[str, Any] = {"routers": routers, "tasks": list(tasks),
                              "train_groups": list(train_groups or []),
                              "test_groups": list(test_groups or [])}
    if tune_on != "validation":
        params["tune_on"] = tune_on
    result = StudyResult.new("shift", params, protocol)
    result.add_encoder(enc)
    # every fold of every task, checked before any run: a fold that leaves fewer than two
    # training groups cannot be tuned on groups
    planned = [(embedded, *_folds(embedded, train_groups, test_groups, reporter))
               for embedded in embedded_tasks]
    for embedded, folds, _ in planned:
        check_tune_on(embedded.task, protocol)
        for tested, trained in folds:
            derived = hold_out(embedded, tested, trained)
            for tuning in tunings:
                try:
                    check_tune_on(derived.task, protocols[tuning])
                except RouteHarnessError as exc:
                    raise RouteHarnessError(f"holding out {', '.join(tested)}: {exc}") from None
    for embedded, folds, skipped in planned:
        task = embedded.task
        result.add_task(task)
        inside = run_all(plans, embedded, protocol, reporter, f"{task.name}: in distribution",
                         executor=settings.executor)
        result.runs.extend(compact(r, fold="in distribution", **_tuned(tune_on, tunings[0]))
                           for r in inside.values())
        out = []
        for tested, trained in folds:
            derived = hold_out(embedded, tested, trained)
            by_tuning = {}
            for tuning in tunings:
                how = "" if tuning == "validation" else ", tuned on groups"
                runs = run_all(plans, derived, protocols[tuning], reporter,
                               f"{task.name}: held out {', '.join(tested)}{how}",
                               executor=settings.executor)
                result.runs.extend(compact(r, test_groups=tested, **_tuned(tune_on, tuning))
                                   for r in runs.values())
                by_tuning[tuning] = runs
            runs = by_tuning[tunings[0]]
            fold: dict[str, Any] = {"test_groups": tested, "train_groups": trained,
                                    "n_test": derived.task.splits["test"].n,
                                    "n_train": derived.task.splits["train"].n, "routers": {}}
            for plan in plans:
                label = plan.label
                in_auc, in_std = _in_distribution(inside, label, tested, protocol.seeds)
                entry = _held_out(runs, plan, reference, protocol.seeds,
                                  settings.paired_bootstrap)
                entry = {**{k: entry[k] for k in ("auc", "auc_std", "quality_at_0",
                                                  "quality_at_0_std")},
                         "in_distribution_auc": in_auc, "in_distribution_auc_std": in_std,
                         "vs_knn": entry["vs_knn"],
                         "vs_frontier": against_frontier(runs, label, protocol.seeds,
                                                         settings.paired_bootstrap),
                         "tuned": entry["tuned"]}
                if len(tunings) > 1:
                    entry["tuned_on_groups"] = _held_out(by_tuning["groups"], plan, reference,
                                                         protocol.seeds,
                                                         settings.paired_bootstrap)
                fold["routers"][label] = entry
            out.append(fold)
        result.results[task.name] = {"folds": out, "routers": labels,
                                     "not_held_out": skipped}
    return result


def _folds(embedded: Any, train_groups: Sequence[str] | None,
           test_groups: Sequence[str] | None, reporter: Any
           ) -> tuple[list[tuple[list[str], list[str]]], list[str]]:
    """A task's folds (test groups, train groups) and the groups not held out."""
    task = embedded.task
    groups, skipped = task.groups, []
    if test_groups:
        return [(list(test_groups), list(train_groups) if train_groups else
                 [g for g in groups if g not in test_groups])], []
    if len(groups) < 2:
        raise RouteHarnessError(f"task {task.name!r} has one group: nothing to hold out "
                                "(study shift needs a task with groups)")
    # a group with no test prompt (or none scored) cannot be held out
    tested = {str(g) for g, ok in zip(task.splits["test"].groups,
                                      task.splits["test"].complete_rows()) if ok}
    folds = [([g], [h for h in groups if h != g]) for g in groups if g in tested]
    skipped = [g for g in groups if g not in tested]
    if skipped:
        reporter.log(f"{task.name}: groups without scored test prompts are not held "
                     f"out: {', '.join(skipped)}")
    return folds, skipped


def _tuned(tune_on: str, tuning: str) -> dict[str, str]:
    """A run's condition names its tuning when the study tunes on groups at all."""
    return {} if tune_on == "validation" else {"tune_on": tuning}


def _tuned_names(plan: Any, record: Any) -> set[str]:
    """The parameters a run tuned: those of its tuning table (a grid's ``sparse_params``
    are tuned only on a table with a sparse model), else the grid's."""
    names = {k for row in record.tuning for k in row.params}
    return names or set(plan.grid_for(sparse=False))


def _held_out(runs: dict, plan: Any, reference: str | None, seeds: Sequence[int],
              n_bootstrap: int) -> dict[str, Any]:
    """One router's held-out numbers under one tuning: AUC and quality at lambda 0 (mean
    and std over seeds), the paired difference to kNN, and the tuned values per seed."""
    label = plan.label
    auc, auc_std = auc_of(runs, label, seeds)
    q0, q0_std = auc_of(runs, label, seeds, "quality_at_0")
    tuned = [{k: runs[(label, s)].record.params.get(k) for k in sorted(_tuned_names(
        plan, runs[(label, s)].record))} for s in seeds]
    return {"auc": auc, "auc_std": auc_std, "quality_at_0": q0, "quality_at_0_std": q0_std,
            "vs_knn": versus(runs, label, reference, seeds, n_bootstrap), "tuned": tuned}


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
    kNN, per held-out fold and router; tuned both ways, the two side by side, and a
    table of the values each tuning picked."""
    tune_on = result.params.get("tune_on", "validation")
    out = []
    for task, summary in result.results.items():
        if tune_on == "both":
            out += _side_by_side(task, summary, cost_flag(result, task))
            continue
        how = " (tuned on held-out training groups)" if tune_on == "groups" else ""
        table = ReportTable(flagged(f"{task}: test AUC on held-out groups (trained without "
                                    f"them){how}", cost_flag(result, task)),
                            ["held out", "test prompts", "router", "held-out AUC",
                             "in-distribution AUC", "drop", "vs kNN [95% CI]",
                             "vs frontier [95% CI]"],
                            right={1, 3, 4, 5, 6, 7})
        for i, fold in enumerate(summary["folds"]):
            for j, (label, entry) in enumerate(fold["routers"].items()):
                table.add([*_fold_cells(fold, j), label,
                           mean_cell(entry["auc"], entry["auc_std"]),
                           mean_cell(entry["in_distribution_auc"],
                                     entry["in_distribution_auc_std"]),
                           _drop(entry), diff_cell(entry["vs_knn"]),
                           diff_cell(entry.get("vs_frontier"))])
            if i < len(summary["folds"]) - 1:
                table.sections.add(len(table.rows) - 1)
        table.note = ("drop: in-distribution minus held-out AUC on the same test prompts; "
                      "vs kNN: AUC minus kNN's, held out, paired over test prompts; vs "
                      "frontier: AUC minus the single-model frontier's on the same prompts "
                      "(- : not measured in this file)")
        out.append(_not_held_out(table, summary))
    return out


def _fold_cells(fold: dict[str, Any], j: int) -> list[str]:
    """The held-out groups and test prompts, on a fold's first row only."""
    return [", ".join(fold["test_groups"]) if j == 0 else "",
            str(fold["n_test"]) if j == 0 else ""]


def _drop(entry: dict[str, Any]) -> str:
    if entry["in_distribution_auc"] is None or entry["auc"] is None:
        return "-"
    return f"{entry['in_distribution_auc'] - entry['auc']:+.2f}"


def _not_held_out(table: ReportTable, summary: dict[str, Any]) -> ReportTable:
    if summary.get("not_held_out"):
        table.note += ("; groups without scored test prompts, not held out: "
                       + ", ".join(summary["not_held_out"]))
    return table


def _picked(tuned: list[dict[str, Any]] | None) -> str:
    """The values a tuning kept, per seed (``k=5, weighting=uniform``; seeds by ``|``)."""
    if not tuned:
        return "-"
    return " | ".join(", ".join(f"{k}={v}" for k, v in t.items()) or "-" for t in tuned)


def _side_by_side(task: str, summary: dict[str, Any], flag: Any) -> list[ReportTable]:
    """Held-out AUC and the paired difference to kNN under each tuning, then what each
    tuning picked (``flag``: the task's narrow-cost flag, ``cost_flag``)."""
    table = ReportTable(flagged(f"{task}: test AUC on held-out groups, tuned on validation "
                                "and on held-out training groups", flag),
                        ["held out", "test prompts", "router", "AUC, validation-tuned",
                         "AUC, group-tuned", "in-distribution AUC",
                         "vs kNN, validation-tuned [95% CI]", "vs kNN, group-tuned [95% CI]"],
                        right={1, 3, 4, 5, 6, 7})
    picks = ReportTable(f"{task}: what each tuning picked (per seed)",
                        ["held out", "router", "tuned on validation", "tuned on groups"])
    for i, fold in enumerate(summary["folds"]):
        for j, (label, entry) in enumerate(fold["routers"].items()):
            groups = entry.get("tuned_on_groups") or {}
            table.add([*_fold_cells(fold, j), label, mean_cell(entry["auc"], entry["auc_std"]),
                       mean_cell(groups.get("auc"), groups.get("auc_std")),
                       mean_cell(entry["in_distribution_auc"],
                                 entry["in_distribution_auc_std"]),
                       diff_cell(entry["vs_knn"]), diff_cell(groups.get("vs_knn"))])
            picks.add([_fold_cells(fold, j)[0], label, _picked(entry.get("tuned")),
                       _picked(groups.get("tuned"))])
        if i < len(summary["folds"]) - 1:
            table.sections.add(len(table.rows) - 1)
            picks.sections.add(len(picks.rows) - 1)
    table.note = ("validation-tuned: each configuration fitted on the training groups' train "
                  "split and scored on their validation split (as eval tunes); group-tuned: "
                  "scored on each training group held out in turn, fitted on the others (mean "
                  "AUC over groups); both then refit on every training group and scored on "
                  "the held-out group's test prompts. vs kNN: AUC minus kNN's under the same "
                  "tuning, paired over test prompts; in-distribution: validation-tuned, "
                  "trained on every group")
    return [_not_held_out(table, summary), picks]
