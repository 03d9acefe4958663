"""Result sets: loading, merging, the one aggregation over seeds and the one ranking,
and the report tables every command prints from them (result tables and leaderboards
alike use ``aggregate``, ``ranked`` and ``tables.fmt``). The file format is owned by
``routeharness.results.records``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.results.records import (
    REFERENCE_ROUTERS,
    MergedFrom,
    ResultSet,
    RunRecord,
    TaskReference,
    replaced,
)
from routeharness.results.tables import ReportTable, fmt, narrow_cost_flag

#: metrics averaged over seeds (mean and std) in every summary
SUMMARY_METRICS = ("auc", "quality_at_0", "cost_at_0_usd", "arena_score", "arena_score_max",
                   "apgr", "cpt50")
#: the headline metrics of a leaderboard submission's ``scores``
SCORE_METRICS = ("auc", "quality_at_0", "cost_at_0_usd")


def is_reference(record: RunRecord) -> bool:
    """A reference row: best-single, random, or an old file's oracle record."""
    return record.router in REFERENCE_ROUTERS or record.upper_bound


def merge_results(results: Sequence[tuple[str, ResultSet]]) -> ResultSet:
    """One result set from several ``(path, result set)`` pairs: the pieces of one matrix
    run in separate processes or machines. They must share the protocol (seeds aside),
    the encoder and, for a task in several files, its data fingerprint. A router x task x
    seed in two files is an error (one number must come from one run), except a
    reference row (best-single, random, oracle) with the same numbers in both: kept once.
    Seeds become the union; ``merged_from`` records each file's provenance."""
    if not results:
        raise RouteHarnessError("nothing to merge: no result files given")
    first_path, first = results[0]
    tasks: dict[str, TaskReference] = {}
    records: list[RunRecord] = []
    seen: dict[tuple[str, str, int], tuple[str, RunRecord]] = {}
    provenance = []
    for path, result in results:
        differ = first.incompatibilities(result)
        if differ:
            raise RouteHarnessError(f"{path}: differs from {first_path} in "
                                    f"{', '.join(differ)}; only runs of one protocol and "
                                    f"encoder merge")
        for task, reference in result.tasks.items():
            known = tasks.get(task)
            if known is not None and known.fingerprint != reference.fingerprint:
                raise RouteHarnessError(f"{path}: task {task!r} has data fingerprint "
                                        f"{reference.fingerprint}, not the "
                                        f"{known.fingerprint} of an earlier file")
            if known is None or known.oracle is None:  # a run without references has none
                tasks[task] = reference if known is None or reference.oracle is not None \
                    else known
            elif reference.oracle is not None and \
                    known.oracle.numbers() != reference.oracle.numbers():
                raise RouteHarnessError(f"{path}: task {task!r}: the oracle reference row "
                                        "differs from an earlier file's")
        for record in result.records:
            if record.key in seen:
                earlier_path, earlier = seen[record.key]
                if is_reference(record) and record.same_numbers(earlier):
                    continue
                raise RouteHarnessError(f"{path}: router {record.router!r} on task "
                                        f"{record.task!r} seed {record.seed} is also in "
                                        f"{earlier_path}" + (" with other numbers"
                                                             if is_reference(record) else "")
                                        + "; keep one of them")
            seen[record.key] = (str(path), record)
            records.append(record)
        provenance.append(MergedFrom(path=str(path), created=result.created,
                                     git_commit=result.git_commit, command=result.command))
    seeds = sorted({r.seed for r in records} | set(first.seeds))
    # the first file's provenance and unknown keys; the oracle's bootstrap interval
    # follows a file's first seed, so the first file's is kept
    return replaced(first, protocol=replaced(first.protocol, seeds=seeds), tasks=tasks,
                    records=records, merged_from=provenance)


# --- one aggregation over seeds ---------------------------------------------------------------
def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof 1; 0 for one value) of the available values; (None,
    None) when there are none."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    if array.size == 0:
        return None, None
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def _tuned_params(record: RunRecord) -> dict[str, Any]:
    """The hyper-parameters the tuning chose between (the grid's names), as chosen."""
    names = list(record.tuning[0].params) if record.tuning else []
    return {name: record.params.get(name) for name in names}


