"""A board's intervals and significance tiers.

For every ranked submission: the 95% interval of its main metric, and of its difference
from the leader, by one paired bootstrap over the test prompts and the board's seeds
(``metrics.bootstrap_prompts_seeds``: every replicate draws each task's test prompts and
the seeds with replacement, one draw for every router, so a difference's interval is of
the difference itself). The bootstrap needs each record's per-prompt choices:

- ``recorded``: the record keeps them (``RunRecord.choices``; ``leaderboard run`` writes
  them since routeharness 0.1.0's issue 19);
- ``derived``: a single-model router (the record names its ``chosen_model``) routes every
  prompt to that model at every trade-off, so its choices follow from the record alone;
- otherwise the row has no interval and no tier (the file predates per-prompt choices:
  re-run it with ``leaderboard run``).

Either way the choices are used only when, on the local task data (whose fingerprint
must be the submission's), they reproduce the record's curve exactly.

Tiers (``TIER_RULE``): tier 1 is the leader and every router whose difference from it has
an interval containing 0; tier 2 starts at the best router not in tier 1 and takes every
router left whose difference from that one's has an interval containing 0; and so on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeharness.boards.definition import Board, Submission
from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation import metrics
from routeharness.evaluation.scoring import isclose
from routeharness.results.records import RunRecord

#: the bootstrap behind a board's intervals: replicates, level, and its fixed seed (a
#: board's page is the same every time it is rendered)
N_RESAMPLES = 1000
LEVEL = 0.95
BOOTSTRAP_SEED = 0
TIER_RULE = ("Intervals: 95%, a paired bootstrap over the test prompts and the board's seeds "
             f"({N_RESAMPLES} replicates; each draws every task's test prompts and the seeds "
             "with replacement, the same draw for every router). Tiers: tier 1 is the leader "
             "and every router whose difference from the leader has an interval containing "
             "0; tier 2 starts at the best router not in tier 1 and takes every router left "
             "whose difference from it has an interval containing 0; and so on. A row "
             "without its per-prompt choices (a file written before `leaderboard run` kept "
             "them) has no interval and no tier.")


@dataclass(frozen=True)
class ScoredTest:
    """A task's scored test prompts as the harness scores them (``score_choices``):
    ``scores`` (n, m) in [0, 1], ``costs`` (n, m) normalised (the split's most expensive
    model's mean = 1); ``fingerprint`` of the task's data."""

    scores: np.ndarray
    costs: np.ndarray
    fingerprint: str


@functools.lru_cache(maxsize=32)
def scored_test(task: str, data_dir: str | None = None) -> ScoredTest:
    """The local data of ``task``'s scored test prompts (cached per process)."""
    from routeharness.data.tasks import load_task

    loaded = load_task(task, data_dir=data_dir)
    test = loaded.splits["test"]
    scored = test.subset(test.complete_rows())
    costs = scored.costs / metrics.cost_scale(scored.costs)
    return ScoredTest(np.asarray(scored.scores, dtype=float), np.asarray(costs, dtype=float),
                        loaded.fingerprint())


def record_choices(record: RunRecord, models: Sequence[str]) -> tuple[np.ndarray | None, str]:
    """A record's (L, n) test choices and where they come from (``recorded`` or
    ``derived``); (None, why) when the record does not give them."""
    if record.choices is not None:
        return record.choices.array(), "recorded"
    if record.chosen_model is not None and record.chosen_model in models \
            and record.n_test is not None:
        index = list(models).index(record.chosen_model)
        return np.full((len(record.curve.cost), record.n_test), index, dtype=np.int64), \
            "derived"
    return None, ("no per-prompt choices in the file (written before `leaderboard run` kept "
                  "them): re-run it for an interval")


def curve_problem(record: RunRecord, choices: np.ndarray, outcomes: ScoredTest) -> str | None:
    """Why ``choices`` are not the record's on this data (its curve is not theirs), or None."""
    where = f"{record.task} seed {record.seed}"
    n, m = outcomes.scores.shape
    if choices.shape != (len(record.curve.cost), n):
        return (f"{where}: choices of shape {list(choices.shape)}, the local test split "
                f"scores {n} prompts")
    if choices.size and (choices.min() < 0 or choices.max() >= m):
        return f"{where}: a choice outside the task's {m} models"
    cost, quality = metrics.operating_points(outcomes.scores, outcomes.costs, choices)
    for axis, mine, stated in (("cost", cost, record.curve.cost),
                               ("quality", quality, record.curve.quality)):
        if any(s is None or not isclose(float(a), float(s)) for a, s in zip(mine, stated)):
            return f"{where}: its choices do not reproduce its curve's {axis} on the local data"
    return None


@dataclass
class RowIntervals:
    """One ranked row's interval, difference from the leader and tier (None where not
    available: ``missing`` says why); ``source``: where its choices came from."""

    interval: tuple[float, float] | None = None
    difference: float | None = None
    difference_interval: tuple[float, float] | None = None
    tier: int | None = None
    source: str | None = None
    missing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"interval": None if self.interval is None else list(self.interval),
                "difference_from_leader": self.difference,
                "difference_interval": None if self.difference_interval is None
                else list(self.difference_interval),
                "tier": self.tier, "choices": self.source, "no_interval": self.missing}


