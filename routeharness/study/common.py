"""The options every study takes (``StudySettings``), the compact run record a study
file keeps, and the cells its tables share (mean ± std, a difference with its interval)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from routeharness.common.progress import Reporter
from routeharness.evaluation.protocol import Protocol
from routeharness.evaluation.run import Routed
from routeharness.results.tables import fmt, narrow_cost_flag
from routeharness.study.record import StudyRun

#: bootstrap resamples of the paired comparisons (over test prompts)
PAIRED_BOOTSTRAP = 1000


@dataclass
class StudySettings:
    """What every study shares with ``eval``: the protocol (seeds, tuning, sweep), where
    data and embeddings live, progress, and the paired bootstrap's size."""

    protocol: Protocol = field(default_factory=Protocol)
    data_dir: str | None = None
    cache_dir: str | None = None
    reporter: Reporter = field(default_factory=Reporter)
    paired_bootstrap: int = PAIRED_BOOTSTRAP
    task_options: dict[str, Any] = field(default_factory=dict)
    #: when the study started (``time.perf_counter``), for its wall time
    started: float = field(default_factory=time.perf_counter)
    #: where the runs execute (``routeharness.evaluation.executors``; None: in this process)
    executor: Any = None


def compact(routed: Routed, **condition: Any) -> StudyRun:
    """A run as a study file keeps it (``StudyRun``) and the condition it ran under."""
    return StudyRun.of(routed.record, **condition)


def mean_cell(mean: float | None, std: float | None) -> str:
    return fmt(mean, std)


def diff_cell(entry: dict[str, Any] | None) -> str:
    """``+1.23 [-0.40, 2.90]``: a paired difference and its 95% interval."""
    if not entry or entry.get("difference") is None:
        return "-"
    ci = entry.get("ci95")
    text = f"{entry['difference']:+.2f}"
    return text + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci and None not in ci else "")


def cost_flag(result: Any, task: str) -> str | None:
    """The narrow-cost flag of ``task`` in a study file (``results.tables.narrow_cost_flag``
    of its recorded cost spread); None when the range is wide or the file (one written
    before issue 19) did not record it."""
    recorded = result.tasks.get(task)
    return narrow_cost_flag(getattr(recorded, "cost_spread", None))


def flagged(title: str, flag: str | None) -> str:
    """A table title with the task's narrow-cost flag, when it has one."""
    return title if flag is None else f"{title} [{flag}]"
