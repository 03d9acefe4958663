"""``routeharness check``: the conformance kit on a registered router."""

from __future__ import annotations

import sys

import click

from routeharness.cli._app import cli
from routeharness.cli.render import format_option


@cli.command()
@click.argument("router")
@click.option("--xfail", "xfails", multiple=True, metavar="CHECK=REASON",
              help="Declare a check as an expected failure, with the reason (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help="Print each check's result as JSON (name, status, message, seconds).")
@format_option
def check(router: str, xfails: tuple[str, ...], as_json: bool, fmt: str) -> None:
    """Run the conformance kit on a registered router (exit 1 on an unexpected failure)."""
    from routeharness.testing import check_router, resolve_router

    expected = {}
    for item in xfails:
        name, sep, reason = item.partition("=")
        if not sep or not name.strip() or not reason.strip():
            raise click.BadParameter(f"{item!r}: use CHECK=REASON", param_hint="--xfail")
        expected[name.strip()] = reason.strip()
    instance = resolve_router(router)
    results = check_router(instance, expected_failures=expected, raise_on_failure=False)
    if as_json:
        import json

        click.echo(json.dumps([vars(r) for r in results], indent=1))
    else:
        from routeharness.cli.render import emit
        from routeharness.plugins.registry import get_registry
        from routeharness.results.tables import ReportTable

        entry = get_registry("router").get(router)
        table = ReportTable(f"Conformance of router {router!r} ({type(instance).__name__}, "
                            f"{entry.distribution} {entry.version})",
                            ["check", "status", "seconds", "detail"], right={2})
        styles = {"failed": "bold", "skipped": "dim"}
        for r in results:
            table.add([r.name, r.status, f"{r.seconds:.2f}", r.message], styles.get(r.status))
        counts = {s: sum(r.status == s for r in results)
                  for s in ("passed", "failed", "xfail", "xpass", "skipped")}
        table.note = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        emit([table], fmt)
    if any(r.status == "failed" for r in results):
        sys.exit(1)
