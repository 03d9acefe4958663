"""The ``routeharness`` command line: click + rich, a thin layer over the library.

Heavy libraries (torch, faiss, datasets, sentence-transformers) are imported only inside
the commands that need them, so ``--help`` and the listings start instantly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from routeharness import __version__
from routeharness.errors import RouteHarnessError, UnknownNameError


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


class _Group(click.Group):
    """Lets plugins add commands through the ``register_commands`` hook on first use."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if not _Group._plugins_loaded:
            _Group._plugins_loaded = True
            from routeharness.plugins import get_plugin_manager

            get_plugin_manager().hook.register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routeharness")
def cli() -> None:
    """routeharness: evaluate LLM routers on routing tasks, cost against quality.

    \b
    Quick start:
      routeharness eval --router knn --task routerbench
      routeharness routers | tasks | encoders | plugins
    """


# --- listings -----------------------------------------------------------------------------
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


def _report_failed_plugins() -> None:
    from routeharness.plugins import failed_plugins

    for info in failed_plugins():
        _console(stderr=True).print(f"[yellow]warning:[/] plugin {info.name!r} "
                                    f"({info.distribution}) failed to load and was skipped: "
                                    f"{info.error}")


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


# --- eval ---------------------------------------------------------------------------------
class _RichReporter:
    def __init__(self, quiet: bool = False):
        self.console = _console(stderr=True)
        self.quiet = quiet

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]•[/] {message}")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if self.quiet or not self.console.is_terminal:  # no bar redraws in logs and pipes
            yield lambda advance: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            handle = bar.add_task(description, total=total)
            yield lambda advance: bar.advance(handle, advance)


def _rich_table(report: Any) -> Any:
    """A ``routeharness.results.ReportTable`` as a rich table."""
    from rich.table import Table

    table = Table(title=report.title, title_justify="left")
    # router names never wrap, however narrow the terminal (reference rows may)
    names = [row[0] for row, style in zip(report.rows, report.styles) if style != "dim"]
    for i, header in enumerate(report.headers):
        table.add_column(header, justify="right" if i in report.right else "left",
                         min_width=max(map(len, names), default=None) if i == 0 else None)
    for i, (cells, style) in enumerate(zip(report.rows, report.styles)):
        if style:
            cells = [f"[{style}]{cells[0]}[/]", *cells[1:]]
        table.add_row(*cells, end_section=i in report.sections)
    return table


def print_tables(result: dict[str, Any]) -> None:
    """One rich table per task (and per group), reference rows below the routers; with
    several tasks, a summary ranking routers by mean AUC."""
    from routeharness.results import report_tables

    console = _console()
    for report in report_tables(result):
        console.print(_rich_table(report))
        if report.note:
            console.print(f"[dim]{report.note}[/]")


def _ranking_table(summary: dict[str, list[dict[str, Any]]]) -> Any:
    from routeharness.results import ranking_table

    return _rich_table(ranking_table(summary))


@cli.command(name="eval")
@click.option("--router", "-r", "routers", multiple=True, required=True,
              help="Router name (repeatable). See `routeharness routers`.")
@click.option("--task", "-t", "tasks", multiple=True, required=True,
              help="Task name, NAME:GROUP, or a local dataset path (repeatable).")
@click.option("--encoder", "-e", default="minilm", show_default=True,
              help="Encoder name, or NAME:ARG (e.g. st:/path/to/model).")
@click.option("--seeds", default="0", show_default=True,
              help="Seeds: a list like 0,1,2, a range like 0-4, or one seed.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="results.json",
              show_default=True, help="Where to save the result JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the cost-quality frontiers as a PNG.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_DATA", help="Directory of upstream data (default: embedded copy).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_CACHE", help="Embedding cache (default ~/.cache/routeharness).")
@click.option("--no-tune", is_flag=True, help="Use each router's defaults instead of tuning.")
@click.option("--bootstrap", default=200, show_default=True,
              help="Bootstrap resamples for the AUC confidence interval (0: none).")
