"""``routeharness results``: show and merge result files."""

from __future__ import annotations

import click

from routeharness.cli._app import _console, cli, print_tables


@cli.group()
def results() -> None:
    """Result files: show them, or merge the pieces of one matrix."""


@results.command(name="show")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Save the merged result set as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the cost-quality frontiers as a PNG.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table",
              show_default=True, help="Rich tables, or Markdown for a report.")
def results_show(files: tuple[str, ...], output: str | None, plot: str | None,
                 fmt: str) -> None:
    """Print the tables of one or more result files; several files (say, routers run in
    parallel processes) are merged first and must share protocol, encoder and data."""
    from routeharness.results import (
        load_json,
        merge_results,
        plot_frontiers,
        report_tables,
        save_json,
        to_markdown,
    )

    loaded = [(path, load_json(path)) for path in files]
    result = merge_results(loaded) if len(loaded) > 1 else loaded[0][1]
    if fmt == "markdown":
        click.echo(to_markdown(report_tables(result)))
    else:
        print_tables(result)
    if output:
        save_json(result, output)
        _console(stderr=True).print(f"merged results saved to {output}")
    if plot:
        plot_frontiers(result, plot)
        _console(stderr=True).print(f"frontier plot saved to {plot}")


