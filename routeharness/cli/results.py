"""``routeharness results``: show and merge result files."""

from __future__ import annotations

from pathlib import Path

import click

from routeharness.cli._app import cli, say
from routeharness.cli.render import emit, format_option
from routeharness.common.errors import RouteHarnessError


@cli.group()
def results() -> None:
    """Result files: show them, or merge the pieces of one matrix."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_show_outputs(files: tuple[str, ...], output: str | None, plot: str | None) -> None:
    """Refuse, before any work, an output that would overwrite an input or the other
    output (one line naming both)."""
    outputs = [(option, Path(value)) for option, value in (("--output", output),
                                                          ("--plot", plot)) if value]
    for option, path in outputs:
        for name in files:
            if _same_file(path, Path(name)):
                raise RouteHarnessError(f"{option} {path} is the input file {name}: "
                                        "it would be overwritten; choose another path")
    if len(outputs) == 2 and _same_file(outputs[0][1], outputs[1][1]):
        raise RouteHarnessError(f"--output and --plot are the same file ({output}); "
                                "choose two paths")


@results.command(name="show")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Save the merged result set as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the cost-quality frontiers as a PNG.")
@format_option
def results_show(files: tuple[str, ...], output: str | None, plot: str | None,
                 fmt: str) -> None:
    """Print the tables of one or more result files; several files (say, routers run in
    parallel processes) are merged first and must share protocol, encoder and data.
    Reference rows (best-single, random, oracle) found in several files with the same
    numbers are kept once."""
    from routeharness.results.records import ResultSet
    from routeharness.results.sets import merge_results, plot_frontiers, report_tables

    check_show_outputs(files, output, plot)
    loaded = [(path, ResultSet.from_json(path)) for path in files]
    result = merge_results(loaded) if len(loaded) > 1 else loaded[0][1]
    tables = report_tables(result)  # built before anything is written: a bad file fails here
    if output:
        result.save(output)
        say(f"merged results saved to {output}")
    if plot:
        plot_frontiers(result, plot)
        say(f"frontier plot saved to {plot}")
    emit(tables, fmt)
