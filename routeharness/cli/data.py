"""``routeharness data``: inspect, validate and build routing datasets."""

from __future__ import annotations

from typing import Any

import click

from routeharness.cli._app import cache_dir_option, cli, data_dir_option, say
from routeharness.cli.progress import RichReporter
from routeharness.cli.render import FORMATS, emit
from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import check_new_folder
from routeharness.results.tables import ReportTable, fmt


@cli.group()
def data() -> None:
    """Inspect, validate and build routing datasets."""


@data.command(name="info")
@click.argument("task")
@data_dir_option
@cache_dir_option
@click.option("--encoder", "-e", default=None,
              help="Also count rows whose embedding with this encoder equals another "
                   "row's, within and across splits (e.g. prompts it truncates alike).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="rich",
              show_default=True, help="Output format: rich tables, Markdown, or JSON "
                                      "(the full info record).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def data_info(task: str, data_dir: str | None, cache_dir: str | None, encoder: str | None,
              fmt: str, as_json: bool) -> None:
    """Sizes, per-model mean score and cost, best single model, oracle, missing cells and
    duplicate or leaked prompts of TASK (a name, NAME:GROUP, a path, PATH:GROUP or
    hub:ORG/NAME[@REVISION])."""
    from routeharness.data.tasks import load_task, task_info

    loaded = load_task(task, data_dir=data_dir, allow_leaks=True)
    info = task_info(loaded)
    if encoder is not None:
        from routeharness.embedding.embed import identical_embedding_info

        info.update(identical_embedding_info(loaded, encoder, cache_dir, RichReporter()))
    if as_json or fmt == "json":
        import json

        click.echo(json.dumps(_plain(info), indent=1, ensure_ascii=False))
        return
    header = (f"{info['name']} v{info['version']}  source: {info['source']}"
              + (f"  revision: {info['revision']}" if info.get("revision") else ""))
    if fmt == "markdown":
        from routeharness.results.tables import markdown_cell

        click.echo(f"{markdown_cell(header)}\n")
    else:
        say(header, err=False, style="bold")
    emit(info_tables(info), fmt)
    for pair, count in info["leaks"].items():
        if count:
            later, earlier = pair.split("-")
            say(f"warning: {count} {later} prompt{'s' if count > 1 else ''} also "
                      f"appear{'s' if count == 1 else ''} in {earlier} (duplicated or "
                      "leaked prompts)")
    for pair, count in info.get("identical_embeddings", {}).get("across", {}).items():
        if count:
            later, earlier = pair.split("-")
            rows = f"{count} {later} row" + ("s embed" if count > 1 else " embeds")
            say(f"warning: {rows} identically to a {earlier} row with "
                      f"{info['encoder']}")
    if not any(info["leaks"].values()) and fmt == "rich":
        say("no prompt is shared between train, validation and test", err=False,
            style="dim")


def _plain(value: object) -> object:
    """JSON-safe: a NaN or infinite number (no data) becomes null, as strict JSON has none."""
    import math

    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@data.command(name="validate")
@click.argument("path", type=click.Path())
def data_validate(path: str) -> None:
    """Check a dataset (file or directory, canonical layout) and print every problem with
    its file, row and column; exit 1 if there is any."""
    from pathlib import Path

    from routeharness.data.readers import validate_path

    base, colon, group = path.rpartition(":")
    if colon and base and not Path(path).exists() and Path(base).exists():
        raise RouteHarnessError(f"{path}: data validate checks a whole dataset; pass {base} "
                                f"(a group such as {group!r} narrows a task in eval, not here)")
    problems = validate_path(path)
    if not problems:
        say(f"ok: {path} follows the routeharness dataset schema", err=False)
        return
    for problem in problems:
        say(f"error: {problem}")
    raise RouteHarnessError(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
                            " found")


