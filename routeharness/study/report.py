"""The reproduction report of ``study paper``: the paper's claims one by one, each with
its evidence (numbers with intervals and seeds) and a verdict on this data, then every
part's tables. Verdicts follow fixed rules (``RULES``) applied to the saved parts, so a
re-run on other data, routers or encoders is judged the same way."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from routeharness.results.tables import (
    NARROW_COST_SPREAD,
    ReportTable,
    fmt,
    markdown_cell,
    narrow_cost_flag,
    to_markdown,
)
from routeharness.study.efficiency import TARGET_SHARE
from routeharness.study.encoders import short
from routeharness.study.record import StudyResult
from routeharness.study.runs import REFERENCE_ROUTER
from routeharness.study.verdicts import (
    ABOVE,
    AHEAD,
    ALPHA,
    BEHIND,
    BELOW,
    CORRECTION,
    DEFAULT_MARGIN,
    EQUIVALENT,
    INCONCLUSIVE,
    MIN_TEST_PROMPTS,
    NOT_MEASURED,
    TOO_SMALL,
    WITHIN,
    category,
    combine,
    counted,
    interval,
    level_of,
    metric_entry,
    placement,
)

SUPPORTED, PARTLY, NOT_SUPPORTED, NOT_RUN = ("supported", "partly supported", "not supported",
                                            "not run")
#: the data cannot decide; every judged comparison was too small or unmeasured
UNDECIDED, NOT_JUDGED = "inconclusive", "not judged"
NOT_HERE = "not measured in this file"


def rules(margin: float = DEFAULT_MARGIN) -> dict[str, str]:
    """The verdict rules as the report writes them, with the declared margin."""
    common = (f"Every comparison is a paired difference (router - kNN) with its interval "
              f"from a bootstrap over seeds (refits), then test prompts. The margin "
              f"delta = {margin:g} (AUC points; quality points where AUC is uninformative) "
              f"is declared before the run (--margin). A claim making m comparisons reads "
              f"each one's two-sided (1 - 2 x {ALPHA:g} / m) interval ({CORRECTION}): "
              f"equivalent when it lies within +-delta (two one-sided tests); kNN ahead or "
              f"behind when it excludes 0 on that side (the equivalence test first); else "
              f"inconclusive. A comparison on fewer than {MIN_TEST_PROMPTS} test prompts is "
              f"too small: reported, not judged, not counted in m. On a task whose "
              f"normalised cost spread is under {NARROW_COST_SPREAD} (the cheapest model's "
              f"mean cost over {1 - NARROW_COST_SPREAD:g} of the dearest's) AUC is capped "
              f"and tracks quality: such a task is judged on quality at lambda 0 and quality "
              f"at a fixed budget (halfway between the cheapest and dearest model's mean "
              f"cost), both counted in m (equivalent only if both are). Files written "
              f"before issue 19 hold a 95% interval over prompts only: it is rescaled by "
              f"normal quantiles, and what they did not measure is said.")
    frontier = ("Every router is placed against the single-model frontier on the same "
                "prompts (router - frontier: above, within or below, the placements a "
                "second family corrected the same way); where kNN is below the frontier "
                "and a router is not, that pair counts as behind whatever its interval.")
    verdict = ("Supported: every judged comparison equivalent or kNN ahead; partly: more "
               "than half of them; not supported: kNN behind in at least one and no more "
               "than half equivalent or ahead; inconclusive: none behind and no more than "
               "half equivalent or ahead; not judged: no comparison large enough.")
    return {
        "comparisons": common,
        "frontier": frontier,
        "matches": "kNN matches or beats the learned routers on the full-data runs of "
                   "the sample-efficiency part (one comparison per task and router). "
                   + verdict,
        "locality": (f"A task is local when (a) the nearest-minus-random agreement is above "
                     f"its null band (score rows shuffled across prompts: a permutation "
                     f"test), (b) its (1 - 2 x {ALPHA:g} / m) interval from a bootstrap over "
                     f"the query prompts excludes 0 (m: the tasks, {CORRECTION}), and (c) "
                     f"the nearest neighbour does not share a best model (best-model sets "
                     f"intersecting, ties kept) less often than its null band allows. "
                     f"Supported: every task local; partly: some; not supported: none. "
                     f"Spearman's interval over pairs is too narrow (pairs share prompts) and "
                     f"the deciles are context; the intrinsic dimension is reported, not "
                     f"judged (no reference says what is low, and the estimators disagree by "
                     f"up to 2x)."),
        "efficiency": (f"kNN is more sample-efficient than a router on a task when both (a) "
                       f"the area between the curves (router - kNN, the mean difference over "
                       f"the training shares on a log axis, paired under one bootstrap) is "
                       f"ahead for kNN by the rule above, and (b) kNN's mean curve reaches "
                       f"{TARGET_SHARE:.0%} of the BEST full-data AUC among the routers at a "
                       f"share no larger than the router's. Not more efficient: the area is "
                       f"equivalent or behind, or (b) fails; else inconclusive. The verdict "
                       f"reads the curves re-tuned at every share; the curves with the "
                       f"full-data hyper-parameters are reported beside. Supported: kNN more "
                       f"efficient against every router on every task; partly: against at "
                       f"least one; not supported: against none, not more efficient in more "
                       f"than half; else inconclusive."),
        "shift": "On held-out groups, each (fold, router) pair judged as in the first claim, "
                 "on that group's test prompts. " + verdict,
        "tuning": "Context, not a claim: test AUC at k = 1 and at the k eval's tuning picks.",
        "encoders": "Under each encoder, kNN matches or beats the learned routers by the "
                    "first claim's rule (its comparisons over every encoder form one family). "
                    "Supported: supported under every encoder; partly: under some; not "
                    "supported: under none, kNN behind somewhere; else inconclusive.",
    }


RULES = rules()


@dataclass(frozen=True)
class Claim:
    """One claim of the paper as judged on this data."""

    claim: str
    evidence: str
    verdict: str

    def to_dict(self) -> dict[str, str]:
        return {"claim": self.claim, "evidence": self.evidence, "verdict": self.verdict}


# --- comparisons of routers ------------------------------------------------------------------
@dataclass
class Comparison:
    """One router against kNN (``entry``: router - kNN) in one condition (``where``: a
    task, a task and encoder, a held-out fold), with the router's and kNN's placement
    against the single-model frontier (``frontier``: router - frontier)."""

    where: str
    router: str
    entry: dict[str, Any] | None
    narrow: bool = False
    n_test: int | None = None
    frontier: dict[str, Any] | None = None
    value: float | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("quality_at_0", "quality_at_budget") if self.narrow else ("auc",)

    @property
    def small(self) -> bool:
        return self.n_test is not None and self.n_test < MIN_TEST_PROMPTS


@dataclass
class Judged:
    comparison: Comparison
    category: str
    intervals: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    note: str = ""


def judge(comparisons: Sequence[Comparison], margin: float) -> tuple[list[Judged], int]:
    """Each comparison's category under the claim's correction (m: every metric of every
    comparison large enough to judge, ``verdicts``)."""
    m = sum(len(c.metrics) for c in comparisons if not c.small and c.entry)
    out = []
    for c in comparisons:
        if c.small:
            out.append(Judged(c, TOO_SMALL))
            continue
        cats, found = [], {}
        for metric in c.metrics:
            iv = interval(metric_entry(c.entry, metric), m)
            if iv is None:
                cats.append(NOT_MEASURED)
                continue
            found[metric] = iv
            cats.append(category(iv[0], iv[1], margin))
        out.append(Judged(c, NOT_MEASURED if NOT_MEASURED in cats else combine(cats), found))
    return out, m


@dataclass
class Placed:
    where: str
    router: str
    placement: str
    difference: float | None
    interval: tuple[float, float, str] | None


def place(comparisons: Sequence[Comparison]) -> tuple[dict[tuple[str, str], Placed], int]:
    """Every router's placement against the single-model frontier (its own family)."""
    usable = [c for c in comparisons if c.frontier and not c.small]
    m = len(usable)
    out = {}
    for c in comparisons:
        metric = c.metrics[0]
        sub = metric_entry(c.frontier, metric)
        if c.small:
            out[(c.where, c.router)] = Placed(c.where, c.router, TOO_SMALL, None, None)
            continue
        iv = interval(sub, m) if sub else None
        out[(c.where, c.router)] = Placed(
            c.where, c.router, NOT_MEASURED if iv is None else placement(iv[0], iv[1]),
            None if not sub else sub.get("difference"), iv)
    return out, m


