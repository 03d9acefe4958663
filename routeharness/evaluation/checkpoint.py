"""Checkpoint and ``--resume`` for ``evaluate`` (and so for ``leaderboard run``): the
result so far saved atomically after every router x task x seed, and the saved records
a resumed run may reuse: same protocol (seeds aside), encoder, task data and router
distribution, version, class and fixed parameters, and numbers that follow from their
curves; anything else is refused in one line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routeharness.common.errors import CheckpointError, RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.evaluation.protocol import Protocol
from routeharness.results.records import ResultSet

if TYPE_CHECKING:
    from routeharness.evaluation.tuning import RouterRun


def save_checkpoint(result: dict[str, Any], path: str | Path) -> None:
    """The result so far, written atomically to ``path`` (an OSError: one line)."""
    from routeharness.results.sets import save_json

    try:
        save_json(result, path)
    except OSError as exc:
        raise RouteHarnessError(f"cannot write the checkpoint {path}: "
                                f"{exc.strerror or exc}") from None


def load_checkpoint(path: str | Path, protocol: Protocol, encoder: Any,
                    plans: Sequence[RouterRun], reporter: Reporter
                    ) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Records saved in the checkpoint ``path``, keyed by (router label, task, seed), with
    their task's data fingerprint. Refused in one line when the saved protocol (seeds
    aside) or encoder differ from this run's, or a saved record of a router in ``plans``
    was made by another distribution, version, class or fixed parameters."""
    from routeharness.evaluation.scoring import record_problems
    from routeharness.evaluation.tuning import jsonable as _jsonable
    from routeharness.results.sets import incompatibilities, load_json

    if not Path(path).exists():
        reporter.log(f"nothing to resume: no {path}; running everything")
        return {}

    def refuse(reason: str) -> CheckpointError:
        return CheckpointError(f"cannot resume from {path}: {reason}; delete it or run "
                               f"without --resume")

    try:
        saved = load_json(path)
        typed = ResultSet.from_dict(saved)
    except RouteHarnessError as exc:
        raise refuse(str(exc).removeprefix(f"{path}: ")) from None
    for i, record in enumerate(typed.records):  # numbers that do not follow from the curve
        problems = record_problems(i, record)
        if problems:
            raise refuse(problems[0])
    differ = incompatibilities(saved, ResultSet.new(protocol, encoder))
    if differ:
        raise refuse(f"it was made with another {', '.join(differ)}")
    by_label = {plan.label: plan for plan in plans}
    fingerprints = {name: task.get("fingerprint")
                    for name, task in saved.get("tasks", {}).items()}
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for record in saved.get("records", []):
        plan = by_label.get(record.get("router"))
        if plan is None:
            continue
        cls = plan.router_cls
        now = (plan.entry.distribution, plan.entry.version,
               f"{cls.__module__}.{cls.__qualname__}", _jsonable(plan.fixed))
        then = (record.get("distribution"), record.get("version"), record.get("router_class"),
                record.get("fixed_params", {}))
        if now != then:
            raise refuse(f"its runs of router {plan.label!r} were made by {then[0]} "
                         f"{then[1]} ({then[2]}), this is {now[0]} {now[1]} ({now[2]})")
        out[(plan.label, record["task"], int(record["seed"]))] = {
            "record": record, "task_fingerprint": fingerprints.get(record["task"])}
    reporter.log(f"resuming from {path} ({len(out)} runs saved)")
    return out
