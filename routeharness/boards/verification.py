"""Verified submissions: the record `leaderboard verify` leaves in a board, and what
makes a board row "verified".

A submission ``<board>/submissions/NAME.json`` is verified only when
``<board>/verifications/NAME.json`` exists and says that a re-run of the board's protocol
(``leaderboard verify``) reproduced every number within the board's tolerance, for the
submission's current checksum, with the routeharness, router plugin and encoder versions
the submission claims. Anything else (no record, a record for an older checksum, one
made with other versions or a looser tolerance, a failed re-run, a record edited by hand:
its own checksum no longer matches, an unreadable record) leaves the row unverified, with
the reason; ``leaderboard show`` lists such rows apart, below the board.

A record is only as good as the re-run behind it: CI (``.ci/verify_submissions``)
re-runs every submission whose file or record a pull request adds or changes, and
refuses one whose committed record would not mark it verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from routeharness.boards.definition import Board, LeaderboardError, Submission, checksum
from routeharness.common.errors import RouteHarnessError
from routeharness.common.jsonfiles import (
    exact_keys,
    flag,
    get,
    integer,
    items,
    mapping,
    number,
    optional_text,
    read_as,
    text,
    write_json,
)

VERIFICATION_SCHEMA = "routeharness.verification/1"
VERIFICATIONS_DIR = "verifications"
RECORD_KEYS = ("schema", "board", "submission", "submission_checksum", "router",
               "routeharness_version", "plugins", "encoder", "verified_at", "tolerance",
               "numbers", "differing", "matched", "checksum")


@dataclass(frozen=True)
class PluginUse:
    """One plugin a re-run used: its role (``router``, ``encoder``, ``task:NAME``), the
    registered name, and the distribution and version that provided it."""

    role: str
    name: str
    distribution: str | None
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "distribution": self.distribution,
                "version": self.version}


@dataclass(frozen=True)
class VerificationRecord:
    """The outcome of one ``leaderboard verify`` of a board's submission file."""

    board_name: str
    board_version: int
    submission: str
    submission_checksum: str
    router: str
    routeharness_version: str | None
    plugins: tuple[PluginUse, ...]
    encoder: dict[str, Any]
    verified_at: str
    tolerance: float
    numbers: int
    differing: int
    matched: bool
    checksum: str = ""
    schema: str = VERIFICATION_SCHEMA

    def plugin(self, role: str) -> PluginUse | None:
        return next((p for p in self.plugins if p.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema,
                "board": {"name": self.board_name, "version": self.board_version},
                "submission": self.submission, "submission_checksum": self.submission_checksum,
                "router": self.router, "routeharness_version": self.routeharness_version,
                "plugins": [p.to_dict() for p in self.plugins], "encoder": self.encoder,
                "verified_at": self.verified_at, "tolerance": self.tolerance,
                "numbers": self.numbers, "differing": self.differing,
                "matched": self.matched, "checksum": self.checksum}

    def computed_checksum(self) -> str:
        """sha256 over the record's canonical JSON, its checksum field left out."""
        return checksum(self.to_dict())  # the submissions' rule

    @classmethod
    def from_dict(cls, data: Any) -> VerificationRecord:
        data = mapping(data, "verification")
        exact_keys(data, RECORD_KEYS)
        board = get(data, "board", "", mapping)
        plugins = []
        for i, row in enumerate(get(data, "plugins", "", items)):
            where = f"plugins[{i}]"
            row = mapping(row, where)
            plugins.append(PluginUse(get(row, "role", where, text), get(row, "name", where, text),
                                     get(row, "distribution", where, optional_text, None),
                                     get(row, "version", where, optional_text, None)))
        encoder = get(data, "encoder", "", mapping)
        for key in ("name", "identity", "revision"):
            get(encoder, key, "encoder", optional_text, None)
        return cls(board_name=get(board, "name", "board", text),
                   board_version=get(board, "version", "board", integer),
                   submission=get(data, "submission", "", text),
                   submission_checksum=get(data, "submission_checksum", "", text),
                   router=get(data, "router", "", text),
                   routeharness_version=get(data, "routeharness_version", "", optional_text),
                   plugins=tuple(plugins), encoder=dict(encoder),
                   verified_at=get(data, "verified_at", "", text),
                   tolerance=get(data, "tolerance", "", number),
                   numbers=get(data, "numbers", "", integer),
                   differing=get(data, "differing", "", integer),
                   matched=get(data, "matched", "", flag),
                   checksum=get(data, "checksum", "", text), schema=data["schema"])


def record_path(board: Board, submission_path: str | Path) -> Path:
    """Where the verification record of a board's submission file lives."""
    return board.directory / VERIFICATIONS_DIR / Path(submission_path).name


def load_record(path: str | Path) -> VerificationRecord:
    """A verification record, its shape checked; one line naming the file otherwise."""
    try:
        return read_as(path, VerificationRecord.from_dict, "verification record",
                       VERIFICATION_SCHEMA)
    except RouteHarnessError as exc:
        raise LeaderboardError(str(exc)) from None


def plugins_used(board: Board, router: str) -> tuple[PluginUse, ...]:
    """The installed plugins a re-run of ``board`` for ``router`` uses (registry entries)."""
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.base import parse_router_spec

    wanted = [("router", "router", parse_router_spec(router).name),
              ("encoder", "encoder", board.encoder.split(":", 1)[0])]
    wanted += [(f"task:{t.name}", "task", t.name.split(":", 1)[0]) for t in board.tasks]
    uses = []
    for role, kind, name in wanted:
        entry = get_registry(kind).get(name)
        uses.append(PluginUse(role, name, entry.distribution, entry.version))
    return tuple(uses)


def make_record(board: Board, path: str | Path, submission: Submission, rows: list[Any],
                rerun: Submission, tolerance: float) -> VerificationRecord:
    """The record of one verify: ``rows`` are its comparisons (``leaderboard.Difference``),
    ``rerun`` the fresh submission (its routeharness version and encoder are the ones
    used here)."""
    encoder = rerun.provenance.get("encoder") or {}
    record = VerificationRecord(
        board_name=board.name, board_version=board.version, submission=Path(path).name,
        submission_checksum=submission.computed_checksum(), router=submission.router_name,
        routeharness_version=rerun.provenance.get("routeharness_version"),
        plugins=plugins_used(board, submission.router_name),
        encoder={k: encoder.get(k) for k in ("name", "identity", "revision")},
        verified_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        tolerance=float(tolerance), numbers=len(rows),
        differing=sum(1 for r in rows if not r.ok),
        matched=bool(rows) and all(r.ok for r in rows))
    return _signed(record)


def _signed(record: VerificationRecord) -> VerificationRecord:
    from dataclasses import replace

    return replace(record, checksum=record.computed_checksum())


def save_record(record: VerificationRecord, board: Board) -> Path:
    """Write ``record`` into ``board``'s ``verifications/`` folder (atomically)."""
    path = board.directory / VERIFICATIONS_DIR / record.submission
    return write_json(record.to_dict(), path, "verification record")


@dataclass(frozen=True)
class VerificationStatus:
    """Whether a board row counts as verified, and why (one line)."""

    verified: bool
    reason: str
    record: VerificationRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"verified": self.verified, "reason": self.reason,
                "verified_at": self.record.verified_at if self.record else None,
                "routeharness_version": self.record.routeharness_version
                if self.record else None}