def frontier_rule(judged: list[Judged], placed: dict[tuple[str, str], Placed]) -> None:
    """A router below the frontier is never a match for one above it: where kNN is below
    and the router is not, the pair is behind."""
    for j in judged:
        c = j.comparison
        knn = placed.get((c.where, REFERENCE_ROUTER))
        mine = placed.get((c.where, c.router))
        if knn and mine and knn.placement == BELOW and mine.placement in (ABOVE, WITHIN) \
                and j.category not in (TOO_SMALL, BEHIND):
            j.note = f"kNN below the single-model frontier, {c.router} {mine.placement} it"
            j.category = BEHIND


def router_verdict(judged: Sequence[Judged]) -> str:
    """The rule of the router claims over the judged comparisons (``rules``)."""
    cats = [j.category for j in judged if j.category not in (TOO_SMALL, NOT_MEASURED)]
    if not cats:
        return NOT_JUDGED
    good = sum(c in (EQUIVALENT, AHEAD) for c in cats)
    if good == len(cats):
        return SUPPORTED
    if good * 2 > len(cats):
        return PARTLY
    return NOT_SUPPORTED if BEHIND in cats else UNDECIDED


def _signed(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:+.2f}"


def _iv(iv: tuple[float, float, str] | None) -> str:
    return "" if iv is None else f" [{_signed(iv[0])}, {_signed(iv[1])}]"


