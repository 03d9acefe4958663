"""``study encoders`` (the referees' question): is kNN's standing an artefact of one
encoder? Every router on every task under each encoder, through the same protocol;
whether the ranking of routers holds (Kendall's tau between the rankings by mean AUC,
for each pair of encoders) and kNN's rank under each encoder.
``results[task]``: ``encoders``, per encoder and router AUC (mean, std) and the paired
difference to kNN, per encoder the ranking and kNN's rank, and ``kendall_tau`` per pair."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.data.dataset import RoutingTask
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation.matrix import load_tasks
from routeharness.results.sets import ranked
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
    REFERENCE_ROUTER,
    against_frontier,
    auc_of,
    comparison,
    embed,
    run_all,
    versus,
)


def run(routers: Sequence[str], tasks: Sequence[str], encoders: Sequence[str], *,
        settings: StudySettings | None = None, study: str = "encoders",
        loaded: Sequence[RoutingTask] | None = None,
        each: Callable[[str, Any, EmbeddedTask], None] | None = None) -> StudyResult:
    """Routers x encoders on each task (see the module's docstring). The tasks are loaded
    once (or given as ``loaded``); ``each(spec, encoder, embedded)`` is called for every
    task embedded, for a study that measures more on the same embeddings."""
    from routeharness.study.stats import kendall_tau

    settings = settings or StudySettings()
    if len(encoders) < 1 or len(set(encoders)) != len(encoders):
        raise RouteHarnessError("give each encoder once (-e), at least one")
    protocol, reporter = settings.protocol, settings.reporter
    routers, plans, reference = comparison(routers)
    labels = [p.label for p in plans]
    result = StudyResult.new(study, {"routers": routers, "tasks": list(tasks),
                                     "encoders": list(encoders)}, protocol)
    per_task: dict[str, dict[str, Any]] = {}
    if loaded is None:
        loaded = load_tasks(tasks, data_dir=settings.data_dir, reporter=reporter,
                            task_options=settings.task_options)
    for spec in encoders:
        enc, embedded_tasks = embed(loaded, spec, cache_dir=settings.cache_dir,
                                    reporter=reporter)
        result.add_encoder(enc)
        for embedded in embedded_tasks:
            task = embedded.task
            result.add_task(task)
            if each is not None:
                each(spec, enc, embedded)
            runs = run_all(plans, embedded, protocol, reporter, f"{task.name} with {spec}",
                           executor=settings.executor)
            result.runs.extend(compact(r, encoder=spec) for r in runs.values())
            entry: dict[str, Any] = {"routers": {}}
            for label in labels:
                auc, std = auc_of(runs, label, protocol.seeds)
                entry["routers"][label] = {
                    "auc": auc, "auc_std": std,
                    "vs_knn": versus(runs, label, reference, protocol.seeds,
                                     settings.paired_bootstrap),
                    "vs_frontier": against_frontier(runs, label, protocol.seeds,
                                                    settings.paired_bootstrap)}
            order = ranked(labels, lambda label, e=entry: e["routers"][label]["auc"],
                           lambda label: False)
            entry["ranking"] = [label for _, label in order]
            entry["knn_rank"] = next((rank for rank, label in order if label == reference),
                                     None)
            per_task.setdefault(task.name, {})[spec] = entry
    for task, by_encoder in per_task.items():
        taus = []
        for a, b in combinations(list(by_encoder), 2):
            x = [by_encoder[a]["routers"][label]["auc"] for label in labels]
            y = [by_encoder[b]["routers"][label]["auc"] for label in labels]
            ok = None not in x and None not in y and len(labels) > 1
            taus.append({"a": a, "b": b, "tau": kendall_tau(x, y) if ok else None})
        result.results[task] = {"encoders": by_encoder, "kendall_tau": taus,
                                "routers": labels}
    return result


def short(spec: str) -> str:
    """An encoder spec as a column name: ``st:/long/path/all-mpnet-base-v2`` ->
    ``st:all-mpnet-base-v2`` (the file has the whole spec and identity)."""
    name, colon, arg = spec.partition(":")
    return f"{name}:{arg.rstrip('/').rsplit('/', 1)[-1]}" if colon and "/" in arg else spec


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task: AUC router x encoder (kNN's rank under each) and Kendall's tau."""
    out = []
    for task, summary in result.results.items():
        encoders = list(summary["encoders"])
        table = ReportTable(flagged(f"{task}: test AUC by encoder (mean ± std over seeds; "
                                    "vs kNN paired [95% CI])", cost_flag(result, task)),
                            ["router", *map(short, encoders)],
                            right=set(range(1, len(encoders) + 1)))
        for label in summary["routers"]:
            cells = []
            for spec in encoders:
                entry = summary["encoders"][spec]["routers"][label]
                cell = mean_cell(entry["auc"], entry["auc_std"])
                if entry["vs_knn"]:
                    cell += f" ({diff_cell(entry['vs_knn'])})"
                cells.append(cell)
            table.add([label, *cells])
        table.add(["kNN's rank", *(f"{summary['encoders'][e]['knn_rank']} of "
                                   f"{len(summary['routers'])}" for e in encoders)], "bold")
        table.sections.add(len(table.rows) - 2)
        frontier = [summary["encoders"][e]["routers"].get(REFERENCE_ROUTER, {}).get("vs_frontier")
                    for e in encoders]
        if any(frontier):
            table.add(["kNN - single-model frontier", *(diff_cell(f) for f in frontier)])
        taus = "; ".join(f"{short(t['a'])} vs {short(t['b'])}: "
                         + ("-" if t["tau"] is None else f"{t['tau']:+.2f}")
                         for t in summary["kendall_tau"])
        table.note = f"Kendall's tau between the rankings of routers: {taus or '-'}"
        out.append(table)
    return out
