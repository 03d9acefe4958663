"""``routeharness leaderboard``: run, validate, verify and show boards."""

from __future__ import annotations

import math
import sys
from typing import Any, NoReturn

import click

from routeharness.cli._app import (
    cache_dir_option,
    cli,
    data_dir_option,
    executor_options,
    print_tables,
    quiet_option,
    say,
)
from routeharness.cli.progress import RichReporter
from routeharness.cli.render import FORMATS, emit, format_option


@cli.group()
def leaderboard() -> None:
    """Boards: run a board's protocol, validate, verify and show submissions."""


_boards_dir_option = click.option(
    "--boards-dir", type=click.Path(file_okay=False), default=None,
    envvar="ROUTEHARNESS_LEADERBOARDS", help="Directory of boards (default: the built-in ones).")


def _warn(message: str) -> None:
    """A plain-text warning on stderr (file and router names are never read as markup)."""
    say(f"warning: {message}")


@leaderboard.command(name="list")
@_boards_dir_option
@format_option
def leaderboard_list(boards_dir: str | None, fmt: str) -> None:
    """List the boards and how many submission files each has."""
    from routeharness.boards.definition import board_names, load_board
    from routeharness.results.tables import ReportTable

    table = ReportTable(title="Leaderboards",
                        headers=["board", "tasks", "seeds", "main metric", "submissions"],
                        right={4})
    for name in board_names(boards_dir):
        board = load_board(name, boards_dir)
        table.add([name, ", ".join(f"{t.name} v{t.version}" for t in board.tasks),
                   ",".join(map(str, board.seeds)), board.main_metric,
                   str(len(board.submission_files()))])
    emit([table], fmt)


@leaderboard.command(name="run")
@click.argument("board")
@click.option("--router", "-r", required=True,
              help="Router name, or NAME:PARAM=VALUE,... to fix hyper-parameters "
                   "(see `routeharness routers`).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Submission file (default: submission-BOARD-ROUTER.json).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUTPUT.partial (written after every "
                   "task x seed).")
@_boards_dir_option
@data_dir_option
@cache_dir_option
@executor_options
@format_option
@quiet_option
def leaderboard_run(board: str, router: str, output: str | None, resume: bool,
                    boards_dir: str | None, data_dir: str | None, cache_dir: str | None,
                    executor: str, address: str | None, fmt: str, quiet: bool) -> None:
    """Run BOARD's full protocol for a router and write a submission file."""
    import re

    from routeharness.boards.definition import check_board_output, load_board
    from routeharness.boards.run import run_board
    from routeharness.common.files import check_output_path
    from routeharness.evaluation.executors import get_executor
    from routeharness.evaluation.tuning import plan_routers

    label = plan_routers([router], references=False)[0].label  # typos fail before work
    definition = load_board(board, boards_dir)
    default = f"submission-{definition.name}-{re.sub(r'[^A-Za-z0-9._-]+', '_', label)}.json"
    path = check_board_output(output or default, "submission", boards_dir, definition)
    partial = check_output_path(f"{path}.partial", "checkpoint")
    if resume and not partial.is_file():
        say(f"nothing to resume: no {partial}; running all")
    with get_executor(executor, address) as runner:
        submission = run_board(definition, router, data_dir=data_dir, cache_dir=cache_dir,
                               reporter=RichReporter(quiet), checkpoint=partial,
                               resume=resume, executor=runner)
    submission.save(path)  # saved before anything is printed
    partial.unlink(missing_ok=True)
    say(f"submission saved to {path}")
    print_tables(submission.result, fmt)
    overall = submission.scores["overall"].get(definition.main_metric)
    shown = f"{overall:.2f}" if overall is not None and math.isfinite(overall) else "-"
    say(f"{definition.name}: {label} mean {definition.main_metric} = {shown} over "
        f"{len(definition.tasks)} task(s) x {len(definition.seeds)} seed(s)", err=fmt != "rich")