@dataclass
class BoardIntervals:
    """Per ranked row (in rank order) its ``RowIntervals``; ``note``: what a reader needs
    to know about the rows without one (None when every row has one)."""

    rows: list[RowIntervals]
    note: str | None = None
    replicates: np.ndarray | None = field(default=None, repr=False)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - LEVEL) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def tiers(points: Sequence[float], replicates: np.ndarray) -> list[int]:
    """The tier of each router, ``points`` in rank order (best first) and ``replicates``
    (R, B) their bootstrap values: tier 1 is the leader and every router whose
    difference from it has an interval containing 0; the next tier starts at the best
    router not yet in a tier and takes every router left whose difference from it has an
    interval containing 0; and so on (``TIER_RULE``)."""
    tier_of: list[int | None] = [None] * len(points)
    tier = 0
    for head in range(len(points)):
        if tier_of[head] is not None:
            continue
        tier += 1
        tier_of[head] = tier
        for other in range(head + 1, len(points)):
            if tier_of[other] is None:
                low, high = _percentiles(replicates[other] - replicates[head])
                if low <= 0.0 <= high:
                    tier_of[other] = tier
    return [t for t in tier_of if t is not None]


def board_intervals(board: Board, ranked: Sequence[tuple[float, Submission]], *,
                    data_dir: str | None = None,
                    n_resamples: int = N_RESAMPLES) -> BoardIntervals:
    """Intervals, differences from the leader and tiers of a board's ranked rows:
    ``ranked`` holds each row's main metric (as its submission states it) and its
    submission, in rank order (the leader first). A row whose choices are missing, or do
    not reproduce its curves on the local data, has none; when the leader has none, no
    row has a difference or a tier."""
    results = [RowIntervals() for _ in ranked]
    if not ranked:
        return BoardIntervals(results)
    outcomes: dict[str, ScoredTest] = {}
    for task in board.task_names():
        try:
            outcomes[task] = scored_test(task, data_dir)
        except RouteHarnessError as exc:
            for row in results:
                row.missing = f"task {task}'s data could not be loaded here ({exc})"
            return BoardIntervals(results, f"No intervals: task {task}'s data could not be "
                                           f"loaded here (pass --data-dir).")
    runs: list[list[list[np.ndarray]]] = []
    usable: list[int] = []
    for i, (_, submission) in enumerate(ranked):
        chosen, why = _submission_runs(board, submission, outcomes, results[i])
        if chosen is None:
            results[i].missing = why
            continue
        runs.append(chosen)
        usable.append(i)
    if not usable:
        return BoardIntervals(results, _note(results))
    replicates = metrics.bootstrap_prompts_seeds(
        [(outcomes[t].scores, outcomes[t].costs) for t in board.task_names()], runs,
        metric=board.main_metric, n_resamples=n_resamples, seed=BOOTSTRAP_SEED)
    for j, i in enumerate(usable):
        results[i].interval = _percentiles(replicates[j])
    if usable[0] == 0:  # the leader has its choices: differences and tiers
        leader = float(ranked[0][0])
        for j, i in enumerate(usable):
            results[i].difference = float(ranked[i][0]) - leader
            results[i].difference_interval = _percentiles(replicates[j] - replicates[0])
        for j, tier in zip(usable, tiers([float(ranked[i][0]) for i in usable], replicates)):
            results[j].tier = tier
    else:
        for i in usable:
            results[i].missing = "no difference or tier: the leader has no interval"
    return BoardIntervals(results, _note(results), replicates)


def _submission_runs(board: Board, submission: Submission, outcomes: dict[str, ScoredTest],
                     row: RowIntervals) -> tuple[list[list[np.ndarray]] | None, str]:
    """Per task, per board seed, the submission's test choices checked against its
    curves; (None, why) when any is missing or not its own."""
    by_key = {(r.task, r.seed): r for r in submission.result.records
              if r.router == submission.router_name}
    sources: set[str] = set()
    per_task = []
    for task in board.task_names():
        reference = submission.result.tasks[task]
        if reference.fingerprint != outcomes[task].fingerprint:
            return None, (f"task {task}: the local data's fingerprint differs from the "
                          "submission's")
        per_seed = []
        for seed in board.seeds:
            record = by_key[(task, seed)]
            choices, source = record_choices(record, reference.models)
            if choices is None:
                return None, source
            problem = curve_problem(record, choices, outcomes[task])
            if problem is not None:
                return None, problem
            sources.add(source)
            per_seed.append(choices)
        per_task.append(per_seed)
    row.source = "derived" if sources == {"derived"} else "recorded"
    return per_task, ""


def _note(rows: Sequence[RowIntervals]) -> str | None:
    missing = sum(1 for r in rows if r.interval is None)
    if not missing:
        return None
    return (f"{missing} of {len(rows)} ranked row(s) without an interval: their files hold "
            "no per-prompt choices (re-run with `leaderboard run`), or the choices do not "
            "reproduce their curves here.")
