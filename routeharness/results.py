"""Versioned result files (JSON) with full provenance, their summary, and frontier plots."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import __version__
from routeharness.errors import RouteHarnessError
from routeharness.protocol import REFERENCE_ROUTERS
from routeharness.tables import ReportTable, fmt, to_markdown  # noqa: F401 (re-exported)

RESULT_SCHEMA = "routeharness.results/1"


def git_commit() -> str | None:
    """The routeharness checkout's commit, when it runs from one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def platform_info() -> dict[str, Any]:
    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count()}
    from importlib import metadata

    for package in ("numpy", "torch", "faiss-cpu", "datasets", "sentence-transformers",
                    "transformers"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info


def new_result_set(protocol: Any, encoder: Any) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMA,
        "routeharness_version": __version__,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "platform": platform_info(),
        "encoder": {"name": encoder.name, "identity": encoder.identity,
                    "revision": encoder.revision, "modalities": sorted(encoder.modalities)},
        "protocol": protocol.to_dict(),
        "tasks": {},
        "records": [],
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def save_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (temporary file, then rename): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_clean(data), handle, indent=1, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RouteHarnessError(f"{path}: no such result file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RouteHarnessError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise RouteHarnessError(f"{path}: not a routeharness result file (schema "
                                f"{data.get('schema') if isinstance(data, dict) else None!r}, "
                                f"expected {RESULT_SCHEMA!r})")
    return data


def incompatibilities(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What keeps two result sets from being pooled: the protocol fields that differ
    (seeds aside), and "encoder" when the encoder's identity or revision differs."""
    protocols = [{k: v for k, v in r.get("protocol", {}).items() if k != "seeds"}
                 for r in (a, b)]
    differ = sorted(k for k in set(protocols[0]) | set(protocols[1])
                    if protocols[0].get(k) != protocols[1].get(k))
    encoders = [(r.get("encoder", {}).get("identity"), r.get("encoder", {}).get("revision"))
                for r in (a, b)]
    return differ + (["encoder"] if encoders[0] != encoders[1] else [])


def merge_results(results: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One result set from several ``(path, result set)`` pairs: the pieces of one matrix
    run in separate processes or machines. They must share the protocol (seeds aside),
    the encoder and, for a task in several files, its data fingerprint; a router x task x
    seed in two files is an error (one number must come from one run). Seeds become the
    union; ``merged_from`` records each file's provenance."""
    if not results:
        raise RouteHarnessError("nothing to merge: no result files given")
    first_path, first = results[0]
    merged = {key: value for key, value in first.items() if key not in ("tasks", "records")}
    merged.update(tasks={}, records=[], merged_from=[])
    seen: dict[tuple[str, str, int], str] = {}
    seeds: set[int] = set()
    for path, result in results:
        differ = incompatibilities(first, result)
        if differ:
            raise RouteHarnessError(f"{path}: differs from {first_path} in "
                                    f"{', '.join(differ)}; only runs of one protocol and "
                                    f"encoder merge")
        for task, reference in result["tasks"].items():
            known = merged["tasks"].get(task)
            if known is not None and known.get("fingerprint") != reference.get("fingerprint"):
                raise RouteHarnessError(f"{path}: task {task!r} has data fingerprint "
                                        f"{reference.get('fingerprint')}, not the "
                                        f"{known.get('fingerprint')} of an earlier file")
            merged["tasks"].setdefault(task, reference)
        for record in result["records"]:
            key = (record["router"], record["task"], int(record["seed"]))
            if key in seen:
                raise RouteHarnessError(f"{path}: router {key[0]!r} on task {key[1]!r} seed "
                                        f"{key[2]} is also in {seen[key]}; keep one of them")
            seen[key] = path
            seeds.add(key[2])
            merged["records"].append(record)
        merged["merged_from"].append({"path": str(path), "created": result.get("created"),
                                      "git_commit": result.get("git_commit"),
                                      "command": result.get("command")})
    merged["protocol"] = {**first["protocol"], "seeds": sorted(seeds)}
    return merged


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def _tuned_params(record: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters the tuning chose between (the grid's names), as chosen;
    the rest of ``params`` are the router's defaults."""
    tuning = record.get("tuning") or []
    names = list(tuning[0]["params"]) if tuning else []
    return {name: record["params"].get(name) for name in names}


def summarise(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per task, one row per router: mean and std over seeds of each metric."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for task in result["tasks"]:
        rows = []
        routers = list(dict.fromkeys(r["router"] for r in result["records"] if r["task"] == task))
        for router in routers:
            records = [r for r in result["records"] if r["task"] == task and r["router"] == router]
            row: dict[str, Any] = {"router": router, "n_seeds": len(records),
                                   "upper_bound": records[0].get("upper_bound", False),
                                   "params": records[0]["params"],
                                   "tuned_params": _tuned_params(records[0]),
                                   "distribution": records[0]["distribution"],
                                   "chosen_model": records[0].get("chosen_model")}
            for metric in ("auc", "quality_at_0", "cost_at_0_usd", "apgr", "cpt50"):
                values = [r["metrics"].get(metric) for r in records]
                if any(v is not None for v in values):
                    row[metric], row[metric + "_std"] = _mean_std(values)
            cis = [r["metrics"].get("auc_ci95") for r in records if r["metrics"].get("auc_ci95")]
            if cis:
                row["auc_ci95"] = [float(np.mean([c[0] for c in cis])),
                                   float(np.mean([c[1] for c in cis]))]
            row["fit_s"] = float(np.mean([r["timings"]["fit_s"] for r in records]))
            groups = records[0].get("per_group", {})
            row["per_group"] = {g: _mean_std([r["per_group"][g]["auc"] for r in records
                                              if g in r.get("per_group", {})])[0]
                                for g in groups}
            rows.append(row)
        tables[task] = rows
    return tables


#: reference rows, listed below the routers
REFERENCE_ROWS = REFERENCE_ROUTERS


def _task_table(result: dict[str, Any], task: str, rows: list[dict[str, Any]]) -> ReportTable:
    reference = result["tasks"][task]
    n_seeds = len(result["protocol"]["seeds"])
    has_apgr = any("apgr" in r for r in rows)
    headers = ["router", "AUC" + (" (mean ± std)" if n_seeds > 1 else ""), "95% CI", "Q@λ0",
               "$/1k@λ0", *(["APGR", "CPT(50%)"] if has_apgr else []), "fit s",
               "tuned (first seed)"]
    table = ReportTable(
        title=(f"{task} (v{reference['version']}): test n={reference['sizes']['test']}, "
               f"{len(reference['models'])} models, encoder {result['encoder']['name']}, "
               f"{n_seeds} seed{'s' if n_seeds > 1 else ''}"),
        headers=headers, right=set(range(1, len(headers) - 1)))
    routers = [r for r in rows if r["router"] not in REFERENCE_ROWS]
    ordered = routers + [r for r in rows if r["router"] in REFERENCE_ROWS]
    for i, row in enumerate(ordered):
        is_reference = row["router"] in REFERENCE_ROWS
        name = row["router"] + (" (upper bound)" if row["upper_bound"] else "")
        if row.get("chosen_model"):
            name += f" ({row['chosen_model']})"
        ci = row.get("auc_ci95")
        cost = row.get("cost_at_0_usd")
        cells = [name, fmt(row.get("auc"), row.get("auc_std")),
                 f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-",
                 fmt(row.get("quality_at_0"), row.get("quality_at_0_std")),
                 fmt(None if cost is None else 1000 * cost,
                     1000 * (row.get("cost_at_0_usd_std") or 0.0), 3)]
        if has_apgr:
            cells += [fmt(row.get("apgr"), None, 3), fmt(row.get("cpt50"), None, 3)]
        params = row.get("tuned_params") or {}  # seed 0's choice; the record has them all
        cells += [fmt(row.get("fit_s"), None, 1),
                  ", ".join(f"{k}={v}" for k, v in params.items())
                  or ("-" if is_reference else "defaults")]
        table.add(cells, "dim" if is_reference else "bold")
        if i == len(routers) - 1:
            table.sections.add(i)
    table.add(["single-model frontier", fmt(reference["single_model_frontier_auc"]),
               *["-"] * (len(headers) - 2)], "dim")
    best = max(reference["single_models"], key=lambda s: s["quality"])
    table.note = (
        "Q@λ0: quality (mean score x100) when routing for quality alone; $/1k@λ0: its USD "
        "per 1,000 prompts. AUC: area under the non-decreasing convex hull of the "
        "cost-quality points, score x100, cost normalised so the most expensive model = 1 "
        f"(docs/metrics.md). best-single is chosen on train; the best model on test is "
        f"{best['model']} ({best['quality']:.2f}). single-model frontier: the hull of the "
        f"{len(reference['models'])} models alone (RouterBench's zero router). fit s: "
        "seconds of the final fit on train, mean over seeds (tuning not included).")
    return table


def _group_table(task: str, rows: list[dict[str, Any]]) -> ReportTable | None:
    groups = rows[0].get("per_group", {}) if rows else {}
    if len(groups) <= 1:
        return None
    table = ReportTable(title=f"{task}: AUC per group", headers=["router", *groups],
                        right=set(range(1, len(groups) + 1)))
    routers = [r for r in rows if r["router"] not in REFERENCE_ROWS]
    for row in routers + [r for r in rows if r["router"] in REFERENCE_ROWS]:
        table.add([row["router"], *(fmt(row["per_group"].get(g)) for g in groups)])
    return table


def ranking_table(summary: dict[str, list[dict[str, Any]]]) -> ReportTable:
    """Routers ranked by their AUC averaged over the tasks, with their mean rank (AUC
    scales differ between tasks: near-equal prices compress it; ranks do not). Upper
    bounds and routers missing a task are listed unranked."""
    tasks = list(summary)
    by_router: dict[str, dict[str, dict[str, Any]]] = {}
    for task, rows in summary.items():
        for row in rows:
            by_router.setdefault(row["router"], {})[task] = row
    ranked = sorted(by_router.items(), key=lambda item: (
        any(r["upper_bound"] for r in item[1].values()),
        -float(np.mean([r["auc"] for r in item[1].values()]))))
    task_rank: dict[str, dict[str, float]] = {}
    for task, rows in summary.items():
        contenders = sorted((r for r in rows if not r["upper_bound"]), key=lambda r: -r["auc"])
        task_rank[task] = {r["router"]: float(i + 1) for i, r in enumerate(contenders)}
    table = ReportTable(title=f"Summary: routers ranked by mean AUC over {len(tasks)} tasks",
                        headers=["rank", "router", "mean AUC", "mean rank", *tasks],
                        right={0, *range(2, len(tasks) + 4)})
    rank = 0
    for router, rows in ranked:
        upper = any(r["upper_bound"] for r in rows.values())
        complete = len(rows) == len(tasks)
        rank += 0 if upper or not complete else 1
        mean = float(np.mean([r["auc"] for r in rows.values()])) if complete else None
        mean_rank = (float(np.mean([task_rank[t][router] for t in tasks]))
                     if complete and not upper else None)
        table.add(["-" if upper or not complete else str(rank),
                   router + (" (upper bound)" if upper else ""), fmt(mean),
                   fmt(mean_rank, None, 1),
                   *(fmt(rows[t]["auc"], rows[t].get("auc_std")) if t in rows else "-"
                     for t in tasks)])
    return table


def report_tables(result: dict[str, Any]) -> list[ReportTable]:
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


def plot_frontiers(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per task: every router's frontier (first seed), single models as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        reference = result["tasks"][task]
        singles = reference["single_models"]
        ax.scatter([s["cost"] for s in singles], [s["quality"] for s in singles], c="grey",
                   s=18, zorder=3, label="single models")
        seen = set()
        for record in result["records"]:
            if record["task"] != task or record["router"] in seen:
                continue
            seen.add(record["router"])
            front = record["frontier"]
            cost = list(front["cost"]) + [1.0]
            quality = [q * 100 for q in front["quality"]] + [front["quality"][-1] * 100]
            label = record["router"] + (" (upper bound)" if record.get("upper_bound") else "")
            ax.plot(cost, quality, marker=".", ms=3, lw=1.4,
                    ls="--" if record.get("upper_bound") else "-", label=label)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("cost (most expensive model's mean = 1)")
        ax.set_ylabel("quality (mean score x 100)")
        ax.set_title(f"{task}: cost-quality frontiers")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    os.replace(tmp, path)
    return path