def _board_of(path: str, data: Any, boards_dir: str | None) -> Any:
    """The board of the folder holding ``path``, else the one ``data`` names."""
    from routeharness.boards.run import board_for

    return board_for(data, path=path, directory=boards_dir)


@leaderboard.command(name="validate")
@click.argument("file", type=click.Path())
@_boards_dir_option
@click.option("--no-data", is_flag=True, help="Skip comparing data fingerprints with local data.")
@data_dir_option
def leaderboard_validate(file: str, boards_dir: str | None, no_data: bool,
                         data_dir: str | None) -> None:
    """Check a submission: schema, board version, tasks and seeds, numbers, checksum,
    fingerprints. A file in a board's submissions/ folder is checked against that board."""
    from routeharness.boards.run import load_submission, validate_submission

    data = load_submission(file)
    board = _board_of(file, data, boards_dir)
    problems = validate_submission(data, board=board, check_data=not no_data,
                                   data_dir=data_dir)
    if problems:
        say(f"invalid {file}: {len(problems)} problem(s)", err=False, style="bold red")
        for problem in problems:
            say(f"  - {problem}", err=False)
        sys.exit(1)
    router = data.router
    say(f"valid {file}: router {data.router_name} ({router.distribution} "
        f"{router.version}) on {board.name} v{board.version}, "
        f"{len(data.result.records)} record(s)"
        + (", data fingerprints match" if not no_data else ""), err=False)


@leaderboard.command(name="verify")
@click.argument("file", type=click.Path())
@_boards_dir_option
@click.option("--tolerance", type=float, default=None,
              help="Relative tolerance per number, >= 0 (default: the board's).")
@click.option("--record", "write_record", is_flag=True,
              help="Write the outcome to the board's verification record "
                   "(verifications/FILE; FILE must be in a board's submissions/ folder). "
                   "Without it, nothing is written.")
@click.option("--no-record", is_flag=True, hidden=True,
              help="Write nothing (the default; kept for old scripts).")
@click.option("--check-record", is_flag=True,
              help="CI: write nothing; also fail unless the board's committed record "
                   "marks FILE verified, naming the versions used here.")
