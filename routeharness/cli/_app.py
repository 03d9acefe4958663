"""The ``routeharness`` group, its entry point and the helpers every command shares:
consoles, the progress reporter, the table renderer and the shared options."""

from __future__ import annotations

import sys
from typing import Any

import click

from routeharness import __version__
from routeharness.common.errors import RouteHarnessError, UnknownNameError


def say(text: str, *, err: bool = True, style: str | None = None) -> None:
    """One status, warning or error line (``routeharness.cli.render.message``): printed as
    written (messages carry names from data: paths, models, routers; markup and emoji
    codes are never interpreted, control characters are escaped) and never wrapped."""
    from routeharness.cli.render import message

    message(text, err=err, style=style)


class _Group(click.Group):
    """Lets plugins add commands through the ``register_commands`` hook on first use.

    Each plugin's hook is called on its own (through pluggy, so tracing shows it); a
    plugin whose hook raises, or that replaces a command already there, is reported as
    failed and what it added is taken back. The commands are rebuilt when the plugin
    state is reset (``routeharness.plugins.host.PluginHost.generation``).
    """

    _generation: int | None = None  # the plugin state the plugin commands came from
    _plugin_command_names: tuple[str, ...] = ()

    def _load_plugin_commands(self) -> None:
        from routeharness.common.errors import PluginError
        from routeharness.plugins.host import get_host, hook_failure

        host = get_host()
        if self._generation == host.generation:
            return
        for name in self._plugin_command_names:
            self.commands.pop(name, None)
        self._generation, added = host.generation, []
        for plugin, call in host.implementations("register_commands"):
            before = dict(self.commands)
            try:
                call(cli=self)
                replaced = [n for n, c in before.items() if self.commands.get(n) is not c]
                if replaced:
                    raise PluginError(f"register_commands: command {replaced[0]!r} is "
                                      f"already taken", plugin=plugin)
            except Exception as exc:  # one plugin's bug must not take the CLI down
                self.commands.clear()
                self.commands.update(before)
                host.fail(plugin, hook_failure("register_commands", plugin, exc))
                continue
            added += [name for name in self.commands if name not in before]
        self._plugin_command_names = tuple(added)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._plugin_command_names:  # drops it if the plugin state was reset
            self._load_plugin_commands()
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
    """One plain-text line on stderr per failed plugin (an error message is never read as
    markup)."""
    from routeharness.plugins.host import failed_plugins

    for info in failed_plugins():
        what = "failed" if info.loaded else "failed to load and was skipped"
        say(_one_line(f"warning: plugin {info.name!r} ({info.distribution} "
                      f"{info.version}) {what}: {info.error}"))


def print_tables(result: dict[str, Any], fmt: str = "rich") -> None:
    """One table per task (and per group), reference rows below the routers; with
    several tasks, a summary ranking routers by mean AUC."""
    from routeharness.cli.render import emit
    from routeharness.results.sets import report_tables

    emit(report_tables(result), fmt)


def _ranking_table(summary: dict[str, list[dict[str, Any]]]) -> Any:
    from routeharness.cli.render import rich_table
    from routeharness.results.sets import ranking_table

    return rich_table(ranking_table(summary))


# --- option types ------------------------------------------------------------------------------
class FiniteNumber(click.ParamType):
    """A finite number, at least ``minimum``: NaN and infinity are refused in one line,
    with ``hint`` (what to give instead) after it."""

    name = "number"

    def __init__(self, minimum: float | None = None, hint: str = "") -> None:
        self.minimum, self.hint = minimum, hint

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number" + (f"; {self.hint}" if self.hint
                                                           else ""), param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value} is not a number >= {self.minimum:g}", param, ctx)
        return number


class ByteSize(click.ParamType):
    """A size in bytes: ``1000000``, ``16MB``, ``512KiB``, ``1GB``
    (``routeharness.common.textinput.parse_size``)."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        from routeharness.common.textinput import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


#: the trade-off of ``route`` and ``serve``: a finite number >= 0; the hint for infinity
LAM_HINT = ("for cost-only routing give a large trade-off (e.g. --lam 1e6) or a budget of 0 "
            "(the cheapest validation trade-off)")


# --- options shared by several commands -------------------------------------------------------
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None, envvar="ROUTEHARNESS_DATA",
    help="Directory of upstream data (default: embedded copy).")
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False), default=None, envvar="ROUTEHARNESS_CACHE",
    help="Embedding cache (default ~/.cache/routeharness).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress output.")
#: ``routeharness.evaluation.executors.EXECUTORS`` (not imported: the CLI starts without numpy)
EXECUTOR_NAMES = ("local", "ray")


def executor_option_list(expose: bool = True) -> list[Any]:
    """``--executor local|ray`` and ``--address`` (an existing Ray cluster). Unexposed,
    their values go to ``ctx.meta["routeharness.executor"]`` and ``["routeharness.address"]``
    (commands that build the executor in a shared helper)."""

    def keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[f"routeharness.{param.name}"] = value
        return value

    extra: dict[str, Any] = {} if expose else {"expose_value": False, "callback": keep}
    return [
        click.option(
            "--executor", type=click.Choice(EXECUTOR_NAMES), default="local",
            show_default=True,
            help="Where the runs execute: one after another here, or as tasks on Ray "
                 "(pip install 'routeharness[ray]'); the same numbers either way.", **extra),
        click.option(
            "--address", default=None, metavar="HOST:PORT",
            help="An existing Ray cluster (with --executor ray; 'auto' finds a running "
                 "one). Without it Ray starts a local cluster with this machine's cores.",
            **extra),
    ]


def executor_options(command: Any) -> Any:
    """``executor_option_list``'s options as parameters of ``command``."""
    for option in reversed(executor_option_list()):
        command = option(command)
    return command


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    say(f"warning: {' '.join(str(message).split())}")


def _one_line(message: object) -> str:
    """A message as one line of text (its lines joined); names in it (paths, models,
    plugins) may hold control characters, which ``say`` shows escaped."""
    return " ".join(str(message).splitlines()) or type(message).__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so that every ``finally`` runs (a
    Ray cluster started here is shut down; the checkpoint written so far stays)."""


#: set when SIGTERM arrived: a library may catch the interrupt and raise its own
_TERMINATED: list[bool] = []


def _terminate(signum: int, frame: Any) -> None:
    _TERMINATED.append(True)
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print as one line (exit 1; unknown names exit 2);
    warnings print as one line; an operating-system error that reaches here (a path that
    cannot be read or written) is one line naming the path, never a traceback. SIGTERM
    and Ctrl-C stop the command in order (exit 143 and 130)."""
    import signal
    import warnings

    signal.signal(signal.SIGTERM, _terminate)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            from routeharness.embedding.cache import CacheWarning

            warnings.simplefilter("default", CacheWarning)
            cli.main(args=argv, prog_name="routeharness", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns an interrupt into Abort, keeping it as the cause
        if _TERMINATED or isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):
            say("Terminated.")
            sys.exit(143)
        say("Aborted.")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UnknownNameError as exc:
        say(f"Error: {_one_line(exc)}")
        sys.exit(2)
    except RouteHarnessError as exc:
        say(f"Error: {_one_line(exc)}")
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or type(exc).__name__
        message = f"{where}: {reason}" if where else reason
        say(f"Error: {_one_line(message)}")
        sys.exit(1)

