"""``routeharness eval``: the router x task matrix."""

from __future__ import annotations

import os
from pathlib import Path

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
from routeharness.cli.render import format_option
from routeharness.common.errors import CheckpointError, RouteHarnessError
from routeharness.evaluation.protocol import MAX_BOOTSTRAP, MAX_SEEDS, SEED_LIMIT, TUNE_ON


@cli.command(name="eval")
@click.option("--router", "-r", "routers", multiple=True, required=True,
              help="Router name, or NAME:PARAM=VALUE[,PARAM=VALUE] to fix hyper-parameters "
                   "(e.g. knn:k=10); repeatable. See `routeharness routers`.")
@click.option("--task", "-t", "tasks", multiple=True, required=True,
              help="Task name, NAME:GROUP, or a local dataset path (repeatable).")
@click.option("--encoder", "-e", default=None,
              help="Encoder name, or NAME:ARG (e.g. st:/path/to/model). Default: the task "
                   "card's encoder, else minilm.")
@click.option("--seeds", default="0", show_default=True,
              help=f"Seeds: a list like 0,1,2, a range like 0-4, or one seed (at most "
                   f"{MAX_SEEDS}, each below 2**32).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="results.json",
              show_default=True, help="Where to save the result JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the cost-quality frontiers as a PNG.")
@data_dir_option
@cache_dir_option
@click.option("--no-tune", is_flag=True, help="Use each router's defaults instead of tuning.")
@click.option("--tune-on", type=click.Choice(TUNE_ON), default="validation", show_default=True,
              help="Score each configuration on the validation split (fitted on train), or "
                   "on each training group held out in turn (fitted on the other groups' "
                   "train rows; the mean AUC over groups): tuning for prompts unlike the "
                   "training ones. groups needs a task with at least 2 groups.")
@click.option("--bootstrap", type=click.IntRange(min=0, max=MAX_BOOTSTRAP), default=200,
              show_default=True,
              help="Bootstrap resamples for the AUC confidence interval (0: none).")
@click.option("--no-references", is_flag=True,
              help="Leave out the best-single and random rows and the oracle.")
@click.option("--trust-hub-pickle", is_flag=True,
              help="Allow loading pickled Hub files (RouterBench's Hub copy). Unsafe: only for "
                   "repositories you trust.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run: reuse the runs saved in OUTPUT.partial "
                   "(written after every router x task x seed).")
@executor_options
@format_option
@quiet_option
def eval_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str | None,
                 seeds: str, output: str, plot: str | None, data_dir: str | None,
                 cache_dir: str | None, no_tune: bool, tune_on: str, bootstrap: int,
                 no_references: bool,
                 trust_hub_pickle: bool, resume: bool, executor: str, address: str | None,
                 fmt: str, quiet: bool) -> None:
    """Evaluate routers on tasks: every router x task x seed; tables, JSON and plot."""
    from routeharness.evaluation.executors import get_executor
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol
    from routeharness.evaluation.tuning import plan_routers
    from routeharness.results.sets import plot_frontiers

    seed_list = _parse_seeds(seeds)
    partial = Path(f"{output}.partial")
    check_output_paths(Path(output), Path(plot) if plot else None, tasks, data_dir,
                       cache_dir)
    plan_routers(routers, references=False)  # a typo or a bad parameter fails before loading
    protocol = Protocol(seeds=tuple(seed_list), tune=not no_tune, n_bootstrap=bootstrap,
                        tune_on=tune_on)
    options = {"trust_hub_pickle": True} if trust_hub_pickle else {}
    runner = get_executor(executor, address)
    try:
        with runner:
            result = evaluate(list(routers), list(tasks), encoder=encoder, protocol=protocol,
                              data_dir=data_dir, cache_dir=cache_dir,
                              reporter=RichReporter(quiet), references=not no_references,
                              task_options=options, checkpoint=partial, resume=resume,
                              executor=runner)
    except BaseException as exc:
        if partial.exists() and not isinstance(exc, CheckpointError):
            say(f"the runs finished so far are in {partial}; the same command with "
                "--resume continues from there")
        raise
    # saved before anything is printed: a failure while printing never loses the results
    try:
        result.save(output)
    except RouteHarnessError as exc:
        raise RouteHarnessError(f"{exc} (the runs are in {partial})") from None
    partial.unlink(missing_ok=True)
    say(f"results saved to {output}")
    print_tables(result, fmt)
    if plot:
        try:
            plot_frontiers(result, plot)
        except OSError as exc:
            raise RouteHarnessError(f"cannot write the plot {plot}: "
                                    f"{exc.strerror or exc}") from None
        say(f"frontier plot saved to {plot}")


