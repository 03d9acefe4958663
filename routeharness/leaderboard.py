"""Leaderboards: versioned boards, submission files, validation, verification, rendering.

A *board* is ``leaderboards/<name>/board.yaml``: the tasks (each pinned to a task
version), the encoder, the seeds, the protocol and the main metric, strictly validated
(unknown keys are errors). A *submission* is one router's run of a board's full protocol
(``run_board``), written as JSON with its provenance and a checksum over its content.
Accepted submissions live in ``leaderboards/<name>/submissions/*.json``.

- ``validate_submission`` checks a file against the local board and data, and lists every
  problem by name (a number that does not match its curve, a missing task, a wrong board
  version, a data fingerprint that differs from the local data, an edit after writing);
- ``verify_submission`` re-runs the protocol and lists each number that differs beyond
  the tolerance;
- ``ranking`` / ``render_*`` turn the accepted submissions into a table, Markdown, JSON
  or one self-contained HTML page with the cost-quality frontier plot.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.errors import RouteHarnessError, UnknownNameError

SUBMISSION_SCHEMA = "routeharness.submission/1"
BOARD_FILE = "board.yaml"
SUBMISSIONS_DIR = "submissions"
BOARD_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "version": int, "description": str, "tasks": list, "encoder": str,
    "seeds": list, "protocol": dict, "main_metric": str, "tolerance": (int, float),
    "notes": str,
}
REQUIRED_BOARD_KEYS = ("name", "version", "description", "tasks", "encoder", "seeds",
                       "protocol", "main_metric")
PROTOCOL_KEYS = {"tune": bool, "max_configs": int, "n_bootstrap": int}
MAIN_METRICS = {"auc": "frontier AUC (score x100, cost normalised to 1)",
                "quality_at_0": "quality when routing for quality alone (score x100)"}
SUBMISSION_KEYS = ("schema", "board", "router", "provenance", "scores", "result", "checksum")
#: the numbers of a record that verify compares
VERIFIED_METRICS = ("auc", "quality_at_0", "cost_at_0", "cost_at_0_usd", "auc_ci95", "apgr",
                    "cpt50", "cpt80")
DEFAULT_TOLERANCE = 1e-4


class LeaderboardError(RouteHarnessError):
    """A malformed board or submission file."""


# --- boards -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BoardTask:
    name: str
    version: int


@dataclass(frozen=True)
class Board:
    """A parsed board definition (``leaderboards/<name>/board.yaml``)."""

    name: str
    version: int
    description: str
    tasks: tuple[BoardTask, ...]
    encoder: str
    seeds: tuple[int, ...]
    protocol_options: dict[str, Any]
    main_metric: str
    path: Path
    tolerance: float = DEFAULT_TOLERANCE
    notes: str = ""

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def submissions_dir(self) -> Path:
        return self.directory / SUBMISSIONS_DIR

    def protocol(self) -> Any:
        from routeharness.evaluate import Protocol

        return Protocol(seeds=self.seeds, **self.protocol_options)

    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def boards_dir(override: str | Path | None = None) -> Path:
    """``override``, else ``$ROUTEHARNESS_LEADERBOARDS``, else the built-in leaderboards."""
    value = override or os.environ.get("ROUTEHARNESS_LEADERBOARDS")
    if value:
        return Path(value).expanduser()
    from routeharness.resources import builtin_dir

    return builtin_dir("leaderboards")


def board_names(directory: str | Path | None = None) -> list[str]:
    root = boards_dir(directory)
    return sorted(p.parent.name for p in root.glob(f"*/{BOARD_FILE}")) if root.is_dir() else []


def parse_board(data: Any, path: Path) -> Board:
    """Validate a board mapping: unknown, missing and mistyped keys are errors."""
    where = str(path)
    if not isinstance(data, dict):
        raise LeaderboardError(f"{where}: a board must be a YAML mapping")
    unknown = sorted(set(data) - set(BOARD_KEYS))
    if unknown:
        raise LeaderboardError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(BOARD_KEYS)}")
    missing = [k for k in REQUIRED_BOARD_KEYS if k not in data]
    if missing:
        raise LeaderboardError(f"{where}: missing required key(s) {missing}")
    for key, value in data.items():
        if (isinstance(value, bool) and key != "protocol") or not isinstance(value, BOARD_KEYS[key]):
            raise LeaderboardError(f"{where}: key {key!r} has the wrong type "
                                   f"({type(value).__name__})")
    name, version = data["name"], data["version"]
    if version < 1:
        raise LeaderboardError(f"{where}: version must be a positive integer")
    if not name.endswith(f"-v{version}"):
        raise LeaderboardError(f"{where}: board name {name!r} must end in '-v{version}' "
                               "(a changed board is a new version)")
    if path.name == BOARD_FILE and path.parent.name != name:
        raise LeaderboardError(f"{where}: board {name!r} must live in leaderboards/{name}/")
    tasks = []
    for i, task in enumerate(data["tasks"]):
        if not isinstance(task, dict) or set(task) != {"name", "version"} \
                or not isinstance(task["name"], str) or isinstance(task["version"], bool) \
                or not isinstance(task["version"], int):
            raise LeaderboardError(f"{where}: tasks[{i}] must be {{name: str, version: int}}")
        tasks.append(BoardTask(task["name"], task["version"]))
    if not tasks or len({t.name for t in tasks}) != len(tasks):
        raise LeaderboardError(f"{where}: tasks must list at least one task, each once")
    seeds = data["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise LeaderboardError(f"{where}: seeds must be a non-empty list of integers")
    protocol = data["protocol"]
    unknown = sorted(set(protocol) - set(PROTOCOL_KEYS))
    if unknown:
        raise LeaderboardError(f"{where}: protocol: unknown key(s) {unknown}; allowed: "
                               f"{sorted(PROTOCOL_KEYS)}")
    for key, value in protocol.items():
        expected = PROTOCOL_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise LeaderboardError(f"{where}: protocol.{key} must be {expected.__name__}")
    if data["main_metric"] not in MAIN_METRICS:
        raise LeaderboardError(f"{where}: main_metric must be one of {sorted(MAIN_METRICS)}")
    return Board(name=name, version=version, description=data["description"],
                 tasks=tuple(tasks), encoder=data["encoder"], seeds=tuple(seeds),
                 protocol_options=dict(protocol), main_metric=data["main_metric"], path=path,
                 tolerance=float(data.get("tolerance", DEFAULT_TOLERANCE)),
                 notes=data.get("notes", ""))


def load_board(spec: str | Path, directory: str | Path | None = None) -> Board:
    """A board by name (``text-v1``) or by the path of its ``board.yaml``."""
    import yaml

    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        root = boards_dir(directory)
        path = root / str(spec) / BOARD_FILE
        if not path.is_file():
            raise UnknownNameError("leaderboard", str(spec), board_names(directory))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: board file not found") from None
    except yaml.YAMLError as exc:
        raise LeaderboardError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return parse_board(data, path)


# --- submissions --------------------------------------------------------------------------
def _canonical(data: dict[str, Any]) -> bytes:
    from routeharness.results import _clean

    body = {k: v for k, v in data.items() if k != "checksum"}
    return json.dumps(_clean(body), sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def checksum(data: dict[str, Any]) -> str:
    """sha256 over the submission's canonical JSON, the checksum field left out."""
    return "sha256:" + hashlib.sha256(_canonical(data)).hexdigest()


