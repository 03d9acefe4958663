"""``routeharness study``: the paper's questions as commands (``routeharness.study``).

Every study saves a versioned JSON (``--output``), prints its tables (``--format``) and,
where it has one, saves a PNG (``--plot``). Outputs are checked before any work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from routeharness.cli._app import (
    cache_dir_option,
    cli,
    data_dir_option,
    executor_option_list,
    quiet_option,
    say,
)
from routeharness.cli.progress import RichReporter
from routeharness.cli.render import emit, format_option

PAIRED_HELP = "Bootstrap resamples over test prompts for the paired comparisons (0: none)."


@cli.group()
def study() -> None:
    """The paper's questions on any task, router and encoder: locality, sample efficiency,
    encoders, images, distribution shift, hyper-parameter sweeps, and the full report."""


def _common(seeds: str = "0", plot: bool = False, output: bool = True,
            runs: bool = True) -> Callable[[Any], Any]:
    """The options every study takes: seeds, tuning, bootstrap, outputs, data, format;
    the executor of its runs (``runs``)."""
    from routeharness.evaluation.protocol import MAX_BOOTSTRAP

    def wrap(func: Any) -> Any:
        options = [
            click.option("--seeds", default=seeds, show_default=True,
                         help="Seeds: 0,1,2 or a range 0-4 (as eval)."),
            click.option("--no-tune", is_flag=True,
                         help="Each router's defaults instead of tuning on validation."),
            click.option("--bootstrap", type=click.IntRange(0, MAX_BOOTSTRAP), default=1000,
                         show_default=True, help=PAIRED_HELP),
            data_dir_option, cache_dir_option, format_option, quiet_option,
        ]
        if runs:
            options += executor_option_list(expose=False)
        if output:
            options.append(click.option("--output", "-o", type=click.Path(dir_okay=False),
                                        default=None, help="Where to save the study JSON "
                                        "[default: study-NAME.json]."))
        if plot:
            options.append(click.option("--plot", type=click.Path(dir_okay=False),
                                        default=None, help="Save the study's plot as a PNG."))
        for option in reversed(options):
            func = option(func)
        return func
    return wrap


def _settings(seeds: str, no_tune: bool, bootstrap: int, data_dir: str | None,
              cache_dir: str | None, quiet: bool) -> Any:
    from routeharness.cli.evaluation import _parse_seeds
    from routeharness.evaluation.protocol import Protocol
    from routeharness.study.common import StudySettings

    protocol = Protocol(seeds=tuple(_parse_seeds(seeds)), tune=not no_tune, n_bootstrap=0)
    meta = click.get_current_context().meta
    executor = None
    if "routeharness.executor" in meta:  # the study routes: its runs go to the executor
        from routeharness.evaluation.executors import get_executor

        executor = get_executor(meta["routeharness.executor"], meta["routeharness.address"])
        click.get_current_context().call_on_close(executor.close)
    return StudySettings(protocol=protocol, data_dir=data_dir, cache_dir=cache_dir,
                         reporter=RichReporter(quiet), paired_bootstrap=bootstrap,
                         executor=executor)


def _outputs(name: str, output: str | None, plot: str | None, tasks: tuple[str, ...],
             data_dir: str | None, cache_dir: str | None) -> Path:
    """The JSON path (default ``study-NAME.json``), checked with the plot before work."""
    from routeharness.cli.evaluation import check_output_paths

    path = Path(output or f"study-{name}.json")
    check_output_paths(path, Path(plot) if plot else None, tasks, data_dir, cache_dir)
    return path


def _finish(name: str, result: Any, path: Path, fmt: str, plot: str | None,
            settings: Any) -> None:
    """Saved (with its wall time) before anything is printed; tables; the plot."""
    import time

    from routeharness.study import study_module

    result = result.timed(time.perf_counter() - settings.started)
    result.save(path)
    say(f"study saved to {path}")
    module = study_module(name)
    emit(module.tables(result), fmt)
    if plot:
        module.plot(result, plot)
        say(f"plot saved to {plot}")


def _fractions(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: fractions are numbers, e.g. 0.1,0.5,1",
                                 param_hint="--fractions") from None


def _groups(text: str | None) -> list[str] | None:
    if text is None:
        return None
    groups = [g.strip() for g in text.split(",")]
    if not all(groups):
        raise click.BadParameter(f"{text!r}: an empty group name")
    return groups


routers_option = click.option("--router", "-r", "routers", multiple=True, required=True,
                              help="Router name or NAME:PARAM=VALUE (repeatable); kNN is "
                                   "added as the reference of every comparison.")
tasks_option = click.option("--task", "-t", "tasks", multiple=True, required=True,
                            help="Task name, NAME:GROUP or a dataset path (repeatable).")
encoder_option = click.option("--encoder", "-e", default=None,
                              help="Encoder (default: the task card's, else minilm).")


@study.command(name="locality")
@tasks_option
@encoder_option
@click.option("--pairs", type=click.IntRange(100, 10_000_000), default=20000, show_default=True,
              help="Random pairs of training prompts.")
@_common(plot=True, runs=False)
def locality_command(tasks: tuple[str, ...], encoder: str | None, pairs: int, seeds: str,
                     no_tune: bool, bootstrap: int, output: str | None, data_dir: str | None,
                     cache_dir: str | None, fmt: str, quiet: bool, plot: str | None) -> None:
    """Is model performance local in embedding space? Distance against outcome agreement,
    nearest against random neighbours, intrinsic dimension."""
    from routeharness.study import neighbours

    path = _outputs("locality", output, plot, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = neighbours.run(list(tasks), encoder=encoder, n_pairs=pairs, settings=settings)
    _finish("locality", result, path, fmt, plot, settings)


@study.command(name="sample-efficiency")
@routers_option
@tasks_option
@encoder_option
@click.option("--fractions", default="0.02,0.05,0.1,0.25,0.5,1", show_default=True,
              help="Shares of the training split, each in (0, 1]; 1 is always run.")
@_common(seeds="0,1,2", plot=True)
def efficiency_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str | None,
                       fractions: str, seeds: str, no_tune: bool, bootstrap: int,
                       output: str | None, data_dir: str | None, cache_dir: str | None,
                       fmt: str, quiet: bool, plot: str | None) -> None:
    """Learning curves: every router tuned and fitted on seeded subsamples of train."""
    from routeharness.study import efficiency

    chosen = efficiency.check_fractions(_fractions(fractions))
    path = _outputs("sample-efficiency", output, plot, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = efficiency.run(list(routers), list(tasks), encoder=encoder, fractions=chosen,
                            settings=settings)
    _finish("sample-efficiency", result, path, fmt, plot, settings)


@study.command(name="encoders")
@routers_option
@tasks_option
@click.option("--encoder", "-e", "encoders", multiple=True, required=True,
              help="Encoder (repeatable): minilm, lexical, st:PATH, ...")
@_common(seeds="0,1,2")
def encoders_command(routers: tuple[str, ...], tasks: tuple[str, ...],
                     encoders: tuple[str, ...], seeds: str, no_tune: bool, bootstrap: int,
                     output: str | None, data_dir: str | None, cache_dir: str | None,
                     fmt: str, quiet: bool) -> None:
    """Does the ranking of routers hold across encoders? AUC router x encoder, Kendall's
    tau between the rankings, kNN's rank under each."""
    from routeharness.embedding.encoders import get_encoder
    from routeharness.study import encoders as encoder_study

    for spec in encoders:
        get_encoder(spec)  # an unknown or broken encoder fails before any work
    path = _outputs("encoders", output, None, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = encoder_study.run(list(routers), list(tasks), list(encoders), settings=settings)
    _finish("encoders", result, path, fmt, None, settings)


@study.command(name="images")
@routers_option
@tasks_option
@click.option("--encoder", "-e", "encoders", multiple=True,
              help="Encoders (repeatable) [default: minilm, effnet, effnet-minilm: text "
                   "only, image only, fused].")
@click.option("--pairs", type=click.IntRange(100, 10_000_000), default=20000, show_default=True,
              help="Random pairs of training prompts for the locality statistics.")
@_common()
def images_command(routers: tuple[str, ...], tasks: tuple[str, ...],
                   encoders: tuple[str, ...], pairs: int, seeds: str, no_tune: bool,
                   bootstrap: int, output: str | None, data_dir: str | None,
                   cache_dir: str | None, fmt: str, quiet: bool) -> None:
    """Routers and locality with text-only, image-only and fused encoders on an image task."""
    from routeharness.study import images

    path = _outputs("images", output, None, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = images.run(list(routers), list(tasks), encoders=encoders or images.DEFAULT_ENCODERS,
                        n_pairs=pairs, settings=settings)
    _finish("images", result, path, fmt, None, settings)


@study.command(name="shift")
@routers_option
@tasks_option
@encoder_option
@click.option("--train-groups", default=None, help="Train on these groups (a,b,...).")
@click.option("--test-groups", default=None,
              help="Test on these groups (a,b,...); default: leave each group out in turn.")
@click.option("--tune-on", type=click.Choice(("validation", "groups", "both")),
              default="validation", show_default=True,
              help="Tune on the training groups' validation split (as eval), on each "
                   "training group held out in turn (needs 2 training groups per fold), or "
                   "both, side by side.")
@_common()
def shift_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str | None,
                  train_groups: str | None, test_groups: str | None, tune_on: str,
                  seeds: str, no_tune: bool, bootstrap: int, output: str | None,
                  data_dir: str | None, cache_dir: str | None, fmt: str, quiet: bool) -> None:
    """Prompts unlike the training ones: leave-one-group-out, or a named split."""
    from routeharness.study import shift

    train, test = _groups(train_groups), _groups(test_groups)
    path = _outputs("shift", output, None, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = shift.run(list(routers), list(tasks), encoder=encoder, train_groups=train,
                       test_groups=test, settings=settings, tune_on=tune_on)
    _finish("shift", result, path, fmt, None, settings)


@study.command(name="sweep")
@click.option("--router", "-r", "router", required=True, help="One router (NAME or spec).")
@tasks_option
@encoder_option
@click.option("--param", required=True,
              help="NAME=V1,V2,... (or NAME alone: the router's own grid), e.g. k=1,5,10,50.")
@_common(plot=True)
def sweep_command(router: str, tasks: tuple[str, ...], encoder: str | None, param: str,
                  seeds: str, no_tune: bool, bootstrap: int, output: str | None,
                  data_dir: str | None, cache_dir: str | None, fmt: str, quiet: bool,
                  plot: str | None) -> None:
    """Validation and test AUC across one hyper-parameter; the value tuning picks marked."""
    from routeharness.study import sweep

    sweep.parse_param(param)
    path = _outputs("sweep", output, plot, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = sweep.run(router, list(tasks), param, encoder=encoder, settings=settings)
    _finish("sweep", result, path, fmt, plot, settings)


@study.command(name="online")
@click.option("--router", "-r", "routers", multiple=True, required=True,
              help="Router name or NAME:PARAM=VALUE (repeatable); one whose tags declare "
                   "online learns from the stream, any other is fitted on the warm-up "
                   "and frozen.")
@tasks_option
@encoder_option
@click.option("--lam", "lams", default="0.1", show_default=True,
              help="Trade-off(s) lam >= 0, comma-separated: utility = score - lam x "
                   "normalised cost.")
@click.option("--feedback", type=click.Choice(("bandit", "full", "both")), default="both",
              show_default=True, help="What an online router sees after routing: the "
                                      "chosen model's outcome, every model's, or both runs.")
@click.option("--splits", default="train,validation,test", show_default=True,
              help="The splits whose scored prompts make the stream.")
@click.option("--warmup", type=click.IntRange(1, None), default=100, show_default=True,
              help="Prompts at the start of the stream with every outcome, to fit on.")
@click.option("--batch", type=click.IntRange(1, None), default=10, show_default=True,
              help="Prompts routed between two updates.")
@click.option("--length", type=click.IntRange(2, None), default=None,
              help="Keep the first N prompts of the stream [default: all].")
@click.option("--drift", is_flag=True, help="Groups arrive in blocks (a seeded order).")
@click.option("--enter", "enter", multiple=True, metavar="MODEL@N",
              help="MODEL can be chosen only from stream position N (repeatable).")
@_common(seeds="0,1,2", plot=True)
def online_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str | None,
                   lams: str, feedback: str, splits: str, warmup: int, batch: int,
                   length: int | None, drift: bool, enter: tuple[str, ...], seeds: str,
                   no_tune: bool, bootstrap: int, output: str | None, data_dir: str | None,
                   cache_dir: str | None, fmt: str, quiet: bool, plot: str | None) -> None:
    """Routing as a stream: regret against the oracle and the best fixed model, cost and
    quality over time, under bandit or full feedback."""
    from routeharness.study import online
    from routeharness.study.runs import plans_for

    chosen = online.check_lams(_numbers(lams, "--lam"))
    entries = [online.parse_enter(text) for text in enter]
    parts = [part.strip() for part in splits.split(",")]
    if not all(parts) or len(set(parts)) != len(parts):
        raise click.BadParameter(f"{splits!r}: split names, each once", param_hint="--splits")
    plans_for(list(routers))  # an unknown router: one line before any work
    path = _outputs("online", output, plot, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    modes = online.FEEDBACK if feedback == "both" else (feedback,)
    result = online.run(list(routers), list(tasks), lams=chosen, feedback=modes,
                        encoder=encoder, splits=parts, warmup=warmup, batch=batch,
                        length=length, drift=drift, entries=entries, settings=settings)
    _finish("online", result, path, fmt, plot, settings)


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: numbers, e.g. 0,0.1,1", param_hint=option) from None


@study.command(name="show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the study's plot as a PNG (studies that have one).")
@format_option
def show_command(file: str, plot: str | None, fmt: str) -> None:
    """Print a saved study's tables again."""
    from routeharness.common.errors import RouteHarnessError
    from routeharness.common.files import check_output_path
    from routeharness.study import study_module
    from routeharness.study.record import StudyResult

    result = StudyResult.load(file)
    module = study_module(result.study)
    if plot:
        check_output_path(plot, "plot")
        if not hasattr(module, "plot"):
            raise RouteHarnessError(f"study {result.study!r} has no plot")
    try:
        tables = module.tables(result)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise RouteHarnessError(f"{file}: a malformed {result.study} study "
                                f"({type(exc).__name__}: {exc})") from None
    emit(tables, fmt)
    if plot:
        module.plot(result, plot)


@study.command(name="paper")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the parts' JSON, the plots and report.md/report.json "
                   "[default: benchmarks/paper; with -t: study-paper].")
@click.option("--task", "-t", "tasks", multiple=True,
              help="Run the report on these tasks instead of the built-in plan (repeatable): "
                   "a task name, NAME:GROUP or a dataset path; each needs train, validation "
                   "and test splits.")
@click.option("--router", "-r", "routers", multiple=True,
              help="Routers [default: knn, linear, mlp, bandit].")
@click.option("--encoder", "-e", "encoders", multiple=True,
              help="Encoders of the encoders part [default: minilm, lexical, and "
                   "all-mpnet-base-v2 when scripts/assemble_mpnet.py has put it in place]; "
                   "with -t, the first is every other part's encoder too (e.g. precomputed).")
@click.option("--part", "parts", multiple=True,
              help="Run only these parts (repeatable); the report covers every saved part.")
@click.option("--margin", default=None, metavar="DELTA",
              help="Equivalence margin in AUC points, declared before the run [default: "
                   "1.0]; a finite number >= 0.")
@click.option("--resume", is_flag=True, help="Reuse parts saved with the same parameters.")
@click.option("--report-only", is_flag=True, help="Write the report from the saved parts.")
@_common(seeds="0,1,2", output=False)
def paper_command(out_dir: str | None, tasks: tuple[str, ...], routers: tuple[str, ...],
                  encoders: tuple[str, ...], parts: tuple[str, ...], margin: str | None,
                  resume: bool, report_only: bool, seeds: str, no_tune: bool, bootstrap: int,
                  data_dir: str | None, cache_dir: str | None, fmt: str, quiet: bool) -> None:
    """Every study and a reproduction report, claim by claim, with verdicts by written
    rules: on the built-in tasks, or on any tasks with -t (your own data by path)."""
    from routeharness.common.errors import RouteHarnessError
    from routeharness.study import paper
    from routeharness.study.report import claim_table, claims, write_report
    from routeharness.study.verdicts import DEFAULT_MARGIN, check_margin

    delta = DEFAULT_MARGIN if margin is None else check_margin(margin)
    out_dir = out_dir or ("study-paper" if tasks else "benchmarks/paper")
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    if not report_only:
        from routeharness.cli.evaluation import check_output_paths

        if tasks:
            plan = paper.plan_for(tasks, routers=routers or paper.ROUTERS, encoders=encoders,
                                  data_dir=data_dir)
        else:
            plan = paper.PaperPlan()
            if routers:
                plan = paper.replace(plan, routers=tuple(routers))
            plan = paper.replace(plan, encoders=tuple(encoders) or paper.default_encoders())
        # never into a dataset, the data directory or the cache: eval's rule for outputs
        check_output_paths(Path(out_dir) / "report.json", None, plan.all_tasks(), data_dir,
                           cache_dir)
        paper.run(out_dir, plan, settings=settings, resume=resume, only=parts or None)
    saved = paper.load_parts(out_dir)
    if not saved:
        raise RouteHarnessError(f"{out_dir}: no saved part to report on")
    path = write_report(saved, out_dir, delta)
    say(f"report written to {path}")
    emit([claim_table(claims(saved, delta))], fmt)


@study.command(name="transfer")
@click.option("--router", "-r", "routers", multiple=True,
              help="Router name or NAME:PARAM=VALUE (repeatable) [default: knn, linear, "
                   "mlp]; kNN is added as the reference of every comparison.")
@click.option("--task", "-t", "tasks", multiple=True, required=True,
              help="Twice: -t SOURCE (fitted and tuned on) -t TARGET (tested on); a task "
                   "name, NAME:GROUP or a dataset path.")
@encoder_option
@click.option("--aliases", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Model names that stand for one model: YAML (aliases: {MODEL: SAME_AS}) "
                   "or CSV (model,same_as).")
@_common()
def transfer_command(routers: tuple[str, ...], tasks: tuple[str, ...], encoder: str | None,
                     aliases: str | None, seeds: str, no_tune: bool, bootstrap: int,
                     output: str | None, data_dir: str | None, cache_dir: str | None,
                     fmt: str, quiet: bool) -> None:
    """Fit on one task, test on another, among the models both pools share: AUC in task
    against transferred, per router."""
    from routeharness.common.errors import RouteHarnessError
    from routeharness.study import transfer

    if len(tasks) != 2:
        raise RouteHarnessError(f"study transfer takes exactly two tasks, -t SOURCE -t "
                                f"TARGET (got {len(tasks)})")
    table = transfer.read_aliases(aliases) if aliases else None
    path = _outputs("transfer", output, None, tasks, data_dir, cache_dir)
    settings = _settings(seeds, no_tune, bootstrap, data_dir, cache_dir, quiet)
    result = transfer.run(list(routers), list(tasks), encoder=encoder, aliases=table,
                          alias_file=aliases, settings=settings)
    _finish("transfer", result, path, fmt, None, settings)
