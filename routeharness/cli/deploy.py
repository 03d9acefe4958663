"""From a leaderboard to production: ``fit`` (a router saved as a folder) and ``route``
(new prompts through a saved router)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from routeharness.cli._app import (
    LAM_HINT,
    ByteSize,
    FiniteNumber,
    cache_dir_option,
    cli,
    data_dir_option,
    quiet_option,
    say,
)
from routeharness.cli.progress import RichReporter
from routeharness.common.errors import RouteHarnessError

#: ``route --max-input``'s default (``textinput.DEFAULT_MAX_INPUT_BYTES``, not imported
#: so that ``--help`` stays instant; a test checks they agree)
DEFAULT_MAX_INPUT = "1GB"
#: what ``route --format`` writes: the table formats every command takes (``json``: one
#: array of the routes), and ``jsonl``: the same objects, one per line
ROUTE_FORMATS = ("rich", "markdown", "json", "jsonl")
#: up to this many prompts, ``route`` runs a stored encoder on one thread
FEW_PROMPTS = 8


@cli.command(name="fit")
@click.option("--router", "-r", required=True,
              help="Router name, or NAME:PARAM=VALUE,... to fix hyper-parameters.")
@click.option("--task", "-t", required=True, help="Task name, NAME:GROUP or a dataset path.")
@click.option("--encoder", "-e", default=None,
              help="Encoder (default: the task card's, else minilm).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="The seed whose streams tune and fit (as eval's --seeds).")
@click.option("--no-tune", is_flag=True, help="The router's defaults instead of tuning.")
@click.option("--output", "-o", required=True, type=click.Path(),
              help="A new folder for the saved router.")
@click.option("--store-encoder", is_flag=True,
              help="Export the text encoder to ONNX and keep it in the folder: route and "
                   "serve then run on onnxruntime, without torch (pip install "
                   "'routeharness[route]'). Its routes on the test prompts are compared "
                   "with the encoder's and recorded.")
@data_dir_option
@cache_dir_option
@quiet_option
def fit_command(router: str, task: str, encoder: str | None, seed: int, no_tune: bool,
                output: str, store_encoder: bool, data_dir: str | None,
                cache_dir: str | None, quiet: bool) -> None:
    """Tune a router on a task's validation split, fit it on train (as eval does) and save
    it as a folder: manifest.json and the state in safetensors (no pickle)."""
    from routeharness.deploy import saved
    from routeharness.evaluation.tuning import plan_routers

    plan = plan_routers([router], references=False)[0]  # typos fail before any work
    saved._check_saveable(plan)
    from routeharness.cli.evaluation import check_output_paths
    from routeharness.common.files import check_new_folder

    folder = Path(output)
    # never inside the dataset, the data directory or the cache: eval's rule for outputs
    check_output_paths(folder / saved.MANIFEST, None, (task,), data_dir, cache_dir)
    check_new_folder(folder, "saved router")
    fitted = saved.fit(router, task, encoder=encoder, seed=seed, tune=not no_tune,
                       data_dir=data_dir, cache_dir=cache_dir, reporter=RichReporter(quiet),
                       store_encoder=store_encoder)
    saved.save(fitted, folder)
    training = fitted.manifest.training
    say(f"saved {fitted.manifest.router.label} (fitted on {training.n_train} prompts of "
        f"{fitted.manifest.task.name}, validation AUC {training.validation_auc:.2f}) to "
        f"{folder}")
    stored = fitted.manifest.stored_encoder
    if stored is not None:
        check = stored.check
        say(f"stored the encoder as ONNX: on {check.prompts} test prompts the largest "
            f"embedding difference is {check.max_abs_diff:.2g}, {check.routes_differing} of "
            f"{check.routes} routes differ")


@cli.command(name="route")
@click.argument("folder", type=click.Path())
@click.argument("prompt", required=False)
@click.option("--file", "prompts_file", type=click.Path(dir_okay=False), default=None,
              help="Prompts as JSON lines: {\"prompt\": ..., \"id\"?, \"group\"?, "
                   "\"embedding\"?}; '-' or no PROMPT: standard input (JSON lines or "
                   "one prompt per line). UTF-8; a regular file or a pipe.")
@click.option("--lam", type=FiniteNumber(0, LAM_HINT), default=None,
              help="Trade-off, a finite number >= 0: utility = score - lam x cost "
                   "(normalised). Default 0.")
@click.option("--budget", type=FiniteNumber(0, "for no limit leave --budget out (--lam 0 "
                                                "routes on quality alone)"),
              default=None, metavar="USD_PER_1K",
              help="Mean cost per 1,000 prompts: the trade-off of highest validation "
                   "quality within it.")
@click.option("--format", "fmt", type=click.Choice(ROUTE_FORMATS), default="rich",
              show_default=True,
              help="A table, Markdown, a JSON array of the routes, or one JSON object per "
                   "prompt per line (jsonl); JSON keeps each prompt whole.")
@click.option("--max-input", type=ByteSize(), default=DEFAULT_MAX_INPUT,
              show_default=True,
              help="The largest input read (the file, standard input or PROMPT): 16MB, "
                   "2GB, 1000000 (bytes).")
def route_command(folder: str, prompt: str | None, prompts_file: str | None,
                  lam: float | None, budget: float | None, fmt: str, max_input: int) -> None:
    """Route prompts with a saved router: the chosen model per prompt, with the predicted
    scores and costs (utility routers)."""
    from routeharness.common.textinput import read_input
    from routeharness.deploy import saved
    from routeharness.deploy.routing_input import read_prompt_argument, read_prompts

    if lam is not None and budget is not None:
        raise click.UsageError("give --lam or --budget, not both")
    if prompt is not None and prompts_file is not None:
        raise click.UsageError("give a PROMPT or --file, not both")
    router = saved.load(folder)
    note = router.stored_encoder_note()
    if note is not None:
        say(note)
    if prompt is not None:
        items = read_prompt_argument(prompt, limit=max_input, option="--max-input")
    else:
        text, where = read_input(prompts_file, "prompts file", limit=max_input,
                                 option="--max-input")
        items = read_prompts(text, where)
    if budget is not None:
        point, met = router.lam_for_budget(budget)
        chosen = point.lam
        note = (f"--budget {budget:g} USD per 1,000 prompts: lam = {chosen:g} (validation: "
                f"{point.cost_usd * 1000:.4g} USD per 1,000 prompts, quality "
                f"{point.quality:.2f})")
        if not met:
            note += "; no trade-off meets the budget on validation: the cheapest is used"
        say(note)
    else:
        chosen = 0.0 if lam is None else lam
    routes = router_routes(router, items, chosen)
    _print_routes(items, routes.rows(), fmt)


@cli.command(name="update")
@click.argument("folder", type=click.Path())
@click.argument("outcomes", type=click.Path(), required=False)
@click.option("--replace", is_flag=True,
              help="A known id whose text, group or vector differs replaces that prompt's "
                   "row (its text, vector and every outcome) instead of being refused.")
@click.option("--migrate", is_flag=True,
              help="Add the manifest checksum to a folder saved before it existed (no "
                   "OUTCOMES needed).")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 86400), default=120,
              show_default=True, metavar="SECONDS",
              help="How long to wait for another update of the same router.")
def update_command(folder: str, outcomes: str | None, replace: bool, migrate: bool,
                   wait_s: float) -> None:
    """Add new evaluations to a saved kNN router without retraining: new prompts for the
    pool's models, or a new model evaluated on some prompts (a file of the canonical
    columns: id, prompt, group, score:<model>, cost:<model>, and embedding for a router
    fitted on -e precomputed). The folder is swapped whole, under a lock. Prints each
    model's coverage (outcomes / training prompts) and warns when one is under 10%."""
    from routeharness.deploy.update import update

    if outcomes is None and not migrate:
        raise click.UsageError("give OUTCOMES (a file of new outcomes), or --migrate")
    report = update(folder, outcomes, replace=replace, migrate=migrate, wait_s=wait_s)
    checksum = "; manifest checksum added" if report.migrated else ""
    if outcomes is None:
        say(f"migrated {folder}: manifest checksum added" if report.migrated else
            f"{folder}: already has a manifest checksum; nothing to migrate")
        return
    models = f", new model(s) {', '.join(report.new_models)}" if report.new_models else ""
    replaced = (f", {report.replaced_prompts} prompt(s) replaced"
                if report.replaced_prompts else "")
    say(f"updated {folder}: {report.new_prompts} new prompt(s), {report.filled_cells} "
        f"cell(s) filled on known prompts{replaced}{models}; {report.n_train} training "
        f"prompts now{checksum}")
    coverage = report.coverage()
    say("coverage (outcomes / training prompts): " + ", ".join(
        f"{m} {coverage[m]:.1%} ({count})" for m, count in report.outcomes.items()))


