"""``study sweep``: test and validation AUC across one hyper-parameter (kNN's k, for the
paper's "well-tuned"), with the value ``eval``'s tuning picks marked.

For each value the parameter is fixed (``ROUTER:PARAM=VALUE``) and the router's other
parameters are tuned as ``eval`` tunes them; the validation AUC is that of the
configuration tuning kept. The router is also run as ``eval`` runs it (the parameter
free), and the value its tuning chose on each seed is reported. ``results[task]``:
``param``, ``values``, ``rows`` (value, validation and test AUC, mean and std) and
``tuned`` (the value picked per seed, and its test AUC)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.results.records import RunRecord
from routeharness.results.sets import mean_std
from routeharness.results.tables import ReportTable
from routeharness.routers.base import parse_router_spec
from routeharness.study.common import StudySettings, compact, mean_cell
from routeharness.study.record import StudyResult
from routeharness.study.runs import auc_of, plans_for, prepare, run_all, validation_auc


def parse_param(text: str) -> tuple[str, list[str] | None]:
    """``NAME=V1,V2,...`` -> (NAME, values as written); ``NAME`` alone -> (NAME, None):
    the router's own tuning grid for it."""
    name, equals, rest = text.partition("=")
    name = name.strip()
    values = [v.strip() for v in rest.split(",")] if equals else None
    if not name or (values is not None and (not values or not all(values))):
        raise RouteHarnessError(f"--param {text!r}: write NAME=V1,V2,... (e.g. k=1,5,10,50)")
    if values is not None and len(set(values)) != len(values):
        raise RouteHarnessError(f"--param {text!r}: a value is given twice")
    return name, values


def run(router: str, tasks: Sequence[str], param: str, *, encoder: str | None = None,
        settings: StudySettings | None = None) -> StudyResult:
    """The sweep of ``param`` (``NAME=V1,...`` or ``NAME``) for ``router`` on each task."""
    settings = settings or StudySettings()
    protocol, reporter = settings.protocol, settings.reporter
    name, values = parse_param(param)
    base = parse_router_spec(router)
    if name in dict(base.raw):
        raise RouteHarnessError(f"router {router!r} already fixes {name!r}: sweep it with "
                                f"--param instead")
    free = plans_for([router])[0]
    if values is None:
        grid = getattr(free.router_cls, "param_grid", {}) or {}
        if name not in grid:
            plans_for([f"{router}{',' if base.raw else ':'}{name}=0"])  # unknown: one line
            raise RouteHarnessError(f"router {base.name!r} does not tune {name!r}: give its "
                                    f"values, --param {name}=V1,V2,...")
        values = [str(v) for v in grid[name]]
    joiner = "," if base.raw else ":"
    plans = plans_for([f"{router}{joiner}{name}={v}" for v in values])
    labels = [p.label for p in plans]
    if len(set(labels)) != len(labels):
        raise RouteHarnessError(f"--param {param!r}: two values mean the same setting")
    enc, embedded_tasks = prepare(tasks, encoder, data_dir=settings.data_dir,
                                  cache_dir=settings.cache_dir, reporter=reporter,
                                  task_options=settings.task_options)
    result = StudyResult.new("sweep", {"router": router, "tasks": list(tasks), "param": name,
                                       "values": values}, protocol)
    result.add_encoder(enc)
    for embedded in embedded_tasks:
        task = embedded.task
        result.add_task(task)
        runs = run_all([*plans, free], embedded, protocol, reporter,
                       f"{task.name}: {free.label} across {name}",
                       executor=settings.executor)
        result.runs.extend(compact(r, param=name) for r in runs.values())
        rows = []
        for plan in plans:
            val = [_validation(runs[(plan.label, s)].record, plan, embedded, s, protocol)
                   for s in protocol.seeds]
            test, test_std = auc_of(runs, plan.label, protocol.seeds)
            v_mean, v_std = mean_std(val)
            rows.append({"value": plan.fixed[name], "label": plan.label, "validation_auc": v_mean,
                         "validation_auc_std": v_std, "test_auc": test, "test_auc_std": test_std})
        picked = [runs[(free.label, s)].record.params.get(name) for s in protocol.seeds]
        tuned_auc, tuned_std = auc_of(runs, free.label, protocol.seeds)
        best = max(rows, key=lambda r: (r["validation_auc"] or -1.0))
        result.results[task.name] = {
            "param": name, "values": [r["value"] for r in rows], "rows": rows,
            "best_on_validation": best["value"],
            "tuned": {"label": free.label, "picked": picked, "test_auc": tuned_auc,
                      "test_auc_std": tuned_std}}
    return result


def _validation(record: RunRecord, plan: Any, embedded: Any, seed: int,
                protocol: Any) -> float:
    """The validation AUC of the configuration tuning kept (computed when nothing was
    tuned: a single configuration)."""
    kept = record.params
    for row in record.tuning:
        if all(kept.get(k) == v for k, v in row.params.items()):
            return float(row.validation_auc)
    free = {k: v for k, v in kept.items() if k in plan.grid}
    return validation_auc(plan, embedded, free, seed, protocol)


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task: validation and test AUC by value; the value tuning picked marked."""
    out = []
    for task, summary in result.results.items():
        name, tuned = summary["param"], summary["tuned"]
        picked = {str(v) for v in tuned["picked"]}
        table = ReportTable(f"{task}: {tuned['label']} across {name}",
                            [name, "validation AUC", "test AUC", "tuning"], right={1, 2})
        for row in summary["rows"]:
            marks = []
            if str(row["value"]) in picked:
                marks.append("picked by eval's tuning")
            if row["value"] == summary["best_on_validation"]:
                marks.append("best on validation")
            table.add([str(row["value"]), mean_cell(row["validation_auc"],
                                                    row["validation_auc_std"]),
                       mean_cell(row["test_auc"], row["test_auc_std"]), "; ".join(marks)],
                      "bold" if marks else None)
        table.note = (f"{tuned['label']} tuned as eval tunes it (all parameters free) picked "
                      f"{name} = {', '.join(map(str, tuned['picked']))} over the seeds: test AUC "
                      f"{mean_cell(tuned['test_auc'], tuned['test_auc_std'])}")
        out.append(table)
    return out


def plot(result: StudyResult, path: str | Path) -> Path:
    """Validation and test AUC against the value (numeric values; else by position)."""
    from routeharness.study.figures import curves

    panels, marks = {}, {}
    for task, s in result.results.items():
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in s["values"])
        x = [float(v) for v in s["values"]] if numeric else list(range(len(s["values"])))
        rows = s["rows"]
        title = f"{task}: {s['tuned']['label']} across {s['param']}"
        panels[title] = {
            "validation": (x, [r["validation_auc"] for r in rows],
                           [r["validation_auc_std"] for r in rows]),
            "test": (x, [r["test_auc"] for r in rows], [r["test_auc_std"] for r in rows])}
        pick = [xv for xv, v in zip(x, s["values"]) if str(v) in map(str, s["tuned"]["picked"])]
        if pick:
            marks[title] = {"test": pick[0]}
    return curves(panels, path, xlabel=result.params["param"], ylabel="AUC",
                  logx=all(isinstance(v, (int, float)) and v > 0 for r in result.results.values()
                           for v in r["values"]), marks=marks)


