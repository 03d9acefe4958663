"""The ``routeharness`` group, its entry point and the helpers every command shares:
consoles, the progress reporter, the table renderer and the shared options."""

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



def _report_failed_plugins() -> None:
    from routeharness.plugins import failed_plugins

    for info in failed_plugins():
        _console(stderr=True).print(f"[yellow]warning:[/] plugin {info.name!r} "
                                    f"({info.distribution}) failed to load and was skipped: "
                                    f"{info.error}")



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


def print_tables(result: dict[str, Any], fmt: str = "rich") -> None:
    """One table per task (and per group), reference rows below the routers; with
    several tasks, a summary ranking routers by mean AUC."""
    from routeharness.cli.render import emit
    from routeharness.results import report_tables

    emit(report_tables(result), fmt)


def _ranking_table(summary: dict[str, list[dict[str, Any]]]) -> Any:
    from routeharness.cli.render import rich_table
    from routeharness.results import ranking_table

    return rich_table(ranking_table(summary))




# --- options shared by several commands -------------------------------------------------------
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None, envvar="ROUTEHARNESS_DATA",
    help="Directory of upstream data (default: embedded copy).")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None, envvar="ROUTEHARNESS_CACHE",
    help="Embedding cache (default ~/.cache/routeharness).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output.")


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

