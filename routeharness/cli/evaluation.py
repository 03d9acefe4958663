"""``routeharness eval``: the router x task matrix."""

from __future__ import annotations

import click

from routeharness.cli._app import _console, _RichReporter, cli, print_tables


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


