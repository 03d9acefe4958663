"""A board's standings: its accepted submissions (each validated against the board whose
folder holds it); the verified ones (``routeharness.boards.verification``) ranked by the main
metric with the one ranking rule (``results.ranked``), each with its interval, its
difference from the leader and its significance tier (``routeharness.boards.intervals``),
the oracle reference row as the unranked upper bound, the unverified ones listed apart
below; and the tables every format renders (rich, Markdown, JSON, HTML)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.boards.definition import MAIN_METRICS, Board, Submission, submission_name_problem
from routeharness.boards.intervals import (
    BOOTSTRAP_SEED,
    LEVEL,
    N_RESAMPLES,
    TIER_RULE,
    RowIntervals,
    board_intervals,
)
from routeharness.boards.run import load_submission, validate_submission
from routeharness.boards.verification import VerificationStatus, verification_status
from routeharness.common.errors import RouteHarnessError
from routeharness.results.sets import ranked
from routeharness.results.tables import ReportTable, fmt, to_markdown


@dataclass
class Ranking:
    """A board's standings. ``rows`` in display order: the verified submissions ranked,
    the oracle reference row (unranked), then the unverified submissions (unranked, by
    the main metric); ``rejected``: files that fail validation, with their problems."""

    board: Board
    rows: list[dict[str, Any]]
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    verified_submissions: list[Submission] = field(default_factory=list)
    #: about the ranked rows without an interval (None when all have one)
    intervals_note: str | None = None

    @property
    def board_rows(self) -> list[dict[str, Any]]:
        """The board proper: verified rows ranked, and the oracle reference row."""
        return [r for r in self.rows if r["upper_bound"] or r.get("verified")]

    @property
    def unverified_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["upper_bound"] and not r.get("verified")]



def ranking(board: Board, *, check_data: bool = False, data_dir: str | None = None,
            intervals: bool = True) -> Ranking:
    """The board's submissions, each validated against this board (the folder holds it)
    and its verification record read (``verification.verification_status``). Verified
    rows are ranked by the main metric (``results.ranked``: higher first), each with
    (``intervals``) its interval, difference from the leader and tier
    (``intervals.board_intervals``, on the tasks' local data from ``data_dir``), then the
    oracle reference row (unranked); unverified rows follow, apart and unranked, by the
    same order. Files that fail validation are listed apart, with their problems. Two valid
    files of one router (same name and fixed parameters): a verified one before an
    unverified one, then the newest by ``provenance.created`` (on a tie, the first by
    file name) is kept, the other listed as rejected, naming the file kept."""
    rejected: list[tuple[str, list[str]]] = []
    valid: dict[str, tuple[Path, Submission, VerificationStatus]] = {}
    for path in board.submission_files():  # sorted by file name
        if submission_name_problem(path.name):
            rejected.append((path.name, [str(submission_name_problem(path.name))]))
            continue
        try:
            data = load_submission(path)
            problems = validate_submission(data, board=board, check_data=check_data)
        except RouteHarnessError as exc:
            problems, data = [str(exc)], None
        if problems or data is None:
            rejected.append((path.name, problems))
            continue
        status = verification_status(board, path, data)
        key = json.dumps([data.router_name, data.router.fixed_params], sort_keys=True,
                         default=str)
        if key in valid:
            kept_path, kept, kept_status = valid[key]
            if _preference(data, status) > _preference(kept, kept_status):
                valid[key], (kept_path, path) = (path, data, status), (path, kept_path)
            rejected.append((path.name, [f"a second submission of router "
                                         f"{data.router_name!r}: {kept_path.name} (verified, "
                                         "newer, or first by file name) is ranked instead"]))
            continue
        valid[key] = (path, data, status)
    rows, accepted, verified = [], [], []
    submission_of: dict[int, Submission] = {}
    for path, data, status in valid.values():
        accepted.append(data)
        if status.verified:
            verified.append(data)
        router, scores, metric = data.router, data.scores, board.main_metric
        rows.append({
            "router": data.router_name, "distribution": router.distribution,
            "version": router.version, "upper_bound": data.upper_bound,
            "main": scores["overall"].get(metric),
            "tasks": {t: {"mean": scores[t].get(metric), "std": scores[t].get(metric + "_std"),
                          "quality_at_0": scores[t].get("quality_at_0")}
                      for t in board.task_names()},
            "created": data.provenance.created, "file": path.name,
            "routeharness_version": data.provenance.routeharness_version,
            "verified": status.verified, "verification": status.to_dict()})
        submission_of[id(rows[-1])] = data
    oracle = oracle_ranking_row(board, verified) or oracle_ranking_row(board, accepted)
    board_rows = [r for r in rows if r["verified"]] + ([oracle] if oracle else [])
    order = ranked(board_rows, lambda r: r["main"], lambda r: r["upper_bound"])
    apart = ranked([r for r in rows if not r["verified"]], lambda r: r["main"], lambda r: False)
    for rank, row in order:
        row["rank"] = rank
    for _, row in apart:
        row["rank"] = None  # listed apart: an unverified row has no place on the board
    shown = [row for _, row in order] + [row for _, row in apart]
    for row in shown:
        row.update(RowIntervals().to_dict())
    note = None
    if intervals:
        placed = [row for rank, row in order if rank is not None]
        found = board_intervals(board, [(row["main"], submission_of[id(row)])
                                        for row in placed], data_dir=data_dir)
        for row, numbers in zip(placed, found.rows):
            row.update(numbers.to_dict())
        note = found.note
    return Ranking(board, shown, rejected, accepted, verified, note)


def _preference(data: Submission, status: VerificationStatus) -> tuple[bool, str]:
    return status.verified, data.provenance.created


def oracle_ranking_row(board: Board, accepted: list[Submission]) -> dict[str, Any] | None:
    """The board's upper bound: the oracle reference row (each test prompt's best model
    by its true outcome) that ``leaderboard run`` stores with every task; the same for
    every submission of one board, taken from the newest that has it for every task."""
    metric = board.main_metric
    for data in sorted(accepted, key=lambda d: d.provenance.created, reverse=True):
        rows = {t: data.result.tasks[t].oracle for t in board.task_names()}
        if any(row is None for row in rows.values()):
            continue
        per_task = {t: {"mean": row.get(metric), "std": None,
                        "quality_at_0": row.get("quality_at_0")}
                    for t, row in rows.items()}
        values = [v["mean"] for v in per_task.values()]
        main = None if any(v is None for v in values) else float(np.mean(values))
        return {"router": "oracle", "distribution": "routeharness", "version": "reference",
                "upper_bound": True, "main": main, "tasks": per_task,
                "created": data.provenance.created, "file": None,
                "routeharness_version": data.provenance.routeharness_version}
    return None


def ranking_table(result: Ranking) -> ReportTable:
    """The board (verified rows ranked, the oracle reference row) as a table of plain
    text (rich, Markdown, JSON and HTML render it)."""
    board = result.board
    metric = board.main_metric
    table = ReportTable(
        title=(f"{board.name} (v{board.version}): {metric}, encoder {board.encoder}, "
               f"seeds {list(board.seeds)}; verified submissions"),
        headers=["rank", "router", "distribution", "tier", f"mean {metric}", "95% CI",
                 "vs leader [95% CI]", *[f"{t} {metric}" for t in board.task_names()],
                 "submitted", "verified"],
        right={0, *range(3, 7 + len(board.tasks))}, nowrap={1, 2, 5, 6})
    for row in result.board_rows:
        name = row["router"] + (" (upper bound)" if row["upper_bound"] else "")
        verified = row.get("verification") or {}
        main, *tasks = _numbers(board, row)
        table.add([str(row["rank"]) if row["rank"] else "-", name,
                   "(computed from the test labels)" if row["file"] is None
                   else f"{row['distribution']} {row['version']}",
                   "-" if row.get("tier") is None else str(row["tier"]), main,
                   _interval(row.get("interval")), _difference(row), *tasks,
                   row["created"][:10], (verified.get("verified_at") or "-")[:10]],
                  "dim" if row["upper_bound"] else None)
    table.note = (f"Main metric: {metric}, {MAIN_METRICS[metric]}; the mean over tasks of the "
                  f"mean over seeds {list(board.seeds)}. Only submissions re-run by "
                  "`leaderboard verify` are ranked; upper bounds are shown unranked. "
                  + TIER_RULE + (f" {result.intervals_note}" if result.intervals_note else ""))
    return table


def _interval(bounds: list[float] | None) -> str:
    return "-" if bounds is None else f"[{fmt(bounds[0])}, {fmt(bounds[1])}]"


def _difference(row: dict[str, Any]) -> str:
    """The difference from the leader with its interval; "leader" on the leader's row."""
    value, bounds = row.get("difference_from_leader"), row.get("difference_interval")
    if value is None or bounds is None:
        return "-"
    if row.get("rank") == 1:
        return "leader"
    return f"{value:+.2f} {_interval(bounds)}"