def _inputs(tasks: tuple[str, ...], data_dir: str | None,
            cache_dir: str | None = None) -> list[Path]:
    """The files and folders the run reads: local datasets, the data directory and the
    embedding cache (an output written into it would destroy an entry)."""
    from routeharness.data.spec import parse_task_spec
    from routeharness.embedding.cache import default_cache_dir
    from routeharness.plugins.registry import get_registry

    known = set(get_registry("task").names())
    paths = [parse_task_spec(spec, known).path for spec in tasks]
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return [p for p in [*paths, Path(data_dir) if data_dir else None, cache] if p is not None]


def check_output_paths(output: Path, plot: Path | None, tasks: tuple[str, ...],
                       data_dir: str | None, cache_dir: str | None = None) -> None:
    """Refuse, before any work, outputs that would overwrite an input or each other, or
    that cannot be written: the result file (and its ``.partial`` checkpoint) and the
    plot must not be a dataset file or lie inside a dataset folder or the data
    directory, must differ, and their folders must be writable directories."""
    outputs = {"--output": output, "--output's checkpoint": Path(f"{output}.partial")}
    if plot is not None:
        outputs["--plot"] = plot
        if _same(output, plot):
            raise RouteHarnessError(f"--output and --plot are the same file ({output})")
    for source in _inputs(tasks, data_dir, cache_dir):
        where = _real(source)
        for option, path in outputs.items():
            target = _real(path)
            if target == where or (where.is_dir() and where in target.parents):
                raise RouteHarnessError(f"{option} {path} would overwrite the input "
                                        f"{source}: write it elsewhere")
    for option, path in outputs.items():
        _check_writable(option, path)


def _real(path: Path) -> Path:
    """The path with symlinks followed; a symlink loop stays as written (``resolve``
    raises RuntimeError on one, the reader then reports it in one line)."""
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    return _real(a) == _real(b)


def _check_writable(option: str, path: Path) -> None:
    if path.exists() and not path.is_file():
        raise RouteHarnessError(f"{option} {path} exists and is not a regular file")
    if path.exists() and not os.access(path, os.W_OK):
        raise RouteHarnessError(f"{option} {path} is not writable")
    folder = path.absolute().parent
    while not folder.exists():  # save_json creates missing folders: check the first that exists
        folder = folder.parent
    if not folder.is_dir():
        raise RouteHarnessError(f"{option} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RouteHarnessError(f"{option} {path}: the folder {folder} is not writable")


def _parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2]; ``0-4`` -> [0, 1, 2, 3, 4]; ``7`` -> [7] (one seed, not a
    count); parts combine: ``0-2,10``. Duplicates, more than ``MAX_SEEDS`` seeds and
    seeds from ``SEED_LIMIT`` (2**32) up are errors, found before any list is built."""
    parts: list[tuple[int, int]] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                raise click.BadParameter(f"{text!r}: an empty seed between commas",
                                         param_hint="--seeds")
            low, dash, high = part.partition("-")
            first, last = (int(low), int(high)) if dash and low else (int(part), int(part))
            if last < first:
                raise click.BadParameter(f"{part!r}: a range goes low-high, e.g. 0-4",
                                         param_hint="--seeds")
            parts.append((first, last))
    except ValueError:
        raise click.BadParameter(f"{text!r}: seeds are integers, e.g. 0,1,2 or 0-4",
                                 param_hint="--seeds") from None
    if not parts:
        raise click.BadParameter("at least one seed", param_hint="--seeds")
    if min(first for first, _ in parts) < 0:
        raise click.BadParameter(f"{text!r}: seeds are non-negative", param_hint="--seeds")
    if max(last for _, last in parts) >= SEED_LIMIT:
        raise click.BadParameter(f"{text!r}: each seed must be below 2**32 ({SEED_LIMIT})",
                                 param_hint="--seeds")
    if sum(last - first + 1 for first, last in parts) > MAX_SEEDS:
        raise click.BadParameter(f"{text!r}: at most {MAX_SEEDS} seeds", param_hint="--seeds")
    values = [seed for first, last in parts for seed in range(first, last + 1)]
    if len(set(values)) != len(values):
        raise click.BadParameter(f"{text!r} repeats a seed", param_hint="--seeds")
    return values