def point_sentence(comparisons: Sequence[Comparison], unit: str) -> str:
    """What the point estimates say first: kNN below or above each router, in how many
    conditions, and kNN's rank in each."""
    by_router: dict[str, list[float]] = {}
    for c in comparisons:
        sub = metric_entry(c.entry, c.metrics[0])
        if sub and sub.get("difference") is not None:
            by_router.setdefault(c.router, []).append(float(sub["difference"]))
    parts = []
    for router, diffs in by_router.items():
        below, above = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
        side, count = ("below", below) if below >= above else ("above", above)
        parts.append(f"{side} {router} in {count} of {len(diffs)}")
    wheres = list(dict.fromkeys(c.where for c in comparisons))
    ranks = []
    for where in wheres:
        mine = [c for c in comparisons if c.where == where]
        subs = [metric_entry(c.entry, c.metrics[0]) for c in mine]
        diffs = [s["difference"] for s in subs if s and s.get("difference") is not None]
        if diffs:
            ranks.append(f"{1 + sum(d > 0 for d in diffs)} of {len(mine) + 1} on {where}")
    if not parts:
        return "Point estimates: none in this file."
    return (f"Point estimates: kNN is {', '.join(parts)} {unit}; kNN's rank: "
            f"{', '.join(ranks)}.")


def counts_sentence(judged: Sequence[Judged], m: int, margin: float) -> str:
    n = counted([j.category for j in judged])
    judged_n = sum(v for k, v in n.items() if k not in (TOO_SMALL, NOT_MEASURED))
    text = (f"Within +-{margin:g}: equivalent in {n[EQUIVALENT]} of {judged_n} judged pairs; "
            f"kNN ahead in {n[AHEAD]}; behind in {n[BEHIND]}; inconclusive in "
            f"{n[INCONCLUSIVE]}")
    if n[TOO_SMALL]:
        text += f"; too small (< {MIN_TEST_PROMPTS} test prompts, not judged) {n[TOO_SMALL]}"
    if n[NOT_MEASURED]:
        text += f"; interval {NOT_HERE} {n[NOT_MEASURED]}"
    return text + (f" ({CORRECTION} over m = {m}: {level_of(m):.1%} intervals)." if m
                   else " (no comparison large enough to judge).")


def frontier_sentence(placed: dict[tuple[str, str], Placed], m: int) -> str:
    knn = [p for (where, router), p in placed.items() if router == REFERENCE_ROUTER]
    if not knn or all(p.placement == NOT_MEASURED for p in knn):
        return f"kNN against the single-model frontier: {NOT_HERE}."
    text = "kNN against the single-model frontier: " + "; ".join(
        f"{p.placement} on {p.where}" + ("" if p.interval is None else
                                         f" ({_signed(p.difference)}{_iv(p.interval)})")
        for p in knn) + (f" ({CORRECTION} over m = {m})" if m else "")
    others = [f"{p.router} on {p.where}" for (where, router), p in placed.items()
              if router != REFERENCE_ROUTER and p.placement == BELOW]
    return text + (f"; also below it: {', '.join(others)}." if others else ".")


def detail(judged: Sequence[Judged], values: dict[tuple[str, str], float | None]) -> str:
    """Per condition: each router's value and its difference to kNN with the corrected
    interval and category."""
    lines = []
    for where in dict.fromkeys(j.comparison.where for j in judged):
        mine = [j for j in judged if j.comparison.where == where]
        knn = values.get((where, REFERENCE_ROUTER))
        cells = [f"knn {fmt(knn)}"] if knn is not None else []
        for j in mine:
            c = j.comparison
            metric = c.metrics[0]
            sub = metric_entry(c.entry, metric)
            diff = None if not sub else sub.get("difference")
            cell = f"{c.router} {fmt(values.get((where, c.router)))}"
            iv = j.intervals.get(metric)
            cell += f" ({_signed(diff)}{_iv(iv)} {j.category}"
            if len(c.metrics) > 1 and c.metrics[1] in j.intervals:
                sub2 = metric_entry(c.entry, c.metrics[1])
                cell += (f"; at the budget {_signed(sub2.get('difference') if sub2 else None)}"
                         f"{_iv(j.intervals[c.metrics[1]])}")
            cell += (f"; {j.note}" if j.note else "") + ")"
            cells.append(cell)
        narrow = any(j.comparison.narrow for j in mine)
        small = mine[0].comparison.n_test
        lines.append(f"{where}" + (f" ({small} test prompts)" if small is not None else "")
                     + (" [narrow costs: Q@λ0 and quality at budget]" if narrow else "")
                     + ": " + ", ".join(cells))
    return " | ".join(lines)


