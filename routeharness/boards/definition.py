"""Leaderboard data: board definitions (``leaderboards/<name>/board.yaml``, validated with
``routeharness.common.schema``) and the typed ``Submission`` record that owns its JSON.

A board is the folder it lives in: ``<boards>/<name>/board.yaml`` with its accepted
submissions in ``<boards>/<name>/submissions/``. A board name is a plain name (letters,
digits, ``.``, ``_``, ``-``), never a path, so no file can point at another board file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.common.jsonfiles import (
    RecordFormatError,
    encode,
    exact_keys,
    flag,
    get,
    mapping,
    number,
    optional_text,
    read_as,
    text,
    write_json,
)
from routeharness.common.schema import (
    Field,
    check_items,
    check_mapping,
    non_empty,
    non_negative,
    positive,
)
from routeharness.evaluation.protocol import SEED_LIMIT
from routeharness.results.records import ResultSet

SUBMISSION_SCHEMA = "routeharness.submission/1"
BOARD_FILE = "board.yaml"
SUBMISSIONS_DIR = "submissions"
DEFAULT_TOLERANCE = 1e-4
MAIN_METRICS = {"auc": "frontier AUC (score x100, cost normalised to 1)",
                "quality_at_0": "quality when routing for quality alone (score x100)"}
#: a board name: a plain name, never a path
BOARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LeaderboardError(RouteHarnessError):
    """A malformed board or submission file."""


def _board_name(value: Any) -> str | None:
    if not BOARD_NAME.match(value) or ".." in value:
        return "must be a plain name (letters, digits, '.', '_', '-'), not a path"
    return None


def _metric(value: Any) -> str | None:
    return None if value in MAIN_METRICS else f"must be one of {sorted(MAIN_METRICS)}"


BOARD_FIELDS = {
    "name": Field(str, True, _board_name), "version": Field(int, True, positive),
    "description": Field(str, True, non_empty), "tasks": Field(list, True),
    "encoder": Field(str, True, non_empty), "seeds": Field(list, True),
    "protocol": Field(dict, True), "main_metric": Field(str, True, _metric),
    "tolerance": Field(float, False, non_negative), "notes": Field(str),
}
TASK_FIELDS = {"name": Field(str, True, non_empty), "version": Field(int, True, positive)}
PROTOCOL_FIELDS = {"tune": Field(bool), "max_configs": Field(int, False, positive),
                   "n_bootstrap": Field(int, False, non_negative)}


@dataclass(frozen=True)
class BoardTask:
    name: str
    version: int


@dataclass(frozen=True)
class Board:
    """A parsed board definition; ``path`` is its ``board.yaml``."""

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
        from routeharness.evaluation.protocol import Protocol

        return Protocol(seeds=self.seeds, **self.protocol_options)

    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def submission_files(self) -> list[Path]:
        folder = self.submissions_dir
        return sorted(folder.glob("*.json")) if folder.is_dir() else []


def boards_dir(override: str | Path | None = None) -> Path:
    """``override``, else ``$ROUTEHARNESS_LEADERBOARDS``, else the built-in leaderboards."""
    value = override or os.environ.get("ROUTEHARNESS_LEADERBOARDS")
    if value:
        return Path(value).expanduser()
    from routeharness.common.resources import builtin_dir

    return builtin_dir("leaderboards")


def board_names(directory: str | Path | None = None) -> list[str]:
    root = boards_dir(directory)
    return sorted(p.parent.name for p in root.glob(f"*/{BOARD_FILE}")) if root.is_dir() else []


def parse_board(data: Any, path: Path) -> Board:
    """Validate a board mapping (``schema.check_mapping``): unknown, missing and mistyped
    keys, and values out of range, are errors naming the file and the key."""
    where = str(path)
    data = check_mapping(data, BOARD_FIELDS, where, LeaderboardError)
    name, version = data["name"], data["version"]
    if not name.endswith(f"-v{version}"):
        raise LeaderboardError(f"{where}: board name {name!r} must end in '-v{version}' "
                               "(a changed board is a new version)")
    if path.name == BOARD_FILE and path.parent.name != name:
        raise LeaderboardError(f"{where}: board {name!r} must live in a folder named {name}/")
    tasks = check_items(data["tasks"], TASK_FIELDS, f"{where}: tasks", LeaderboardError)
    if not tasks:
        raise LeaderboardError(f"{where}: tasks must list at least one task")
    seeds = data["seeds"]
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)
           or not 0 <= s < SEED_LIMIT]
    if not seeds or bad or len(set(seeds)) != len(seeds):
        raise LeaderboardError(f"{where}: key 'seeds' must be a non-empty list of distinct "
                               f"integers in 0..{SEED_LIMIT - 1}"
                               + (f", got {bad[0]!r}" if bad else ""))
    protocol = check_mapping(data["protocol"], PROTOCOL_FIELDS, f"{where}: protocol",
                             LeaderboardError)
    return Board(name=name, version=version, description=data["description"],
                 tasks=tuple(BoardTask(t["name"], t["version"]) for t in tasks),
                 encoder=data["encoder"], seeds=tuple(seeds), protocol_options=protocol,
                 main_metric=data["main_metric"], path=path,
                 tolerance=float(data.get("tolerance", DEFAULT_TOLERANCE)),
                 notes=data.get("notes", ""))


def load_board(spec: str | Path, directory: str | Path | None = None) -> Board:
    """A board by name (``text-v1``, looked up in ``boards_dir(directory)``) or by the
    path of its ``board.yaml``."""
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        return load_named_board(str(spec), directory)
    return _read_board(path)


def load_named_board(name: str, directory: str | Path | None = None) -> Board:
    """The board called ``name`` in ``boards_dir(directory)``; a name that is a path (what
    a submission file says) is refused: it may not choose the file it is checked against."""
    if not isinstance(name, str) or _board_name(name):
        raise LeaderboardError(f"board name {name!r} is not a plain name: a board is named "
                               "by its folder, never by a path")
    path = boards_dir(directory) / name / BOARD_FILE
    if not path.is_file():
        raise UnknownNameError("leaderboard", name, board_names(directory))
    return _read_board(path)


def _read_board(path: Path) -> Board:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LeaderboardError(f"{path}: board file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LeaderboardError(f"{path}: cannot read the board: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise LeaderboardError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return check_registered(parse_board(data, path))


def check_registered(board: Board) -> Board:
    """``board`` if its encoder and its tasks (each the name before any ':') are registered;
    else one line naming the board.yaml and the key (a board loaded for use)."""
    from routeharness.plugins.registry import get_registry

    wanted = [("encoder", "encoder", board.encoder.split(":", 1)[0])]
    wanted += [("task", f"tasks[{i}].name", t.name.split(":", 1)[0])
               for i, t in enumerate(board.tasks)]
    for kind, key, name in wanted:
        registry = get_registry(kind)
        if name not in registry:
            known = ", ".join(registry.names()) or "none registered"
            raise LeaderboardError(f"{board.path}: key '{key}': {name!r} is not a registered "
                                   f"{kind} (known: {known})")
    return board


def check_board_output(output: str | Path, what: str, directory: str | Path | None = None,
                       board: Board | None = None) -> Path:
    """``output`` (``check_output_path``) unless it lies in a board's folder (its
    ``board.yaml``, a submission, ``submissions/`` or anything else there), of any board in
    ``boards_dir(directory)`` or of ``board``; checked before any work (``leaderboard run``
    and ``leaderboard show``). One line naming the path and the board."""
    from routeharness.common.files import check_output_path

    target = Path(output).expanduser().resolve()
    root = boards_dir(directory)
    folders = [(name, (root / name).resolve()) for name in board_names(directory)]
    if board is not None:
        folders.append((board.name, board.directory.resolve()))
    for name, folder in folders:
        if folder in target.parents:
            own = target.parent == folder or target.exists()
            raise LeaderboardError(
                f"--output {output}: " + ("is one of the board's own files" if own else
                                          "would write into the board's folder")
                + f" (board {name}, {folder}); write the {what} elsewhere")
    return check_output_path(output, what)


def board_of_file(path: str | Path) -> Board | None:
    """The board whose ``submissions/`` folder holds ``path``, if any: a submission in a
    board's folder is checked against that board, whatever board it names."""
    folder = Path(path).resolve().parent
    board_file = folder.parent / BOARD_FILE
    if folder.name == SUBMISSIONS_DIR and board_file.is_file():
        return load_board(board_file)
    return None


