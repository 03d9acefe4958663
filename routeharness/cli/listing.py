"""Listings: routers, encoders, tasks, plugins."""

from __future__ import annotations

import click

from routeharness.cli._app import _console, _report_failed_plugins, cli


def _registry_table(kind: str, title: str) -> None:
    from rich.table import Table

    from routeharness.registry import get_registry

    table = Table(title=title)
    for column in ("name", "description", "plugin", "distribution"):
        table.add_column(column)
    for entry in get_registry(kind).entries():
        table.add_row(entry.name, entry.description, entry.plugin,
                      f"{entry.distribution} {entry.version}")
    _console().print(table)
    _report_failed_plugins()



@cli.command()
def routers() -> None:
    """List the registered routers."""
    _registry_table("router", "Routers")


@cli.command()
def encoders() -> None:
    """List the registered encoders."""
    _registry_table("encoder", "Encoders")


@cli.command()
def tasks() -> None:
    """List the registered tasks."""
    _registry_table("task", "Tasks")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List the loaded plugins: distribution, version and hooks (failed ones too)."""
    from routeharness.plugins import plugin_infos

    infos = plugin_infos()
    if as_json:
        import json

        click.echo(json.dumps([vars(i) for i in infos], indent=1))
        return
    from rich.table import Table

    table = Table(title="Plugins")
    for column in ("name", "distribution", "version", "hooks", "status"):
        table.add_column(column)
    for info in infos:
        status = "[red]failed: " + info.error + "[/]" if info.error else (
            "built-in" if info.builtin else "installed")
        table.add_row(info.name, info.distribution, info.version, ", ".join(info.hooks), status)
    _console().print(table)


