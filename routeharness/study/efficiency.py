"""``study sample-efficiency``: does kNN need fewer training outcomes than parametric
routers to reach its quality (the paper's second claim)?

Every router is tuned and fitted on seeded subsamples of the training split (nested:
a larger fraction holds a smaller one; validation and test fixed), through the same
protocol as ``eval``, in two ways: re-tuned on validation at every share (as eval tunes;
the report's verdict reads these curves) and with the hyper-parameters its own
full-data run of the same seed picked (tuning held fixed, so the curve shows the data's
effect alone). ``results[task]``: ``n_train``, ``fractions``, ``sizes``, ``target`` (the
best full-data AUC and quality at lambda 0 among the routers, and ``TARGET_SHARE`` of
them), ``area`` (how the area between curves weighs the shares) and per router
``by_fraction`` (AUC and quality at lambda 0, mean and std over seeds, and the paired
difference to kNN with its interval over seeds and test prompts), ``full_auc``,
``fraction_to_target`` (the smallest share whose mean reaches the target, per metric),
``area_vs_knn`` (the area between the router's curve and kNN's, per way of tuning),
``fixed_hyperparameters`` (the same with the full-data hyper-parameters) and
``vs_frontier`` (full data against the single-model frontier). Files written before
issue 19 hold ``fraction_to_95`` (the share reaching 95% of the router's OWN full-data
AUC) instead of the target, area and fixed curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation.tuning import RouterRun
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
    Resamples,
    auc_of,
    comparison,
    comparison_entry,
    prepare,
    run_all,
    subsample_size,
    subsample_train,
)

DEFAULT_FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: share of the best full-data AUC (among the routers) a router's curve must reach
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
        retuned = [_curve_point(plans, embedded, fraction, protocol, settings, result,
                                f"{task.name}: {fraction:g} of train")
                   for fraction in fractions]
        full = retuned[-1]
        fixed = [_curve_point(plans, embedded, fraction, protocol, settings, result,
                              f"{task.name}: {fraction:g} of train, full-data "
                              "hyper-parameters", full=full)
                 for fraction in fractions[:-1]] + [full]
        result.results[task.name] = _summary(retuned, fixed, labels, reference, fractions, n,
                                             protocol.seeds, settings)
    return result


#: the ways of tuning at a share, and the one the report's verdict reads
TUNINGS = {"retuned": "re-tuned on validation at every share (as eval tunes)",
           "fixed": "the hyper-parameters of the router's full-data run of the same seed"}
VERDICT_TUNING = "retuned"


def _curve_point(plans: Sequence[RouterRun], embedded: Any, fraction: float,
                 protocol: Any, settings: StudySettings, result: StudyResult, title: str,
                 full: dict | None = None) -> dict:
    """Every router x seed at one share of train (each seed its own subsample); with
    ``full`` (the full-data runs), each router fixed to the configuration its full-data
    run of the same seed picked instead of tuned."""
    runs: dict = {}
    for seed in protocol.seeds:
        one = replace(protocol, seeds=(seed,))
        sub = subsample_train(embedded, fraction, seed)
        chosen = plans if full is None else [fixed_plan(p, full[(p.label, seed)]) for p in plans]
        runs.update(run_all(chosen, sub, one, settings.reporter, f"{title}, seed {seed}",
                            executor=settings.executor))
    condition = {"fraction": fraction} if full is None else \
        {"fraction": fraction, "tuning": "full-data hyper-parameters"}
    result.runs.extend(compact(r, **condition) for r in runs.values())
    return runs


def fixed_plan(plan: RouterRun, routed: Any) -> RouterRun:
    """``plan`` with every parameter of its grid fixed to the value ``routed`` (a run of
    the same router) picked: routed at another share without tuning. Values are taken
    from the grid itself (the record holds their JSON form)."""
    from routeharness.evaluation.tuning import jsonable

    picked = routed.record.params
    fixed = dict(plan.fixed)
    for name, values in plan.grid.items():
        if name in picked:
            fixed[name] = next((v for v in values if jsonable(v) == picked[name]),
                               picked[name])
    return replace(plan, fixed=fixed, memo={})


def _reach(rows: list[dict], metric: str, target: float | None) -> float | None:
    """The smallest share whose mean ``metric`` reaches ``target`` (None: none does)."""
    if target is None:
        return None
    return next((r["fraction"] for r in rows
                 if r.get(metric) is not None and r[metric] >= target), None)


def area_weights(fractions: Sequence[float]) -> np.ndarray:
    """Weights of the shares in the area between two curves: the trapezoid rule on the
    log of the share, normalised to sum 1, so the area is a mean difference in AUC
    points over the curve (log axis: 2% to 5% of train weighs as 50% to 100%). One
    share: weight 1."""
    x = np.log(np.asarray(fractions, dtype=float))
    if x.size == 1:
        return np.ones(1)
    widths = np.diff(x)
    weights = np.zeros(x.size)
    weights[:-1] += widths / 2
    weights[1:] += widths / 2
    return weights / weights.sum()


def _rows(runs_by_fraction: list[dict], label: str, reference: str | None,
          fractions: Sequence[float], n: int, seeds: Sequence[int],
          resamples: Resamples | None) -> list[dict]:
    rows = []
    for fraction, runs in zip(fractions, runs_by_fraction):
        auc, auc_std = auc_of(runs, label, seeds)
        q0, q0_std = auc_of(runs, label, seeds, "quality_at_0")
        compared = None
        if resamples is not None and reference is not None and label != reference:
            compared = resamples.entry(resamples.side(runs, label, seeds),
                                       resamples.side(runs, reference, seeds))
        rows.append({"fraction": fraction, "n_train": subsample_size(n, fraction),
                     "auc": auc, "auc_std": auc_std, "quality_at_0": q0,
                     "quality_at_0_std": q0_std, "vs_knn": compared})
    return rows


def _area(runs_by_fraction: list[dict], label: str, reference: str, seeds: Sequence[int],
          resamples: Resamples, weights: np.ndarray) -> dict[str, Any]:
    """The area between ``label``'s curve and the reference's (``area_weights``), with
    its interval: every share's difference under the same draws, summed."""
    point = np.zeros(3)
    replicates: np.ndarray | None = None
    for weight, runs in zip(weights, runs_by_fraction):
        (pa, ra), (pb, rb) = (resamples.side(runs, label, seeds),
                              resamples.side(runs, reference, seeds))
        point = point + weight * (pa - pb)
        if ra is not None and rb is not None:
            replicates = weight * (ra - rb) + (0.0 if replicates is None else replicates)
    return comparison_entry(point, replicates, n_test=resamples.n_test,
                            n_seeds=resamples.n_seeds, budget=resamples.budget)


