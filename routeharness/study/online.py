"""``study online``: routing as a stream. A task's prompts arrive one batch at a time in a
seeded order; the router picks one model per prompt at a trade-off lam, sees what the
feedback mode reveals, and learns as it goes.

The stream: the scored rows (every model's outcome known, so the oracle is defined) of the
chosen splits (default train, validation and test), in a seeded random order, or with
``drift`` in blocks of groups (a seeded order of groups, shuffled within each); ``length``
keeps the first prompts. The first ``warmup`` prompts are a labelled warm-up set (every
model's outcome, as an offline evaluation gives): every router is fitted on them with its
default hyper-parameters (or those the spec fixes; no tuning: a stream has no validation
split). The rest are routed in batches of ``batch``:

- the router routes the batch (``evaluation.scoring.route_split``: embeddings and what its
  tags declare, never a label) at the one trade-off lam;
- a router whose tags declare ``online`` then gets ``partial_fit(X, scores, costs)`` with
  what the feedback mode reveals: ``bandit``, the chosen model's outcome only (every other
  cell NaN); ``full``, every open model's outcome (a reference: what a router would learn
  if every model were run on every prompt). Any other router is ``frozen``: fitted on the
  warm-up prompts, never updated (one run, no feedback);
- a model entering mid-stream (``Entry``: ``MODEL@N``) cannot be chosen before stream
  position N; at N an online router is told of it (``partial_fit`` with no rows and one
  more column). A frozen router never sees it.

Utility is the project's: ``score - lam * cost``, costs normalised so that the most
expensive model's mean cost over the stream is 1 (``evaluation.metrics.cost_scale``). The
oracle picks each prompt's best open model by its true outcome and the best fixed model
is the one of highest mean utility over the routed prompts among the models open the
whole time, both by ``routers.base.select`` (ties to the cheaper model). Reported per run
and as the mean over seeds with a percentile bootstrap interval over seeds
(``stats.bootstrap_ci``): cumulative regret against the oracle and against the best fixed
model, the late regret (per 100 prompts, last quarter of the stream), cumulative cost
(USD), quality (mean score x100), and for an entering model, how often it was chosen and
its mean score when it was; curves over the stream at ``CHECKPOINTS`` points.

``results[task]``: ``models`` (in stream column order: entering models last), ``stream``
(sizes and options), ``rows`` (one per lam, router and feedback: each metric's ``mean``,
``std``, ``ci95`` and ``per_seed``), ``references`` (oracle and best fixed model per
lam) and ``curves``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.data.dataset import Outcomes, RoutingData, RoutingTask
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation import metrics
from routeharness.evaluation.matrix import load_tasks
from routeharness.evaluation.protocol import seed_streams
from routeharness.evaluation.scoring import _labels_free, route_split
from routeharness.evaluation.tuning import RouterRun, _joined, fit_router, make_router
from routeharness.results.tables import ReportTable
from routeharness.routers.base import select, tags_of
from routeharness.study.common import StudySettings
from routeharness.study.record import StudyResult
from routeharness.study.runs import embed, plans_for
from routeharness.study.stats import bootstrap_ci

FEEDBACK = ("bandit", "full")
FROZEN = "frozen"
SPLITS = ("train", "validation", "test")
DEFAULT_WARMUP = 100
DEFAULT_BATCH = 10
#: points along the stream where the curves are kept
CHECKPOINTS = 40
#: the metrics of a run, in table order
METRICS = ("regret_oracle", "regret_fixed", "late_regret", "cost_usd", "quality")


@dataclass(frozen=True)
class Entry:
    """A model entering the pool mid-stream: it can be chosen from stream position ``at``."""

    model: str
    at: int


def parse_enter(text: str) -> Entry:
    """``MODEL@N`` (N a whole number) -> ``Entry``; one line otherwise."""
    model, at, position = text.rpartition("@")[0], "@" in text, text.rpartition("@")[2]
    if not at or not model.strip() or not position.strip().isdigit():
        raise RouteHarnessError(f"--enter {text!r}: write MODEL@N, N the stream position "
                                f"from which MODEL can be chosen (e.g. gpt-4-1106-preview@500)")
    return Entry(model.strip(), int(position))


def check_lams(values: Sequence[float]) -> list[float]:
    """Finite trade-offs >= 0, each once."""
    out = []
    for lam in values:
        if not math.isfinite(lam) or lam < 0:
            raise RouteHarnessError(f"--lam {lam:g}: a trade-off is a finite number >= 0")
        if lam in out:
            raise RouteHarnessError(f"--lam {lam:g} is given twice")
        out.append(float(lam))
    if not out:
        raise RouteHarnessError("give at least one trade-off (--lam)")
    return out


@dataclass(frozen=True)
class Stream:
    """One seed's stream of a task: rows in arrival order, model columns in stream order
    (models entering mid-stream last), normalised costs, and from which position each
    model is open."""

    task: str
    X: np.ndarray
    data: RoutingData
    costs: np.ndarray
    scale: float
    opens: np.ndarray
    warmup: int
    embedded: EmbeddedTask

    @property
    def n(self) -> int:
        return self.data.n

    @property
    def m(self) -> int:
        return len(self.opens)


def check_stream(task: RoutingTask, *, splits: Sequence[str] = SPLITS,
                 warmup: int = DEFAULT_WARMUP, length: int | None = None,
                 entries: Sequence[Entry] = ()) -> None:
    """The checks of ``build_stream`` on a task not yet embedded: splits, an empty or too
    short stream, entering models and their positions; one line each."""
    rows = []
    for split in splits:
        if split not in task.splits:
            raise RouteHarnessError(f"task {task.name!r} has no {split!r} split (it has "
                                    f"{', '.join(task.splits)})")
        rows.append(task.splits[split].complete_rows())
    n = int(sum(r.sum() for r in rows))
    if n == 0:
        raise RouteHarnessError(f"task {task.name!r}: no prompt of {'+'.join(splits)} has "
                                f"every model's outcome: the stream is empty")
    _check_entries(task.name, [m.name for m in task.models], n if length is None
                   else min(n, length), warmup, entries)


def _check_entries(name: str, models: list[str], n: int, warmup: int,
                   entries: Sequence[Entry]) -> None:
    if n <= warmup:
        raise RouteHarnessError(f"task {name!r}: a stream of {n} prompts is not longer "
                                f"than the warm-up ({warmup}): nothing to route")
    seen: set[str] = set()
    for entry in entries:
        if entry.model not in models:
            raise UnknownNameError("model (--enter)", entry.model, models)
        if not warmup <= entry.at < n:
            raise RouteHarnessError(f"--enter {entry.model}@{entry.at}: the position must "
                                    f"be from the end of the warm-up ({warmup}) to the "
                                    f"stream's last prompt ({n - 1})")
        if entry.model in seen:
            raise RouteHarnessError(f"--enter names {entry.model!r} twice")
        seen.add(entry.model)
    if entries and len(seen) == len(models):
        raise RouteHarnessError("--enter: at least one model must be open from the start")


def stream_rows(embedded: EmbeddedTask, splits: Sequence[str]) -> tuple[RoutingData, np.ndarray]:
    """The scored rows of ``splits`` one after another, and their embeddings; one line
    when a split is unknown or nothing is left to stream."""
    task = embedded.task
    parts, vectors = [], []
    for split in splits:
        if split not in task.splits:
            raise RouteHarnessError(f"task {task.name!r} has no {split!r} split (it has "
                                    f"{', '.join(task.splits)})")
        data = task.splits[split]
        rows = data.complete_rows()
        parts.append(data.subset(rows))
        vectors.append(embedded.X[split][rows])
    data = _joined(parts)
    if data.n == 0:
        raise RouteHarnessError(f"task {task.name!r}: no prompt of {'+'.join(splits)} has "
                                f"every model's outcome: the stream is empty")
    return data, np.concatenate(vectors)


def arrival_order(groups: np.ndarray, seed: int, drift: bool) -> np.ndarray:
    """The rows in a seeded random order; with ``drift``, groups arrive in blocks (a
    seeded order of the groups, each shuffled)."""
    rng = np.random.default_rng([seed, 0x0511])
    if not drift:
        return rng.permutation(len(groups))
    names = np.unique(groups.astype(str))
    blocks = [rng.permutation(np.flatnonzero(groups.astype(str) == g))
              for g in rng.permutation(names)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)


def build_stream(embedded: EmbeddedTask, seed: int, *, splits: Sequence[str] = SPLITS,
                 warmup: int = DEFAULT_WARMUP, length: int | None = None, drift: bool = False,
                 entries: Sequence[Entry] = ()) -> Stream:
    """One seed's stream of ``embedded`` (see the module's docstring)."""
    data, X = stream_rows(embedded, splits)
    order = arrival_order(data.groups, seed, drift)
    if length is not None:
        order = order[:length]
    n = len(order)
    names = data.model_names
    _check_entries(embedded.task.name, list(names), n, warmup, entries)
    opens = np.zeros(len(names), dtype=np.int64)
    for entry in entries:
        opens[names.index(entry.model)] = entry.at
    columns = np.lexsort((np.arange(len(names)), opens))  # open from the start first
    scores, costs_usd = data.scores[order][:, columns], data.costs[order][:, columns]
    models = [data.models[j] for j in columns]
    ordered = RoutingData(
        [data.ids[i] for i in order], [data.prompts[i] for i in order], data.groups[order],
        scores, costs_usd, models,
        None if data.images is None else [data.images[i] for i in order],
        None if data.embed_texts is None else [data.embed_texts[i] for i in order],
        data.split)
    scale = metrics.cost_scale(costs_usd)
    return Stream(embedded.task.name, X[order], ordered, costs_usd / scale, scale,
                  opens[columns], warmup, embedded)


@dataclass(frozen=True)
class Trace:
    """What happened on the routed part of a stream (S prompts): each prompt's choice,
    its utility, score and normalised cost."""

    choices: np.ndarray
    utility: np.ndarray
    scores: np.ndarray
    costs: np.ndarray


def _batch(stream: Stream, rows: np.ndarray, width: int) -> RoutingData:
    """The batch as the router may see it: no labels, only the first ``width`` models."""
    data = stream.data
    return _labels_free(RoutingData(
        [data.ids[i] for i in rows], [data.prompts[i] for i in rows], data.groups[rows],
        data.scores[rows][:, :width], data.costs[rows][:, :width], data.models[:width],
        None if data.images is None else [data.images[i] for i in rows],
        None if data.embed_texts is None else [data.embed_texts[i] for i in rows],
        data.split))


def warmup_outcomes(stream: Stream) -> Outcomes:
    """The warm-up prompts' outcomes of the models open from the start (normalised)."""
    w, m0 = stream.warmup, int((stream.opens == 0).sum())
    task = stream.embedded.task
    texts = stream.data.texts_to_embed()[:w]
    return Outcomes(stream.data.scores[:w, :m0].copy(), stream.costs[:w, :m0].copy(),
                    stream.data.groups[:w].copy(), list(stream.data.models[:m0]), stream.scale,
                    dict(task.group_descriptions), stream.embedded.encode_text, texts,
                    stream.embedded.encoder_path)


