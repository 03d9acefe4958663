"""The evaluation protocol (no CLI code): embed, tune on validation, fit on train, sweep
the trade-off on test, score the frontier; for every router x task x seed.

1. Embed every split's prompts (cached; see ``routeharness.embedding.encoders``).
2. Tune: each configuration of the router's declared ``param_grid`` (at most
   ``max_configs``, a seeded sample when the grid is larger: the same budget rule for
   every router) is fitted on train and scored by frontier AUC on validation (or, with
   ``tune_on="groups"``, on each training group held out in turn); the best wins, a tie
   by the router's declared ``tie_preference`` (``tuning.pick``).
3. Refit on train with the winner; route the test prompts for every ``lam``.
4. Score: operating points, frontier AUC (+ bootstrap CI), quality and cost at lam = 0,
   per group; APGR/CPT when the pool has two models.
Each seed is split into independent streams (``routeharness.evaluation.protocol.seed_streams``):
the grid sample, the router's ``random_state`` and the bootstrap. The oracle (each test
prompt's best model by its true outcome) is a reference computed here from the labels,
never a router. Routers see costs in normalised units (train's most expensive model's mean cost = 1);
metrics use the evaluated split's own scale. Rows with a missing score are left out of
validation and test scoring (and counted); routers may train on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.data.dataset import RoutingTask
from routeharness.embedding.embed import EmbeddedTask, embed_task
from routeharness.embedding.encoders import choose_encoder
from routeharness.evaluation import metrics
from routeharness.evaluation.checkpoint import load_checkpoint, save_checkpoint
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.scoring import (
    oracle_reference,
    task_reference,
)
from routeharness.evaluation.tuning import (
    check_tune_on,
    plan_routers,
    sparse_table,
    tuning_steps,
)
from routeharness.results.records import (
    EmbeddingsUsed,
    ResultSet,
    RoutedChoices,
    RunRecord,
    TaskReference,
    replaced,
)


def _refuse_duplicate_tasks(specs: list[str], loaded: Sequence[RoutingTask]) -> None:
    """Two task specs that load tasks of one name (the same spec twice, or two folders
    both named ``data``) would pool their records under that name: refused."""
    first: dict[str, str] = {}
    for spec, task in zip(specs, loaded):
        if task.name in first:
            raise RouteHarnessError(
                f"tasks {first[task.name]!r} and {spec!r} are both named {task.name!r}: their "
                f"results would be pooled; give one task once, or name your datasets apart "
                f"(routing.json \"name\")")
        first[task.name] = spec


def load_tasks(specs: Sequence[str], *, data_dir: str | None = None,
               reporter: Reporter | None = None,
               task_options: dict[str, Any] | None = None) -> list[RoutingTask]:
    """The task specs loaded in order; two that load tasks of one name are refused."""
    from routeharness.data.tasks import load_task

    reporter = reporter or Reporter()
    loaded = []
    for spec in specs:
        reporter.log(f"loading task {spec}")
        loaded.append(load_task(spec, data_dir=data_dir, **(task_options or {})))
    _refuse_duplicate_tasks(list(specs), loaded)
    return loaded


def evaluate(routers: Sequence[str], tasks: Sequence[str], *, encoder: str | None = None,
             protocol: Protocol | None = None, data_dir: str | None = None,
             cache_dir: str | None = None, reporter: Reporter | None = None,
             references: bool = True, task_options: dict[str, Any] | None = None,
             checkpoint: str | Path | None = None, resume: bool = False,
             oracle: bool | None = None, executor: Any = None,
             keep_choices: bool = False) -> ResultSet:
    """The router x task matrix over the protocol's seeds -> a typed ``ResultSet``.

    ``routers``: names or specs ``NAME:PARAM=VALUE,...`` (fixed hyper-parameters).
    ``encoder``: None uses the tasks' card default (see ``choose_encoder``).
    ``references`` adds the best-single and random rows and the oracle reference;
    ``oracle`` (default: ``references``) the oracle reference alone.
    ``checkpoint``: a file the result so far is saved to after every router x task x
    seed (atomically). ``resume=True`` reuses the records saved there for the router x
    task x seed they cover (same protocol, encoder, task data and router distribution,
    version and fixed parameters, else an error) and runs only the rest.
    ``executor``: where the runs execute (``routeharness.evaluation.executors``: an ``Executor``, or
    ``"local"`` (default) / ``"ray"``, then started and stopped here); the records come
    out in the same order, with the same numbers, whichever runs them.
    ``keep_choices``: each record keeps its test choices (``RunRecord.choices``: the
    model chosen for each scored test prompt at each lam; what a leaderboard's paired
    intervals resample); a checkpoint record without them is run again.
    """
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import EncoderIdentity, get_encoder
    from routeharness.evaluation.executors import Executor, Job, get_executor

    protocol = protocol or Protocol()
    reporter = reporter or Reporter()
    plans = plan_routers(routers, references)  # unknown names and params fail before work
    owned = not isinstance(executor, Executor)
    runner = get_executor(executor or "local") if owned else executor
    loaded = load_tasks(tasks, data_dir=data_dir, reporter=reporter, task_options=task_options)
    for task in loaded:  # a task that cannot be tuned on groups: one line before any work
        check_tune_on(task, protocol)
    enc = get_encoder(choose_encoder(encoder, loaded))
    cache = EmbeddingCache(cache_dir)
    run = ResultSet.new(protocol.recorded(), EncoderIdentity.of(enc))  # provenance
    reusable = load_checkpoint(checkpoint, run, plans, reporter) \
        if resume and checkpoint is not None else None
    order: list[tuple[str, str, int]] = []  # the records' order, whatever runs them
    done: dict[tuple[str, str, int], RunRecord] = {}
    tasks: dict[str, TaskReference] = {}
    jobs = []
    for task in loaded:
        embedded = embed_task(task, enc, cache, reporter)
        tasks[task.name] = _reference(embedded, enc.name, protocol, reporter,
                                      references if oracle is None else oracle)
        reused = 0
        for seed in protocol.seeds:
            for plan in plans:
                key = (plan.label, task.name, seed)
                order.append(key)
                record = reusable.record(key, tasks[task.name].fingerprint) \
                    if reusable is not None else None
                if keep_choices and record is not None and record.choices is None:
                    record = None  # saved without its choices: run again to keep them
                if record is not None:
                    done[key] = record
                    reused += 1
                else:
                    jobs.append(Job(plan, embedded, seed))
        if reused:
            reporter.log(f"{task.name}: {reused} of {len(plans) * len(protocol.seeds)} runs "
                         f"reused from {checkpoint}")
    total = sum(tuning_steps(job.plan, protocol, sparse_table(
        job.embedded.task.splits["train"].scores)) for job in jobs)
    try:
        with reporter.progress(f"routing {', '.join(t.name for t in loaded)}", total) as advance:
            for job, routed in runner.run(jobs, protocol, advance):
                done[job.key] = replaced(routed.record, choices=RoutedChoices.of(
                    routed.choices)) if keep_choices else routed.record
                if checkpoint is not None:
                    save_checkpoint(run.with_runs(tasks, [done[k] for k in order if k in done]),
                                    checkpoint)
    finally:
        if owned:
            runner.close()
    return run.with_runs(tasks, [done[k] for k in order])


def _reference(embedded: EmbeddedTask, encoder_name: str, protocol: Protocol,
               reporter: Reporter, oracle: bool) -> TaskReference:
    """A task's reference facts (``scoring.task_reference``), how its embeddings were
    obtained, and the oracle row when asked for."""
    task = embedded.task
    reporter.log(f"embeddings for {task.name} ({encoder_name}): {embedded.encoded} prompts "
                 f"encoded, {embedded.cached} loaded from cache"
                 + (" (nothing encoded)" if embedded.encoded == 0 else ""))
    for note in embedded.notes:
        reporter.log(note)
    test = task.splits["test"]
    test_eval = test.subset(test.complete_rows())
    # seed 0's bootstrap stream whatever --seeds: pieces of one matrix run with different
    # seeds hold the same oracle row, so they merge
    row = oracle_reference(test_eval, metrics.cost_scale(task.splits["train"].costs),
                           protocol, seed_streams(0)) if oracle else None
    used = EmbeddingsUsed(encoded=embedded.encoded, cached=embedded.cached,
                          notes=list(embedded.notes))
    return task_reference(task, test_eval, oracle=row, embeddings=used)
