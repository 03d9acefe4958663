"""Listings: routers, encoders, tasks, plugins."""

from __future__ import annotations

import click

from routeharness.cli._app import _report_failed_plugins, cli
from routeharness.cli.render import emit, format_option
from routeharness.results.tables import ReportTable


def registry_table(kind: str, title: str) -> ReportTable:
    """The registered ``kind`` entries (router, encoder) as one plain-text table."""
    from routeharness.plugins.registry import get_registry

    table = ReportTable(title, ["name", "description", "plugin", "distribution"])
    for entry in get_registry(kind).entries():
        table.add([entry.name, entry.description, entry.plugin,
                   f"{entry.distribution} {entry.version}"])
    return table


def router_table() -> ReportTable:
    """The registered routers with what each declares it can do after a fit
    (``routeharness.routers.base.Tags``): ``saveable`` (``fit``, ``route``, ``serve``),
    ``updatable`` (``update``) and ``online`` (``study online``). A router whose class cannot be imported shows "?" (``check
    NAME`` says why); the others are listed as usual."""
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.base import tags_of

    table = ReportTable("Routers", ["name", "description", "saveable", "updatable", "online",
                                    "plugin", "distribution"])
    unknown = False
    for entry in get_registry("router").entries():
        try:
            tags = tags_of(entry.load())
            flags = ["yes" if flag else "no"
                     for flag in (tags.saveable, tags.updatable, tags.online)]
        except Exception:  # one plugin's broken import must not hide the other routers
            flags, unknown = ["?", "?", "?"], True
        table.add([entry.name, entry.description, *flags, entry.plugin,
                   f"{entry.distribution} {entry.version}"])
    table.note = ("saveable: fit saves it as a folder that route and serve load; updatable: "
                  "update adds new outcomes to a saved one without retraining; online: learns "
                  "from live outcomes in study online (partial_fit)"
                  + ("; ?: its class cannot be imported (routeharness check NAME says why)"
                     if unknown else ""))
    return table


@cli.command()
@format_option
def routers(fmt: str) -> None:
    """List the registered routers, and which can be saved (fit, route, serve) and updated
    without retraining (update)."""
    emit([router_table()], fmt)
    _report_failed_plugins()


@cli.command()
@format_option
def encoders(fmt: str) -> None:
    """List the registered encoders."""
    emit([registry_table("encoder", "Encoders")], fmt)
    _report_failed_plugins()


def licence_summary(licence: str) -> str:
    """A card's licence up to its first sentence or clause end (``. `` or ``; ``): the
    licence's name and holder, e.g. ``MIT (RouterBench)``; the card has the full text."""
    import re

    return re.split(r"(?<=\S)[.;]\s", " ".join(licence.split()), maxsplit=1)[0]


def task_table() -> ReportTable:
    """The registered tasks, each with the licence its card states."""
    from routeharness.common.errors import RouteHarnessError
    from routeharness.data.cards import load_card
    from routeharness.plugins.registry import get_registry

    table = ReportTable("Tasks", ["name", "description", "licence", "plugin", "distribution"])
    for entry in get_registry("task").entries():
        card_path = entry.options.get("card")
        try:
            licence = licence_summary(load_card(card_path).license) if card_path else "-"
        except RouteHarnessError:
            licence = "(invalid task card)"  # `routeharness data info NAME` says what is wrong
        table.add([entry.name, entry.description, licence, entry.plugin,
                   f"{entry.distribution} {entry.version}"])
    table.note = "licence: the first clause of each task card's licence (tasks/<name>.yaml)"
    return table


@cli.command()
@format_option
def tasks(fmt: str) -> None:
    """List the registered tasks and the licence of each one's data."""
    emit([task_table()], fmt)
    _report_failed_plugins()


@cli.command()
@format_option
@click.option("--json", "as_json", is_flag=True,
              help="Print every plugin's full record as JSON (a list of objects).")
def plugins(fmt: str, as_json: bool) -> None:
    """List the plugins: distribution, version, hooks and status (failed ones too)."""
    from routeharness.plugins.host import plugin_infos
    from routeharness.plugins.registry import collect_all

    # run every registration hook first, so that a plugin whose hook fails shows as failed
    collect_all()
    cli._load_plugin_commands()
    infos = plugin_infos()
    if as_json:
        import json

        click.echo(json.dumps([vars(i) for i in infos], indent=1, ensure_ascii=False))
    else:
        table = ReportTable("Plugins", ["name", "distribution", "version", "hooks", "status"])
        for info in infos:
            status = f"failed: {info.error}" if info.error else (
                "built-in" if info.builtin else "installed")
            table.add([info.name, info.distribution, info.version, ", ".join(info.hooks),
                       status])
        emit([table], fmt)
    _report_failed_plugins()  # on stderr, as every listing does


