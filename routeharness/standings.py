"""A board's standings: its accepted submissions (each validated against the board whose
folder holds it), ranked by the main metric with the one ranking rule
(``results.ranked``), the oracle reference row as the unranked upper bound, and the
table every format renders (rich, Markdown, JSON, HTML)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.boards import MAIN_METRICS, Board, Submission
from routeharness.errors import RouteHarnessError
from routeharness.leaderboard import load_submission, validate_submission
from routeharness.results import ranked
from routeharness.tables import ReportTable, fmt, to_markdown


@dataclass
class Ranking:
    board: Board
    rows: list[dict[str, Any]]
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)


def ranking(board: Board, *, check_data: bool = False) -> Ranking:
    """The board's submissions, each validated against this board (the folder holds it),
    ranked by the main metric (``results.ranked``: higher first; upper bounds last,
    unranked). Files that fail validation are listed apart, with their problems. Two
    valid files of one router (same name and fixed parameters): the newest by
    ``provenance.created`` is ranked (on a tie, the first by file name), the other is
    listed as rejected, naming the file kept."""
    rejected: list[tuple[str, list[str]]] = []
    valid: dict[str, tuple[Path, Submission]] = {}
    for path in board.submission_files():  # sorted by file name
        try:
            data = load_submission(path)
            problems = validate_submission(data, board=board, check_data=check_data)
        except RouteHarnessError as exc:
            problems, data = [str(exc)], None
        if problems or data is None:
            rejected.append((path.name, problems))
            continue
        key = json.dumps([data.router_name, data.router.get("fixed_params")], sort_keys=True,
                         default=str)
        if key in valid:
            kept_path, kept = valid[key]
            if str(data.provenance.get("created") or "") > str(kept.provenance.get("created")
                                                                or ""):
                valid[key], (kept_path, path) = (path, data), (path, kept_path)
            rejected.append((path.name, [f"a second submission of router "
                                         f"{data.router_name!r}: {kept_path.name} (newer, or "
                                         "first by file name) is ranked instead"]))
            continue
        valid[key] = (path, data)
    rows, accepted = [], []
    for path, data in valid.values():
        accepted.append(data)
        router, scores, metric = data.router, data.scores, board.main_metric
        rows.append({
            "router": data.router_name, "distribution": router.get("distribution"),
            "version": router.get("version"), "upper_bound": data.upper_bound,
            "main": scores["overall"].get(metric),
            "tasks": {t: {"mean": scores[t].get(metric), "std": scores[t].get(metric + "_std"),
                          "quality_at_0": scores[t].get("quality_at_0")}
                      for t in board.task_names()},
            "created": data.provenance["created"], "file": path.name,
            "routeharness_version": data.provenance.get("routeharness_version")})
    oracle = oracle_ranking_row(board, accepted)
    if oracle is not None:
        rows.append(oracle)
    order = ranked(rows, lambda r: r["main"], lambda r: r["upper_bound"])
    for rank, row in order:
        row["rank"] = rank
    return Ranking(board, [row for _, row in order], rejected, accepted)


def oracle_ranking_row(board: Board, accepted: list[Submission]) -> dict[str, Any] | None:
    """The board's upper bound: the oracle reference row (each test prompt's best model
    by its true outcome) that ``leaderboard run`` stores with every task; the same for
    every submission of one board, taken from the newest that has it for every task."""
    metric = board.main_metric
    for data in sorted(accepted, key=lambda d: d.provenance["created"], reverse=True):
        rows = {t: data.result.tasks[t].oracle for t in board.task_names()}
        if any(row is None for row in rows.values()):
            continue
        per_task = {t: {"mean": row.metrics.get(metric), "std": None,
                        "quality_at_0": row.metrics.get("quality_at_0")}
                    for t, row in rows.items()}
        values = [v["mean"] for v in per_task.values()]
        main = None if any(v is None for v in values) else float(np.mean(values))
        return {"router": "oracle", "distribution": "routeharness", "version": "reference",
                "upper_bound": True, "main": main, "tasks": per_task,
                "created": data.provenance["created"], "file": None,
                "routeharness_version": data.provenance.get("routeharness_version")}
    return None


def ranking_table(result: Ranking) -> ReportTable:
    """The ranking as a table of plain text (rich, Markdown, JSON and HTML render it)."""
    board = result.board
    metric = board.main_metric
    table = ReportTable(
        title=(f"{board.name} (v{board.version}): {metric}, encoder {board.encoder}, "
               f"seeds {list(board.seeds)}"),
        headers=["rank", "router", "distribution", f"mean {metric}",
                 *[f"{t} {metric}" for t in board.task_names()], "submitted"],
        right={0, *range(3, 4 + len(board.tasks))}, nowrap={1, 2})
    for row in result.rows:
        name = row["router"] + (" (upper bound)" if row["upper_bound"] else "")
        table.add([str(row["rank"]) if row["rank"] else "-", name,
                   "(computed from the test labels)" if row["file"] is None
                   else f"{row['distribution']} {row['version']}", fmt(row["main"]),
                   *[fmt(row["tasks"][t]["mean"], row["tasks"][t]["std"])
                     for t in board.task_names()],
                   row["created"][:10]], "dim" if row["upper_bound"] else None)
    table.note = (f"Main metric: {metric}, {MAIN_METRICS[metric]}; the mean over tasks of the "
                  f"mean over seeds {list(board.seeds)}. Upper bounds are shown unranked.")
    return table


def render_markdown(result: Ranking) -> str:
    from routeharness.tables import markdown_cell

    board = result.board
    return (f"## {markdown_cell(board.name)}: {markdown_cell(board.description.strip())}\n\n"
            + to_markdown([ranking_table(result)]))


def render_html(result: Ranking) -> str:
    """One self-contained HTML page (see ``plots.board_page``)."""
    from routeharness.plots import board_page

    return board_page(result.board, ranking_table(result), result.rejected,
                      [s.result for s in result.submissions])


def render_json(result: Ranking) -> str:
    board = result.board
    return json.dumps({"board": {"name": board.name, "version": board.version,
                                 "main_metric": board.main_metric,
                                 "tasks": board.task_names(), "seeds": list(board.seeds),
                                 "encoder": board.encoder},
                       "ranking": result.rows,
                       "rejected": [{"file": f, "problems": p} for f, p in result.rejected]},
                      indent=1, ensure_ascii=False) + "\n"