def _summary(retuned: list[dict], fixed: list[dict], labels: list[str],
             reference: str | None, fractions: Sequence[float], n: int,
             seeds: Sequence[int], settings: StudySettings) -> dict[str, Any]:
    resamples = Resamples.of(retuned[-1], seeds, settings.paired_bootstrap, seeds[0])
    weights = area_weights(fractions)
    curves = {label: {"retuned": _rows(retuned, label, reference, fractions, n, seeds,
                                       resamples),
                      "fixed": _rows(fixed, label, reference, fractions, n, seeds, resamples)}
              for label in labels}
    target: dict[str, Any] = {"share": TARGET_SHARE}
    for metric in ("auc", "quality_at_0"):
        full = {label: c["retuned"][-1][metric] for label, c in curves.items()
                if c["retuned"][-1][metric] is not None}
        best = max(full, key=full.__getitem__) if full else None
        target[metric] = None if best is None else {
            "best_router": best, "best_full": full[best], "value": TARGET_SHARE * full[best]}
    routers: dict[str, Any] = {}
    for label in labels:
        entry: dict[str, Any] = {"by_fraction": curves[label]["retuned"],
                                 "full_auc": curves[label]["retuned"][-1]["auc"]}
        for way in TUNINGS:
            rows = curves[label][way]
            reach = {m: _reach(rows, m, (target[m] or {}).get("value"))
                     for m in ("auc", "quality_at_0")}
            if way == "retuned":
                entry["fraction_to_target"] = reach
            else:
                entry["fixed_hyperparameters"] = {"by_fraction": rows,
                                                  "fraction_to_target": reach}
        if reference is not None and label != reference:
            entry["area_vs_knn"] = {way: _area(runs, label, reference, seeds, resamples,
                                               weights)
                                    for way, runs in (("retuned", retuned), ("fixed", fixed))}
        entry["vs_frontier"] = resamples.entry(resamples.side(retuned[-1], label, seeds),
                                               resamples.frontier())
        routers[label] = entry
    return {"n_train": n, "fractions": list(fractions),
            "sizes": [subsample_size(n, f) for f in fractions], "target": target,
            "area": {"axis": "log share of train", "weights": weights.tolist()},
            "tunings": TUNINGS, "verdict_tuning": VERDICT_TUNING, "routers": routers}


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task: test AUC by training share (mean ± std over seeds), re-tuned at every
    share and with the full-data hyper-parameters, with the share reaching 95% of the
    best full-data AUC; quality at lambda 0 too where the cost range makes AUC
    uninformative; each router's paired difference to kNN and the area between the
    curves. A file written before issue 19 has the re-tuned curves only, with the share
    reaching 95% of the router's own full-data AUC."""
    out = []
    seeds = result.protocol.seeds if result.protocol else "?"
    for task, summary in result.results.items():
        flag = cost_flag(result, task)
        new = "target" in summary
        heads = [f"{f:g} ({n})" for f, n in zip(summary["fractions"], summary["sizes"])]
        right = set(range(1, len(heads) + 2))
        ways = [("retuned", "re-tuned at every share")] + \
            ([("fixed", "with the full-data hyper-parameters")] if new else [])
        metrics = [("auc", "test AUC")] + ([("quality_at_0", "Q@λ0")] if flag else [])
        for metric, name in metrics:
            for way, how in ways:
                reach_head = (f"reaches {TARGET_SHARE:.0%} of best full-data at" if new
                              else f"{TARGET_SHARE:.0%} of own full at")
                table = ReportTable(flagged(f"{task}: {name} by share of the training split "
                                            f"(prompts), {how}", flag),
                                    ["router", *heads, reach_head], right=right)
                for label, entry in summary["routers"].items():
                    rows = entry["by_fraction"] if way == "retuned" else \
                        entry["fixed_hyperparameters"]["by_fraction"]
                    if new:
                        reach_entry = entry["fraction_to_target"] if way == "retuned" else \
                            entry["fixed_hyperparameters"]["fraction_to_target"]
                        reach = reach_entry.get(metric)
                    else:
                        reach = entry.get("fraction_to_95") if metric == "auc" else None
                    table.add([label, *(mean_cell(r[metric], r[f"{metric}_std"]) for r in rows),
                               "-" if reach is None else f"{reach:g}"])
                goal = (summary.get("target") or {}).get(metric)
                table.note = (f"seeds {seeds}; " + (
                    f"{TUNINGS[way]}" + ("; the verdict reads these curves"
                                         if way == summary.get("verdict_tuning") else "")
                    if new else "each router tuned on validation at every fraction, as "
                    "eval tunes (a file written before issue 19: the share reaching 95% of "
                    "the router's own full-data AUC, which rewards a flat or falling curve)"))
                if goal:
                    table.note += (f"; target: {TARGET_SHARE:.0%} of the best full-data "
                                   f"{name} ({goal['best_router']} {goal['best_full']:.2f}) = "
                                   f"{goal['value']:.2f}")
                out.append(table)
        out += _difference_tables(result, task, summary, heads, flag)
    return out