def run_stream(plan: RouterRun, stream: Stream, lam: float, feedback: str, *, seed: int,
               batch: int = DEFAULT_BATCH) -> Trace:
    """One router on one stream: fitted on the warm-up, then route, observe (``feedback``:
    ``bandit``, ``full``; a router that does not learn online is frozen whatever it is)
    and ``partial_fit`` batch by batch."""
    if feedback not in FEEDBACK:
        raise RouteHarnessError(f"feedback must be one of {', '.join(FEEDBACK)}, got "
                                f"{feedback!r}")
    router = make_router(plan.router_cls, plan.fixed, seed_streams(seed).router)
    fit_router(plan, router, stream.X[:stream.warmup], warmup_outcomes(stream))
    online = tags_of(router).online
    width = int((stream.opens == 0).sum())
    utility = stream.data.scores - lam * stream.costs
    choices = np.zeros(stream.n - stream.warmup, dtype=np.int64)
    t = stream.warmup
    while t < stream.n:
        open_now = int((stream.opens <= t).sum())
        if online and open_now > width:  # new models: announced as columns, no rows
            empty = np.full((0, open_now), np.nan)
            router.partial_fit(stream.X[:0], empty, empty.copy())
            width = open_now
        later = stream.opens[stream.opens > t]
        end = min(t + batch, int(later.min()) if later.size else stream.n, stream.n)
        rows = np.arange(t, end)
        picked = route_split(router, stream.X[rows], _batch(stream, rows, width), [lam],
                             stream.scale)[0]
        choices[t - stream.warmup:end - stream.warmup] = picked
        if online:
            seen_s = np.full((len(rows), width), np.nan)
            seen_c = seen_s.copy()
            if feedback == "full":
                seen_s[:] = stream.data.scores[rows, :width]
                seen_c[:] = stream.costs[rows, :width]
            else:
                seen_s[np.arange(len(rows)), picked] = stream.data.scores[rows, picked]
                seen_c[np.arange(len(rows)), picked] = stream.costs[rows, picked]
            router.partial_fit(stream.X[rows], seen_s, seen_c)
        t = end
    routed = np.arange(stream.warmup, stream.n)
    return Trace(choices, utility[routed, choices], stream.data.scores[routed, choices],
                 stream.costs[routed, choices])


