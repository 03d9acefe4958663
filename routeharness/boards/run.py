"""Leaderboards: running a board, validating and verifying submissions, ranking and
rendering (boards and the ``Submission`` record: ``routeharness.boards.definition``).

- ``run_board`` runs a board's full protocol for one router -> a ``Submission``;
- ``validate_submission`` lists every problem of a submission by name, checked against
  its board: the board of the folder it sits in (``leaderboards/<name>/submissions/``),
  else the board it names (a plain name, looked up in the boards directory). Its
  records must be exactly the board's task x seed set for its router; each record's
  numbers must follow from its curve, the scores from the records, the checksum from
  the content and (``check_data``) the fingerprints from the local data;
- ``verify_submission`` re-runs the protocol and compares every number (each record's
  and each task's oracle reference row); the record of its outcome that a board keeps,
  and what makes a row verified, are ``routeharness.boards.verification``'s;
- ``ranking`` / ``render_*`` turn a board's submissions into a ``ReportTable``, Markdown,
  JSON or one self-contained HTML page; files that fail validation are listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeharness.boards.definition import (
    SUBMISSION_SCHEMA,
    Board,
    BoardRef,
    LeaderboardError,
    Submission,
    SubmissionProvenance,
    SubmittedRouter,
    TaskProvenance,
    board_of_file,
    check_tolerance,
    load_named_board,
)
from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation.scoring import isclose, record_problems
from routeharness.results.records import OracleRow, ProtocolRecord, RecordFormatError, RunRecord
from routeharness.results.sets import summarise_scores
from routeharness.results.tables import ReportTable

#: the numbers of a record that verify compares
VERIFIED_METRICS = ("auc", "quality_at_0", "cost_at_0", "cost_at_0_usd", "auc_ci95", "apgr",
                    "cpt50", "cpt80")

def as_submission(data: Submission | dict[str, Any]) -> Submission:
    """A submission, or its JSON data (``Submission.to_dict()``) checked as one."""
    return data if isinstance(data, Submission) else Submission.from_dict(data)


def load_submission(path: str | Path) -> Submission:
    """A submission file, its shape checked (one line naming the file and JSON path)."""
    try:
        return Submission.from_json(path)
    except LeaderboardError:
        raise
    except RouteHarnessError as exc:
        raise LeaderboardError(str(exc)) from None


def run_board(board: Board, router: str, *, data_dir: str | None = None,
              cache_dir: str | None = None, reporter: Any = None,
              checkpoint: str | Path | None = None, resume: bool = False,
              executor: Any = None) -> Submission:
    """Run ``board``'s full protocol for ``router`` (a name or ``NAME:PARAM=VALUE,...``
    with fixed hyper-parameters) and return the submission; ``checkpoint``, ``resume``
    and ``executor`` (local or Ray) as in ``evaluate.evaluate``. The oracle reference of
    each task is kept in the result (the board's upper bound row comes from it), and each
    record keeps its test choices (``RunRecord.choices``: the board's paired intervals
    resample them)."""
    from routeharness.common.provenance import git_commit, platform_info
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.tuning import plan_routers

    plan = plan_routers([router], references=False)[0]
    entry, router = plan.entry, plan.label
    result = evaluate(
        [router], board.task_names(), encoder=board.encoder, protocol=board.protocol(),
        data_dir=data_dir, cache_dir=cache_dir, reporter=reporter, references=False,
        oracle=True, checkpoint=checkpoint, resume=resume, executor=executor,
        keep_choices=True)
    for task in board.tasks:
        found = result.tasks[task.name].version
        if found != task.version:
            raise LeaderboardError(f"board {board.name} pins task {task.name} version "
                                   f"{task.version}, but the installed task is version {found}")
    records = [r for r in result.records if r.router == router]
    cls = entry.load()
    submitted = SubmittedRouter(
        name=router, plugin=entry.plugin, distribution=entry.distribution,
        version=entry.version, router_class=f"{cls.__module__}.{cls.__qualname__}",
        kind=getattr(cls, "kind", "utility"),
        upper_bound=False,  # no router is an upper bound: the oracle is a reference
        params={f"{r.task}/seed{r.seed}": r.params for r in records},
        **({"fixed_params": plan.fixed} if plan.fixed else {}))
    provenance = SubmissionProvenance(
        routeharness_version=result.routeharness_version, git_commit=git_commit(),
        created=result.created, platform=platform_info(), encoder=result.encoder,
        tasks={name: TaskProvenance(version=t.version, revision=t.revision,
                                    fingerprint=t.fingerprint)
               for name, t in result.tasks.items()},
        seeds=list(board.seeds), protocol=result.protocol)
    return Submission(schema_=SUBMISSION_SCHEMA,
                      board=BoardRef(name=board.name, version=board.version),
                      router=submitted, provenance=provenance,
                      scores=summarise_scores(result, router), result=result,
                      checksum="").signed()


# --- validation ---------------------------------------------------------------------------------
def board_for(data: Submission, *, path: str | Path | None = None,
              directory: str | Path | None = None) -> Board:
    """The board a submission is checked against: the folder it sits in when that is a
    board's ``submissions/``, else the board it names, by name, in the boards directory."""
    board = board_of_file(path) if path is not None else None
    return board if board is not None else load_named_board(data.board_name, directory)


def _coverage_problems(board: Board, data: Submission) -> list[str]:
    """The records must be exactly the board's task x seed set for the submitted router."""
    problems, seen = [], set()
    name = data.router_name
    tasks, seeds = set(board.task_names()), set(board.seeds)
    for i, record in enumerate(data.result.records):
        if record.router != name:
            problems.append(f"record {i} is for router {record.router!r}, not {name!r}")
        elif record.task not in tasks:
            problems.append(f"record {i} is for task {record.task!r}, not on board {board.name}")
        elif record.seed not in seeds:
            problems.append(f"record {i} ({record.task}) has seed {record.seed}, not one of "
                            f"board {board.name}'s seeds {list(board.seeds)}")
        elif (record.task, record.seed) in seen:
            problems.append(f"record {i} is a second record for task {record.task!r}, "
                            f"seed {record.seed}")
        seen.add((record.task, record.seed))
    for task in board.tasks:
        for seed in board.seeds:
            if (task.name, seed) not in seen and task.name in data.result.tasks:
                problems.append(f"no record for router {name!r} on task {task.name!r}, "
                                f"seed {seed}")
    return problems


def validate_submission(data: Submission | dict[str, Any], *, board: Board | None = None,
                        directory: str | Path | None = None, check_data: bool = True,
                        data_dir: str | None = None) -> list[str]:
    """Every problem with a submission, one message each; empty when it is valid.

    ``board``: the board to check against (default: the board the file names, by name,
    in ``directory``). Checks the board and its version, the protocol, the encoder, that
    the records are exactly the board's task x seed set, the task versions, that every
    number follows from the records (and each record's numbers from its curve), the
    checksum, and (``check_data``) each task's data fingerprint against the local data.
    """
    try:
        data = as_submission(data)
    except RecordFormatError as exc:
        return [str(exc)]
    problems: list[str] = []
    try:
        board = board or load_named_board(data.board_name, directory)
    except RouteHarnessError as exc:
        return [f"board: {exc}"]
    if data.board_name != board.name:
        return [f"the submission is for board {data.board_name!r}, not {board.name!r} "
                f"whose folder holds it"]
    if data.board_version != board.version:
        problems.append(f"board version {data.board_version!r} does not match the local "
                        f"board {board.name} (version {board.version})")
    result, provenance = data.result, data.provenance
    if data.upper_bound:  # the oracle is the harness's reference row, never a submission
        problems.append("an upper bound is not a submission: the board shows the oracle "
                        "computed from the accepted submissions' test labels")
    problems += _protocol_problems(board, result.protocol)
    if result.encoder.name != board.encoder:
        problems.append(f"encoder {result.encoder.name!r} is not the board's encoder "
                        f"{board.encoder!r}")
    for task in board.tasks:
        stated_task = provenance.tasks.get(task.name)
        if task.name not in result.tasks or stated_task is None:
            problems.append(f"task {task.name!r} is missing")
            continue
        if stated_task.version != task.version or \
                result.tasks[task.name].version != task.version:
            problems.append(f"task {task.name!r} is version {stated_task.version!r}, "
                            f"the board pins version {task.version}")
        if stated_task.fingerprint != result.tasks[task.name].fingerprint:
            problems.append(f"task {task.name!r}: the provenance and result fingerprints differ")
    extra = sorted(set(result.tasks) - set(board.task_names()))
    if extra:
        problems.append(f"task(s) {extra} are not on board {board.name}")
    problems += _coverage_problems(board, data)
    for i, record in enumerate(result.records):
        problems.extend(record_problems(i, record))
    problems += _score_problems(data)
    problems += _choice_problems(data)
    if data.checksum != data.computed_checksum():
        problems.append("checksum mismatch: the file was changed after `leaderboard run` wrote it")
    if check_data:
        found = _fingerprint_problems(board, provenance, data_dir)
        problems.extend(found or _choices_on_data_problems(data, data_dir))
    return problems


def _choice_problems(data: Submission) -> list[str]:
    """A record's test choices (optional) must name models of its task."""
    problems = []
    for i, record in enumerate(data.result.records):
        reference = data.result.tasks.get(record.task)
        if record.choices is None or reference is None:
            continue
        choices = record.choices.array()
        if choices.size and choices.max() >= len(reference.models):
            problems.append(f"record {i} ({record.task}, seed {record.seed}): choices name "
                            f"model {int(choices.max())}, the task has "
                            f"{len(reference.models)}")
    return problems


def _choices_on_data_problems(data: Submission, data_dir: str | None) -> list[str]:
    """Each record's test choices (when it keeps them) must reproduce its curve on the
    local data: the board's intervals resample them."""
    from routeharness.boards.intervals import curve_problem, scored_test

    problems = []
    for i, record in enumerate(data.result.records):
        if record.choices is None:
            continue
        problem = curve_problem(record, record.choices.array(),
                                scored_test(record.task, data_dir))
        if problem:
            problems.append(f"record {i}: {problem}")
    return problems


def _protocol_problems(board: Board, stated: ProtocolRecord) -> list[str]:
    """The protocol keys that differ from the board's (``ProtocolRecord.differences``:
    lams within a relative 1e-9) and its seeds; a file of another protocol version is one
    problem (every number of it was made another way)."""
    expected = board.protocol().recorded()
    if stated.version != expected.version:
        return [f"made under protocol version {stated.version!r}; board {board.name} "
                f"runs version {expected.version}: re-run it with `routeharness "
                f"leaderboard run {board.name}`"]
    differ = stated.differences(expected) + (["seeds"] if stated.seeds != expected.seeds
                                             else [])
    return [f"protocol.{key} is {stated.value(key)!r}, but board {board.name} requires "
            f"{expected.value(key)!r}" for key in differ]


def _score_problems(data: Submission) -> list[str]:
    problems = []
    for task, row in summarise_scores(data.result, data.router_name).items():
        for metric, value in row.items():
            stated = data.scores.get(task, {}).get(metric)
            if value is None and stated is None:
                continue
            if stated is None or value is None or not isclose(stated, value):
                problems.append(f"scores.{task}.{metric} = {stated!r} does not match the "
                                f"records ({value!r})")
    return problems


def local_fingerprint(task: str, data_dir: str | None = None) -> str:
    """The fingerprint of a task as loaded here (cached per process: loading takes seconds)."""
    from routeharness.boards.intervals import scored_test

    return scored_test(task, data_dir).fingerprint


def _fingerprint_problems(board: Board, provenance: SubmissionProvenance,
                          data_dir: str | None) -> list[str]:
    problems = []
    for task in board.tasks:
        stated_task = provenance.tasks.get(task.name)
        stated = stated_task.fingerprint if stated_task is not None else None
        if stated is None:
            continue
        try:
            local = local_fingerprint(task.name, data_dir)
        except RouteHarnessError as exc:
            problems.append(f"task {task.name!r}: cannot load the local data to compare "
                            f"fingerprints ({exc})")
            continue
        if local != stated:
            problems.append(f"task {task.name!r}: data fingerprint {stated[:12]}... does not "
                            f"match the local data ({local[:12]}...)")
    return problems


# --- verification -------------------------------------------------------------------------------
@dataclass
class Difference:
    """One number compared by ``verify``."""

    task: str
    seed: int | None  # None: the task's oracle reference row (the same for every seed)
    metric: str
    submitted: Any
    rerun: Any
    ok: bool


def compare_records(submitted: RunRecord, rerun: RunRecord,
                    tolerance: float) -> list[Difference]:
    """Every verified number of two records (same task and seed); params must be equal,
    except a parameter the submitted record does not name (added to the router since it
    was submitted: the numbers, verified above, say whether it changed anything)."""
    rows = []
    task, seed = submitted.task, submitted.seed
    for metric in VERIFIED_METRICS:
        a, b = submitted.metrics.get(metric), rerun.metrics.get(metric)
        if a is None and b is None:
            continue
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            ok = all(x is not None and y is not None and isclose(x, y, tolerance)
                     for x, y in zip(a, b))
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
            ok = isclose(a, b, tolerance)
        else:
            ok = False
        rows.append(Difference(task, seed, metric, a, b, ok))
    named = {k: v for k, v in rerun.params.items() if k in submitted.params}
    rows.append(Difference(task, seed, "params", submitted.params, named,
                           submitted.params == named))
    return rows


def verify_submission(data: Submission | dict[str, Any], *, board: Board | None = None,
                      directory: str | Path | None = None, tolerance: float | None = None,
                      data_dir: str | None = None, cache_dir: str | None = None,
                      reporter: Any = None) -> tuple[list[Difference], Submission]:
    """Re-run the submission's board for its router; compare every verified number of
    each record, and each task's oracle reference row (the board's upper bound).

    Returns the comparisons (``ok`` False where the numbers differ beyond the relative
    ``tolerance``, default the board's) and the re-run submission.
    """
    data = as_submission(data)
    board = board or load_named_board(data.board_name, directory)
    tolerance = check_tolerance(board.tolerance if tolerance is None else tolerance)
    rerun = run_board(board, data.router_name, data_dir=data_dir, cache_dir=cache_dir,
                      reporter=reporter)
    fresh = {(r.task, r.seed): r for r in rerun.result.records}
    rows: list[Difference] = []
    for record in data.result.records:
        key = (record.task, record.seed)
        if key not in fresh:
            rows.append(Difference(key[0], key[1], "record", "present", "missing", False))
            continue
        rows.extend(compare_records(record, fresh[key], tolerance))
    for task, reference in data.result.tasks.items():  # the board's upper bound row
        mine = rerun.result.tasks.get(task)
        if reference.oracle is not None or (mine is not None and mine.oracle is not None):
            rows.extend(_compare_oracle(task, reference.oracle, mine and mine.oracle,
                                        tolerance))
    return rows, rerun


def _compare_oracle(task: str, submitted: OracleRow | None, rerun: OracleRow | None,
                    tolerance: float) -> list[Difference]:
    """The oracle reference row's main numbers (the board shows it as its upper bound)."""
    if submitted is None or rerun is None:
        return [Difference(task, None, "oracle", "present" if submitted else "missing",
                           "present" if rerun else "missing", False)]
    rows = []
    for metric in ("auc", "quality_at_0", "cost_at_0"):
        a, b = submitted.get(metric), rerun.get(metric)
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            isclose(a, b, tolerance)
        rows.append(Difference(task, None, f"oracle {metric}", a, b, ok or a is b is None))
    return rows


def verify_table(rows: list[Difference], title: str) -> ReportTable:
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(show(v) for v in value) + "]"
        return str(value)

    table = ReportTable(title=title, headers=["task", "seed", "number", "submitted", "re-run",
                                              "status"], nowrap={0, 2})
    for r in rows:
        table.add([r.task, "-" if r.seed is None else str(r.seed), r.metric, show(r.submitted), show(r.rerun),
                   "same" if r.ok else "DIFFERS"], None if r.ok else "bold")
    return table