@data.command(name="build")
@click.argument("task")
@click.option("--source", required=True, metavar="DIRECTORY|URL",
              help="The upstream raw layout: a local directory, or an http(s) URL for "
                   "builders that download (see the task card).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="New directory for the canonical dataset (datasets save_to_disk).")
@click.option("--suite", default=None,
              help="Upstream release/suite to build, for tasks that have several (vhelm-mm).")
@click.option("--prices", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Prices (CSV or YAML: model, price_input_per_mtok, price_output_per_mtok, "
                   "source, date) adding to or overriding the task card's (vhelm-mm).")
@click.option("--prod-env", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="HELM's prod_env folder (model_deployments.yaml, model_metadata.yaml) "
                   "naming the suite's models; default: a prod_env beside benchmark_output "
                   "(vhelm-mm).")
@click.option("--images-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="A folder holding the images (HELM's scenarios/ tree) when the source "
                   "lacks them (vhelm-mm).")
@click.option("--text-only", is_flag=True,
              help="Build without images: an explicitly text-only task (vhelm-mm).")
def data_build(task: str, source: str, out: str, suite: str | None, prices: str | None,
               prod_env: str | None, images_dir: str | None, text_only: bool) -> None:
    """Convert TASK's upstream layout into the canonical dataset, with a dataset card."""
    from routeharness.data.tasks import build_task

    given = {"suite": suite, "prices": prices, "prod_env": prod_env,
             "images_dir": images_dir, "text_only": text_only or None}
    built = build_task(task, source, out, **{k: v for k, v in given.items() if v})
    sizes = ", ".join(f"{s} {d.n}" for s, d in built.splits.items())
    say(f"built {built.name} v{built.version} in {out}: {sizes}; {len(built.models)} models; "
        f"loads with --task {out}", err=False)


@data.command(name="synth")
@click.argument("out", type=click.Path())
@click.option("--train", "n_train", type=int, default=1000, show_default=True,
              help="Training prompts.")
@click.option("--validation", "n_val", type=int, default=300, show_default=True,
              help="Validation prompts.")
@click.option("--test", "n_test", type=int, default=300, show_default=True,
              help="Test prompts.")
@click.option("--models", type=int, default=5, show_default=True,
              help="Candidate models m0, m1, ... (prices spread over 100x, cheapest first).")
@click.option("--clusters", type=int, default=8, show_default=True,
              help="Clusters of prompts (one group each), each with its own best model.")
@click.option("--dim", type=int, default=32, show_default=True,
              help="Dimension of the embeddings (>= 2).")
@click.option("--locality", type=float, default=1.0, show_default=True,
              help="Share of outcome cells drawn from the prompt's cluster profile (1: "
                   "a nearest-neighbour router can reach the oracle; 0: no locality).")
@click.option("--graded", is_flag=True, help="Scores in [0, 1] (a judge's) instead of 0/1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def data_synth(out: str, n_train: int, n_val: int, n_test: int, models: int, clusters: int,
               dim: int, locality: float, graded: bool, seed: int) -> None:
    """Write a synthetic routing dataset with a known locality structure to the new
    directory OUT, its embeddings as the 'embedding' column: evaluate it with
    `routeharness eval -t OUT -e precomputed`. The same options give the same data."""

    from routeharness.data.readers import write_task
    from routeharness.data.synth import synthetic_task

    target = check_new_folder(out, "dataset")
    task, X = synthetic_task(n_train, n_val, n_test, n_models=models, dim=dim,
                             n_clusters=clusters, locality=locality, graded=graded, seed=seed)
    for split, data in task.splits.items():  # the generator's vectors: -e precomputed
        data.embeddings = X[split]
    settings = {"train": n_train, "validation": n_val, "test": n_test, "models": models,
                "clusters": clusters, "dim": dim, "locality": locality, "graded": graded,
                "seed": seed}
    write_task(task, target, meta={
        "description": "synthetic routing task with a known locality structure "
                       "(routeharness.data.synth); embeddings in the 'embedding' column",
        "source": {"generator": "routeharness data synth", **settings},
        "notes": list(task.notes)})
    sizes = ", ".join(f"{s} {d.n}" for s, d in task.splits.items())
    say(f"wrote {task.name} to {out}: {sizes}; {len(task.models)} models, {dim}-d "
        f"embeddings; evaluate with --task {out} --encoder precomputed", err=False)


@data.command(name="export")
@click.argument("task")
@click.option("--format", "fmt", type=click.Choice(["llmrouter"]), default="llmrouter",
              show_default=True, help="The format to write: LLMRouter's routing data "
                                      "(docs/formats/llmrouter.md).")
@click.option("--output", "-o", "out", required=True, type=click.Path(),
              help="New (or empty) directory to write.")
@click.option("--encoder", "-e", default=None,
              help="Encoder of the query embeddings written to the .pt file (default: the "
                   "task's own vectors if it has them, else the task's default encoder).")
@data_dir_option
@cache_dir_option
def data_export(task: str, fmt: str, out: str, encoder: str | None, data_dir: str | None,
                cache_dir: str | None) -> None:
    """Write TASK (a name, NAME:GROUP, a path or PATH:GROUP) in another tool's format:
    LLMRouter's routing JSON lines, its .pt of query embeddings and its candidate file,
    written to a temporary folder then renamed; `eval -t OUT -e precomputed` reads it back."""

    from routeharness.data.llmrouter import write_llmrouter
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import choose_encoder, get_encoder

    target = check_new_folder(out, "LLMRouter export")
    loaded = load_task(task, data_dir=data_dir)
    own = all(split.embeddings is not None for split in loaded.splits.values())
    name = choose_encoder(encoder or ("precomputed" if own else None), [loaded])
    embedded = embed_task(loaded, get_encoder(name), EmbeddingCache(cache_dir), RichReporter())
    write_llmrouter(loaded, target, embeddings=embedded.X)
    sizes = ", ".join(f"{s} {d.n}" for s, d in loaded.splits.items())
    say(f"wrote {loaded.name} to {out} in {fmt}'s format: {sizes}; {len(loaded.models)} "
        f"models, {embedded.X['train'].shape[1]}-d embeddings from {name}; evaluate with "
        f"--task {out} --encoder precomputed", err=False)


def info_tables(info: dict[str, Any]) -> list[ReportTable]:
    """``task_info``'s dict as the tables ``data info`` prints (names as plain text)."""
    splits = info["splits"]
    right = set(range(1, len(splits) + 2))
    sizes = ReportTable("prompts per split and group", ["group", *splits, "total"],
                        right=right)
    for group in info["groups"]:
        counts = [info["sizes"][s][group] for s in splits]
        sizes.add([group, *counts, sum(counts)])
    totals = [sum(info["sizes"][s].values()) for s in splits]
    sizes.add(["all", *totals, sum(totals)], style="bold")
    models = ReportTable("models: mean score (x100) and mean cost ($ per 1k prompts)",
                         ["model", *(f"score {s}" for s in splits),
                          *(f"$/1k {s}" for s in splits), "missing"],
                         right=set(range(1, 2 * len(splits) + 2)))
    for row in info["models"]:
        models.add([row["model"], *(fmt(row["score"][s]) for s in splits),
                    *(fmt(1000 * row["cost_usd"][s], None, 3) for s in splits),
                    sum(row["missing"].values())])
    summary = ReportTable("reference points", ["", *splits], right=set(range(1, len(splits) + 1)))
    summary.add(["best single model", *(f"{info['best_single'][s]['model']} "
                                        f"({fmt(info['best_single'][s]['score'])})"
                                        for s in splits)])
    summary.add(["oracle (complete rows)", *(fmt(info["oracle"][s]) for s in splits)])
    summary.add(["missing cells", *(info["missing_cells"][s] for s in splits)])
    summary.add(["rows with a missing cell", *(info["incomplete_rows"][s] for s in splits)])
    summary.add(["duplicate prompts within", *(info["duplicates"][s] for s in splits)])
    same = info.get("identical_embeddings")
    if same is not None:
        summary.add([f"identical embeddings within ({info['encoder']})",
                     *(same["within"].get(s, 0) for s in splits)])
        for pair, count in same["across"].items():
            later, earlier = pair.split("-")
            summary.add([f"{later} rows with a {earlier} row's embedding",
                         *(count if s == later else "" for s in splits)])
    return [sizes, models, summary]


@data.command(name="import")
@click.argument("fmt", metavar="FORMAT")
@click.argument("source", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--seed", type=int, default=None,
              help="Seed of the split of a source without its own splits (default "
                   "20250601; docs/formats/README.md).")
@click.option("--prices", type=click.Path(dir_okay=False), default=None,
              help="Price table (JSON: model -> input_token_price_per_million, "
                   "output_token_price_per_million, USD): cost = the source's tokens x these "
                   "prices, instead of the source's own cost.")
@click.option("--name", default=None, help="The task's name (default: FORMAT).")
def data_import(fmt: str, source: str, out: str, seed: int | None, prices: str | None,
                name: str | None) -> None:
    """Convert another tool's routing data (SOURCE, in FORMAT) into a routeharness dataset
    in the new directory OUT: one of routerarena, routerbench-full, llmrouterbench,
    embedllm, sprout, routereval, vl-routerbench (docs/formats/FORMAT.md). Costs and splits
    are the source's where it has them; what was inferred is in OUT/routing.json's notes."""
    from routeharness.data.importers import import_source

    written = import_source(fmt, source, out, seed=seed, prices=prices, name=name)
    for warning in written.warnings:
        click.echo(f"warning: {warning}", err=True)
    sizes = ", ".join(f"{split} {n}" for split, n in written.sizes.items())
    click.echo(f"imported {fmt} from {source} to {out}: {sizes}; {written.models} models, "
               f"{written.groups} groups; {written.cost_rule}; evaluate with --task {out}")


@data.command(name="from-log")
@click.argument("log", type=click.Path(dir_okay=False))
@click.argument("labels", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path())
@click.option("--seed", type=int, default=None,
              help="Seed of the split by prompt text (default 20250601; "
                   "docs/formats/README.md).")
@click.option("--name", default="from-log", show_default=True, help="The task's name.")
@click.option("--outcomes", type=click.Path(dir_okay=False), default=None,
              help="Also write every row as one JSON-lines file of new outcomes, the "
                   "file `routeharness update` adds to a saved kNN router.")
def data_from_log(log: str, labels: str, out: str, seed: int | None, name: str,
                  outcomes: str | None) -> None:
    """Turn serve's request LOG (serve --request-log) and outcome LABELS (JSON lines:
    id (a request id or prompt_sha256), model, score in [0, 1], optional cost_usd,
    prompt, group) into a routing dataset in the new folder OUT, which eval and update
    read (docs/serve.md)."""
    from routeharness.deploy.fromlog import from_log

    written = from_log(log, labels, out, seed=seed, name=name, outcomes=outcomes)
    for warning in written.warnings:
        click.echo(f"warning: {warning}", err=True)
    sizes = ", ".join(f"{split} {n}" for split, n in written.sizes.items())
    click.echo(f"wrote {out} from {log} and {labels}: {sizes}; {written.models} models, "
               f"{written.groups} groups; {written.cost_rule}; evaluate with --task {out}")
    if outcomes is not None:
        click.echo(f"wrote every row to {outcomes}: routeharness update FOLDER {outcomes} "
                   "adds them to a saved kNN router")