@dataclass(frozen=True)
class Reference:
    """The oracle's and the best fixed model's utilities on the routed prompts."""

    oracle: np.ndarray
    oracle_scores: np.ndarray
    oracle_costs: np.ndarray
    fixed: int
    fixed_utility: np.ndarray


def reference(stream: Stream, lam: float) -> Reference:
    """Each routed prompt's best open model by its true outcome, and the best fixed model
    in hindsight (highest mean utility over the routed prompts among the models open the
    whole time), both by ``select`` (ties to the cheaper)."""
    routed = np.arange(stream.warmup, stream.n)
    scores, costs = stream.data.scores[routed], stream.costs[routed]
    closed = stream.opens[None, :] > routed[:, None]
    best = select(np.where(closed, np.nan, scores), np.where(closed, np.nan, costs), lam)
    rows = np.arange(len(routed))
    always = stream.opens <= stream.warmup
    means_s = np.where(always, scores.mean(axis=0), np.nan)
    means_c = np.where(always, costs.mean(axis=0), np.nan)
    fixed = int(select(means_s[None, :], means_c[None, :], lam)[0])
    utility = scores - lam * costs
    return Reference(utility[rows, best], scores[rows, best], costs[rows, best], fixed,
                     utility[:, fixed])


def checkpoints(n: int, k: int = CHECKPOINTS) -> np.ndarray:
    """Up to ``k`` evenly spaced stream positions 1..n (n always among them)."""
    return np.unique(np.ceil(np.linspace(0, n, k + 1)[1:]).astype(np.int64))


