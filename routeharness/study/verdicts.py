"""The rules every verdict of the reproduction report applies (issue 19), pure: a paired
difference's interval corrected for the number of comparisons a claim makes, read
against an equivalence margin declared before the run, into one of four categories.

- The margin ``margin`` (AUC points, or quality points where AUC is uninformative) is
  declared before the run (``study paper --margin``, default ``DEFAULT_MARGIN``).
- A claim making m comparisons reads each one's two-sided (1 - 2 alpha / m) percentile
  interval (Bonferroni; alpha = ``ALPHA``): every category below is then a one-sided
  test at level alpha / m, or two of them (TOST for equivalence).
- equivalent: the interval lies within (-margin, +margin); else ahead or behind: it
  excludes 0 on that side; else inconclusive.
- A comparison on fewer than ``MIN_TEST_PROMPTS`` test prompts is "too small": not
  judged and not counted in m.
- A comparison's interval comes from the bootstrap quantiles its study file keeps
  (``tails``: over seeds, then prompts); a file written before issue 19 kept only a 95%
  interval over prompts, which is rescaled on each side by the ratio of normal
  quantiles (an approximation, said so wherever it is used).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

from routeharness.common.errors import RouteHarnessError

#: the family-wise error rate of a claim's comparisons (one-sided, per direction)
ALPHA = 0.05
#: the equivalence margin, in AUC points: about twice the largest seed-to-seed standard
#: deviation of a learned router's full-data AUC on the committed tasks (0.65, bandit on
#: alpacaeval), and what the choice among near-best k moves kNN's test AUC (up to 1.03 on
#: routerbench): a difference under it is within what re-running or re-tuning moves
DEFAULT_MARGIN = 1.0
#: fewer test prompts than this: "too small", not judged. On 31-50 prompts the percentile
#: bootstrap of a hull-AUC difference is too coarse (many resamples give identical routes,
#: bounds of exactly +0.00) and its intervals span 8-20 AUC points
MIN_TEST_PROMPTS = 100
CORRECTION = "Bonferroni"

AHEAD, EQUIVALENT, BEHIND, INCONCLUSIVE = "ahead", "equivalent", "behind", "inconclusive"
TOO_SMALL, NOT_MEASURED = "too small", "not measured"
ABOVE, WITHIN, BELOW = "above", "within", "below"
_Z95 = NormalDist().inv_cdf(0.975)


def check_margin(value: Any) -> float:
    """The margin as a finite number >= 0, or a one-line error."""
    try:
        margin = float(value)
    except (TypeError, ValueError):
        raise RouteHarnessError(f"--margin: {value!r} is not a number (an AUC difference, "
                                f"e.g. {DEFAULT_MARGIN})") from None
    if not math.isfinite(margin) or margin < 0:
        raise RouteHarnessError(f"--margin: {value!r} must be a finite number >= 0 (an AUC "
                                f"difference, e.g. {DEFAULT_MARGIN})")
    return margin


def one_sided(m: int) -> float:
    """Each tail's probability for a claim of ``m`` comparisons (Bonferroni)."""
    return ALPHA / max(int(m), 1)


def level_of(m: int) -> float:
    """The two-sided level of the intervals a claim of ``m`` comparisons reads."""
    return 1.0 - 2.0 * one_sided(m)


def metric_entry(entry: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    """The part of a paired entry for ``metric`` (AUC at the top, the others nested)."""
    if not entry:
        return None
    return entry if metric == "auc" else entry.get(metric)


def interval(entry: dict[str, Any] | None, m: int) -> tuple[float, float, str] | None:
    """The (1 - 2 alpha / m) interval of one metric's paired entry: from its bootstrap
    ``tails`` (interpolated on log p; clamped to the most extreme kept when the bootstrap
    cannot resolve the tail), else its 95% interval rescaled (``how`` says which); None
    when the entry has neither."""
    if not entry or entry.get("difference") is None:
        return None
    p = one_sided(m)
    tails = entry.get("tails")
    if tails and tails.get("p"):
        grid = [float(x) for x in tails["p"]]
        how = "bootstrap"
        if p < grid[0]:
            how += f"; tail clamped at p = {grid[0]:g} (more resamples resolve it)"
        return _tail(grid, tails["low"], p), _tail(grid, tails["high"], p), how
    ci = entry.get("ci95")
    if not ci or None in ci or not all(math.isfinite(float(x)) for x in ci):
        return None
    d = float(entry["difference"])
    scale = NormalDist().inv_cdf(1.0 - p) / _Z95
    return (d - (d - float(ci[0])) * scale, d + (float(ci[1]) - d) * scale,
            "95% interval over prompts rescaled (file before issue 19)")


def _tail(grid: Sequence[float], values: Sequence[float], p: float) -> float:
    logs = [math.log(x) for x in grid]
    target = min(max(math.log(p), logs[0]), logs[-1])
    for k in range(len(logs) - 1):
        if target <= logs[k + 1]:
            t = (target - logs[k]) / (logs[k + 1] - logs[k])
            return float(values[k]) + t * (float(values[k + 1]) - float(values[k]))
    return float(values[-1])


def category(low: float, high: float, margin: float) -> str:
    """A difference (router - kNN) from kNN's side: equivalent within the margin, ahead
    (the router lower) or behind beyond 0, else inconclusive. NaN bounds: inconclusive."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if -margin < low and high < margin:
        return EQUIVALENT
    if high < 0:
        return AHEAD
    if low > 0:
        return BEHIND
    return INCONCLUSIVE


def placement(low: float, high: float) -> str:
    """A router against the single-model frontier (router - frontier): above, below, or
    within when the interval contains 0."""
    if math.isfinite(low) and low > 0:
        return ABOVE
    if math.isfinite(high) and high < 0:
        return BELOW
    return WITHIN


def combine(categories: Sequence[str]) -> str:
    """One category from several metrics of one comparison (Q@λ0 and quality at a fixed
    budget where AUC is uninformative): equivalent only if all are; behind if one is and
    none is ahead; ahead likewise; else inconclusive."""
    cats = set(categories)
    if cats == {EQUIVALENT}:
        return EQUIVALENT
    if BEHIND in cats and AHEAD not in cats:
        return BEHIND
    if AHEAD in cats and BEHIND not in cats:
        return AHEAD
    return INCONCLUSIVE


def counted(categories: Sequence[str]) -> dict[str, int]:
    """How many comparisons fall in each category, in the order the report gives them."""
    order = (EQUIVALENT, AHEAD, BEHIND, INCONCLUSIVE, TOO_SMALL, NOT_MEASURED)
    return {c: sum(1 for x in categories if x == c) for c in order}
