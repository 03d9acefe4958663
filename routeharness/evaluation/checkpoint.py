"""Checkpoint and ``--resume`` for ``evaluate`` (and so for ``leaderboard run``): the
result so far saved atomically after every router x task x seed, and the saved records
a resumed run may reuse: same protocol (seeds aside), encoder, task data and router
distribution, version, class and fixed parameters, and numbers that follow from their
curves; anything else is refused in one line. Typed both ways: a ``ResultSet`` is saved,
a ``ResultSet`` is read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from routeharness.common.errors import CheckpointError, RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.results.records import ResultSet, RunRecord

if TYPE_CHECKING:
    from routeharness.evaluation.tuning import RouterRun


def save_checkpoint(result: ResultSet, path: str | Path) -> None:
    """The result so far, written atomically to ``path`` (an OSError: one line)."""
    try:
        result.save(path)
    except OSError as exc:
        raise RouteHarnessError(f"cannot write the checkpoint {path}: "
                                f"{exc.strerror or exc}") from None


@dataclass(frozen=True)
class Saved:
    """What a checkpoint holds that a resumed run may reuse: the records of this run's
    routers, and each task's data fingerprint when it was saved."""

    records: dict[tuple[str, str, int], RunRecord]
    fingerprints: dict[str, str]

    def record(self, key: tuple[str, str, int], fingerprint: str) -> RunRecord | None:
        """The saved record of (router label, task, seed), if its task's data is the
        same (``fingerprint``) as now."""
        record = self.records.get(key)
        return record if record is not None and \
            self.fingerprints.get(key[1]) == fingerprint else None


def load_checkpoint(path: str | Path, run: ResultSet, plans: Sequence[RouterRun],
                    reporter: Reporter) -> Saved:
    """The records saved in the checkpoint ``path`` that ``run`` (its protocol and
    encoder: ``ResultSet.new``) may reuse. Refused in one line when the saved protocol
    (seeds aside) or encoder differ from this run's, a saved record's numbers do not
    follow from its curve, or a saved record of a router in ``plans`` was made by another
    distribution, version, class or fixed parameters."""
    from routeharness.evaluation.scoring import record_problems
    from routeharness.evaluation.tuning import jsonable

    if not Path(path).exists():
        reporter.log(f"nothing to resume: no {path}; running everything")
        return Saved({}, {})

    def refuse(reason: str) -> CheckpointError:
        return CheckpointError(f"cannot resume from {path}: {reason}; delete it or run "
                               f"without --resume")

    try:
        saved = ResultSet.from_json(path)
    except RouteHarnessError as exc:
        raise refuse(str(exc).removeprefix(f"{path}: ")) from None
    for i, record in enumerate(saved.records):  # numbers that do not follow from the curve
        problems = record_problems(i, record)
        if problems:
            raise refuse(problems[0])
    differ = saved.incompatibilities(run)
    if differ:
        raise refuse(f"it was made with another {', '.join(differ)}")
    by_label = {plan.label: plan for plan in plans}
    out: dict[tuple[str, str, int], RunRecord] = {}
    for record in saved.records:
        plan = by_label.get(record.router)
        if plan is None:
            continue
        cls = plan.router_cls
        now = (plan.entry.distribution, plan.entry.version,
               f"{cls.__module__}.{cls.__qualname__}", jsonable(plan.fixed))
        then = (record.distribution, record.version, record.router_class,
                record.fixed_params or {})
        if now != then:
            raise refuse(f"its runs of router {plan.label!r} were made by {then[0]} "
                         f"{then[1]} ({then[2]}), this is {now[0]} {now[1]} ({now[2]})")
        out[record.key] = record
    reporter.log(f"resuming from {path} ({len(out)} runs saved)")
    return Saved(out, {name: task.fingerprint for name, task in saved.tasks.items()})