def how_measured(judged: Sequence[Judged], result: StudyResult | None) -> str:
    """Which interval the comparisons read, and what the file did not measure."""
    seeds = result.protocol.seeds if result and result.protocol else None
    ivs = [iv for j in judged for iv in j.intervals.values()]
    entries = [j.comparison.entry for j in judged if j.comparison.entry]
    if any("rescaled" in iv[2] for iv in ivs) or \
            (entries and not any("tails" in e for e in entries)):
        return (f"Intervals: the file's 95% intervals over test prompts, rescaled (seed "
                f"variance {NOT_HERE}; seeds {seeds}).")
    text = f"Intervals: bootstrap over seeds {seeds}, then test prompts"
    if seeds is not None and len(seeds) == 1:
        text += f" (one seed: seed variance {NOT_HERE})"
    clamped = any("clamped" in iv[2] for iv in ivs)
    return text + ("; some tails clamped to the bootstrap's resolution (more resamples: "
                   "--bootstrap)." if clamped else ".")


def cost_sentence(parts: Sequence[StudyResult], tasks: Sequence[str]) -> str:
    spreads = {t: next((getattr(p.tasks.get(t), "cost_spread", None) for p in parts
                        if p.tasks.get(t) is not None
                        and getattr(p.tasks.get(t), "cost_spread", None) is not None), None)
               for t in tasks}
    if all(v is None for v in spreads.values()):
        return f"Cost range (the narrow-cost flag): {NOT_HERE}."
    narrow = [t for t, v in spreads.items() if narrow_cost_flag(v)]
    return ("Narrow cost range (judged on Q@λ0 and quality at budget): "
            + (", ".join(narrow) if narrow else "none") + ".")


def is_narrow(result: StudyResult, task: str) -> bool:
    return narrow_cost_flag(getattr(result.tasks.get(task), "cost_spread", None)) is not None


def test_size(result: StudyResult, task: str) -> int | None:
    recorded = result.tasks.get(task)
    return None if recorded is None else recorded.sizes.get("test")


def _comparisons(where: str, routers: dict[str, dict[str, Any]], result: StudyResult,
                 task: str, n_test: int | None = None,
                 values: dict[tuple[str, str], float | None] | None = None,
                 value_key: str = "auc") -> list[Comparison]:
    """The comparisons of one condition: each router against kNN, and kNN's own
    placement against the frontier as a comparison without an entry."""
    narrow = is_narrow(result, task)
    size = n_test if n_test is not None else test_size(result, task)
    out = []
    for label, e in routers.items():
        if values is not None:
            values[(where, label)] = e.get(value_key)
        c = Comparison(where, label, e.get("vs_knn"), narrow, size, e.get("vs_frontier"),
                       e.get(value_key))
        out.append(c)
    return out


def _split(found: list[Comparison]) -> tuple[list[Comparison], list[Comparison]]:
    return ([c for c in found if c.router != REFERENCE_ROUTER],
            [c for c in found if c.router == REFERENCE_ROUTER])


def _router_claim(text: str, found: list[Comparison], margin: float, unit: str,
                  result: StudyResult | None, values: dict[tuple[str, str], float | None],
                  tasks: Sequence[str], parts: Sequence[StudyResult]) -> Claim:
    versus, _ = _split(found)
    judged, m = judge(versus, margin)
    placed, m_frontier = place(found)
    frontier_rule(judged, placed)
    evidence = " ".join([point_sentence(versus, unit), counts_sentence(judged, m, margin),
                         frontier_sentence(placed, m_frontier), how_measured(judged, result),
                         cost_sentence(parts, tasks), detail(judged, values)])
    return Claim(text, evidence, router_verdict(judged))


def claim_matches(parts: dict[str, StudyResult], margin: float = DEFAULT_MARGIN) -> Claim:
    """Claim 1 on the sample-efficiency part's full-data runs."""
    text = "A well-tuned kNN router matches or beats learned routers (text tasks)."
    eff = parts.get("sample-efficiency")
    if eff is None:
        return Claim(text, "sample-efficiency part not run", NOT_RUN)
    found: list[Comparison] = []
    values: dict[tuple[str, str], float | None] = {}
    for task, summary in eff.results.items():
        full = {label: {"vs_knn": e["by_fraction"][-1]["vs_knn"], "auc": e["full_auc"],
                        "quality_at_0": e["by_fraction"][-1].get("quality_at_0"),
                        "vs_frontier": e.get("vs_frontier")}
                for label, e in summary["routers"].items()}
        found += _comparisons(task, full, eff, task, values=values,
                              value_key="quality_at_0" if is_narrow(eff, task) else "auc")
    return _router_claim(text, found, margin, "over the tasks (full data)", eff, values,
                         list(eff.results), [eff])