def aggregate(records: Sequence[RunRecord]) -> dict[str, Any]:
    """One router on one task over its seeds: ``METRIC`` and ``METRIC_std`` for each of
    ``SUMMARY_METRICS`` present, ``auc_ci95`` (mean of the bounds), ``fit_s`` (mean
    seconds), ``per_group`` (mean AUC per group), and the first seed's parameters."""
    first = records[0]
    row: dict[str, Any] = {"router": first.router, "n_seeds": len(records),
                           "upper_bound": first.upper_bound, "params": first.params,
                           "tuned_params": _tuned_params(first),
                           "distribution": first.distribution,
                           "chosen_model": first.chosen_model}
    for metric in SUMMARY_METRICS:
        values = [r.metrics.get(metric) for r in records]
        if any(v is not None for v in values):
            row[metric], row[metric + "_std"] = mean_std(values)
    cis = [r.metrics.auc_ci95 for r in records if r.metrics.auc_ci95]
    if cis:
        row["auc_ci95"] = [mean_std([c[0] for c in cis])[0], mean_std([c[1] for c in cis])[0]]
    row["fit_s"] = mean_std([r.timings.get("fit_s") for r in records])[0]
    row["per_group"] = {g: mean_std([r.per_group[g].get("auc") for r in records
                                     if g in r.per_group])[0] for g in first.per_group}
    return row


def oracle_row(reference: TaskReference) -> dict[str, Any] | None:
    """The harness-computed oracle of a task as a summary row (upper bound), if any."""
    if reference.oracle is None:
        return None
    metrics = reference.oracle
    row = {"router": "oracle", "n_seeds": 1, "upper_bound": True, "params": {},
           "tuned_params": {}, "distribution": None, "chosen_model": None, "per_group": {},
           "reference": True}
    for metric in SUMMARY_METRICS:
        if metrics.get(metric) is not None:
            row[metric], row[metric + "_std"] = metrics.get(metric), 0.0
    if metrics.auc_ci95:
        row["auc_ci95"] = list(metrics.auc_ci95)
    return row


def summarise(result: ResultSet) -> dict[str, list[dict[str, Any]]]:
    """Per task, one row per router (``aggregate``), routers in record order; the
    harness-computed oracle (when present) as the last row."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for task, reference in result.tasks.items():
        rows = [aggregate(result.records_of(task, router)) for router in result.routers(task)]
        oracle = oracle_row(reference)
        if oracle is not None and not any(r["router"] == "oracle" for r in rows):
            rows.append(oracle)
        tables[task] = rows
    return tables


def summarise_scores(result: ResultSet, router: str) -> dict[str, Any]:
    """Per task, mean and std over seeds of ``SCORE_METRICS`` (``results.aggregate``);
    ``overall``: the mean over tasks of each task's mean (every task weighs the same)."""
    scores: dict[str, Any] = {}
    for task in result.tasks:
        records = result.records_of(task, router)
        row: dict[str, Any] = {"n_seeds": len(records)}
        summary = aggregate(records) if records else {}
        for metric in SCORE_METRICS:
            row[metric] = summary.get(metric)
            row[metric + "_std"] = summary.get(metric + "_std", 0.0)
        scores[task] = row
    scores["overall"] = {metric: mean_std([scores[t][metric] for t in result.tasks])[0]
                         for metric in ("auc", "quality_at_0")}
    return scores


# --- one ranking --------------------------------------------------------------------------------
T = TypeVar("T")


def ranked(items: Sequence[T], score: Callable[[T], float | None],
           upper_bound: Callable[[T], bool]) -> list[tuple[int | None, T]]:
    """``items`` by ``score``, higher first, each with its rank (1, 2, ...); upper bounds
    and items without a score come last, unranked (None). Equal scores keep their order."""
    def key(item: T) -> tuple[int, float]:
        value = score(item)
        missing = value is None or not np.isfinite(value)
        return (2 if upper_bound(item) else 1 if missing else 0,
                0.0 if missing else -float(value))  # type: ignore[arg-type]

    out: list[tuple[int | None, T]] = []
    rank = 0
    for item in sorted(items, key=key):
        value = score(item)
        if upper_bound(item) or value is None or not np.isfinite(value):
            out.append((None, item))
        else:
            rank += 1
            out.append((rank, item))
    return out


def display_name(row: dict[str, Any]) -> str:
    """A summary row's label: the router, "(upper bound)" for upper bounds."""
    return row["router"] + (" (upper bound)" if row.get("upper_bound") else "")