# --- submissions ------------------------------------------------------------------------------
SUBMISSION_KEYS = ("schema", "board", "router", "provenance", "scores", "result", "checksum")


def checksum(data: dict[str, Any]) -> str:
    """sha256 over the submission's canonical JSON (encoded, keys sorted), the checksum
    field left out."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    canonical = json.dumps(encode(body), sort_keys=True, separators=(",", ":"),
                           allow_nan=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Submission:
    """One router's run of a board's full protocol: the board's name and version, the
    router (name, plugin, distribution, version, class, kind, upper bound, params per
    task/seed), provenance, ``scores`` (per task mean and std over seeds, and
    ``overall``), the full ``result`` set and a checksum over the rest."""

    board_name: str
    board_version: int
    router: dict[str, Any]
    provenance: dict[str, Any]
    scores: dict[str, dict[str, float | None]]
    result: ResultSet
    checksum: str
    schema: str = SUBMISSION_SCHEMA

    @property
    def router_name(self) -> str:
        return self.router["name"]

    @property
    def upper_bound(self) -> bool:
        return bool(self.router.get("upper_bound"))

    @classmethod
    def from_dict(cls, data: Any) -> Submission:
        data = mapping(data, "submission")
        exact_keys(data, SUBMISSION_KEYS)
        board = get(data, "board", "", mapping)
        router = get(data, "router", "", mapping)
        for key in ("name", "distribution", "version"):
            get(router, key, "router", text if key == "name" else optional_text)
        get(router, "upper_bound", "router", flag, False)
        get(router, "params", "router", mapping, {})
        provenance = get(data, "provenance", "", mapping)
        for name, task in get(provenance, "tasks", "provenance", mapping).items():
            task = mapping(task, f"provenance.tasks.{name}")
            get(task, "fingerprint", f"provenance.tasks.{name}", optional_text, None)
        get(provenance, "created", "provenance", text)
        get(provenance, "routeharness_version", "provenance", optional_text, None)
        scores = {}
        for task, row in get(data, "scores", "", mapping).items():
            row = mapping(row, f"scores.{task}")
            scores[task] = {k: number(v, f"scores.{task}.{k}") for k, v in row.items()}
        version = board.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise RecordFormatError(f"board.version: expected an integer, got {version!r}")
        return cls(board_name=get(board, "name", "board", text), board_version=version,
                   router=router, provenance=provenance, scores=scores,
                   result=ResultSet.from_dict(get(data, "result", "", mapping), "result"),
                   checksum=get(data, "checksum", "", text), schema=data["schema"])

    @classmethod
    def from_json(cls, path: str | Path) -> Submission:
        return read_as(path, cls.from_dict, "submission", SUBMISSION_SCHEMA)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema,
                "board": {"name": self.board_name, "version": self.board_version},
                "router": self.router, "provenance": self.provenance, "scores": self.scores,
                "result": self.result.to_dict(), "checksum": self.checksum}

    def to_json(self) -> str:
        return json.dumps(encode(self.to_dict()), indent=1, allow_nan=False)

    def computed_checksum(self) -> str:
        return checksum(self.to_dict())

    def save(self, path: str | Path) -> Path:
        path = write_json(self.to_dict(), path, "submission")
        os.chmod(path, 0o644)  # a file meant to be shared and committed, not a private temp
        return path


def check_tolerance(value: float) -> float:
    """A relative tolerance: a finite number >= 0 (one line otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise LeaderboardError(f"tolerance must be a finite number >= 0, got {value!r}")
    return float(value)

