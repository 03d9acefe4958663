"""``routeharness check``: the conformance kit on a registered router."""

from __future__ import annotations

import sys

import click

from routeharness.cli._app import _console, cli


@cli.command()
@click.argument("router")
@click.option("--xfail", "xfails", multiple=True, metavar="CHECK=REASON",
              help="Declare a check as an expected failure, with the reason (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def check(router: str, xfails: tuple[str, ...], as_json: bool) -> None:
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
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        import json

        click.echo(json.dumps([vars(r) for r in results], indent=1))
    else:
        from rich.table import Table

        from routeharness.registry import get_registry

        entry = get_registry("router").get(router)
        table = Table(title=f"Conformance of router {router!r} ({type(instance).__name__}, "
                            f"{entry.distribution} {entry.version})", title_justify="left")
        for column in ("check", "status", "seconds", "detail"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        colours = {"passed": "green", "failed": "bold red", "xfail": "yellow",
                   "xpass": "yellow", "skipped": "dim"}
        for r in results:
            table.add_row(r.name, f"[{colours[r.status]}]{r.status}[/]", f"{r.seconds:.2f}",
                          r.message)
        console = _console()
        console.print(table)
        counts = {s: sum(r.status == s for r in results) for s in colours}
        console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if failed:
        sys.exit(1)