# --- report tables ------------------------------------------------------------------------------
def _test_counts(result: ResultSet, task: str) -> str:
    """"test 945 scored (8 excluded: missing scores)": the rows the metrics stand on."""
    reference = result.tasks[task]
    counted = [r for r in result.records_of(task) if r.n_test is not None]
    if not counted:
        return f"test n={reference.sizes.get('test', '?')}"
    scored, excluded = counted[0].n_test, counted[0].n_test_excluded
    return f"test {scored} scored" + (f" ({excluded} excluded: missing scores)"
                                      if excluded else "")


def _ordered(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Routers first, then the reference rows (best-single, random, oracle)."""
    def reference(row: dict[str, Any]) -> bool:
        return row["router"] in REFERENCE_ROUTERS or bool(row.get("upper_bound"))

    return [r for r in rows if not reference(r)], [r for r in rows if reference(r)]


def _task_table(result: ResultSet, task: str, rows: list[dict[str, Any]]) -> ReportTable:
    reference = result.tasks[task]
    n_seeds = len(result.seeds)
    has_apgr = any("apgr" in r for r in rows)
    has_arena = any(r.get("arena_score") is not None for r in rows)
    headers = ["router", "AUC" + (" (mean ± std)" if n_seeds > 1 else ""), "95% CI", "Q@λ0",
               "$/1k@λ0", *(["Arena@λ0", "Arena max"] if has_arena else []),
               *(["APGR", "CPT(50%)"] if has_apgr else []), "fit s", "tuned (first seed)"]
    encoder = result.encoder.name
    flag = narrow_cost_flag(cost_spread_of(reference))
    table = ReportTable(
        title=(f"{task} (v{reference.version}): {_test_counts(result, task)}, "
               f"{len(reference.models)} models, encoder {encoder}, "
               f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
               + (f" [{flag}]" if flag else "")),
        headers=headers, right=set(range(1, len(headers) - 1)))
    routers, references = _ordered(rows)
    for i, row in enumerate(routers + references):
        is_reference = i >= len(routers)
        name = display_name(row)
        if row.get("chosen_model"):
            name += f" ({row['chosen_model']})"
        ci = row.get("auc_ci95")
        cost = row.get("cost_at_0_usd")
        cells = [name, fmt(row.get("auc"), row.get("auc_std")),
                 f"{fmt(ci[0])}-{fmt(ci[1])}" if ci else "-",
                 fmt(row.get("quality_at_0"), row.get("quality_at_0_std")),
                 fmt(None if cost is None else 1000 * cost,
                     1000 * (row.get("cost_at_0_usd_std") or 0.0), 3)]
        if has_arena:
            cells += [fmt(row.get("arena_score"), row.get("arena_score_std")),
                      fmt(row.get("arena_score_max"), row.get("arena_score_max_std"))]
        if has_apgr:
            cells += [fmt(row.get("apgr"), None, 3), fmt(row.get("cpt50"), None, 3)]
        params = row.get("tuned_params") or {}  # seed 0's choice; the record has them all
        cells += [fmt(row.get("fit_s"), None, 1),
                  ", ".join(f"{k}={v}" for k, v in params.items())
                  or ("-" if is_reference else "defaults")]
        table.add(cells, "dim" if is_reference else "bold")
        if i == len(routers) - 1:
            table.sections.add(i)
    arenas = [s for s in reference.single_models if s.arena_score is not None]
    best_arena = max(arenas, key=lambda s: s.arena_score) if arenas else None  # type: ignore[arg-type, return-value]
    frontier_cells = ["single-model frontier", fmt(reference.single_model_frontier_auc),
                      *["-"] * (len(headers) - 2)]
    if has_arena and best_arena is not None:  # the best model alone, under both columns
        at = headers.index("Arena@λ0")
        frontier_cells[at] = frontier_cells[at + 1] = fmt(best_arena.arena_score)
    table.add(frontier_cells, "dim")
    known = [s for s in reference.single_models if s.quality is not None]
    best = max(known, key=lambda s: s.quality) if known else None  # type: ignore[arg-type, return-value]
    table.note = (
        "Q@λ0: quality (mean score x100) when routing for quality alone; $/1k@λ0: its USD "
        "per 1,000 prompts. AUC: area under the non-decreasing convex hull of the "
        "cost-quality points, score x100, cost normalised so the most expensive model = 1 "
        "(docs/metrics.md). best-single is chosen on train"
        + (f"; the best model on test is {best.model} ({fmt(best.quality)})" if best else "")
        + f". single-model frontier: the hull of the {len(reference.models)} models alone "
        "(RouterBench's zero router). oracle: each prompt's best model by its true outcome. "
        "fit s: seconds of the final fit on train, mean over seeds (tuning not included)."
        + (" Arena: RouterArena's score x100 (accuracy and USD per 1,000 queries, beta 0.1) "
           "at λ = 0 and at the sweep's best point (picked on test: an upper bound); on the "
           "frontier row, the best model alone"
           + (f" ({best_arena.model})" if best_arena is not None else "") + "."
           if has_arena else "")
        + (f" {flag[0].upper()}{flag[1:]}: compare the routers by Q@λ0 and by quality at a "
           "fixed budget (docs/studies.md)." if flag else ""))
    return table


def cost_spread_of(reference: TaskReference) -> float | None:
    """1 - the cheapest single model's mean normalised cost on the evaluated split (the
    dearest's is 1): what the narrow-cost flag reads; None without single models."""
    costs = [s.cost for s in reference.single_models
             if s.cost is not None and np.isfinite(s.cost)]
    return 1.0 - min(costs) / max(costs) if costs and max(costs) > 0 else None


def _group_table(task: str, rows: list[dict[str, Any]]) -> ReportTable | None:
    groups = list(rows[0].get("per_group", {})) if rows else []
    if len(groups) <= 1:
        return None
    table = ReportTable(title=f"{task}: AUC per group", headers=["router", *groups],
                        right=set(range(1, len(groups) + 1)))
    routers, references = _ordered([r for r in rows if r.get("per_group")])
    for row in routers + references:
        table.add([row["router"], *(fmt(row["per_group"].get(g)) for g in groups)])
    return table


def ranking_table(summary: dict[str, list[dict[str, Any]]]) -> ReportTable:
    """Routers ranked by their AUC averaged over the tasks (``ranked``), with their mean
    rank (AUC scales differ between tasks: near-equal prices compress it; ranks do not).
    Upper bounds and routers missing a task are listed unranked."""
    tasks = list(summary)
    by_router: dict[str, dict[str, dict[str, Any]]] = {}
    for task, rows in summary.items():
        for row in rows:
            by_router.setdefault(row["router"], {})[task] = row
    task_rank: dict[str, dict[str, int | None]] = {
        task: {row["router"]: rank for rank, row in ranked(
            rows, lambda r: r.get("auc"), lambda r: bool(r.get("upper_bound")))}
        for task, rows in summary.items()}

    def mean_auc(item: tuple[str, dict[str, dict[str, Any]]]) -> float | None:
        values = [r.get("auc") for r in item[1].values()]
        return None if len(values) < len(tasks) or None in values else \
            float(np.mean(values))  # type: ignore[arg-type]

    def upper(item: tuple[str, dict[str, dict[str, Any]]]) -> bool:
        return any(r.get("upper_bound") for r in item[1].values())

    table = ReportTable(title=f"Summary: routers ranked by mean AUC over {len(tasks)} tasks",
                        headers=["rank", "router", "mean AUC", "mean rank", *tasks],
                        right={0, *range(2, len(tasks) + 4)}, nowrap={1})
    for rank, (router, rows) in ranked(list(by_router.items()), mean_auc, upper):
        ranks = [task_rank[t].get(router) for t in tasks]
        mean_rank = float(np.mean(ranks)) if rank is not None and None not in ranks else None
        table.add(["-" if rank is None else str(rank),
                   router + (" (upper bound)" if upper((router, rows)) else ""),
                   fmt(mean_auc((router, rows))), fmt(mean_rank, None, 1),
                   *(fmt(rows[t].get("auc"), rows[t].get("auc_std")) if t in rows else "-"
                     for t in tasks)])
    return table


def report_tables(result: ResultSet) -> list[ReportTable]:
    """Every table of a result set: per task (and per group), then the ranking."""
    summary = summarise(result)
    tables: list[ReportTable] = []
    for task, rows in summary.items():
        tables.append(_task_table(result, task, rows))
        group_table = _group_table(task, rows)
        if group_table is not None:
            tables.append(group_table)
    if len(summary) > 1:
        tables.append(ranking_table(summary))
    return tables


def plot_frontiers(result: ResultSet, path: str | Path) -> Path:
    """The cost-quality frontier plot (see ``routeharness.results.plots``)."""
    from routeharness.results.plots import plot_frontiers as plot

    return plot(result, path)