@click.option("--no-references", is_flag=True, help="Leave out best-single, random and oracle.")
@click.option("--trust-hub-pickle", is_flag=True,
              help="Allow loading pickled Hub files (RouterBench's Hub copy). Unsafe: only for "
                   "repositories you trust.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run: reuse the runs saved in OUTPUT.partial "
                   "(written after every router x task x seed).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def eval_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str, seeds: str,
                 output: str, plot: str | None, data_dir: str | None, cache_dir: str | None,
                 no_tune: bool, bootstrap: int, no_references: bool, trust_hub_pickle: bool,
                 resume: bool, quiet: bool) -> None:
    """Evaluate routers on tasks: every router x task x seed; tables, JSON and plot."""
    from routeharness.registry import get_registry

    registry = get_registry("router")
    for name in routers:  # fail fast on a typo, before any loading
        registry.get(name)
    task_registry = get_registry("task")
    for spec in tasks:
        name = spec.partition(":")[0]
        from pathlib import Path

        if name not in task_registry and not Path(spec).exists() and name != "hub":
            task_registry.get(name)
    seed_list = _parse_seeds(seeds)
    from pathlib import Path

    from routeharness.evaluate import Protocol, evaluate
    from routeharness.results import load_json, plot_frontiers, save_json

    protocol = Protocol(seeds=tuple(seed_list), tune=not no_tune, n_bootstrap=bootstrap)
    options = {"trust_hub_pickle": True} if trust_hub_pickle else {}
    partial = Path(f"{output}.partial")
    earlier = None
    if resume:
        if partial.exists():
            earlier = load_json(partial)
            _console(stderr=True).print(f"resuming from {partial} "
                                        f"({len(earlier['records'])} runs saved)")
        else:
            _console(stderr=True).print(f"nothing to resume: no {partial}; running all")
    try:
        result = evaluate(list(routers), list(tasks), encoder=encoder, protocol=protocol,
                          data_dir=data_dir, cache_dir=cache_dir,
                          reporter=_RichReporter(quiet), references=not no_references,
                          task_options=options,
                          checkpoint=lambda so_far: save_json(so_far, partial), resume=earlier)
    except BaseException:
        if partial.exists():
            _console(stderr=True).print(f"the runs finished so far are in {partial}; the same "
                                        f"command with --resume continues from there")
        raise
    print_tables(result)
    save_json(result, output)
    partial.unlink(missing_ok=True)
    _console(stderr=True).print(f"results saved to {output}")
    if plot:
        plot_frontiers(result, plot)
        _console(stderr=True).print(f"frontier plot saved to {plot}")


def _parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2]; ``0-4`` -> [0, 1, 2, 3, 4]; ``7`` -> [7] (one seed, not a
    count); parts combine: ``0-2,10``. Duplicates are an error."""
    values: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            low, dash, high = part.partition("-")
            if dash and low:
                first, last = int(low), int(high)
                if last < first:
                    raise click.BadParameter(f"{part!r}: a range goes low-high, e.g. 0-4",
                                             param_hint="--seeds")
                values += range(first, last + 1)
            else:
                values.append(int(part))
    except ValueError:
        raise click.BadParameter(f"{text!r}: seeds are integers, e.g. 0,1,2 or 0-4",
                                 param_hint="--seeds") from None
    if not values:
        raise click.BadParameter("at least one seed", param_hint="--seeds")
    if min(values) < 0:
        raise click.BadParameter(f"{text!r}: seeds are non-negative", param_hint="--seeds")
    if len(set(values)) != len(values):
        raise click.BadParameter(f"{text!r} repeats a seed", param_hint="--seeds")
    return values


# --- results ----------------------------------------------------------------------------------
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


# --- check (the conformance kit) ------------------------------------------------------------
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


# --- leaderboards -----------------------------------------------------------------------------
@cli.group()
def leaderboard() -> None:
    """Boards: run a board's protocol, validate, verify and show submissions."""