def _difference_tables(result: StudyResult, task: str, summary: dict[str, Any],
                       heads: list[str], flag: str | None) -> list[ReportTable]:
    new = "target" in summary
    areas = ["area (re-tuned)", "area (full-data hyper-parameters)"] if new else []
    diff = ReportTable(flagged(f"{task}: AUC minus kNN's, paired [95% CI]", flag),
                       ["router", *heads, *areas], right=set(range(1, len(heads) + len(areas) + 1)))
    for label, entry in summary["routers"].items():
        rows = entry["by_fraction"]
        if any(r["vs_knn"] for r in rows):
            area = entry.get("area_vs_knn") or {}
            diff.add([label, *(diff_cell(r["vs_knn"]) for r in rows),
                      *((diff_cell(area.get("retuned")), diff_cell(area.get("fixed")))
                        if new else ())])
    if not diff.rows:
        return []
    first = next((r["vs_knn"] for e in summary["routers"].values() for r in e["by_fraction"]
                  if r["vs_knn"]), {})
    diff.note = (("interval: a bootstrap over seeds (refits), then test prompts"
                  if first.get("resampled") else
                  "interval: a bootstrap over test prompts only (seed variance not measured "
                  "in this file)")
                 + ("; area: the mean difference over the curve, shares weighted on a log "
                    "axis (docs/studies.md)" if new else ""))
    return [diff]


def plot(result: StudyResult, path: str | Path) -> Path:
    """Learning curves: test AUC (mean, ± std band) against training prompts, per task."""
    from routeharness.study.figures import curves

    panels = {}
    for task, summary in result.results.items():
        panels[task] = {label: (summary["sizes"], [r["auc"] for r in e["by_fraction"]],
                                [r["auc_std"] for r in e["by_fraction"]])
                        for label, e in summary["routers"].items()}
    return curves(panels, path, xlabel="training prompts", ylabel="test AUC", logx=True)