def _numbers(board: Board, row: dict[str, Any]) -> list[str]:
    return [fmt(row["main"]), *[fmt(row["tasks"][t]["mean"], row["tasks"][t]["std"])
                                for t in board.task_names()]]


def unverified_table(result: Ranking) -> ReportTable | None:
    """The unverified submissions, listed apart below the board (unranked, by the main
    metric), each with why it is not verified; None when there is none."""
    rows = result.unverified_rows
    if not rows:
        return None
    board = result.board
    metric = board.main_metric
    table = ReportTable(
        title=f"{board.name}: unverified submissions (not ranked)",
        headers=["router", "distribution", f"mean {metric}",
                 *[f"{t} {metric}" for t in board.task_names()], "submitted", "why"],
        right=set(range(2, 3 + len(board.tasks))), nowrap={0, 1})
    for row in rows:
        table.add([row["router"], f"{row['distribution']} {row['version']}",
                   *_numbers(board, row), row["created"][:10],
                   row["verification"]["reason"]])
    table.note = ("Their numbers are the submitters' own: the board records no re-run of "
                  "the file as it is (verifications/; `routeharness leaderboard verify FILE` "
                  "writes one).")
    return table


def ranking_tables(result: Ranking) -> list[ReportTable]:
    """The board's table, then the unverified submissions' when there are any."""
    apart = unverified_table(result)
    return [ranking_table(result)] + ([apart] if apart is not None else [])