def claim_locality(parts: dict[str, StudyResult], part: str = "locality") -> Claim:
    text = ("Model performance is local in embedding space: a prompt's nearest neighbour "
            "agrees with it on which models succeed more than a random prompt does "
            "(the intrinsic dimension: reported, not judged).")
    loc = parts.get(part)
    if loc is None:
        return Claim(text, "locality part not run", NOT_RUN)
    m = len(loc.results)
    z = NormalDist().inv_cdf(1.0 - ALPHA / max(m, 1))
    hits, lines, points = 0, [], []
    for task, r in loc.results.items():
        diff = _number(r.get("nn_minus_random"))
        null_high = _number(r.get("nn_minus_random_null_high"))
        se = _number(r.get("nn_minus_random_se"))
        above = diff is not None and null_high is not None and diff > null_high
        if se is not None and diff is not None:
            low, high = diff - z * se, diff + z * se
            interval_ok = low > 0
            iv = f"[{low:+.3f}, {high:+.3f}]"
        else:
            interval_ok, iv = True, f"interval over prompts {NOT_HERE}"
        new = "best_rule" in r
        best_diff = _number(r.get("nn_best_minus_random"))
        best_low = _number(r.get("nn_best_minus_random_null_low"))
        best_below = new and best_diff is not None and best_low is not None and best_diff < best_low
        local = above and interval_ok and not best_below
        hits += local
        points.append(f"{task} {fmt(diff, digits=3)}")
        null = (f"null band {fmt(r.get('nn_minus_random_null_low'), digits=3)} to "
                f"{fmt(null_high, digits=3)}")
        if new:
            best = (f"shares a best model: nearest {fmt(r.get('nn_best_same'), digits=3)} vs "
                    f"random {fmt(r.get('random_best_same'), digits=3)} (chance "
                    f"{fmt(r.get('nn_best_same_null'), digits=3)}; difference "
                    f"{fmt(best_diff, digits=3)}, null band {fmt(best_low, digits=3)} to "
                    f"{fmt(r.get('nn_best_minus_random_null_high'), digits=3)}"
                    + (": BELOW it" if best_below else "") + ")")
        else:
            nb, rb = _number(r.get("nn_best_same")), _number(r.get("random_best_same"))
            less = nb is not None and rb is not None and nb < rb
            best = (f"same best model by argmax (ties to the first column, not judged): nearest "
                    f"{fmt(nb, digits=3)} vs random {fmt(rb, digits=3)}"
                    + (" (LESS often than a random prompt)" if less else "")
                    + f"; with ties kept: {NOT_HERE}")
        deciles = r.get("deciles") or []
        over = [str(d["decile"]) for d in deciles if d["agreement"] > d["null_high"]]
        under = [str(d["decile"]) for d in deciles if d["agreement"] < d["null_low"]]
        dims = ", ".join(f"{d['estimator']}{'' if d['estimator'] == 'twonn' else ' k=' + str(d['k'])} "
                         f"{fmt(d['value'], digits=1)}" for d in r.get("dimensions", []))
        lines.append(f"{task}: {'local' if local else 'not local'}: nearest - random agreement "
                     f"{fmt(diff, digits=3)} {iv}, {null}"
                     + (" (above)" if above else " (not above)") + f"; {best}; context: rho "
                     f"{fmt(r.get('spearman'), digits=3)}, deciles above the band "
                     f"{','.join(over) or 'none'}, below {','.join(under) or 'none'}; "
                     f"intrinsic dimension {dims or '-'}")
    head = (f"Point estimates: nearest minus random agreement {', '.join(points)}. Local on "
            f"{hits} of {len(loc.results)} tasks (intervals over prompts at "
            f"{level_of(m):.1%}, {CORRECTION} over m = {m}). ")
    verdict = SUPPORTED if hits == len(loc.results) and hits else \
        PARTLY if hits else NOT_SUPPORTED
    return Claim(text, head + " | ".join(lines), verdict if loc.results else NOT_RUN)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def claim_efficiency(parts: dict[str, StudyResult], margin: float = DEFAULT_MARGIN) -> Claim:
    text = "kNN needs fewer training outcomes than parametric routers to reach its quality."
    eff = parts.get("sample-efficiency")
    if eff is None:
        return Claim(text, "sample-efficiency part not run", NOT_RUN)
    from routeharness.study.efficiency import area_weights

    pairs: list[tuple[str, str, Comparison, bool | None, str]] = []
    points, context = [], []
    for task, summary in eff.results.items():
        routers = summary["routers"]
        if REFERENCE_ROUTER not in routers:
            continue
        narrow = is_narrow(eff, task)
        metric = "quality_at_0" if narrow else "auc"
        name = "Q@λ0" if narrow else "AUC"
        curves = {label: [r.get(metric) for r in e["by_fraction"]] for label, e in routers.items()}
        full = {label: c[-1] for label, c in curves.items() if c[-1] is not None}
        best = max(full, key=full.__getitem__) if full else None
        goal = TARGET_SHARE * full[best] if best else None
        reach = {label: next((f for f, v in zip(summary["fractions"], c)
                              if v is not None and goal is not None and v >= goal), None)
                 for label, c in curves.items()}
        weights = area_weights(summary["fractions"])
        size = test_size(eff, task)
        for label, e in routers.items():
            if label == REFERENCE_ROUTER:
                continue
            area = (e.get("area_vs_knn") or {}).get("retuned")
            if area is None:  # a file before issue 19: the point estimate from the shares
                diffs = [(r["vs_knn"] or {}).get("difference") for r in e["by_fraction"]]
                value = None if None in diffs else float(np.dot(weights, diffs))
                area = {"difference": value, "ci95": None}
            mine, theirs = reach[REFERENCE_ROUTER], reach[label]
            sooner = mine is not None and (theirs is None or mine <= theirs)
            pairs.append((task, label, Comparison(task, label, area, narrow, size), sooner,
                          f"kNN reaches at {_share(mine)}, {label} at {_share(theirs)}"))
            points.append(f"{label} - kNN {_signed(area.get('difference'))} on {task}")
        falls = [f"{label} falls from {fmt(max(v for v in c if v is not None))} to "
                 f"{fmt(c[-1])}" for label, c in curves.items()
                 if c[-1] is not None and max(v for v in c if v is not None) > c[-1]]
        context.append(f"{task}: target {TARGET_SHARE:.0%} of the best full-data {name} ("
                       + (f"{best} {fmt(full[best])}) = {fmt(goal)}" if best else "-)")
                       + "; reached at " + ", ".join(f"{label} {_share(reach[label])}"
                                                     for label in curves)
                       + (f"; curves that fall with more data: {'; '.join(falls)}"
                          if falls else ""))
    judged, m = judge([p[2] for p in pairs], margin)
    outcome = []
    for (task, label, c, sooner, reach_text), j in zip(pairs, judged):
        if j.category == TOO_SMALL:
            result = TOO_SMALL
        elif not sooner or j.category in (EQUIVALENT, BEHIND):
            result = "not more efficient"
        elif j.category == AHEAD:
            result = "kNN more efficient"
        else:
            result = INCONCLUSIVE
        metric = c.metrics[0]
        sub = metric_entry(c.entry, metric) or {}
        judged_text = (f"{_iv(j.intervals.get(metric))} {j.category}"
                       if metric in j.intervals else " too small" if j.category == TOO_SMALL
                       else f" (interval {NOT_HERE})")
        outcome.append((result, f"{task}/{label}: area {_signed(sub.get('difference'))}"
                                f"{judged_text}; {reach_text}: {result}"))
    results = [r for r, _ in outcome]
    more = results.count("kNN more efficient")
    not_more = results.count("not more efficient")
    decided = [r for r in results if r != TOO_SMALL]
    if not decided:
        verdict = NOT_JUDGED if results else NOT_RUN
    elif more == len(decided):
        verdict = SUPPORTED
    elif more:
        verdict = PARTLY
    elif not_more * 2 > len(decided):
        verdict = NOT_SUPPORTED
    else:
        verdict = UNDECIDED
    fixed = _fixed_counts(eff, margin)
    head = (f"Point estimates (area between the curves, router - kNN, mean over the shares "
            f"on a log axis, re-tuned at every share): {', '.join(points) or '-'}. kNN more "
            f"sample-efficient in {more} of {len(decided)} judged pairs; not more efficient "
            f"in {not_more}; inconclusive in {results.count(INCONCLUSIVE)}"
            + (f"; too small {results.count(TOO_SMALL)}" if TOO_SMALL in results else "")
            + f" ({CORRECTION} over m = {m}: {level_of(m):.1%} intervals). The verdict reads "
              f"the curves re-tuned at every share; {fixed}. ")
    return Claim(text, head + " | ".join(context) + " | " + " | ".join(o for _, o in outcome),
                 verdict)