def run_metrics(trace: Trace, ref: Reference, scale: float) -> dict[str, float]:
    """A run's numbers: regrets, late regret per 100 prompts (last quarter), USD, quality."""
    regret = ref.oracle - trace.utility
    quarter = max(1, len(regret) // 4)
    return {"regret_oracle": float(regret.sum()),
            "regret_fixed": float((ref.fixed_utility - trace.utility).sum()),
            "late_regret": float(100.0 * regret[-quarter:].mean()),
            "cost_usd": float(trace.costs.sum() * scale),
            "quality": float(100.0 * trace.scores.mean())}


def run_curves(trace: Trace, ref: Reference, scale: float) -> dict[str, list[float]]:
    """At ``checkpoints``: cumulative regrets and cost (USD), the quality (x100) of each
    window between two checkpoints and the running quality (all prompts so far)."""
    at = checkpoints(len(trace.choices))
    cum = np.concatenate([[0.0], np.cumsum(trace.scores)])
    starts = np.concatenate([[0], at[:-1]])
    return {"regret_oracle": np.cumsum(ref.oracle - trace.utility)[at - 1].tolist(),
            "regret_fixed": np.cumsum(ref.fixed_utility - trace.utility)[at - 1].tolist(),
            "cost_usd": (np.cumsum(trace.costs)[at - 1] * scale).tolist(),
            "quality": (100.0 * (cum[at] - cum[starts]) / (at - starts)).tolist(),
            "running_quality": (100.0 * cum[at] / at).tolist()}


def summary(values: Sequence[float], n_bootstrap: int, seed: int) -> dict[str, Any]:
    """Mean, std (ddof 1) and the 95% percentile interval of a bootstrap over seeds."""
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    if n_bootstrap and array.size > 1:
        low, high = bootstrap_ci(lambda idx: float(array[idx].mean()), array.size,
                                 n_resamples=n_bootstrap, seed=seed)
        ci: list[float] | None = [low, high]
    else:
        ci = None
    return {"mean": float(array.mean()), "std": std, "ci95": ci,
            "per_seed": array.tolist()}


def run(routers: Sequence[str], tasks: Sequence[str], *, lams: Sequence[float] = (0.1,),
        feedback: Sequence[str] = FEEDBACK, encoder: str | None = None,
        splits: Sequence[str] = SPLITS, warmup: int = DEFAULT_WARMUP,
        batch: int = DEFAULT_BATCH, length: int | None = None, drift: bool = False,
        entries: Sequence[Entry] = (), settings: StudySettings | None = None) -> StudyResult:
    """The online study of ``routers`` on each task (see the module's docstring)."""
    settings = settings or StudySettings()
    reporter, seeds = settings.reporter, list(settings.protocol.seeds)
    lams = check_lams(lams)
    for mode in feedback:
        if mode not in FEEDBACK:
            raise RouteHarnessError(f"feedback {mode!r}: one of {', '.join(FEEDBACK)}")
    if warmup < 1 or batch < 1 or (length is not None and length < 2):
        raise RouteHarnessError("--warmup and --batch must be >= 1 and --length >= 2")
    plans = plans_for(routers)  # unknown routers and parameters: one line, before any work
    loaded = load_tasks(tasks, data_dir=settings.data_dir, reporter=reporter,
                        task_options=settings.task_options)
    for task in loaded:  # bad streams are refused before any prompt is embedded
        check_stream(task, splits=splits, warmup=warmup, length=length, entries=entries)
    enc, embedded_tasks = embed(loaded, encoder, cache_dir=settings.cache_dir,
                                reporter=reporter)
    params = {"routers": list(routers), "tasks": list(tasks), "lams": lams,
              "feedback": list(feedback), "splits": list(splits), "warmup": warmup,
              "batch": batch, "length": length, "drift": drift, "seeds": seeds,
              "enter": [f"{e.model}@{e.at}" for e in entries], "bootstrap":
              settings.paired_bootstrap}
    result = StudyResult.new("online", params)
    result.add_encoder(enc)
    for embedded in embedded_tasks:
        task = embedded.task
        streams = {s: build_stream(embedded, s, splits=splits, warmup=warmup, length=length,
                                   drift=drift, entries=entries) for s in seeds}
        result.add_task(task)
        modes = {p.label: (list(feedback) if tags_of(p.router_cls).online else [FROZEN])
                 for p in plans}
        total = sum(len(m) for m in modes.values()) * len(seeds) * len(lams)
        first = streams[seeds[0]]
        rows, references, curves = [], [], {}
        with reporter.progress(f"{task.name}: online, {first.n - warmup} prompts routed",
                               total) as advance:
            for lam in lams:
                refs = {s: reference(streams[s], lam) for s in seeds}
                references.append(_reference_row(lam, streams, refs, seeds, settings))
                for plan in plans:
                    for mode in modes[plan.label]:
                        per_seed, seed_curves, entering = [], [], []
                        for s in seeds:
                            advance(0, f"{plan.label} ({mode}, lam {lam:g}), seed {s}")
                            trace = run_stream(plan, streams[s], lam,
                                               "bandit" if mode == FROZEN else mode,
                                               seed=s, batch=batch)
                            per_seed.append(run_metrics(trace, refs[s], streams[s].scale))
                            seed_curves.append(run_curves(trace, refs[s], streams[s].scale))
                            entering.append(_entering(trace, streams[s]))
                            advance(1)
                        row = {"lam": lam, "router": plan.label, "feedback": mode,
                               "plugin": plan.entry.plugin if plan.entry else None,
                               "metrics": {k: summary([r[k] for r in per_seed],
                                                      settings.paired_bootstrap, seeds[0])
                                           for k in METRICS}}
                        if entries:
                            row["entering"] = _entering_summary(entering)
                        rows.append(row)
                        curves.setdefault(f"{lam:g}", {})[f"{plan.label} ({mode})"] = {
                            key: _band([c[key] for c in seed_curves])
                            for key in seed_curves[0]}
        result.results[task.name] = {
            "models": first.data.model_names, "cost_scale_usd": first.scale,
            "stream": {"prompts": first.n, "warmup": warmup, "routed": first.n - warmup,
                       "batch": batch, "splits": list(splits), "drift": drift,
                       "entries": [{"model": e.model, "at": e.at} for e in entries],
                       "checkpoints": checkpoints(first.n - warmup).tolist()},
            "rows": rows, "references": references, "curves": curves}
    return result


def _band(values: list[list[float]]) -> dict[str, list[float]]:
    array = np.asarray(values, dtype=float)
    std = array.std(axis=0, ddof=1) if len(array) > 1 else np.zeros(array.shape[1])
    return {"mean": array.mean(axis=0).tolist(), "std": std.tolist()}


def _entering(trace: Trace, stream: Stream) -> dict[str, float] | None:
    """How often the models that entered mid-stream were chosen once open, and their mean
    score (x100) when chosen."""
    late = stream.opens > 0
    if not late.any():
        return None
    positions = np.arange(stream.warmup, stream.n)
    after = positions >= stream.opens[late].min()
    chosen = late[trace.choices] & after
    return {"share": float(100.0 * chosen.sum() / max(1, after.sum())),
            "quality": float(100.0 * trace.scores[chosen].mean()) if chosen.any() else None}


def _entering_summary(values: list[dict[str, float] | None]) -> dict[str, Any]:
    shares = [v["share"] for v in values if v]
    qualities = [v["quality"] for v in values if v and v["quality"] is not None]
    return {"share": float(np.mean(shares)) if shares else None,
            "quality": float(np.mean(qualities)) if qualities else None}


def _reference_row(lam: float, streams: dict[int, Stream], refs: dict[int, Reference],
                   seeds: list[int], settings: StudySettings) -> dict[str, Any]:
    names = [streams[s].data.model_names[refs[s].fixed] for s in seeds]
    fixed_quality, fixed_cost = [], []
    for s in seeds:
        stream, ref = streams[s], refs[s]
        routed = np.arange(stream.warmup, stream.n)
        fixed_quality.append(100.0 * stream.data.scores[routed, ref.fixed].mean())
        fixed_cost.append(stream.costs[routed, ref.fixed].sum() * stream.scale)
    b, seed = settings.paired_bootstrap, seeds[0]
    return {"lam": lam, "fixed_model": names,
            "oracle": {"quality": summary([100.0 * refs[s].oracle_scores.mean() for s in seeds],
                                          b, seed),
                       "cost_usd": summary([refs[s].oracle_costs.sum() * streams[s].scale
                                            for s in seeds], b, seed),
                       "regret_fixed": summary([float((refs[s].fixed_utility
                                                       - refs[s].oracle).sum())
                                                for s in seeds], b, seed)},
            "fixed": {"quality": summary(fixed_quality, b, seed),
                      "cost_usd": summary(fixed_cost, b, seed),
                      "regret_oracle": summary([float((refs[s].oracle
                                                       - refs[s].fixed_utility).sum())
                                                for s in seeds], b, seed)}}


# --- tables and the plot ----------------------------------------------------------------
def _cell(entry: dict[str, Any] | None, digits: int = 1) -> str:
    """``mean [low, high]`` (the interval over seeds; the mean alone for one seed)."""
    if not entry or entry.get("mean") is None:
        return "-"
    text = f"{entry['mean']:.{digits}f}"
    ci = entry.get("ci95")
    if ci and None not in ci and all(math.isfinite(v) for v in ci):
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def tables(result: StudyResult) -> list[ReportTable]:
    """Per task and lam: each router and feedback mode, then the oracle and the best fixed
    model as references."""
    out = []
    entering = bool(result.params.get("enter"))
    for task, summary_ in result.results.items():
        stream = summary_["stream"]
        for ref in summary_["references"]:
            lam = ref["lam"]
            headers = ["router", "feedback", "regret vs oracle", "regret vs best fixed",
                       "late regret /100", "cost (USD)", "quality"]
            if entering:
                headers += ["new model chosen %", "its quality"]
            table = ReportTable(f"{task}: online, lam = {lam:g}", headers,
                                right=set(range(2, len(headers))))
            for row in summary_["rows"]:
                if row["lam"] != lam:
                    continue
                m = row["metrics"]
                cells = [row["router"], row["feedback"], _cell(m["regret_oracle"]),
                         _cell(m["regret_fixed"]), _cell(m["late_regret"], 2),
                         _cell(m["cost_usd"], 3), _cell(m["quality"])]
                if entering:
                    e = row.get("entering") or {}
                    share = e.get("share")
                    cells += [f"{share:.2f}" if share is not None and 0 < share < 0.05 else _num(share),
                              _num(e.get("quality"))]
                table.add(cells)
            fixed = sorted(set(ref["fixed_model"]))
            if table.rows:
                table.sections.add(len(table.rows) - 1)
            refs = [("oracle", "-", {"mean": 0.0}, ref["oracle"]["regret_fixed"], "0.00",
                     ref["oracle"]["cost_usd"], ref["oracle"]["quality"]),
                    (f"best fixed: {', '.join(fixed)}", "-", ref["fixed"]["regret_oracle"],
                     {"mean": 0.0}, "-", ref["fixed"]["cost_usd"], ref["fixed"]["quality"])]
            for name, mode, r_o, r_f, late, cost, quality in refs:
                cells = [name, mode, _cell(r_o), _cell(r_f), late, _cell(cost, 3),
                         _cell(quality)]
                if entering:
                    cells += ["-", "-"]
                table.add(cells, "dim")
            seeds = len(result.params.get("seeds") or [])
            table.note = (f"{stream['routed']} prompts routed in batches of {stream['batch']} "
                          f"after a warm-up of {stream['warmup']} with every outcome"
                          f"{', groups in blocks (drift)' if stream['drift'] else ''}; utility "
                          f"= score - lam x cost (normalised); mean over {seeds} seed(s) "
                          f"[95% bootstrap interval over seeds]; late regret: per 100 prompts "
                          f"over the last quarter; frozen: fitted on the warm-up only")
            out.append(table)
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plot(result: StudyResult, path: str | Path) -> Path:
    """Per task and lam, over the stream (mean over seeds, ± std band): cumulative regret
    against the oracle and against the best fixed model, and the running quality."""
    from routeharness.study.figures import curves

    panels: dict[str, Any] = {}
    for task, s in result.results.items():
        x = [float(v) for v in s["stream"]["checkpoints"]]
        for lam, lines in s["curves"].items():
            for key, what in (("regret_oracle", "regret vs oracle"),
                              ("regret_fixed", "regret vs best fixed model"),
                              ("running_quality", "running quality (x100)")):
                panels[f"{task}, lam {lam}: {what}"] = {
                    label: (x, line[key]["mean"], line[key]["std"])
                    for label, line in lines.items()}
    return curves(panels, path, xlabel="prompts routed", ylabel="", columns=3)