@data_dir_option
@cache_dir_option
@format_option
@quiet_option
def leaderboard_verify(file: str, boards_dir: str | None, tolerance: float | None,
                       write_record: bool, no_record: bool, check_record: bool,
                       data_dir: str | None, cache_dir: str | None, fmt: str,
                       quiet: bool) -> None:
    """Validate, then re-run a submission and report each number that differs beyond the
    tolerance; by default nothing is written. --record writes the outcome into the board
    whose submissions/ folder holds FILE (verifications/FILE): only such a record makes
    its row verified."""
    from routeharness.boards.definition import board_of_file, check_tolerance
    from routeharness.boards.run import (
        load_submission,
        validate_submission,
        verify_submission,
        verify_table,
    )
    from routeharness.boards.verification import make_record, save_record
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.base import parse_router_spec

    if tolerance is not None:
        check_tolerance(tolerance)  # before any work
    if write_record and (no_record or check_record):
        _fail("--record writes the board's record; --no-record and --check-record write "
              "nothing: give one of them")
    data = load_submission(file)
    board = _board_of(file, data, boards_dir)
    in_board = board_of_file(file) is not None
    for flag, wanted in (("--check-record", check_record), ("--record", write_record)):
        if wanted and not in_board:
            _fail(f"{file}: {flag} needs a file in a board's submissions/ folder")
    problems = validate_submission(data, board=board, data_dir=data_dir)
    if problems:
        for problem in problems:
            say(f"  - {problem}")
        _fail(f"not verified: {file} is invalid: {problems[0]}"
              + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    entry = get_registry("router").get(parse_router_spec(data.router_name).name)
    router = data.router
    if (entry.distribution, entry.version) != (router.distribution, router.version):
        _warn(f"the submission was made with {router.distribution} "
              f"{router.version}; installed here: {entry.distribution} {entry.version}")
    rows, rerun = verify_submission(data, board=board, tolerance=tolerance, data_dir=data_dir,
                                    cache_dir=cache_dir, reporter=RichReporter(quiet))
    tol = board.tolerance if tolerance is None else tolerance
    emit([verify_table(rows, f"verify {file}: router {data.router_name} on {board.name} "
                             f"(relative tolerance {tol:g})")], fmt)
    record = make_record(board, file, data, rows, rerun, tol)
    to_stderr = fmt != "rich"  # JSON or Markdown on standard output stays parseable
    if write_record:
        where = save_record(record, board)
        say(f"verification record written to {where}", err=to_stderr)
    elif not check_record:
        say("no verification record written" + (
            " (--record writes it to the board's verifications/ folder)" if in_board else
            f": {file} is not in a board's submissions/ folder (verify it there with "
            "--record to record the outcome)"), err=to_stderr)
    differing = [r for r in rows if not r.ok]
    if differing:
        first = differing[0]
        _fail(f"not verified: {len(differing)} of {len(rows)} number(s) differ (first: "
              f"{first.task}" + ("" if first.seed is None else f" seed {first.seed}")
              + f" {first.metric})")
    if check_record:
        _check_committed_record(board, file, data, record)
    say(f"verified: all {len(rows)} numbers reproduce", err=to_stderr, style="green")


def _fail(message: str) -> NoReturn:
    """The one last line a failed verify prints (CI shows it), then exit status 1."""
    say(message)
    sys.exit(1)


def _check_committed_record(board: Any, file: str, data: Any, fresh: Any) -> None:
    """CI: the board's committed record must mark ``file`` verified and name the versions
    this re-run used."""
    from routeharness.boards.verification import (
        installed_version_problems,
        verification_status,
    )

    status = verification_status(board, file, data)
    if not status.verified:
        _fail(f"{status.reason}; commit the record `leaderboard verify --record` writes")
    problems = installed_version_problems(status.record, fresh)
    if problems:
        _fail(f"not verified: {'; '.join(problems)}")


@leaderboard.command(name="show")
@click.argument("board")
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "html"]), default="rich",
              show_default=True, help="Output format: rich, Markdown, JSON or one HTML page.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@_boards_dir_option
@data_dir_option
def leaderboard_show(board: str, fmt: str, output: str | None, boards_dir: str | None,
                     data_dir: str | None) -> None:
    """Render BOARD's ranking of accepted submissions (leaderboards/BOARD/submissions/):
    verified ones ranked, each with its 95% interval, its difference from the leader and
    its significance tier (a paired bootstrap over test prompts and seeds, on the tasks'
    local data: --data-dir for tasks not shipped); unverified ones listed apart below
    (see `leaderboard verify`); a file that does not validate against this board is
    listed as rejected."""
    from routeharness.boards.definition import check_board_output, load_board
    from routeharness.boards.standings import (
        ranking,
        ranking_tables,
        render_html,
        render_json,
        render_markdown,
    )

    definition = load_board(board, boards_dir)
    if output is not None:
        check_board_output(output, f"{fmt} leaderboard", boards_dir, definition)
    result = ranking(definition, data_dir=data_dir)
    for name, problems in result.rejected:
        _warn(f"{name} is not a valid submission and is left out: {'; '.join(problems)}")
    if fmt == "rich":
        if output is None:
            emit(ranking_tables(result), "rich")
            return
        text = _rich_text(ranking_tables(result))
    else:
        text = {"markdown": render_markdown, "json": render_json,
                "html": render_html}[fmt](result)
    if output is None:
        click.echo(text, nl=False)
        return
    from routeharness.common.files import write_text

    write_text(text, output, f"{fmt} leaderboard")
    say(f"{fmt} leaderboard written to {output}")


def _rich_text(tables: list[Any]) -> str:
    import io

    buffer = io.StringIO()
    emit(tables, "rich", file=buffer)
    return buffer.getvalue()