def _share(value: float | None) -> str:
    return "never" if value is None else f"{value:g}"


def _fixed_counts(eff: StudyResult, margin: float) -> str:
    """The same areas with the full-data hyper-parameters, as context."""
    found = []
    for task, summary in eff.results.items():
        for label, e in summary["routers"].items():
            area = (e.get("area_vs_knn") or {}).get("fixed")
            if label != REFERENCE_ROUTER and area is not None:
                found.append(Comparison(task, label, area, is_narrow(eff, task),
                                        test_size(eff, task)))
    if not found:
        return f"with the full-data hyper-parameters: {NOT_HERE}"
    judged, _ = judge(found, margin)
    n = counted([j.category for j in judged])
    return (f"with the full-data hyper-parameters the area is ahead for kNN in {n[AHEAD]}, "
            f"equivalent in {n[EQUIVALENT]}, behind in {n[BEHIND]}, inconclusive in "
            f"{n[INCONCLUSIVE]} of {len(judged)}")


def claim_encoders(parts: dict[str, StudyResult], study: str = "encoders",
                   text: str = "kNN's standing is not an artefact of one encoder "
                               "(the referees' question).",
                   margin: float = DEFAULT_MARGIN) -> Claim:
    """Over every saved part of kind ``study`` (the plan's, and extra runs); a (task,
    encoder) run twice (an extra part repeating the plan's) counts once."""
    runs = [p for p in parts.values() if p.study == study]
    if not runs:
        return Claim(text, f"{study} part not run", NOT_RUN)
    found: list[Comparison] = []
    values: dict[tuple[str, str], float | None] = {}
    taus, seen, encoders = [], set(), []
    for part in runs:
        for task, summary in part.results.items():
            summary = summary.get("routing", summary)
            for spec, entry in summary["encoders"].items():
                if (task, spec) in seen:
                    continue
                seen.add((task, spec))
                if spec not in encoders:
                    encoders.append(spec)
                found += _comparisons(f"{task}/{short(spec)}", entry["routers"], part, task,
                                      values=values)
            t = ", ".join(f"{short(x['a'])}~{short(x['b'])} {fmt(x['tau'])}"
                          for x in summary["kendall_tau"])
            if t:
                taus.append(f"{task}: Kendall's tau {t}")
    versus, _ = _split(found)
    judged, m = judge(versus, margin)
    placed, m_frontier = place(found)
    frontier_rule(judged, placed)
    per_encoder = {}
    for spec in encoders:
        mine = [j for j in judged if j.comparison.where.endswith("/" + short(spec))]
        per_encoder[spec] = router_verdict(mine)
    verdicts = list(per_encoder.values())
    if all(v == SUPPORTED for v in verdicts):
        verdict = SUPPORTED
    elif SUPPORTED in verdicts:
        verdict = PARTLY
    elif all(v == NOT_JUDGED for v in verdicts):
        verdict = NOT_JUDGED
    elif any(j.category == BEHIND for j in judged):
        verdict = NOT_SUPPORTED
    else:
        verdict = UNDECIDED
    by_encoder = "; ".join(f"{short(s)}: {v}" for s, v in per_encoder.items())
    tasks = list(dict.fromkeys(t for p in runs for t in p.results))
    evidence = " ".join([point_sentence(versus, "over the (task, encoder) runs"),
                         counts_sentence(judged, m, margin),
                         f"The first claim's rule under each encoder: {by_encoder}.",
                         frontier_sentence(placed, m_frontier), how_measured(judged, runs[0]),
                         cost_sentence(runs, tasks), detail(judged, values)]
                        + (["| " + " | ".join(taus)] if taus else []))
    return Claim(text, evidence, verdict)


