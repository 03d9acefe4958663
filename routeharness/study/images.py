"""``study images`` (the multimodal claim, and the referees' question: does the image
embedding separate prompts by which model is best?). On a task with images, the same
routers under the text-only, image-only and fused encoders (``study encoders``' numbers)
and the locality statistics of each encoder's embedding (``study locality``'s).
``results[task]``: ``routing`` (as ``study encoders``) and ``locality`` per encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.data.dataset import RoutingTask
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation.matrix import load_tasks
from routeharness.results.tables import ReportTable
from routeharness.study import encoders as encoder_study
from routeharness.study.common import StudySettings
from routeharness.study.neighbours import (
    OLD_NOTE,
    SUMMARY_HEADERS,
    SUMMARY_NOTE,
    measure,
    sees_images,
    summary_row,
)
from routeharness.study.record import StudyResult

#: text only, image only, image and text fused
DEFAULT_ENCODERS = ("minilm", "effnet", "effnet-minilm")


def check_images(loaded: Sequence[RoutingTask]) -> None:
    """Every task must have images: one line naming the first that has none."""
    for task in loaded:
        if not any(data.has_images for data in task.splits.values()):
            raise RouteHarnessError(f"study images needs a task with images: {task.name!r} "
                                    "has none (try blindtest or vhelm-mm)")


def run(routers: Sequence[str], tasks: Sequence[str], *,
        encoders: Sequence[str] = DEFAULT_ENCODERS, n_pairs: int = 20000,
        settings: StudySettings | None = None) -> StudyResult:
    """Routers and locality under each encoder, on each image task: the tasks loaded
    once, each encoder's embeddings used for both."""
    settings = settings or StudySettings()
    loaded = load_tasks(tasks, data_dir=settings.data_dir, reporter=settings.reporter,
                        task_options=settings.task_options)
    check_images(loaded)
    locality: dict[str, dict[str, Any]] = {}

    def measure_locality(spec: str, encoder: Any, embedded: EmbeddedTask) -> None:
        settings.reporter.log(f"locality of {embedded.task.name} ({spec})")
        locality.setdefault(embedded.task.name, {})[spec] = measure(
            embedded, n_pairs=n_pairs, seed=settings.protocol.seeds[0],
            n_bootstrap=settings.paired_bootstrap, images=sees_images(encoder))

    result = encoder_study.run(routers, tasks, encoders, settings=settings, study="images",
                               loaded=loaded, each=measure_locality)
    return result.model_copy(update={
        "params": {**result.params, "n_pairs": n_pairs},
        "results": {task: {"routing": summary, "locality": locality.get(task, {})}
                    for task, summary in result.results.items()}})


def tables(result: StudyResult) -> list[ReportTable]:
    """The routing table per task (router x encoder) and the locality of each encoder."""
    routing = StudyResult(study="encoders", params=result.params, protocol=result.protocol,
                          tasks=result.tasks,
                          results={t: r["routing"] for t, r in result.results.items()})
    out = encoder_study.tables(routing)
    for task, entry in result.results.items():
        table = ReportTable(f"{task}: locality of outcomes under each encoder",
                            ["encoder", *SUMMARY_HEADERS[1:]], right=set(range(1, 6)))
        for spec, loc in entry["locality"].items():
            table.add(summary_row(spec, loc))
        table.note = SUMMARY_NOTE + (OLD_NOTE if any("best_rule" not in loc for loc in
                                                     entry["locality"].values()) else "")
        out.append(table)
    return out