_boards_dir_option = click.option(
    "--boards-dir", type=click.Path(file_okay=False), default=None,
    envvar="ROUTEHARNESS_LEADERBOARDS", help="Directory of boards (default: the built-in ones).")


@leaderboard.command(name="list")
@_boards_dir_option
def leaderboard_list(boards_dir: str | None) -> None:
    """List the boards and how many accepted submissions each has."""
    from rich.table import Table

    from routeharness.leaderboard import board_names, load_board

    table = Table(title="Leaderboards")
    for column in ("board", "tasks", "seeds", "main metric", "submissions"):
        table.add_column(column)
    for name in board_names(boards_dir):
        board = load_board(name, boards_dir)
        count = len(list(board.submissions_dir.glob("*.json"))) if board.submissions_dir.is_dir() else 0
        table.add_row(name, ", ".join(f"{t.name} v{t.version}" for t in board.tasks),
                      ",".join(map(str, board.seeds)), board.main_metric, str(count))
    _console().print(table)


@leaderboard.command(name="run")
@click.argument("board")
@click.option("--router", "-r", required=True, help="Router name (see `routeharness routers`).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Submission file (default: submission-BOARD-ROUTER.json).")
@_boards_dir_option
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_DATA", help="Directory of upstream data.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_CACHE", help="Embedding cache.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def leaderboard_run(board: str, router: str, output: str | None, boards_dir: str | None,
                    data_dir: str | None, cache_dir: str | None, quiet: bool) -> None:
    """Run BOARD's full protocol for a router and write a submission file."""
    from routeharness.leaderboard import load_board, run_board, save_submission
    from routeharness.registry import get_registry

    get_registry("router").get(router)  # a typo fails before any work
    definition = load_board(board, boards_dir)
    submission = run_board(definition, router, data_dir=data_dir, cache_dir=cache_dir,
                           reporter=_RichReporter(quiet))
    print_tables(submission["result"])
    path = save_submission(submission, output or f"submission-{definition.name}-{router}.json")
    overall = submission["scores"]["overall"][definition.main_metric]
    _console().print(f"{definition.name}: {router} mean {definition.main_metric} = "
                     f"{overall:.2f} over {len(definition.tasks)} task(s) x "
                     f"{len(definition.seeds)} seed(s)")
    _console(stderr=True).print(f"submission saved to {path}")


@leaderboard.command(name="validate")
@click.argument("file", type=click.Path(dir_okay=False))
@_boards_dir_option
@click.option("--no-data", is_flag=True, help="Skip comparing data fingerprints with local data.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_DATA", help="Directory of upstream data.")
def leaderboard_validate(file: str, boards_dir: str | None, no_data: bool,
                         data_dir: str | None) -> None:
    """Check a submission: schema, board version, tasks, numbers, checksum, fingerprints."""
    from routeharness.leaderboard import load_submission, validate_submission

    data = load_submission(file)
    problems = validate_submission(data, directory=boards_dir, check_data=not no_data,
                                   data_dir=data_dir)
    console = _console()
    if problems:
        console.print(f"[bold red]invalid[/] {file}: {len(problems)} problem(s)")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    board = data["board"]
    console.print(f"[green]valid[/] {file}: router {data['router']['name']} "
                  f"({data['router']['distribution']} {data['router']['version']}) on "
                  f"{board['name']} v{board['version']}, {len(data['result']['records'])} "
                  f"record(s)" + (", data fingerprints match" if not no_data else ""))