def claim_shift(parts: dict[str, StudyResult], margin: float = DEFAULT_MARGIN) -> Claim:
    text = ("On prompts unlike the training ones (a held-out group), where a lookup table "
            "should suffer most, kNN still matches learned routers.")
    shift = parts.get("shift")
    if shift is None:
        return Claim(text, "shift part not run", NOT_RUN)
    found: list[Comparison] = []
    values: dict[tuple[str, str], float | None] = {}
    drops = []
    for task, summary in shift.results.items():
        for fold in summary["folds"]:
            where = f"{task}/{'+'.join(fold['test_groups'])}"
            found += _comparisons(where, fold["routers"], shift, task, n_test=fold.get("n_test"),
                                  values=values)
            knn = fold["routers"].get(REFERENCE_ROUTER, {})
            if knn.get("in_distribution_auc") is not None and knn.get("auc") is not None:
                drops.append(f"{where} {knn['in_distribution_auc'] - knn['auc']:+.2f}")
    claim = _router_claim(text, found, margin, "over the held-out folds", shift, values,
                          list(shift.results), [shift])
    extra = f" kNN's drop (in-distribution minus held-out AUC): {', '.join(drops)}." \
        if drops else ""
    return Claim(text, claim.evidence + extra, claim.verdict)


def claim_tuning(parts: dict[str, StudyResult]) -> Claim:
    text = "(context) kNN is well tuned: how much k matters."
    sweep = parts.get("sweep")
    if sweep is None:
        return Claim(text, "sweep part not run", NOT_RUN)
    lines = []
    for task, s in sweep.results.items():
        first = s["rows"][0]
        best = max(s["rows"], key=lambda r: r["test_auc"] or -1.0)
        lines.append(f"{task}: k={first['value']} {fmt(first['test_auc'])}, tuned (k="
                     f"{', '.join(map(str, s['tuned']['picked']))}) "
                     f"{fmt(s['tuned']['test_auc'])}, best on test k={best['value']} "
                     f"{fmt(best['test_auc'])}")
    return Claim(text, " | ".join(lines), "context")


