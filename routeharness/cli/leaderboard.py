"""``routeharness leaderboard``: run, validate, verify and show boards."""

from __future__ import annotations

import sys

import click

from routeharness.cli._app import _console, _RichReporter, cli, print_tables


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


