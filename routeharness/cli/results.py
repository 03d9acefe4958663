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


@results.command(name="shadow")
@click.argument("log", type=click.Path(dir_okay=False))
@format_option
def results_shadow(log: str, fmt: str) -> None:
    """Compare the live router with the shadow router (serve --shadow) on serve's request
    LOG: how often they agree, and each one's mean predicted score and cost of its own
    choices and its most chosen model."""
    from routeharness.deploy.requestlog import read_log
    from routeharness.deploy.shadow import compare
    from routeharness.results.tables import ReportTable

    found = compare([line for _, line in read_log(log)])

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    table = ReportTable(
        title=f"live and shadow router on {log}: {found['requests']} routed requests, "
              f"agreement {found['agreement']:.1%}",
        headers=["role", "router", "requests", "predicted score", "predicted USD/1k",
                 "most chosen", "share"],
        rows=[[row["role"], row["router"], str(row["requests"]),
               number(row["predicted_score"], 3), number(row["predicted_usd_per_1k"], 4),
               row["top_model"], f"{row['top_share']:.0%}"] for row in found["rows"]],
        right={2, 3, 4, 6}, nowrap={0, 1, 5},
        note="each router's mean prediction for its own choices (routed requests with a "
             "shadow choice)")
    emit([table], fmt)
