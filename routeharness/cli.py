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


def _fmt(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    if mean is None or mean != mean:
        return "-"
    if std:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def print_tables(result: dict[str, Any]) -> None:
    """One rich table per task, reference rows below the routers."""
    from rich.table import Table

    from routeharness.results import summarise

    console = _console()
    summary = summarise(result)
    n_seeds = len(result["protocol"]["seeds"])
    for task, rows in summary.items():
        reference = result["tasks"][task]
        title = (f"{task} (v{reference['version']}): test n={reference['sizes']['test']}, "
                 f"{len(reference['models'])} models, encoder {result['encoder']['name']}, "
                 f"{n_seeds} seed{'s' if n_seeds > 1 else ''}")
        table = Table(title=title, title_justify="left")
        table.add_column("router")
        table.add_column("AUC" + (" (mean ± std)" if n_seeds > 1 else ""), justify="right")
        table.add_column("95% CI", justify="right")
        table.add_column("Q@λ0", justify="right")
        table.add_column("$/1k@λ0", justify="right")
        has_apgr = any("apgr" in r for r in rows)
        if has_apgr:
            table.add_column("APGR", justify="right")
            table.add_column("CPT(50%)", justify="right")
        table.add_column("tuned params")
        references = {"best-single", "random", "oracle"}
        ordered = [r for r in rows if r["router"] not in references]
        ordered += [r for r in rows if r["router"] in references]
        for i, row in enumerate(ordered):
            reference_row = row["router"] in references
            name = row["router"] + (" (upper bound)" if row["upper_bound"] else "")
            if row.get("chosen_model"):
                name += f" ({row['chosen_model']})"
            ci = row.get("auc_ci95")
            cells = [f"[dim]{name}[/]" if reference_row else f"[bold]{name}[/]",
                     _fmt(row.get("auc"), row.get("auc_std")),
                     f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-",
                     _fmt(row.get("quality_at_0"), row.get("quality_at_0_std")),
                     _fmt(1000 * row["cost_at_0_usd"] if row.get("cost_at_0_usd") is not None
                          else None, 1000 * row.get("cost_at_0_usd_std", 0) or None, 3)]
            if has_apgr:
                cells += [_fmt(row.get("apgr"), None, 3), _fmt(row.get("cpt50"), None, 3)]
            params = {k: v for k, v in row["params"].items() if k != "random_state"}
            cells.append(", ".join(f"{k}={v}" for k, v in params.items()) or "-")
            table.add_row(*cells, end_section=(i == len([r for r in rows if r["router"] not in references]) - 1))
        frontier_cells = ["[dim]single-model frontier[/]",
                          _fmt(reference["single_model_frontier_auc"]), "-", "-", "-"]
        if has_apgr:
            frontier_cells += ["-", "-"]
        table.add_row(*frontier_cells, "-")
        console.print(table)
        best = max(reference["single_models"], key=lambda s: s["quality"])
        console.print(
            f"[dim]Q@λ0: quality (mean score x100) when routing for quality alone; "
            f"$/1k@λ0: its USD per 1,000 prompts. AUC: area under the non-decreasing convex "
            f"hull of the cost-quality points, score x100, cost normalised so the most "
            f"expensive model = 1 (docs/metrics.md). best-single is chosen on train; the best "
            f"model on test is {best['model']} ({best['quality']:.2f}). single-model frontier: "
            f"the hull of the {len(reference['models'])} models alone (RouterBench's zero "
            f"router).[/]")
        groups = rows[0].get("per_group", {}) if rows else {}
        if len(groups) > 1:
            group_table = Table(title=f"{task}: AUC per group", title_justify="left")
            group_table.add_column("router")
            for group in groups:
                group_table.add_column(group, justify="right")
            for row in ordered:
                group_table.add_row(row["router"], *(_fmt(row["per_group"].get(g))
                                                     for g in groups))
            console.print(group_table)


@cli.command(name="eval")
@click.option("--router", "-r", "routers", multiple=True, required=True,
              help="Router name (repeatable). See `routeharness routers`.")
@click.option("--task", "-t", "tasks", multiple=True, required=True,
              help="Task name, NAME:GROUP, or a local dataset path (repeatable).")
@click.option("--encoder", "-e", default="minilm", show_default=True,
              help="Encoder name, or NAME:ARG (e.g. st:/path/to/model).")
@click.option("--seeds", default="0", show_default=True,
              help="Comma-separated seeds, or a count like 3 for 0,1,2 (use 0,1,2 for explicit).")
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
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def eval_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str, seeds: str,
                 output: str, plot: str | None, data_dir: str | None, cache_dir: str | None,
                 no_tune: bool, bootstrap: int, no_references: bool, trust_hub_pickle: bool,
                 quiet: bool) -> None:
    """Evaluate routers on tasks: every router x task x seed; tables, JSON and plot."""
    from routeharness.registry import get_registry

    registry = get_registry("router")
    for name in routers:  # fail fast on a typo, before any loading
        registry.get(name)
    task_registry = get_registry("task")
    for spec in tasks:
        name = spec.partition(":")[0]
        from pathlib import Path

        if name not in task_registry and not Path(spec).exists():
            task_registry.get(name)
    seed_list = _parse_seeds(seeds)
    from routeharness.evaluate import Protocol, evaluate
    from routeharness.results import plot_frontiers, save_json

    protocol = Protocol(seeds=tuple(seed_list), tune=not no_tune, n_bootstrap=bootstrap)
    options = {"trust_hub_pickle": True} if trust_hub_pickle else {}
    result = evaluate(list(routers), list(tasks), encoder=encoder, protocol=protocol,
                      data_dir=data_dir, cache_dir=cache_dir, reporter=_RichReporter(quiet),
                      references=not no_references, task_options=options)
    print_tables(result)
    save_json(result, output)
    _console(stderr=True).print(f"results saved to {output}")
    if plot:
        plot_frontiers(result, plot)
        _console(stderr=True).print(f"frontier plot saved to {plot}")


def _parse_seeds(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: seeds are integers, e.g. 0,1,2",
                                 param_hint="--seeds") from None
    if not values:
        raise click.BadParameter("at least one seed", param_hint="--seeds")
    return values


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
