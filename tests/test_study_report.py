"""The reproduction report's verdict rules (issue 19) on constructed comparisons and on
synthetic routes with known answers: an equivalence margin, categories from a
Bonferroni-corrected interval, too-small comparisons left unjudged, the single-model
frontier, narrow cost ranges, learning curves judged on the curves, locality against its
null band; and the committed study files still load and report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation import metrics
from routeharness.routers.base import best_models
from routeharness.study.record import STUDY_SCHEMA, StudyResult
from routeharness.study.report import (
    NOT_JUDGED,
    NOT_RUN,
    NOT_SUPPORTED,
    PARTLY,
    SUPPORTED,
    UNDECIDED,
    Comparison,
    claim_efficiency,
    claim_locality,
    claim_matches,
    claim_shift,
    claims,
    judge,
    write_report,
)
from routeharness.study.runs import comparison_entry
from routeharness.study.verdicts import (
    AHEAD,
    BEHIND,
    EQUIVALENT,
    INCONCLUSIVE,
    TOO_SMALL,
    category,
    check_margin,
    interval,
)

PAPER = Path(__file__).resolve().parent.parent / "benchmarks" / "paper"


def vs(diff: float, sd: float, *, q0: tuple[float, float] | None = None,
       n_test: int = 500) -> dict:
    """A paired entry as a study file keeps it (new format), from replicates that are
    exactly normal around ``diff``: its tails, its 95% interval."""
    grid = (np.arange(2000) + 0.5) / 2000
    normal = np.array([NormalDist().inv_cdf(p) for p in grid])
    q0 = q0 or (diff, sd)
    replicates = np.column_stack([diff + sd * normal, q0[0] + q0[1] * normal,
                                  q0[0] + q0[1] * normal])
    return comparison_entry(np.array([diff, q0[0], q0[0]]), replicates, n_test=n_test,
                            n_seeds=3, budget=0.5)


def old_vs(diff: float, low: float, high: float) -> dict:
    """A paired entry of a file written before issue 19: a 95% interval over prompts."""
    return {"difference": diff, "ci95": [low, high]}


def efficiency(routers: dict, fractions=(0.1, 1.0), sizes=(10, 100), spread=None,
               n_test: int = 500) -> StudyResult:
    return StudyResult(study="sample-efficiency", params={}, protocol={"seeds": [0, 1, 2]},
                       tasks={"t": {"fingerprint": "x", "sizes": {"test": n_test},
                                    **({"cost_spread": spread} if spread is not None else {})}},
                       results={"t": {"fractions": list(fractions), "sizes": list(sizes),
                                      "routers": routers}})


def row(auc: float, versus: dict | None, q0: float | None = None) -> dict:
    return {"auc": auc, "auc_std": 0.0, "quality_at_0": q0 if q0 is not None else auc,
            "quality_at_0_std": 0.0, "vs_knn": versus}


def full_data(knn_auc: float, others: dict[str, tuple[float, dict]], *,
              knn_frontier: dict | None = None, frontiers: dict | None = None,
              **kw) -> dict:
    """A sample-efficiency part whose full-data runs hold the given comparisons."""
    routers = {"knn": {"by_fraction": [row(knn_auc, None), row(knn_auc, None)],
                       "full_auc": knn_auc, "vs_frontier": knn_frontier}}
    for label, (auc, entry) in others.items():
        routers[label] = {"by_fraction": [row(auc, entry), row(auc, entry)], "full_auc": auc,
                          "vs_frontier": (frontiers or {}).get(label)}
    return {"sample-efficiency": efficiency(routers, **kw)}


# --- the rules as pure functions ---------------------------------------------------------------
def test_categories_read_the_interval_against_the_margin():
    assert category(-0.4, 0.6, 1.0) == EQUIVALENT
    assert category(0.2, 0.9, 1.0) == EQUIVALENT  # significant, but within the margin
    assert category(0.2, 2.5, 1.0) == BEHIND  # the router above kNN beyond 0
    assert category(-3.0, -0.1, 1.0) == AHEAD
    assert category(-1.5, 0.4, 1.0) == INCONCLUSIVE
    assert category(-0.4, 0.6, 0.0) == INCONCLUSIVE  # no margin: nothing is equivalent


def test_the_multiplicity_correction_widens_intervals():
    for entry in (vs(0.5, 0.4), old_vs(0.5, -0.3, 1.3)):
        one, nine = interval(entry, 1), interval(entry, 9)
        assert nine[0] < one[0] < 0.5 < one[1] < nine[1]
    # m = 1 reads the 90% interval (two one-sided 5% tests)
    low, high, _ = interval(vs(0.0, 1.0), 1)
    assert low == pytest.approx(-1.645, abs=0.01) and high == pytest.approx(1.645, abs=0.01)
    assert "rescaled" in interval(old_vs(0.5, -0.3, 1.3), 1)[2]
    # beyond what 2,000 replicates' tails were kept for: clamped, and said so
    assert "clamped" in interval(vs(0.0, 1.0), 500)[2]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "abc", ""])
def test_a_bad_margin_is_one_line(value):
    with pytest.raises(RouteHarnessError, match="--margin") as caught:
        check_margin(value)
    assert "\n" not in str(caught.value)
    assert check_margin("0.5") == 0.5 and check_margin(0) == 0.0


def _routes(gap_share: float, seeds: int = 3, n: int = 3000):
    """kNN's routes worse than the router's on ``gap_share`` of the prompts (the
    cheapest model instead of the best), refit per seed: the router truly ahead."""
    rng = np.random.default_rng(7)
    scores = (rng.random((n, 3)) < np.array([0.3, 0.6, 0.9])).astype(float)
    costs = np.tile(np.array([0.1, 0.4, 1.0]), (n, 1))
    lams = [0.0, 0.05, 0.1, 0.3, 1.0, 3.0, np.inf]
    good = np.stack([best_models(scores, costs, lam, "cheapest") for lam in lams])
    knn = []
    for _ in range(seeds):
        worse = good.copy()
        worse[:, rng.random(n) < gap_share] = 0
        knn.append(worse)
    return scores, costs, [good] * seeds, knn


def _entry(gap_share: float) -> dict:
    scores, costs, router, knn = _routes(gap_share)
    diff, replicates = metrics.paired_seed_prompt_bootstrap(scores, costs, router, knn,
                                                            n_resamples=400, seed=1)
    return comparison_entry(diff, replicates, n_test=scores.shape[0], n_seeds=3,
                            budget=metrics.budget_of(costs))


@pytest.mark.parametrize("share, expected_gap, expected", [
    (0.008, 0.3, EQUIVALENT),  # kNN truly about 0.3 AUC behind: equivalent within 1
    (0.047, 2.0, BEHIND),      # about 2 AUC behind: behind
])
def test_synthetic_routes_with_a_known_gap(share, expected_gap, expected):
    entry = _entry(share)
    assert entry["difference"] == pytest.approx(expected_gap, abs=0.1)
    judged, m = judge([Comparison("t", "r", entry, n_test=3000)], 1.0)
    assert m == 1 and judged[0].category == expected


def test_a_too_small_pair_is_not_judged_nor_counted():
    comparisons = [Comparison("big", "a", vs(2.0, 0.3), n_test=500),
                   Comparison("small", "a", vs(9.0, 0.3), n_test=50)]
    judged, m = judge(comparisons, 1.0)
    assert m == 1 and [j.category for j in judged] == [BEHIND, TOO_SMALL]
    claim = claim_shift({"shift": StudyResult(
        study="shift", params={}, protocol={"seeds": [0]}, tasks={},
        results={"t": {"folds": [{"test_groups": ["g"], "n_test": 40, "routers": {
            "knn": {"auc": 50.0, "vs_knn": None}, "a": {"auc": 60.0,
                                                         "vs_knn": old_vs(10, 0.0, 20)}}}]}})})
    assert claim.verdict == NOT_JUDGED and "too small (< 100 test prompts" in claim.evidence


# --- claim 1: matches or beats -----------------------------------------------------------------
def test_matches_needs_equivalence_not_an_interval_containing_zero():
    parts = full_data(60.0, {"a": (60.2, vs(0.2, 0.2)), "b": (59.8, vs(-0.2, 0.2))})
    assert claim_matches(parts).verdict == SUPPORTED
    # wide intervals that contain 0: the old rule said "matches"; now the data cannot say
    parts = full_data(60.0, {"a": (61.0, vs(1.0, 1.5)), "b": (60.5, vs(0.5, 1.5))})
    claim = claim_matches(parts)
    assert claim.verdict == UNDECIDED and "inconclusive in 2" in claim.evidence
    parts = full_data(60.0, {"a": (62.0, vs(2.0, 0.3)), "b": (60.5, vs(0.5, 1.5))})
    assert claim_matches(parts).verdict == NOT_SUPPORTED


def test_the_issue_case_knn_last_and_below_the_frontier_is_not_a_match():
    """kNN last of four, 1.3-1.5 AUC behind each, the only router below the single-model
    frontier: its intervals contain 0, and the old rule said "supported"."""
    others = {"linear": (6.8, vs(1.5, 0.9)), "mlp": (6.7, vs(1.4, 0.9)),
              "graph": (6.6, vs(1.3, 0.9))}
    frontiers = {label: vs(0.4, 0.1) for label in others}
    parts = full_data(5.3, others, knn_frontier=vs(-0.9, 0.1), frontiers=frontiers)
    claim = claim_matches(parts)
    assert claim.verdict == NOT_SUPPORTED
    assert claim.evidence.startswith("Point estimates: kNN is below linear in 1 of 1, below "
                                     "mlp in 1 of 1, below graph in 1 of 1")
    assert "kNN's rank: 4 of 4 on t" in claim.evidence
    assert "kNN against the single-model frontier: below on t" in claim.evidence
    assert "kNN below the single-model frontier, linear above it" in claim.evidence
    assert "behind in 3" in claim.evidence


def test_a_narrow_cost_task_is_judged_on_quality():
    """Costs spanning 0.875-1 cap AUC near 12.5: an AUC difference of 0.1 hides a
    quality gap of 4 points, which the verdict reads instead."""
    others = {"a": (12.4, vs(0.1, 0.05, q0=(4.0, 0.5)))}
    claim = claim_matches(full_data(12.3, others, spread=0.125))
    assert claim.verdict == NOT_SUPPORTED
    assert "[narrow costs: Q@λ0 and quality at budget]" in claim.evidence
    assert "Narrow cost range (judged on Q@λ0 and quality at budget): t" in claim.evidence
    wide = claim_matches(full_data(12.3, others, spread=0.9))
    assert wide.verdict == SUPPORTED


# --- sample efficiency ----------------------------------------------------------------------------
def test_a_flat_then_falling_curve_is_not_more_sample_efficient():
    """kNN's AUC falls from 5.57 at 5% of train to 5.27 at 100% while the router climbs:
    the old rule (95% of its OWN full-data AUC at the smallest share) said supported."""
    fractions, sizes = (0.05, 0.25, 0.5, 1.0), (10, 50, 100, 200)
    knn_curve, other = [5.57, 5.57, 5.5, 5.27], [5.3, 5.5, 5.7, 5.9]
    diffs = [o - k for o, k in zip(other, knn_curve)]
    knn = {"by_fraction": [row(a, None) for a in knn_curve], "full_auc": 5.27,
           "fraction_to_95": 0.05}
    mlp = {"by_fraction": [row(a, vs(d, 0.05)) for a, d in zip(other, diffs)],
           "full_auc": 5.9, "fraction_to_95": 0.5,
           "area_vs_knn": {"retuned": vs(float(np.mean(diffs)), 0.05)}}
    result = efficiency({"knn": knn, "mlp": mlp}, fractions, sizes)
    claim = claim_efficiency({"sample-efficiency": result})
    assert claim.verdict == NOT_SUPPORTED, claim.evidence
    assert "knn falls from 5.57 to 5.27" in claim.evidence
    assert "kNN reaches at never, mlp at 0.5: not more efficient" in claim.evidence
    # a curve truly above the router's at every share, reaching the target first: yes
    ahead = {"by_fraction": [row(a, vs(-2.0, 0.1)) for a in (3.0, 3.5, 4.0, 4.5)],
             "full_auc": 4.5, "area_vs_knn": {"retuned": vs(-2.0, 0.1)}}
    knn_high = {"by_fraction": [row(a, None) for a in (5.0, 5.5, 6.0, 6.5)], "full_auc": 6.5}
    result = efficiency({"knn": knn_high, "mlp": ahead}, fractions, sizes)
    assert claim_efficiency({"sample-efficiency": result}).verdict == SUPPORTED


# --- locality ---------------------------------------------------------------------------------------
def _loc(diff, null_high, se=0.005, best=0.02, best_low=-0.01, spearman=0.0):
    return {"spearman": spearman, "spearman_ci95": [-0.01, 0.01], "nn_minus_random": diff,
            "nn_minus_random_null_low": -null_high, "nn_minus_random_null_high": null_high,
            "nn_minus_random_se": se, "nn_minus_random_ci95": [diff - 2 * se, diff + 2 * se],
            "nn_agreement": 0.6 + diff, "random_agreement": 0.6, "best_rule": "sets",
            "nn_best_same": 0.5 + best, "random_best_same": 0.5, "nn_best_same_null": 0.5,
            "nn_best_minus_random": best, "nn_best_minus_random_null_low": best_low,
            "nn_best_minus_random_null_high": -best_low, "deciles": [], "dimensions": []}


def test_locality_is_judged_against_the_null_band_not_spearman():
    """Nearest neighbours agreeing clearly more than random prompts (outside the null
    band) while Spearman is about 0: local (the old rule missed it)."""
    local = StudyResult(study="locality", params={}, results={
        "a": _loc(0.04, 0.012), "b": _loc(0.07, 0.015), "c": _loc(0.05, 0.01)})
    claim = claim_locality({"locality": local})
    assert claim.verdict == SUPPORTED and "Local on 3 of 3 tasks" in claim.evidence
    mixed = StudyResult(study="locality", params={}, results={
        "inside": _loc(0.008, 0.012),  # inside its null band
        "below": _loc(0.05, 0.01, best=-0.05, best_low=-0.02),  # nearest shares LESS
        "local": _loc(0.05, 0.01)})
    claim = claim_locality({"locality": mixed})
    assert claim.verdict == PARTLY and "Local on 1 of 3 tasks" in claim.evidence
    assert "BELOW it" in claim.evidence and "intrinsic dimension" in claim.evidence


# --- the committed study files ----------------------------------------------------------------------
def test_the_committed_study_files_load_and_write_back_unchanged(tmp_path):
    """``StudyResult`` is typed (its runs, tasks, encoders and protocol): every study file
    of benchmarks/paper reads back and saves byte for byte; a bad value is one line naming
    the file and the key."""
    files = [p for p in sorted(PAPER.glob("*.json"))
             if json.loads(p.read_text()).get("schema") == STUDY_SCHEMA]
    assert files
    for path in files:
        result = StudyResult.load(path)
        assert result.save(tmp_path / path.name).read_text() == path.read_text(), path
    data = json.loads((PAPER / "sweep.json").read_text())
    data["runs"][1]["metrics"]["auc"] = "high"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(RouteHarnessError) as info:
        StudyResult.load(bad)
    assert str(info.value).startswith(f"{bad}: runs[1].metrics.auc: expected a number")


def test_the_committed_parts_are_judged_by_the_new_rules(tmp_path):
    """The committed report is what the rules give on the committed parts (re-run under
    issue 19's rules); only the older all-mpnet-base-v2 file, kept from before them, has
    its 95% intervals over prompts rescaled and says what it did not measure."""
    from routeharness.study.paper import load_parts

    for path in PAPER.glob("*.json"):
        if path.name != "report.json":
            shutil.copy(path, tmp_path / path.name)
    parts = load_parts(tmp_path)
    found = claims(parts, 1.0)
    committed = json.loads((PAPER / "report.json").read_text())
    assert [c.verdict for c in found] == [c["verdict"] for c in committed["claims"]]
    assert [c.verdict for c in found][:6] == [UNDECIDED, PARTLY, PARTLY, UNDECIDED,
                                              NOT_JUDGED, NOT_SUPPORTED]
    assert "not measured in this file" not in found[0].evidence  # seeds and prompts
    assert "bootstrap over seeds [0, 1, 2], then test prompts" in found[0].evidence
    assert "not measured on alpacaeval/st:all-mpnet-base-v2" in found[3].evidence
    report = write_report(parts, tmp_path, 1.0)
    text = report.read_text()
    assert "equivalence margin delta = 1 AUC points" in text
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["settings"]["margin"] == 1.0 and saved["settings"]["correction"] == "Bonferroni"
    assert [c["verdict"] for c in saved["claims"]] == [c.verdict for c in found]
    assert [c.verdict for c in claims({})][:6] == [NOT_RUN] * 6


def _without(value, key):
    """``value`` with every mapping's ``key`` removed (a file as written before it)."""
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


def test_resume_runs_again_a_part_written_before_these_rules(tmp_path):
    """`study paper --resume` must not reuse a part whose file predates the rules: its
    report would lack what a run now measures."""
    from routeharness.study.paper import predates_rules

    for name, mark in (("locality", "best_rule"), ("sample-efficiency", "resampled"),
                       ("encoders", "resampled"), ("shift", "resampled"),
                       ("images", "resampled")):
        current = StudyResult.load(PAPER / f"{name}.json")
        assert not predates_rules(current), name  # the committed re-run
        old = json.loads((PAPER / f"{name}.json").read_text())
        old["results"] = _without(old["results"], mark)
        (tmp_path / f"{name}.json").write_text(json.dumps(old))
        assert predates_rules(StudyResult.load(tmp_path / f"{name}.json")), name
    assert predates_rules(StudyResult.load(PAPER / "encoders-mpnet.json"))  # kept from before
    assert not predates_rules(StudyResult.load(PAPER / "sweep.json"))  # unchanged
    fresh = efficiency({"knn": {"by_fraction": [], "vs_frontier": vs(1.0, 0.1)}})
    assert not predates_rules(fresh)