def version_problems(record: VerificationRecord, submission: Submission) -> list[str]:
    """Where the versions a record was made with differ from what the submission claims."""
    problems = []
    claimed = submission.provenance.get("routeharness_version")
    if record.routeharness_version != claimed:
        problems.append(f"verified with routeharness {record.routeharness_version}, the "
                        f"submission claims {claimed}")
    router = record.plugin("router")
    stated = (submission.router.get("distribution"), submission.router.get("version"))
    if router is None or (router.distribution, router.version) != stated:
        found = f"{router.distribution} {router.version}" if router else "no router plugin"
        problems.append(f"verified with {found}, the submission claims {stated[0]} {stated[1]}")
    encoder = submission.provenance.get("encoder") or {}
    for key in ("identity", "revision"):
        if record.encoder.get(key) != encoder.get(key):
            problems.append(f"verified with encoder {key} {record.encoder.get(key)!r}, the "
                            f"submission claims {encoder.get(key)!r}")
    return problems


def verification_status(board: Board, path: str | Path,
                        submission: Submission) -> VerificationStatus:
    """Whether the submission file ``path`` of ``board`` is verified (see the module's
    docstring); a missing, unreadable or hand-edited record is unverified, with why."""
    where = record_path(board, path)
    short = f"{VERIFICATIONS_DIR}/{where.name}"
    if not where.exists():
        return VerificationStatus(False, "not verified: no verification record")
    try:
        record = load_record(where)
    except LeaderboardError as exc:
        return VerificationStatus(False, f"verification record unreadable: {exc}")
    if record.checksum != record.computed_checksum():
        return VerificationStatus(False, f"{short} was edited after verify wrote it (its "
                                         "checksum does not match)")
    problems = []
    if (record.board_name, record.board_version) != (board.name, board.version) or \
            record.submission != Path(path).name or record.router != submission.router_name:
        problems.append(f"{short} is for {record.submission} ({record.router}) on "
                        f"{record.board_name} v{record.board_version}")
    elif record.submission_checksum != submission.computed_checksum():
        problems.append("the submission changed after it was verified")
    elif not record.matched:
        problems.append(f"the re-run differed in {record.differing} of {record.numbers} "
                        "number(s)")
    elif record.tolerance > board.tolerance:
        problems.append(f"verified with tolerance {record.tolerance:g}, looser than the "
                        f"board's {board.tolerance:g}")
    else:
        problems += version_problems(record, submission)
    if problems:
        return VerificationStatus(False, "not verified: " + "; ".join(problems), record)
    return VerificationStatus(True, f"verified {record.verified_at[:10]} with routeharness "
                                    f"{record.routeharness_version}", record)


def installed_version_problems(committed: VerificationRecord,
                               fresh: VerificationRecord) -> list[str]:
    """Where a committed record names other versions than the re-run made here (CI's
    check: a record must name the versions its re-run really used)."""
    problems = []
    if committed.routeharness_version != fresh.routeharness_version:
        problems.append(f"the record says routeharness {committed.routeharness_version}, "
                        f"re-run here with {fresh.routeharness_version}")
    mine = {p.role: p for p in fresh.plugins}
    for use in committed.plugins:
        here = mine.get(use.role)
        if here is None or (here.distribution, here.version) != (use.distribution,
                                                                  use.version):
            found = f"{here.distribution} {here.version}" if here else "nothing"
            problems.append(f"the record says {use.role} from {use.distribution} "
                            f"{use.version}, re-run here with {found}")
    if committed.encoder != fresh.encoder:
        problems.append(f"the record's encoder {committed.encoder} is not the one used here "
                        f"{fresh.encoder}")
    return problems
