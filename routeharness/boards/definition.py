"""Leaderboard data: board definitions (``leaderboards/<name>/board.yaml``: ``Board``, strict)
and the ``Submission`` record (a leaderboard submission file, ``routeharness.submission/1``),
both ``routeharness.common.contract`` models.

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
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    field_serializer,
    model_validator,
)

from routeharness.common.contract import (
    Contract,
    Field,
    NonNegative,
    Number,
    check,
    dump_json,
    read_json,
    read_yaml,
)
from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.common.files import write_text
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.evaluation.protocol import SEED_LIMIT
from routeharness.results.records import (
    JsonData,
    ProtocolRecord,
    Record,
    RecordFormatError,
    ResultSet,
    Seed,
    encoder_as_read,
)

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
    if not isinstance(value, str) or not BOARD_NAME.match(value) or ".." in value:
        return "must be a plain name (letters, digits, '.', '_', '-'), not a path"
    return None


def _plain_name(value: str) -> str:
    problem = _board_name(value)
    if problem:
        raise ValueError(f"{problem}, got {json.dumps(value)}")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError(f"must not be empty, got {json.dumps(value)}")
    return value


def _board_seeds(value: list[int]) -> list[int]:
    bad = [s for s in value if not 0 <= s < SEED_LIMIT]
    if not value or bad or len(set(value)) != len(value):
        raise ValueError(f"must be a non-empty list of distinct integers in "
                         f"0..{SEED_LIMIT - 1}" + (f", got {bad[0]!r}" if bad else ""))
    return value


def _unique_names(value: list[BoardTask]) -> list[BoardTask]:
    names = [t.name for t in value]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ValueError(f"name {twice!r} is listed twice")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]
Positive = Annotated[int, Field(gt=0)]


class BoardTask(Contract):
    """A task a board runs, pinned to its version."""

    name: Text = Field(description="a registered task (NAME or NAME:GROUP)")
    version: Positive = Field(description="the task card's version the board pins")


class BoardProtocol(Contract):
    """The protocol options a board fixes (the rest are the protocol's defaults)."""

    # no defaults of its own: an option the board leaves out is the protocol's default
    tune: bool = Field(None, description="tune on validation (false: defaults only)")
    max_configs: Positive = Field(None, description="at most this many configurations tuned")
    n_bootstrap: Annotated[int, Field(ge=0)] = Field(None,
                                                     description="bootstrap resamples")

    def options(self) -> dict[str, Any]:
        """The options the board sets (``Protocol`` keyword arguments)."""
        return {k: getattr(self, k) for k in self.model_fields_set}


class Board(Contract):
    """A board definition (``board.yaml``): its tasks, encoder, seeds and protocol, the
    main metric submissions are ranked by and the tolerance ``verify`` allows. The name
    ends in ``-v<version>`` (a changed board is a new version) and is its folder's."""

    model_config = ConfigDict(populate_by_name=True)

    name: Annotated[str, AfterValidator(_plain_name)] = Field(
        description="the board's folder name, ending in -v<version>")
    version: Positive
    description: Text
    tasks: Annotated[list[BoardTask], Field(min_length=1), AfterValidator(_unique_names)]
    encoder: Text = Field(description="the encoder every submission runs with")
    seeds: Annotated[list[int], AfterValidator(_board_seeds)]
    protocol_options: BoardProtocol = Field(alias="protocol")
    main_metric: Literal["auc", "quality_at_0"] = Field(
        description="what submissions are ranked by (" + "; ".join(
            f"{k}: {v}" for k, v in MAIN_METRICS.items()) + ")")
    tolerance: NonNegative = Field(DEFAULT_TOLERANCE,
                                   description="relative tolerance of verify's re-run")
    notes: str = ""

    _path: Path = PrivateAttr(default=Path(BOARD_FILE))

    @model_validator(mode="after")
    def _versioned_name(self) -> Board:
        if not self.name.endswith(f"-v{self.version}"):
            raise ValueError(f"board name {self.name!r} must end in '-v{self.version}' (a "
                             "changed board is a new version)")
        return self

    @property
    def path(self) -> Path:
        """Its ``board.yaml``."""
        return self._path

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def submissions_dir(self) -> Path:
        return self.directory / SUBMISSIONS_DIR

    def protocol(self) -> Any:
        from routeharness.evaluation.protocol import Protocol

        return Protocol(seeds=tuple(self.seeds), **self.protocol_options.options())

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
    """A board definition (parsed YAML) as a ``Board``: unknown, missing and mistyped keys,
    and values out of range, are one line naming the file and the key; a ``board.yaml``
    must sit in a folder named like its board."""
    return _placed(check(Board, data, str(path), LeaderboardError), path)


def _placed(board: Board, path: Path) -> Board:
    """``board`` read from ``path``, which must sit in a folder named like it."""
    if path.name == BOARD_FILE and path.parent.name != board.name:
        raise LeaderboardError(f"{path}: board {board.name!r} must live in a folder named "
                               f"{board.name}/")
    board._path = path
    return board


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
    board = read_yaml(path, Board, "board file", error=LeaderboardError)
    return check_registered(_placed(board, path))


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


#: a submission's file name in a board's folder: plain ASCII, so that every tool sees it
#: as it is (git quotes other names in its line output, where CI once missed a forgery)
SUBMISSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.json")


def submission_name_problem(name: str) -> str | None:
    """Why ``name`` may not be a submission's file name in a board's folder, or None."""
    if SUBMISSION_NAME.fullmatch(name):
        return None
    return (f"file name {name!r} is not plain ASCII (letters, digits, '.', '_' and '-', "
            "ending in .json): rename it")


def board_of_file(path: str | Path) -> Board | None:
    """The board whose ``submissions/`` folder holds ``path``, if any: a submission in a
    board's folder is checked against that board, whatever board it names; its file name
    must be plain ASCII (``submission_name_problem``)."""
    folder = Path(path).resolve().parent
    board_file = folder.parent / BOARD_FILE
    if folder.name == SUBMISSIONS_DIR and board_file.is_file():
        problem = submission_name_problem(Path(path).name)
        if problem:
            raise LeaderboardError(f"{path}: {problem}")
        return load_board(board_file)
    return None


# --- submissions ------------------------------------------------------------------------------
def checksum(data: Any) -> str:
    """sha256 over a submission's (or a verification record's) canonical JSON, the
    checksum field left out: keys sorted, no spaces, non-ASCII escaped. ``data``: the
    model, or its JSON data (``to_dict()``)."""
    body = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    body = {k: v for k, v in body.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"),
                           allow_nan=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


class BoardRef(Contract):
    """The board a file is for: its name and version."""

    name: str
    version: int


class SubmittedRouter(Record):
    """The router a submission ran: its label, plugin, distribution and version, class and
    kind, and the parameters each task x seed was fitted with (``TASK/seedN``)."""

    name: str = Field(description="the router's label (NAME or NAME:PARAM=VALUE,...)")
    plugin: str | None = None
    distribution: str | None = Field(description="the distribution that provides it")
    version: str | None = Field(description="that distribution's version")
    router_class: str | None = Field(None, alias="class")
    kind: str | None = Field(None, description="utility or selection")
    upper_bound: bool = Field(False, description="never true for a valid submission")
    params: dict[str, JsonData] = Field(default_factory=dict,
                                        description="fitted parameters per TASK/seedN")
    fixed_params: dict[str, JsonData] | None = Field(None, description="parameters fixed "
                                                                       "on the command line")


class TaskProvenance(Record):
    """A task as a submission ran it: card version, dataset revision, data fingerprint."""

    version: int | None = None
    revision: str | None = None
    fingerprint: str | None = None


class SubmissionProvenance(Record):
    """Where and how a submission was made."""

    routeharness_version: str | None = None
    git_commit: str | None = None
    created: str = Field(description="when the run started (ISO 8601, UTC)")
    platform: dict[str, JsonData] = Field(default_factory=dict)
    encoder: EncoderIdentity | None = None
    tasks: dict[str, TaskProvenance]
    seeds: list[Seed] | None = None
    protocol: ProtocolRecord | None = None

    _encoder = field_serializer("encoder", mode="wrap")(encoder_as_read)


class Submission(Contract):
    """A leaderboard submission file (``routeharness.submission/1``): one router's run of
    a board's full protocol: the board's name and version, the router, provenance,
    ``scores`` (per task mean and std over seeds of the headline metrics, and
    ``overall``), the full ``result`` set, and a checksum over the rest."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["routeharness.submission/1"] = Field(alias="schema",
                                                          description="the file format")
    board: BoardRef = Field(description="the board the submission is for")
    router: SubmittedRouter = Field(description="the router it ran")
    provenance: SubmissionProvenance = Field(description="where and how it was made")
    scores: dict[str, dict[str, Number]] = Field(
        description="per task (and overall) the mean and std over seeds of each metric")
    result: ResultSet = Field(description="the full result set of the board's protocol")
    checksum: str = Field(description="sha256: over the file's canonical JSON, this key "
                                      "left out")

    @property
    def board_name(self) -> str:
        return self.board.name

    @property
    def board_version(self) -> int:
        return self.board.version

    @property
    def router_name(self) -> str:
        return self.router.name

    @property
    def upper_bound(self) -> bool:
        return self.router.upper_bound

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Submission:
        return check(cls, data, where, RecordFormatError)

    @classmethod
    def from_json(cls, path: str | Path) -> Submission:
        return read_json(path, cls, "submission", schema=SUBMISSION_SCHEMA,
                         error=RecordFormatError)

    def to_dict(self) -> dict[str, Any]:
        """The submission as the JSON data its file holds."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return dump_json(self)

    def computed_checksum(self) -> str:
        return checksum(self)

    def signed(self) -> Submission:
        """This submission with its checksum computed."""
        return self.model_copy(update={"checksum": self.computed_checksum()})

    def save(self, path: str | Path) -> Path:
        path = write_text(self.to_json(), path, "submission")
        os.chmod(path, 0o644)  # a file meant to be shared and committed, not a private temp
        return path


def check_tolerance(value: float) -> float:
    """A relative tolerance: a finite number >= 0 (one line otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise LeaderboardError(f"tolerance must be a finite number >= 0, got {value!r}")
    return float(value)

