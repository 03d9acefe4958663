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

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, WithJsonSchema, field_serializer

from routeharness.boards.definition import (
    Board,
    BoardRef,
    LeaderboardError,
    Submission,
    checksum,
    submission_name_problem,
)
from routeharness.common.contract import Contract, Field, Number, dump_json, read_json
from routeharness.common.files import write_text
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.results.records import Count, encoder_as_read

VERIFICATION_SCHEMA = "routeharness.verification/1"
VERIFICATIONS_DIR = "verifications"


def _tolerance(value: float | None) -> float:
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a finite number >= 0, got {value!r}")
    return value


#: a relative tolerance: a finite number >= 0 (an int stays an int: the checksum is the
#: file's own)
Tolerance = Annotated[Number, AfterValidator(_tolerance),
                      WithJsonSchema({"type": "number", "minimum": 0})]


class PluginUse(Contract):
    """One plugin a re-run used: its role (``router``, ``encoder``, ``task:NAME``), the
    registered name, and the distribution and version that provided it."""

    role: str
    name: str
    distribution: str | None = None
    version: str | None = None


class VerificationRecord(Contract):
    """The outcome of one ``leaderboard verify`` of a board's submission file
    (``<board>/verifications/<file>``, ``routeharness.verification/1``): the submission's
    checksum it re-ran, the versions it ran with, how many numbers it compared and how
    many differed beyond the tolerance; self-checksummed."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["routeharness.verification/1"] = Field(alias="schema")
    board: BoardRef
    submission: str = Field(description="the submission's file name in submissions/")
    submission_checksum: str = Field(description="the checksum of the submission re-run")
    router: str
    routeharness_version: str | None
    plugins: list[PluginUse]
    encoder: EncoderIdentity
    verified_at: str = Field(description="when (ISO 8601, UTC)")
    tolerance: Tolerance = Field(
        description="the relative tolerance of the comparison")
    numbers: Count = Field(description="numbers compared")
    differing: Count = Field(description="numbers that differed beyond the tolerance")
    matched: bool
    checksum: str = Field(description="sha256: over the record, this key left out")

    _encoder = field_serializer("encoder", mode="wrap")(encoder_as_read)

    def plugin(self, role: str) -> PluginUse | None:
        return next((p for p in self.plugins if p.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON data its file holds."""
        return self.model_dump(mode="json", by_alias=True)

    def computed_checksum(self) -> str:
        """sha256 over the record's canonical JSON, its checksum field left out."""
        return checksum(self)  # the submissions' rule


def record_path(board: Board, submission_path: str | Path) -> Path:
    """Where the verification record of a board's submission file lives."""
    return board.directory / VERIFICATIONS_DIR / Path(submission_path).name


def load_record(path: str | Path) -> VerificationRecord:
    """A verification record, its shape checked; one line naming the file otherwise."""
    return read_json(path, VerificationRecord, "verification record",
                     schema=VERIFICATION_SCHEMA, error=LeaderboardError)


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
        uses.append(PluginUse(role=role, name=name, distribution=entry.distribution,
                              version=entry.version))
    return tuple(uses)


def make_record(board: Board, path: str | Path, submission: Submission, rows: list[Any],
                rerun: Submission, tolerance: float) -> VerificationRecord:
    """The record of one verify: ``rows`` are its comparisons (``leaderboard.Difference``),
    ``rerun`` the fresh submission (its routeharness version and encoder are the ones
    used here)."""
    encoder = rerun.provenance.encoder
    record = VerificationRecord(
        schema_=VERIFICATION_SCHEMA, board=BoardRef(name=board.name, version=board.version),
        submission=Path(path).name, submission_checksum=submission.computed_checksum(),
        router=submission.router_name,
        routeharness_version=rerun.provenance.routeharness_version,
        plugins=list(plugins_used(board, submission.router_name)),
        # what fixes the vectors (the record names no modalities)
        encoder=EncoderIdentity(name=encoder.name, identity=encoder.identity,
                                revision=encoder.revision),
        verified_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        tolerance=float(tolerance), numbers=len(rows),
        differing=sum(1 for r in rows if not r.ok),
        matched=bool(rows) and all(r.ok for r in rows), checksum="")
    return record.model_copy(update={"checksum": record.computed_checksum()})


def save_record(record: VerificationRecord, board: Board) -> Path:
    """Write ``record`` into ``board``'s ``verifications/`` folder (atomically)."""
    path = board.directory / VERIFICATIONS_DIR / record.submission
    return write_text(dump_json(record), path, "verification record")


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
    claimed = submission.provenance.routeharness_version
    if record.routeharness_version != claimed:
        problems.append(f"verified with routeharness {record.routeharness_version}, the "
                        f"submission claims {claimed}")
    router = record.plugin("router")
    stated = (submission.router.distribution, submission.router.version)
    if router is None or (router.distribution, router.version) != stated:
        found = f"{router.distribution} {router.version}" if router else "no router plugin"
        problems.append(f"verified with {found}, the submission claims {stated[0]} {stated[1]}")
    encoder = submission.provenance.encoder
    for key in ("identity", "revision"):
        claimed_value = getattr(encoder, key) if encoder is not None else None
        if getattr(record.encoder, key) != claimed_value:
            problems.append(f"verified with encoder {key} {getattr(record.encoder, key)!r}, "
                            f"the submission claims {claimed_value!r}")
    return problems


def verification_status(board: Board, path: str | Path,
                        submission: Submission) -> VerificationStatus:
    """Whether the submission file ``path`` of ``board`` is verified (see the module's
    docstring); a missing, unreadable or hand-edited record is unverified, with why."""
    where = record_path(board, path)
    short = f"{VERIFICATIONS_DIR}/{where.name}"
    named = submission_name_problem(Path(path).name)
    if named:
        return VerificationStatus(False, f"not verified: {named}")
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
    if (record.board.name, record.board.version) != (board.name, board.version) or \
            record.submission != Path(path).name or record.router != submission.router_name:
        problems.append(f"{short} is for {record.submission} ({record.router}) on "
                        f"{record.board.name} v{record.board.version}")
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
        def named(encoder: EncoderIdentity) -> str:
            return f"{encoder.name} ({encoder.identity}, revision {encoder.revision})"

        problems.append(f"the record's encoder {named(committed.encoder)} is not the one "
                        f"used here {named(fresh.encoder)}")
    return problems
