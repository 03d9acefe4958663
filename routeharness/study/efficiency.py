"""``study sample-efficiency``: does kNN need fewer training outcomes than parametric
routers to reach its quality (the paper's second claim)?

Every router is tuned and fitted on seeded subsamples of the training split (nested:
a larger fraction holds a smaller one; validation and test fixed), through the same
protocol as ``eval``. ``results[task]``: ``n_train``, ``fractions``, ``sizes`` and per
router ``by_fraction`` (AUC and quality at lambda 0, mean and std over seeds, and the
paired AUC difference to kNN with a bootstrap interval over test prompts),
``full_auc`` and ``fraction_to_95`` (the smallest fraction reaching 95% of the
full-data AUC)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.results.tables import ReportTable
from routeharness.study.common import StudySettings, compact, diff_cell, mean_cell
from routeharness.study.record import StudyResult
from routeharness.study.runs import (
    auc_of,
    comparison,
    prepare,
    run_all,
    subsample_size,
    subsample_train,
    versus,
)

DEFAULT_FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: share of its full-data AUC a router must reach
TARGET_SHARE = 0.95


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """Sorted, unique, each in (0, 1]; 1 added (the full-data reference) if missing."""
    for f in fractions:
        if not 0 < f <= 1:
            raise RouteHarnessError(f"--fractions: {f:g} is not in (0, 1]")
    return tuple(sorted({float(f) for f in fractions} | {1.0}))


def run(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        settings: StudySettings | None = None) -> StudyResult:
    """The learning curves of ``routers`` on each task (see the module's docstring)."""
    settings = settings or StudySettings()
    fractions = check_fractions(fractions)
    routers, plans, reference = comparison(routers)
    protocol, reporter = settings.protocol, settings.reporter
    enc, embedded_tasks = prepare(tasks, encoder, data_dir=settings.data_dir,
                                  cache_dir=settings.cache_dir, reporter=reporter,
                                  task_options=settings.task_options)
    result = StudyResult.new("sample-efficiency", {"routers": routers, "tasks": list(tasks),
                                                   "fractions": list(fractions)}, protocol)
    result.add_encoder(enc)
    labels = [p.label for p in plans]
    for embedded in embedded_tasks:
        task = embedded.task
        result.add_task(task)
        n = task.splits["train"].n
        per_fraction = []
        for fraction in fractions:
            runs: dict = {}
            for seed in protocol.seeds:  # each seed its own subsample
                one = replace(protocol, seeds=(seed,))
                sub = subsample_train(embedded, fraction, seed)
                runs.update(run_all(plans, sub, one, reporter,
                                    f"{task.name}: {fraction:g} of train, seed {seed}",
                                    executor=settings.executor))
            per_fraction.append(runs)
            result.runs.extend(compact(r, fraction=fraction) for r in runs.values())
        result.results[task.name] = _summary(per_fraction, labels, reference, fractions, n,
                                             protocol.seeds, settings)
    return result


def _summary(per_fraction: list[dict], labels: list[str], reference: str | None,
             fractions: Sequence[float], n: int, seeds: Sequence[int],
             settings: StudySettings) -> dict[str, Any]:
    routers: dict[str, Any] = {}
    for label in labels:
        rows = []
        for fraction, runs in zip(fractions, per_fraction):
            auc, auc_std = auc_of(runs, label, seeds)
            q0, q0_std = auc_of(runs, label, seeds, "quality_at_0")
            compared = versus(runs, label, reference, seeds, settings.paired_bootstrap)
            rows.append({"fraction": fraction, "n_train": subsample_size(n, fraction),
                         "auc": auc, "auc_std": auc_std, "quality_at_0": q0,
                         "quality_at_0_std": q0_std, "vs_knn": compared})
        full = rows[-1]["auc"]
        reached = [r["fraction"] for r in rows
                   if full is not None and r["auc"] is not None and r["auc"] >= TARGET_SHARE * full]
        routers[label] = {"by_fraction": rows, "full_auc": full,
                          "fraction_to_95": min(reached) if reached else None}
    return {"n_train": n, "fractions": list(fractions),
            "sizes": [subsample_size(n, f) for f in fractions], "routers": routers}


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task: test AUC by training fraction (mean ± std over seeds) with the fraction
    that reaches 95% of full-data AUC; and each router's paired difference to kNN."""
    out = []
    for task, summary in result.results.items():
        heads = [f"{f:g} ({n})" for f, n in zip(summary["fractions"], summary["sizes"])]
        auc = ReportTable(f"{task}: test AUC by share of the training split (prompts)",
                          ["router", *heads, "95% of full at"], right=set(range(1, len(heads) + 2)))
        diff = ReportTable(f"{task}: AUC minus kNN's, paired over test prompts [95% CI]",
                           ["router", *heads], right=set(range(1, len(heads) + 1)))
        for label, entry in summary["routers"].items():
            rows = entry["by_fraction"]
            to95 = entry["fraction_to_95"]
            auc.add([label, *(mean_cell(r["auc"], r["auc_std"]) for r in rows),
                     "-" if to95 is None else f"{to95:g}"])
            if any(r["vs_knn"] for r in rows):
                diff.add([label, *(diff_cell(r["vs_knn"]) for r in rows)])
        auc.note = (f"seeds {result.protocol.seeds if result.protocol else '?'}; each "
                    "router tuned on validation at every fraction, as eval tunes")
        out += [auc] + ([diff] if diff.rows else [])
    return out


def plot(result: StudyResult, path: str | Path) -> Path:
    """Learning curves: test AUC (mean, ± std band) against training prompts, per task."""
    from routeharness.study.figures import curves

    panels = {}
    for task, summary in result.results.items():
        panels[task] = {label: (summary["sizes"], [r["auc"] for r in e["by_fraction"]],
                                [r["auc_std"] for r in e["by_fraction"]])
                        for label, e in summary["routers"].items()}
    return curves(panels, path, xlabel="training prompts", ylabel="test AUC", logx=True)
