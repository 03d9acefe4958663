"""``study paper``: every study on the built-in text tasks and an image task, and a
report that takes arXiv 2505.12601's claims one by one (the claim, the evidence with
intervals and seeds, a verdict on this data), written as plainly when kNN loses.

Each part is saved as its own study JSON in the output folder as soon as it finishes;
``resume`` reuses a part whose file holds the same parameters. The verdict rules are
the ``verdict_*`` functions below, written out in the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.embedding.encoders import EncoderIdentity, choose_encoder, get_encoder
from routeharness.study.common import StudySettings
from routeharness.study.record import STUDY_SCHEMA, StudyResult

TEXT_TASKS = ("routerbench", "alpacaeval", "llmrouter", "routerdc")
IMAGE_TASKS = ("blindtest-ci",)
ROUTERS = ("knn", "linear", "mlp", "bandit")
ENCODERS = ("minilm", "lexical")
SWEEP = "k=1,2,5,10,20,50,100,200"


@dataclass
class PaperPlan:
    """What ``study paper`` runs. ``efficiency_tasks`` and ``shift_tasks`` default to the
    text tasks that ship or build without extra data (routerdc is read from --data-dir)."""

    routers: tuple[str, ...] = ROUTERS
    text_tasks: tuple[str, ...] = TEXT_TASKS
    efficiency_tasks: tuple[str, ...] = ("routerbench", "alpacaeval", "llmrouter")
    shift_tasks: tuple[str, ...] = ("routerbench", "llmrouter")
    image_tasks: tuple[str, ...] = IMAGE_TASKS
    encoders: tuple[str, ...] = ENCODERS
    sweep: str = SWEEP
    fractions: tuple[float, ...] = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
    #: parts that run on the first seed only (deterministic routers do not move with it;
    #: the others' seed spread is measured by sample-efficiency and images)
    first_seed_only: tuple[str, ...] = ("encoders", "shift", "sweep")
    #: how the shift part tunes: ``both`` sets tuning on validation and on held-out
    #: training groups side by side (every fold needs two training groups: a task with
    #: fewer than three groups that have test prompts runs ``validation`` only)
    shift_tune_on: str = "both"
    parts: tuple[str, ...] = ("locality", "sweep", "sample-efficiency", "encoders", "shift",
                              "images")
    #: the encoder of every part but encoders and images (None: the tasks' card default)
    encoder: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def all_tasks(self) -> tuple[str, ...]:
        """Every task spec some part reads, each once."""
        return tuple(dict.fromkeys((*self.text_tasks, *self.efficiency_tasks,
                                    *self.shift_tasks, *self.image_tasks)))


def _calls(plan: PaperPlan) -> dict[str, tuple[dict[str, Any], Callable[..., StudyResult]]]:
    """Each part's parameters (as its study file records them; ``_encoder``: the encoder
    it runs with, compared by identity on ``--resume``) and how to run it."""
    from routeharness.study import efficiency, encoders, images, neighbours, shift, sweep

    enc = plan.encoder
    own = {"_encoder": enc} if enc else {}
    return {
        "locality": ({"tasks": list(plan.text_tasks), **own},
                     lambda s: neighbours.run(list(plan.text_tasks), encoder=enc, settings=s)),
        "sweep": ({"router": "knn", "tasks": list(plan.text_tasks), "param": plan.sweep, **own},
                  lambda s: sweep.run("knn", list(plan.text_tasks), plan.sweep, encoder=enc,
                                      settings=s)),
        "sample-efficiency": (
            {"routers": list(plan.routers), "tasks": list(plan.efficiency_tasks),
             "fractions": list(plan.fractions), **own},
            lambda s: efficiency.run(list(plan.routers), list(plan.efficiency_tasks),
                                     encoder=enc, fractions=plan.fractions, settings=s)),
        "encoders": ({"routers": list(plan.routers), "tasks": list(plan.efficiency_tasks),
                      "encoders": list(plan.encoders)},
                     lambda s: encoders.run(list(plan.routers), list(plan.efficiency_tasks),
                                            list(plan.encoders), settings=s)),
        "shift": ({"routers": list(plan.routers), "tasks": list(plan.shift_tasks),
                   # a validation-tuned shift file does not record tune_on (as before)
                   **({} if plan.shift_tune_on == "validation"
                      else {"tune_on": plan.shift_tune_on}), **own},
                  lambda s: shift.run(list(plan.routers), list(plan.shift_tasks), encoder=enc,
                                      settings=s, tune_on=plan.shift_tune_on)),
        "images": ({"routers": list(plan.routers), "tasks": list(plan.image_tasks)},
                   lambda s: images.run(list(plan.routers), list(plan.image_tasks), settings=s)),
    }


def plan_for(tasks: Sequence[str], *, routers: Sequence[str] = ROUTERS,
             encoders: Sequence[str] = (), data_dir: str | None = None,
             task_options: dict[str, Any] | None = None) -> PaperPlan:
    """The plan of ``study paper -t TASK...``: any tasks, built-in or a user's own (a
    path), under the same rules. Each task is loaded (a bad one is one line, before any
    work): locality, the k sweep and sample-efficiency on every task; shift on those with
    two or more groups that have scored test prompts; images on those with images; the
    encoders part when two or more encoders are given. Every part but encoders and images
    runs with the first encoder given (else the tasks' card default)."""
    from routeharness.data.tasks import load_task

    if not tasks:
        raise RouteHarnessError("study paper -t: give at least one task")
    loaded = [load_task(spec, data_dir=data_dir, **(task_options or {})) for spec in tasks]
    for spec, task in zip(tasks, loaded):
        for split in ("train", "validation", "test"):
            data = task.splits.get(split)
            if data is None or data.n == 0:
                raise RouteHarnessError(f"task {spec!r} has no {split} split: study paper "
                                        "tunes on validation and reports test (docs/"
                                        "dataset-format.md)")
    grouped = [spec for spec, task in zip(tasks, loaded) if len(_tested_groups(task)) >= 2]
    with_images = [spec for spec, task in zip(tasks, loaded)
                   if any(d.has_images for d in task.splits.values())]
    text = tuple(tasks)
    parts = ["locality", "sweep", "sample-efficiency"]
    if len(encoders) >= 2:
        parts.append("encoders")
    if grouped:
        parts.append("shift")
    if with_images:
        parts.append("images")
    tune_on = "both" if all(len(_tested_groups(task)) >= 3 for spec, task in
                            zip(tasks, loaded) if spec in grouped) else "validation"
    return PaperPlan(routers=tuple(routers), text_tasks=text, efficiency_tasks=text,
                     shift_tasks=tuple(grouped), image_tasks=tuple(with_images),
                     encoders=tuple(encoders), parts=tuple(parts),
                     encoder=encoders[0] if encoders else None, shift_tune_on=tune_on)


def _tested_groups(task: Any) -> set[str]:
    test = task.splits["test"]
    return {str(g) for g, ok in zip(test.groups, test.complete_rows()) if ok}


def part_path(out_dir: Path, part: str) -> Path:
    return out_dir / f"{part}.json"


def run(out_dir: str | Path, plan: PaperPlan | None = None, *,
        settings: StudySettings | None = None, resume: bool = False,
        only: Sequence[str] | None = None) -> dict[str, StudyResult]:
    """Every part of ``plan`` (or ``only`` those), each saved to ``OUT/PART.json`` as it
    finishes; with ``resume`` a saved part of the same parameters is reused."""
    plan = plan or PaperPlan()
    settings = settings or StudySettings()
    out_dir = Path(out_dir)
    calls = _calls(plan)
    for name in only or []:
        if name not in calls:
            raise RouteHarnessError(f"unknown part {name!r} of study paper (parts: "
                                    f"{', '.join(calls)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, StudyResult] = {}
    now = _Current(settings)
    for name in plan.parts:
        params, call = calls[name]
        path = part_path(out_dir, name)
        seeds = settings.protocol.seeds[:1] if name in plan.first_seed_only \
            else settings.protocol.seeds
        part_settings = replace(settings, protocol=replace(settings.protocol, seeds=seeds))
        if resume and path.is_file():
            saved = StudyResult.load(path)
            differ = differences(saved, params, part_settings, now)
            if not differ:
                settings.reporter.log(f"paper: {name} reused from {path}")
                done[name] = saved
                continue
            settings.reporter.log(f"paper: {path} was run with other settings "
                                  f"({', '.join(differ)}): running again")
        if only and name not in only:
            continue
        settings.reporter.log(f"paper: running {name}")
        started = time.perf_counter()
        result = call(part_settings)
        result = result.timed(time.perf_counter() - started).model_copy(
            update={"paired_bootstrap": settings.paired_bootstrap})
        result.save(path)
        done[name] = result
    return done


class _Current:
    """What a part would run on now, looked up once per run: each task's data fingerprint
    and each encoder's identity (what a saved part is compared with on ``--resume``)."""

    def __init__(self, settings: StudySettings):
        self.settings = settings
        self.tasks: dict[str, Any] = {}
        self.encoders: dict[str, EncoderIdentity] = {}

    def load(self, specs: Sequence[str]) -> list[Any]:
        from routeharness.data.tasks import load_task

        for spec in specs:
            if spec not in self.tasks:
                self.tasks[spec] = load_task(spec, data_dir=self.settings.data_dir,
                                             **self.settings.task_options)
        return [self.tasks[spec] for spec in specs]

    def identity(self, spec: str) -> EncoderIdentity:
        if spec not in self.encoders:
            self.encoders[spec] = EncoderIdentity.of(get_encoder(spec))
        return self.encoders[spec]


def differences(saved: StudyResult, params: dict[str, Any], settings: StudySettings,
                now: _Current) -> list[str]:
    """What differs between a saved part and the part as it would run now: its
    parameters, every protocol field (the tuning, the bootstrap count, the trade-offs,
    the seeds), the paired bootstrap's size, each task's data fingerprint and each
    encoder's identity. Empty: the saved part may be reused."""
    out = []
    have = {k: saved.params.get(k) for k in params if not k.startswith("_")}
    if "param" in params:  # sweep keeps the parsed name and values
        have["param"] = f"{saved.params.get('param')}=" + ",".join(
            map(str, saved.params.get("values") or []))
    out += [f"parameter {k}" for k in params if not k.startswith("_") and have[k] != params[k]]
    if saved.protocol is not None:
        wanted = settings.protocol.recorded()
        out += [f"protocol.{k}" for k in saved.protocol.differences(wanted)]
        if list(saved.protocol.seeds or []) != list(wanted.seeds or []):
            out.append("seeds")
    if saved.paired_bootstrap != settings.paired_bootstrap:
        out.append("paired bootstrap size")
    if predates_rules(saved):
        out.append("numbers from before issue 19's verdict rules")
    tasks = now.load(params.get("tasks") or [])
    for task in tasks:
        recorded = saved.tasks.get(task.name)
        if recorded is None or recorded.fingerprint != task.fingerprint():
            out.append(f"task {task.name}'s data")
    specs = params.get("encoders") or [choose_encoder(params.get("_encoder"), tasks)]
    identities = {(e.identity, e.revision) for e in saved.encoders}
    if any((i.identity, i.revision) not in identities
           for i in (now.identity(str(s)) for s in specs)):
        out.append("encoder")
    return out


#: what a part's numbers hold once written under issue 19's rules: comparisons resampled
#: over seeds then prompts, locality with best-model sets (the sweep did not change)
_RULES_MARK = {"locality": '"best_rule"', "sample-efficiency": '"resampled"',
               "encoders": '"resampled"', "shift": '"resampled"', "images": '"resampled"'}


def predates_rules(saved: StudyResult) -> bool:
    """Whether a saved part was written before issue 19's rules (its report would say
    "not measured in this file" where a run now measures): ``--resume`` runs it again."""
    import json

    mark = _RULES_MARK.get(saved.study)
    return mark is not None and bool(saved.results) and \
        mark not in json.dumps(saved.results, default=str)


def load_parts(out_dir: str | Path) -> dict[str, StudyResult]:
    """The parts saved in ``out_dir`` (what the report is written from), in the plan's
    order, then any other study file there (an extra run, e.g. one more encoder on a
    smaller task), by file name."""
    import json

    out_dir = Path(out_dir)
    out = {}
    for name in PaperPlan().parts:
        path = part_path(out_dir, name)
        if path.is_file():
            out[name] = StudyResult.load(path)
    for path in sorted(out_dir.glob("*.json")):
        if path.stem in out or path.name == "report.json":
            continue
        try:
            schema = json.loads(path.read_text(encoding="utf-8")).get("schema")
        except (OSError, ValueError, AttributeError):
            continue
        if schema == STUDY_SCHEMA:
            out[path.stem] = StudyResult.load(path)
    return out


#: where scripts/assemble_mpnet.py puts all-mpnet-base-v2 by default
MPNET_DIR = Path("~/.cache/routeharness/models/all-mpnet-base-v2").expanduser()


def default_encoders() -> tuple[str, ...]:
    """``ENCODERS``, and all-mpnet-base-v2 as ``st:DIR`` when it is in place."""
    return (*ENCODERS, f"st:{MPNET_DIR}") if (MPNET_DIR / "modules.json").is_file() \
        else ENCODERS