def router_routes(router: Any, items: list[Any], lam: float) -> Any:
    """Routes of parsed prompts: their own vectors, or the saved encoder's."""
    import numpy as np

    if router.manifest.encoder.name == "precomputed" or items[0].embedding is not None:
        missing = [i for i, item in enumerate(items) if item.embedding is None]
        if missing:
            raise RouteHarnessError(f"prompt {missing[0] + 1} has no \"embedding\" (this "
                                    "router routes the dataset's own vectors)")
        X = np.asarray([item.embedding for item in items], dtype=np.float32)
    else:
        # a few prompts: one thread (starting a pool of them costs more than it saves)
        threads = 1 if len(items) <= FEW_PROMPTS else None
        X = router.encoder(threads).encode([item.prompt for item in items])
    groups = [item.group for item in items] if router.tags.needs_groups else None
    if groups is not None and any(g is None for g in groups):
        raise RouteHarnessError(f"router {router.manifest.router.label!r} needs a "
                                "\"group\" with every prompt")
    return router.route_vectors(X, lam, groups, [item.prompt for item in items])


def _print_routes(items: list[Any], rows: list[dict[str, Any]], fmt: str) -> None:
    from routeharness.cli.render import emit
    from routeharness.deploy.routing_input import RoutedPrompt
    from routeharness.results.tables import ReportTable

    if len(rows) != len(items):
        raise RouteHarnessError(f"the router returned {len(rows)} routes for {len(items)} "
                                "prompts")
    if fmt in ("json", "jsonl"):
        # as serve answers (RoutedPrompt): a trade-off of infinity (a budget may choose
        # it) is "inf", never a bare Infinity token that JSON readers refuse
        lines = [RoutedPrompt.model_construct(id=item.id, prompt=item.prompt, **row)
                 .model_dump_json(exclude_none=True) for item, row in zip(items, rows)]
        if fmt == "jsonl":
            for line in lines:
                click.echo(json.dumps(json.loads(line), ensure_ascii=False))
        else:
            click.echo(json.dumps([json.loads(line) for line in lines], indent=1,
                                  ensure_ascii=False, allow_nan=False))
        return
    has_predictions = bool(rows) and "predicted_score" in rows[0]
    headers = ["id", "prompt", "model"] + (["predicted score", "predicted cost (USD)"]
                                          if has_predictions else [])
    body = []
    for item, row in zip(items, rows):
        text = item.prompt if len(item.prompt) <= 60 else item.prompt[:57] + "..."
        cells = [item.id, " ".join(text.split()), row["model"]]
        if has_predictions:
            cells += [f"{row['predicted_score']:.3f}", f"{row['predicted_cost_usd']:.6f}"]
        body.append(cells)
    lam = rows[0]["lam"] if rows else 0.0
    emit([ReportTable(f"routes at lam = {lam:g}", headers, body,
                      right={3, 4} if has_predictions else set(), nowrap={0, 2})], fmt)
