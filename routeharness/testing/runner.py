"""Running conformance checks: the ``Check`` and ``CheckResult`` types, expected failures,
and the classification passed / failed / xfail / xpass / skipped."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.routers.base import Tags, tags_of


class ConformanceError(RouteHarnessError):
    """A router, encoder or task card failed checks it was not expected to fail."""


@dataclass(frozen=True)
class Check:
    """One check bound to its name; ``skip`` says why it does not apply, if it does not."""

    name: str
    func: Callable[[Any], None]
    skip: str | None = None

    def __call__(self, obj: Any) -> None:
        self.func(obj)


@dataclass
class CheckResult:
    """The outcome of one check: passed, failed, xfail (expected), xpass, or skipped."""

    name: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


ExpectedFailures = Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None


def expected_failures_of(obj: Any, expected: ExpectedFailures = None) -> dict[str, str]:
    """Declared expected failures: the object's ``tags["expected_failures"]`` and the
    caller's mapping (or callable ``obj -> mapping``), check name -> reason."""
    tags = getattr(obj, "tags", None)
    if isinstance(tags, Tags) or hasattr(obj, "fit"):
        out = dict(tags_of(obj).expected_failures)
    else:  # encoders and task cards may carry a plain mapping
        out = dict((tags or {}).get("expected_failures", {}) or {}) if isinstance(tags, Mapping) \
            else {}
    if callable(expected):
        out.update(expected(obj) or {})
    elif expected:
        out.update(expected)
    return out


def run_checks(obj: Any, checks: list[Check], expected: Mapping[str, str]) -> list[CheckResult]:
    """Run each check; classify as passed / failed / xfail / xpass / skipped."""
    unknown = sorted(set(expected) - {c.name for c in checks})
    if unknown:
        raise ConformanceError(f"expected_failures names unknown check(s) {unknown}; "
                               f"the checks are {[c.name for c in checks]}")
    results = []
    for check in checks:
        if check.skip:
            results.append(CheckResult(check.name, "skipped", check.skip))
            continue
        started = time.perf_counter()
        try:
            check(obj)
        except Exception as exc:
            message = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
            message = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
            if check.name in expected:
                status, message = "xfail", f"{expected[check.name]} ({message})"
            else:
                status = "failed"
        else:
            status, message = ("xpass", f"expected to fail: {expected[check.name]}") \
                if check.name in expected else ("passed", "")
        results.append(CheckResult(check.name, status, message, time.perf_counter() - started))
    return results


def _raise_on_failures(what: str, results: list[CheckResult]) -> None:
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ConformanceError(f"{what} failed {len(failed)} check(s): " + "; ".join(
            f"{r.name}: {r.message}" for r in failed))
