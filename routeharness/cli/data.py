"""``routeharness data``: inspect, validate and build routing datasets."""

from __future__ import annotations

import click

from routeharness.cli._app import _console, cli
from routeharness.errors import RouteHarnessError


@cli.group()
def data() -> None:
    """Inspect, validate and build routing datasets."""


@data.command(name="info")
@click.argument("task")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_DATA", help="Directory of upstream data (default: embedded copy).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def data_info(task: str, data_dir: str | None, as_json: bool) -> None:
    """Sizes, per-model mean score and cost, best single model, oracle, missing cells and
    duplicate or leaked prompts of TASK (a name, NAME:GROUP, a path or hub:ORG/NAME)."""
    from routeharness.results import fmt as _fmt
    from routeharness.tasks import task_info

    info = task_info(task, data_dir=data_dir)
    if as_json:
        import json

        click.echo(json.dumps(info, indent=1))
        return
    from rich.table import Table

    console, splits = _console(), info["splits"]
    console.width = max(console.width, 150)  # model names must not be cut when piped
    console.print(f"[bold]{info['name']}[/] v{info['version']}  source: {info['source']}"
                  + (f"  revision: {info['revision']}" if info.get("revision") else ""))
    sizes = Table(title="prompts per split and group", title_justify="left")
    sizes.add_column("group")
    for split in splits:
        sizes.add_column(split, justify="right")
    sizes.add_column("total", justify="right")
    for group in info["groups"]:
        counts = [info["sizes"][s][group] for s in splits]
        sizes.add_row(group, *map(str, counts), str(sum(counts)))
    totals = [sum(info["sizes"][s].values()) for s in splits]
    sizes.add_row("[bold]all[/]", *(f"[bold]{t}[/]" for t in totals), f"[bold]{sum(totals)}[/]")
    console.print(sizes)
    models = Table(title="models: mean score (x100) and mean cost ($ per 1k prompts)",
                   title_justify="left")
    models.add_column("model", no_wrap=True)
    for split in splits:
        models.add_column(f"score {split}", justify="right")
    for split in splits:
        models.add_column(f"$/1k {split}", justify="right")
    models.add_column("missing", justify="right")
    for row in info["models"]:
        models.add_row(row["model"], *(_fmt(row["score"][s]) for s in splits),
                       *(_fmt(1000 * row["cost_usd"][s], None, 3) for s in splits),
                       str(sum(row["missing"].values())))
    console.print(models)
    summary = Table(title="reference points", title_justify="left")
    summary.add_column("")
    for split in splits:
        summary.add_column(split, justify="right")
    summary.add_row("best single model", *(f"{info['best_single'][s]['model']} "
                                           f"({info['best_single'][s]['score']:.2f})"
                                           for s in splits))
    summary.add_row("oracle (complete rows)", *(_fmt(info["oracle"][s]) for s in splits))
    summary.add_row("missing cells", *(str(info["missing_cells"][s]) for s in splits))
    summary.add_row("rows with a missing cell", *(str(info["incomplete_rows"][s])
                                                  for s in splits))
    summary.add_row("duplicate prompts within", *(str(info["duplicates"][s]) for s in splits))
    console.print(summary)
    err = _console(stderr=True)
    for pair, count in info["leaks"].items():
        if count:
            later, earlier = pair.split("-")
            err.print(f"[yellow]warning:[/] {count} {later} prompt{'s' if count > 1 else ''} "
                      f"also appear{'s' if count == 1 else ''} in {earlier} (duplicated or "
                      "leaked prompts)")
    if not any(info["leaks"].values()):
        console.print("[dim]no prompt is shared between train, validation and test[/]")


@data.command(name="validate")
@click.argument("path", type=click.Path())
def data_validate(path: str) -> None:
    """Check a dataset (file or directory, canonical layout) and print every problem with
    its file, row and column; exit 1 if there is any."""
    from routeharness.tasks import validate_path

    problems = validate_path(path)
    if not problems:
        _console().print(f"[green]ok:[/] {path} follows the routeharness dataset schema")
        return
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    raise RouteHarnessError(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
                            " found")


@data.command(name="build")
@click.argument("task")
@click.option("--source", required=True, type=click.Path(file_okay=False),
              help="Directory with the upstream raw layout (see the task card).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="New directory for the canonical dataset (datasets save_to_disk).")
@click.option("--suite", default=None,
              help="Upstream release/suite to build, for tasks that have several (vhelm-mm).")
def data_build(task: str, source: str, out: str, suite: str | None) -> None:
    """Convert TASK's upstream layout into the canonical dataset, with a dataset card."""
    from routeharness.tasks import build_task

    built = build_task(task, source, out, **({"suite": suite} if suite else {}))
    sizes = ", ".join(f"{s} {d.n}" for s, d in built.splits.items())
    click.echo(f"built {built.name} v{built.version} in {out}: {sizes}; "
               f"{len(built.models)} models; loads with --task {out}")