def summarise_scores(result: dict[str, Any], router: str) -> dict[str, Any]:
    """Per task, mean and std over seeds of the headline metrics; ``overall``: the mean
    over tasks of each task's mean (every task weighs the same)."""
    scores: dict[str, Any] = {}
    for task in result["tasks"]:
        records = [r for r in result["records"] if r["task"] == task and r["router"] == router]
        row: dict[str, Any] = {"n_seeds": len(records)}
        for metric in ("auc", "quality_at_0", "cost_at_0_usd"):
            values = np.asarray([r["metrics"][metric] for r in records], dtype=float)
            row[metric] = float(values.mean()) if values.size else None
            row[metric + "_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        scores[task] = row
    overall = {}
    for metric in ("auc", "quality_at_0"):
        values = [scores[t][metric] for t in result["tasks"] if scores[t][metric] is not None]
        overall[metric] = float(np.mean(values)) if values else None
    scores["overall"] = overall
    return scores


def run_board(board: Board, router: str, *, data_dir: str | None = None,
              cache_dir: str | None = None, reporter: Any = None) -> dict[str, Any]:
    """Run ``board``'s full protocol for ``router`` and return the submission (a dict)."""
    import datetime as _dt

    from routeharness import __version__
    from routeharness.evaluate import evaluate
    from routeharness.registry import get_registry
    from routeharness.results import git_commit, platform_info

    entry = get_registry("router").get(router)
    result = evaluate([router], board.task_names(), encoder=board.encoder,
                      protocol=board.protocol(), data_dir=data_dir, cache_dir=cache_dir,
                      reporter=reporter, references=False)
    for task in board.tasks:
        found = result["tasks"][task.name]["version"]
        if found != task.version:
            raise LeaderboardError(f"board {board.name} pins task {task.name} version "
                                   f"{task.version}, but the installed task is version {found}")
    records = [r for r in result["records"] if r["router"] == router]
    cls = entry.load()
    submission: dict[str, Any] = {
        "schema": SUBMISSION_SCHEMA,
        "board": {"name": board.name, "version": board.version},
        "router": {"name": router, "plugin": entry.plugin, "distribution": entry.distribution,
                   "version": entry.version, "class": f"{cls.__module__}.{cls.__qualname__}",
                   "kind": getattr(cls, "kind", "utility"),
                   "upper_bound": bool(getattr(cls, "tags", {}).get("oracle")),
                   "params": {f"{r['task']}/seed{r['seed']}": r["params"] for r in records}},
        "provenance": {
            "routeharness_version": __version__, "git_commit": git_commit(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "platform": platform_info(), "encoder": result["encoder"],
            "tasks": {name: {"version": t["version"], "revision": t["revision"],
                             "fingerprint": t["fingerprint"]}
                      for name, t in result["tasks"].items()},
            "seeds": list(board.seeds), "protocol": result["protocol"]},
        "scores": summarise_scores(result, router),
        "result": result,
    }
    submission["checksum"] = checksum(submission)
    return submission


def save_submission(submission: dict[str, Any], path: str | Path) -> Path:
    from routeharness.results import save_json

    path = save_json(submission, path)
    os.chmod(path, 0o644)  # a file meant to be shared and committed, not a private temp file
    return path


def load_submission(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: no such submission file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LeaderboardError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SUBMISSION_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise LeaderboardError(f"{path}: not a routeharness submission (schema {found!r}, "
                               f"expected {SUBMISSION_SCHEMA!r})")
    return data


def _close(a: float, b: float, tol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _record_problems(i: int, record: dict[str, Any]) -> list[str]:
    """Numbers of one record that do not follow from its own curve."""
    from routeharness import metrics

    where = f"record {i} ({record.get('router')} on {record.get('task')}, seed {record.get('seed')})"
    try:
        cost = np.asarray(record["curve"]["cost"], dtype=float)
        quality = np.asarray(record["curve"]["quality"], dtype=float)
        stated = record["metrics"]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"{where}: malformed record ({type(exc).__name__}: {exc})"]
    problems = []
    recomputed = {"auc": metrics.auc(cost, quality), "quality_at_0": float(quality[0]) * 100.0,
                  "cost_at_0": float(cost[0])}
    for metric, value in recomputed.items():
        if not isinstance(stated.get(metric), (int, float)) or not _close(stated[metric], value):
            problems.append(f"{where}: metrics.{metric} = {stated.get(metric)!r} does not match "
                            f"its curve ({value!r})")
    hull_c, hull_q = metrics.frontier(cost, quality)
    front = record.get("frontier") or {}
    for axis, hull in (("cost", hull_c), ("quality", hull_q)):
        stated_axis = np.asarray(front.get(axis, []), dtype=float)
        if stated_axis.shape != hull.shape or not np.allclose(stated_axis, hull):
            problems.append(f"{where}: frontier.{axis} does not match its curve")
    return problems


def validate_submission(data: dict[str, Any], *, directory: str | Path | None = None,
                        check_data: bool = True, data_dir: str | None = None) -> list[str]:
    """Every problem with a submission, one message each; empty when it is valid.

    Checks the schema, the board and its version, the protocol, the encoder, that every
    task and seed is present, the task versions, that every number follows from the
    records (and each record's numbers from its curve), the checksum, and (``check_data``)
    that each task's data fingerprint matches the local data.
    """
    problems: list[str] = []
    missing = [k for k in SUBMISSION_KEYS if k not in data]
    unknown = sorted(set(data) - set(SUBMISSION_KEYS))
    if missing:
        problems.append(f"missing key(s) {missing}")
    if unknown:
        problems.append(f"unknown key(s) {unknown}")
    if missing:
        return problems
    board_info = data["board"]
    try:
        board = load_board(board_info["name"], directory)
    except (RouteHarnessError, KeyError, TypeError) as exc:
        return problems + [f"board: {exc}"]
    if board_info.get("version") != board.version:
        problems.append(f"board version {board_info.get('version')!r} does not match the local "
                        f"board {board.name} (version {board.version})")
    result, provenance, router = data["result"], data["provenance"], data["router"]
    if not isinstance(result, dict) or not isinstance(result.get("records"), list) \
            or not isinstance(result.get("tasks"), dict):
        return problems + ["result: not a result set (needs 'tasks' and 'records')"]
    expected_protocol = board.protocol().to_dict()
    for key, value in expected_protocol.items():
        stated = result.get("protocol", {}).get(key)
        if stated != value:
            problems.append(f"protocol.{key} is {stated!r}, but board {board.name} requires {value!r}")
    encoder = result.get("encoder", {}).get("name")
    if encoder != board.encoder:
        problems.append(f"encoder {encoder!r} is not the board's encoder {board.encoder!r}")
    name = router.get("name")
    for task in board.tasks:
        if task.name not in result["tasks"] or task.name not in provenance.get("tasks", {}):
            problems.append(f"task {task.name!r} is missing")
            continue
        stated = provenance["tasks"][task.name].get("version")
        if stated != task.version or result["tasks"][task.name].get("version") != task.version:
            problems.append(f"task {task.name!r} is version {stated!r}, the board pins "
                            f"version {task.version}")
        if provenance["tasks"][task.name].get("fingerprint") != \
                result["tasks"][task.name].get("fingerprint"):
            problems.append(f"task {task.name!r}: the provenance and result fingerprints differ")
        for seed in board.seeds:
            if not any(r.get("task") == task.name and r.get("seed") == seed
                       and r.get("router") == name for r in result["records"]):
                problems.append(f"no record for router {name!r} on task {task.name!r}, seed {seed}")
    extra = sorted(set(result["tasks"]) - set(board.task_names()))
    if extra:
        problems.append(f"task(s) {extra} are not on board {board.name}")
    for i, record in enumerate(result["records"]):
        if record.get("router") != name:
            problems.append(f"record {i} is for router {record.get('router')!r}, not {name!r}")
        problems.extend(_record_problems(i, record))
    try:
        recomputed = summarise_scores(result, name)
    except (KeyError, TypeError, ValueError) as exc:
        recomputed = None
        problems.append(f"scores cannot be recomputed from the records ({exc})")
    if recomputed is not None:
        for task, row in recomputed.items():
            for metric, value in row.items():
                stated = data["scores"].get(task, {}).get(metric)
                if value is None and stated is None:
                    continue
                if not isinstance(stated, (int, float)) or value is None \
                        or not _close(stated, value):
                    problems.append(f"scores.{task}.{metric} = {stated!r} does not match the "
                                    f"records ({value!r})")
    if data.get("checksum") != checksum(data):
        problems.append("checksum mismatch: the file was changed after `leaderboard run` wrote it")
    if check_data:
        problems.extend(_fingerprint_problems(board, provenance, data_dir))
    return problems


@functools.lru_cache(maxsize=32)
def local_fingerprint(task: str, data_dir: str | None = None) -> str:
    """The fingerprint of a task as loaded here (cached per process: loading takes seconds)."""
    from routeharness.tasks import load_task

    return load_task(task, data_dir=data_dir).fingerprint()


def _fingerprint_problems(board: Board, provenance: dict[str, Any],
                          data_dir: str | None) -> list[str]:
    problems = []
    for task in board.tasks:
        stated = provenance.get("tasks", {}).get(task.name, {}).get("fingerprint")
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


@dataclass
class Difference:
    """One number compared by ``verify``."""

    task: str
    seed: int
    metric: str
    submitted: Any
    rerun: Any
    ok: bool


def compare_records(submitted: dict[str, Any], rerun: dict[str, Any], tolerance: float
                    ) -> list[Difference]:
    """Every verified number of two records (same task and seed); params must be equal."""
    rows = []
    task, seed = submitted["task"], submitted["seed"]
    for metric in VERIFIED_METRICS:
        a, b = submitted["metrics"].get(metric), rerun["metrics"].get(metric)
        if a is None and b is None:
            continue
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            ok = all(_close(x, y, tolerance) for x, y in zip(a, b))
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
            ok = _close(a, b, tolerance)
        else:
            ok = False
        rows.append(Difference(task, seed, metric, a, b, ok))
    params_a = {k: v for k, v in submitted.get("params", {}).items()}
    params_b = {k: v for k, v in rerun.get("params", {}).items()}
    rows.append(Difference(task, seed, "params", params_a, params_b, params_a == params_b))
    return rows


def verify_submission(data: dict[str, Any], *, directory: str | Path | None = None,
                      tolerance: float | None = None, data_dir: str | None = None,
                      cache_dir: str | None = None, reporter: Any = None
                      ) -> tuple[list[Difference], dict[str, Any]]:
    """Re-run the submission's board for its router; compare every verified number.

    Returns the comparisons (``ok`` False where the numbers differ beyond the relative
    ``tolerance``, default the board's) and the re-run submission.
    """
    board = load_board(data["board"]["name"], directory)
    tolerance = board.tolerance if tolerance is None else tolerance
    rerun = run_board(board, data["router"]["name"], data_dir=data_dir, cache_dir=cache_dir,
                      reporter=reporter)
    fresh = {(r["task"], r["seed"]): r for r in rerun["result"]["records"]}
    rows: list[Difference] = []
    for record in data["result"]["records"]:
        key = (record["task"], record["seed"])
        if key not in fresh:
            rows.append(Difference(key[0], key[1], "record", "present", "missing", False))
            continue
        rows.extend(compare_records(record, fresh[key], tolerance))
    return rows, rerun


# --- ranking and rendering ----------------------------------------------------------------
@dataclass
class Ranking:
    board: Board
    rows: list[dict[str, Any]]
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)


def ranking(board: Board, *, check_data: bool = False) -> Ranking:
    """The board's accepted submissions, validated, ranked by the main metric (higher
    first); upper bounds (oracle) come last, unranked. Invalid files are listed apart."""
    rows, rejected, accepted = [], [], []
    files = sorted(board.submissions_dir.glob("*.json")) if board.submissions_dir.is_dir() else []
    for path in files:
        try:
            data = load_submission(path)
            problems = validate_submission(data, directory=board.directory.parent,
                                           check_data=check_data)
        except RouteHarnessError as exc:
            problems, data = [str(exc)], None
        if problems or data is None:
            rejected.append((path.name, problems))
            continue
        accepted.append(data)
        router = data["router"]
        row = {"router": router["name"], "distribution": router["distribution"],
               "version": router["version"], "upper_bound": router.get("upper_bound", False),
               "main": data["scores"]["overall"][board.main_metric],
               "tasks": {t: {"mean": data["scores"][t][board.main_metric],
                             "std": data["scores"][t][board.main_metric + "_std"],
                             "quality_at_0": data["scores"][t]["quality_at_0"]}
                         for t in board.task_names()},
               "created": data["provenance"]["created"], "file": path.name,
               "routeharness_version": data["provenance"]["routeharness_version"]}
        rows.append(row)
    rows.sort(key=lambda r: (r["upper_bound"], -(r["main"] if r["main"] is not None else -1e9)))
    rank = 0
    for row in rows:
        if not row["upper_bound"]:
            rank += 1
        row["rank"] = None if row["upper_bound"] else rank
    return Ranking(board, rows, rejected, accepted)


def _cell(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if std else f"{mean:.2f}"


def table_rows(result: Ranking) -> tuple[list[str], list[list[str]]]:
    """Header and rows as text (shared by the rich table, Markdown and HTML)."""
    board = result.board
    metric = board.main_metric
    header = ["rank", "router", "distribution", f"mean {metric}",
              *[f"{t} {metric}" for t in board.task_names()], "submitted"]
    rows = []
    for row in result.rows:
        name = row["router"] + (" (upper bound)" if row["upper_bound"] else "")
        rows.append([str(row["rank"]) if row["rank"] else "-", name,
                     f"{row['distribution']} {row['version']}", _cell(row["main"]),
                     *[_cell(row["tasks"][t]["mean"], row["tasks"][t]["std"])
                       for t in board.task_names()],
                     row["created"][:10]])
    return header, rows


def render_markdown(result: Ranking) -> str:
    board = result.board
    header, rows = table_rows(result)
    lines = [f"## {board.name}: {board.description.strip()}", "",
             f"Main metric: {board.main_metric}, {MAIN_METRICS[board.main_metric]}; the mean over "
             f"tasks of the mean over seeds {list(board.seeds)}; encoder {board.encoder}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_json(result: Ranking) -> str:
    board = result.board
    return json.dumps({"board": {"name": board.name, "version": board.version,
                                 "main_metric": board.main_metric,
                                 "tasks": board.task_names(), "seeds": list(board.seeds),
                                 "encoder": board.encoder},
                       "ranking": result.rows,
                       "rejected": [{"file": f, "problems": p} for f, p in result.rejected]},
                      indent=1)


def frontier_png(result: Ranking) -> bytes | None:
    """The cost-quality frontiers of every accepted submission (first seed), one panel
    per task, single models as dots; PNG bytes (None when there is nothing to plot)."""
    if not result.submissions:
        return None
    from routeharness.results import plot_frontiers

    merged: dict[str, Any] = {"tasks": result.submissions[0]["result"]["tasks"], "records": []}
    first_seed = result.board.seeds[0]
    for data in result.submissions:
        merged["records"] += [r for r in data["result"]["records"] if r["seed"] == first_seed]
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_frontiers(merged, Path(tmp) / "frontier.png")
        return path.read_bytes()


def render_html(result: Ranking) -> str:
    """One self-contained page: the ranking table and the frontier plot (PNG, base64)."""
    board = result.board
    header, rows = table_rows(result)
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr" + (' class="bound"' if row[0] == "-" else "") + ">"
        + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    png = frontier_png(result)
    image = (f'<img alt="cost-quality frontiers" src="data:image/png;base64,'
             f'{base64.b64encode(png).decode("ascii")}">' if png else "<p>No submissions yet.</p>")
    rejected = "".join(f"<li>{esc(f)}: {esc('; '.join(p))}</li>" for f, p in result.rejected)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>routeharness leaderboard {esc(board.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }}
th {{ background: #f0f0f0; }}
td:nth-child(2), td:nth-child(3), th:nth-child(2), th:nth-child(3) {{ text-align: left; }}
tr.bound td {{ color: #777; font-style: italic; }}
img {{ max-width: 100%; }} .meta {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Leaderboard {esc(board.name)}</h1>
<p>{esc(board.description.strip())}</p>
<p class="meta">Main metric: {esc(board.main_metric)}, {esc(MAIN_METRICS[board.main_metric])}; the
mean over tasks of the mean over seeds {esc(str(list(board.seeds)))}; encoder
{esc(board.encoder)}; tasks {esc(", ".join(f"{t.name} v{t.version}" for t in board.tasks))}.
Upper bounds are shown unranked.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{image}
{f"<h2>Rejected submissions</h2><ul>{rejected}</ul>" if rejected else ""}
</body></html>
"""