def claims(parts: dict[str, StudyResult], margin: float = DEFAULT_MARGIN) -> list[Claim]:
    """Every claim judged on the saved parts, under the equivalence ``margin``."""
    multimodal = claim_encoders(parts, "images", "The same holds on a routing task with "
                                "images (text-only, image-only and fused encoders).",
                                margin=margin)
    return [claim_matches(parts, margin), claim_locality(parts),
            claim_efficiency(parts, margin), claim_encoders(parts, margin=margin), multimodal,
            claim_shift(parts, margin), claim_tuning(parts)]


def settings_line(margin: float) -> str:
    """The declared settings every verdict uses, as the report's opening states them."""
    return (f"Verdict settings, declared before reading the results: equivalence margin "
            f"delta = {margin:g} AUC points (quality points where AUC is uninformative; "
            f"default {DEFAULT_MARGIN:g}: about twice the largest seed-to-seed standard "
            f"deviation of a learned router's full-data AUC in the committed runs, 0.65, "
            f"and what the choice among near-best k moves kNN's test AUC, up to 1.03); "
            f"alpha = {ALPHA:g} one-sided per direction, {CORRECTION}-corrected over each "
            f"claim's comparisons; comparisons on fewer than {MIN_TEST_PROMPTS} test prompts "
            f"are not judged; a task whose normalised cost spread is under "
            f"{NARROW_COST_SPREAD} is judged on quality at lambda 0 and at a fixed budget.")


def claim_table(found: Sequence[Claim]) -> ReportTable:
    table = ReportTable("the paper's claims on this data", ["claim", "verdict", "evidence"])
    for c in found:
        table.add([c.claim, c.verdict, c.evidence])
    return table


def write_report(parts: dict[str, StudyResult], out_dir: str | Path,
                 margin: float = DEFAULT_MARGIN) -> Path:
    """``report.md`` and ``report.json`` (the claims, the rules with the declared margin,
    the parts' provenance) and the parts' plots, in ``out_dir``."""
    from routeharness.common.files import write_text
    from routeharness.study import study_module

    out_dir = Path(out_dir)
    found = claims(parts, margin)
    written_rules = rules(margin)
    versions = sorted({str(p.routeharness_version) for p in parts.values()})
    commits = sorted({str(p.git_commit)[:12] for p in parts.values()})
    lines = ["# Reproducing arXiv 2505.12601 with routeharness", "",
             f"Written by `routeharness study paper` from the part files beside it (run with "
             f"routeharness {', '.join(versions)}, commits {', '.join(commits)}; each part "
             "below says when it ran and for how long). Rules for the verdicts are at the "
             "end.", "", settings_line(margin), "",
             to_markdown([claim_table(found)]), ""]
    for name, result in parts.items():
        module = study_module(result.study)
        lines += [f"## {name}", "",
                  f"Encoders: {', '.join(markdown_cell(short(e.name)) for e in result.encoders)}; "
                  f"seeds: {result.protocol.seeds if result.protocol else '-'}; commit "
                  f"{str(result.git_commit)[:12]}; run {result.created}"
                  + (f" in {result.wall_seconds / 60:.1f} min" if result.wall_seconds else "")
                  + ".",
                  "", to_markdown(module.tables(result)), ""]
        if hasattr(module, "plot"):
            module.plot(result, out_dir / f"{name}.png")
            lines += [f"![{name}]({name}.png)", ""]
    lines += ["## Verdict rules", ""] + [f"- {k}: {v}" for k, v in written_rules.items()]
    report = {"schema": "routeharness.paper/1", "claims": [c.to_dict() for c in found],
              "rules": written_rules,
              "settings": {"margin": margin, "alpha": ALPHA, "correction": CORRECTION,
                           "min_test_prompts": MIN_TEST_PROMPTS,
                           "narrow_cost_spread": NARROW_COST_SPREAD,
                           "target_share": TARGET_SHARE},
              "parts": {n: {"file": f"{n}.json", "created": r.created,
                            "git_commit": r.git_commit} for n, r in parts.items()}}
    write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", out_dir / "report.json",
               "report")
    return write_text("\n".join(lines) + "\n", out_dir / "report.md", "report")
