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
    parts: tuple[str, ...] = ("locality", "sweep", "sample-efficiency", "encoders", "shift",
                              "images")
    extra: dict[str, Any] = field(default_factory=dict)

    def all_tasks(self) -> tuple[str, ...]:
        """Every task spec some part reads, each once."""
        return tuple(dict.fromkeys((*self.text_tasks, *self.efficiency_tasks,
                                    *self.shift_tasks, *self.image_tasks)))


def _calls(plan: PaperPlan) -> dict[str, tuple[dict[str, Any], Callable[..., StudyResult]]]:
    from routeharness.study import efficiency, encoders, images, neighbours, shift, sweep

    return {
        "locality": ({"tasks": list(plan.text_tasks)},
                     lambda s: neighbours.run(list(plan.text_tasks), settings=s)),
        "sweep": ({"router": "knn", "tasks": list(plan.text_tasks), "param": plan.sweep},
                  lambda s: sweep.run("knn", list(plan.text_tasks), plan.sweep, settings=s)),
        "sample-efficiency": (
            {"routers": list(plan.routers), "tasks": list(plan.efficiency_tasks),
             "fractions": list(plan.fractions)},
            lambda s: efficiency.run(list(plan.routers), list(plan.efficiency_tasks),
                                     fractions=plan.fractions, settings=s)),
        "encoders": ({"routers": list(plan.routers), "tasks": list(plan.efficiency_tasks),
                      "encoders": list(plan.encoders)},
                     lambda s: encoders.run(list(plan.routers), list(plan.efficiency_tasks),
                                            list(plan.encoders), settings=s)),
        "shift": ({"routers": list(plan.routers), "tasks": list(plan.shift_tasks)},
                  lambda s: shift.run(list(plan.routers), list(plan.shift_tasks), settings=s)),
        "images": ({"routers": list(plan.routers), "tasks": list(plan.image_tasks)},
                   lambda s: images.run(list(plan.routers), list(plan.image_tasks), settings=s)),
    }


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
    have = {k: saved.params.get(k) for k in params}
    if "param" in params:  # sweep keeps the parsed name and values
        have["param"] = f"{saved.params.get('param')}=" + ",".join(
            map(str, saved.params.get("values") or []))
    out += [f"parameter {k}" for k in params if have[k] != params[k]]
    if saved.protocol is not None:
        wanted = settings.protocol.recorded()
        out += [f"protocol.{k}" for k in saved.protocol.differences(wanted)]
        if list(saved.protocol.seeds or []) != list(wanted.seeds or []):
            out.append("seeds")
    if saved.paired_bootstrap != settings.paired_bootstrap:
        out.append("paired bootstrap size")
    tasks = now.load(params.get("tasks") or [])
    for task in tasks:
        recorded = saved.tasks.get(task.name)
        if recorded is None or recorded.fingerprint != task.fingerprint():
            out.append(f"task {task.name}'s data")
    specs = params.get("encoders") or [choose_encoder(None, tasks)]
    identities = {(e.identity, e.revision) for e in saved.encoders}
    if any((i.identity, i.revision) not in identities
           for i in (now.identity(str(s)) for s in specs)):
        out.append("encoder")
    return out


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