def render_markdown(result: Ranking) -> str:
    from routeharness.results.tables import markdown_cell

    board = result.board
    return (f"## {markdown_cell(board.name)}: {markdown_cell(board.description.strip())}\n\n"
            + to_markdown(ranking_tables(result)))


def render_html(result: Ranking) -> str:
    """One self-contained HTML page (``routeharness.boards.page``): the frontier plot shows
    the verified submissions only."""
    from routeharness.boards.page import board_page

    return board_page(result.board, ranking_table(result), result.rejected,
                      [s.result for s in result.verified_submissions],
                      unverified=unverified_table(result),
                      tiers=TIER_RULE + (f" {result.intervals_note}"
                                         if result.intervals_note else ""))


def render_json(result: Ranking) -> str:
    """``ranking``: the board (verified rows, each with ``interval``,
    ``difference_from_leader``, ``difference_interval`` and ``tier``, null where not
    available, ``no_interval`` saying why; the oracle row); ``intervals``: how they are
    made (``rule``) and ``note``; ``unverified``: the rows listed apart; ``rejected``:
    the files that fail validation."""
    board = result.board
    return json.dumps({"board": {"name": board.name, "version": board.version,
                                 "main_metric": board.main_metric,
                                 "tasks": board.task_names(), "seeds": list(board.seeds),
                                 "encoder": board.encoder},
                       "ranking": result.board_rows,
                       "intervals": {"level": LEVEL, "n_resamples": N_RESAMPLES,
                                     "seed": BOOTSTRAP_SEED, "rule": TIER_RULE,
                                     "note": result.intervals_note},
                       "unverified": result.unverified_rows,
                       "rejected": [{"file": f, "problems": p} for f, p in result.rejected]},
                      indent=1, ensure_ascii=False) + "\n"
