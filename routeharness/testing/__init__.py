"""The conformance kit for plugin authors, in the spirit of scikit-learn's
``check_estimator``.

In a plugin's own tests::

    from routeharness.testing import check_router, parametrize_with_checks
    from my_plugin import MyRouter

    @parametrize_with_checks([MyRouter()])
    def test_conformance(router, check):
        check(router)

or all at once: ``check_router(MyRouter())`` (raises ``ConformanceError`` naming every
failed check). From the shell: ``routeharness check NAME``. The checks run on small mock
problems shipped in ``routeharness.testing.mock`` (offline, a few seconds). A known
failure is declared with a reason, ``expected_failures={"check_name": "why"}``, or in the
router's ``Tags(expected_failures=...)``; it is then reported as ``xfail``, not as a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routeharness.testing.checks import router_checks
from routeharness.testing.component_checks import encoder_checks, task_card_checks
from routeharness.testing.runner import (
    Check,
    CheckResult,
    ConformanceError,
    ExpectedFailures,
    _raise_on_failures,
    expected_failures_of,
    run_checks,
)

__all__ = [
    "Check",
    "CheckResult",
    "ConformanceError",
    "check_encoder",
    "check_router",
    "check_task_card",
    "parametrize_with_checks",
    "resolve_router",
    "router_checks",
]


def resolve_router(router: Any) -> Any:
    """A router instance from an instance, a class (built with its defaults) or a name
    registered by a plugin."""
    if isinstance(router, str):
        from routeharness.plugins.registry import get_registry

        cls = get_registry("router").get(router).load()
        instance = cls()
        instance.__dict__.setdefault("_routeharness_name", router)
        return instance
    if isinstance(router, type):
        return router()
    return router


def check_router(router: Any, *, expected_failures: ExpectedFailures = None,
                 raise_on_failure: bool = True) -> list[CheckResult]:
    """Run every applicable router check on ``router`` (instance, class or registered
    name). Returns the results; raises ``ConformanceError`` on an unexpected failure
    unless ``raise_on_failure=False``."""
    instance = resolve_router(router)
    results = run_checks(instance, router_checks(instance),
                         expected_failures_of(instance, expected_failures))
    if raise_on_failure:
        _raise_on_failures(f"router {_label(instance)}", results)
    return results


def check_encoder(encoder: Any, *, expected_failures: ExpectedFailures = None,
                  raise_on_failure: bool = True) -> list[CheckResult]:
    """Run the encoder checks (shape, dtype, determinism, empty input) on ``encoder``
    (an Encoder object or a spec like ``"minilm"``)."""
    if isinstance(encoder, str):
        from routeharness.embedding.encoders import get_encoder

        encoder = get_encoder(encoder)
    results = run_checks(encoder, encoder_checks(encoder),
                         expected_failures_of(encoder, expected_failures))
    if raise_on_failure:
        _raise_on_failures(f"encoder {getattr(encoder, 'name', encoder)!r}", results)
    return results


def check_task_card(card: Any, *, expected_failures: ExpectedFailures = None,
                    raise_on_failure: bool = True) -> list[CheckResult]:
    """Run the task card checks (strict schema, version, pinned revision, unique name) on a
    card path, a registered task name or a parsed ``TaskCard``."""
    results = run_checks(card, task_card_checks(card), expected_failures_of(card, expected_failures))
    if raise_on_failure:
        _raise_on_failures(f"task card {card}", results)
    return results


def _label(router: Any) -> str:
    return getattr(router, "_routeharness_name", None) or type(router).__name__


def parametrize_with_checks(routers: Iterable[Any], *,
                            expected_failures: ExpectedFailures = None) -> Any:
    """A ``pytest.mark.parametrize("router, check", ...)`` with one test per router and
    check. Checks that do not apply are skipped with the reason; declared expected
    failures are ``xfail`` (non-strict) with theirs. ``routers`` may hold instances,
    classes or registered names; ``expected_failures`` is a mapping or a callable
    ``router -> mapping``."""
    import pytest

    params = []
    for router in routers:
        instance = resolve_router(router)
        expected = expected_failures_of(instance, expected_failures)
        for check in router_checks(instance):
            marks = []
            if check.skip:
                marks.append(pytest.mark.skip(reason=check.skip))
            elif check.name in expected:
                marks.append(pytest.mark.xfail(reason=expected[check.name], strict=False))
            params.append(pytest.param(instance, check, marks=marks,
                                       id=f"{_label(instance)}-{check.name}"))
    return pytest.mark.parametrize("router, check", params)