@leaderboard.command(name="verify")
@click.argument("file", type=click.Path(dir_okay=False))
@_boards_dir_option
@click.option("--tolerance", type=float, default=None,
              help="Relative tolerance per number (default: the board's).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_DATA", help="Directory of upstream data.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              envvar="ROUTEHARNESS_CACHE", help="Embedding cache.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def leaderboard_verify(file: str, boards_dir: str | None, tolerance: float | None,
                       data_dir: str | None, cache_dir: str | None, quiet: bool) -> None:
    """Re-run a submission and report each number that differs beyond the tolerance."""
    from rich.table import Table

    from routeharness.leaderboard import load_board, load_submission, verify_submission
    from routeharness.registry import get_registry

    data = load_submission(file)
    board = load_board(data["board"]["name"], boards_dir)
    entry = get_registry("router").get(data["router"]["name"])
    if (entry.distribution, entry.version) != (data["router"]["distribution"],
                                               data["router"]["version"]):
        _console(stderr=True).print(
            f"[yellow]warning:[/] the submission was made with {data['router']['distribution']} "
            f"{data['router']['version']}; installed here: {entry.distribution} {entry.version}")
    rows, _ = verify_submission(data, directory=boards_dir, tolerance=tolerance,
                                data_dir=data_dir, cache_dir=cache_dir,
                                reporter=_RichReporter(quiet))
    tol = board.tolerance if tolerance is None else tolerance
    differing = [r for r in rows if not r.ok]
    console = _console()
    table = Table(title=f"verify {file}: router {data['router']['name']} on {board.name} "
                        f"(relative tolerance {tol:g})", title_justify="left")
    for column in ("task", "seed", "number", "submitted", "re-run", "status"):
        table.add_column(column)

    def show(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, list):
            return "[" + ", ".join(show(v) for v in value) + "]"
        return str(value)

    for r in rows:
        table.add_row(r.task, str(r.seed), r.metric, show(r.submitted), show(r.rerun),
                      "[green]same[/]" if r.ok else "[bold red]DIFFERS[/]")
    console.print(table)
    if differing:
        console.print(f"[bold red]{len(differing)} of {len(rows)} number(s) differ[/]")
        sys.exit(1)
    console.print(f"[green]verified[/]: all {len(rows)} numbers reproduce")


@leaderboard.command(name="show")
@click.argument("board")
@click.option("--format", "fmt", type=click.Choice(["rich", "markdown", "json", "html"]),
              default="rich", show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@_boards_dir_option
def leaderboard_show(board: str, fmt: str, output: str | None, boards_dir: str | None) -> None:
    """Render BOARD's ranking of accepted submissions (leaderboards/BOARD/submissions/)."""
    from routeharness.leaderboard import (
        load_board,
        ranking,
        render_html,
        render_json,
        render_markdown,
        table_rows,
    )

    result = ranking(load_board(board, boards_dir))
    for name, problems in result.rejected:
        _console(stderr=True).print(f"[yellow]warning:[/] {name} is not a valid submission and "
                                    f"is left out: {'; '.join(problems)}", markup=True)
    if fmt == "rich":
        from rich.table import Table

        header, rows = table_rows(result)
        definition = result.board
        table = Table(title=f"{definition.name} (v{definition.version}): "
                            f"{definition.main_metric}, encoder {definition.encoder}, "
                            f"seeds {list(definition.seeds)}", title_justify="left")
        for column in header:
            table.add_column(column, justify="left" if column in ("router", "distribution")
                             else "right")
        for row in rows:
            table.add_row(*row)
        console = _console(stderr=False) if output is None else None
        if console is not None:
            console.print(table)
            return
        from rich.console import Console

        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=160).print(table)
        return
    text = {"markdown": render_markdown, "json": render_json, "html": render_html}[fmt](result)
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        _console(stderr=True).print(f"{fmt} leaderboard written to {output}")
    else:
        click.echo(text, nl=False)


# --- data: inspect, validate and build datasets ------------------------------------------
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print as one line (exit 1; unknown names exit 2)."""
    try:
        cli.main(args=argv, prog_name="routeharness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UnknownNameError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except RouteHarnessError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
