"""The reproduction report's verdict rules on hand-made study results (pure logic), and
a report written from parts run on a small dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.study.record import STUDY_SCHEMA, StudyResult
from routeharness.study.report import (
    NOT_RUN,
    NOT_SUPPORTED,
    PARTLY,
    SUPPORTED,
    claim_efficiency,
    claim_locality,
    claim_matches,
    claims,
    matches,
)


def vs(diff, low, high):
    return {"difference": diff, "ci95": [low, high]}


def efficiency(routers):
    return StudyResult(study="sample-efficiency", params={}, protocol={"seeds": [0, 1]},
                       results={"t": {"fractions": [0.1, 1.0], "sizes": [10, 100],
                                      "routers": routers}})


def row(auc, versus):
    return {"auc": auc, "auc_std": 0.0, "vs_knn": versus}


def test_matching_means_the_paired_interval_does_not_favour_the_router():
    hits, total, notes = matches({"knn": {"vs_knn": None},
                                  "a": {"vs_knn": vs(0.5, -0.2, 1.1)},   # matches
                                  "b": {"vs_knn": vs(-2.0, -3.0, -1.0)},  # kNN beats b
                                  "c": {"vs_knn": vs(2.0, 1.0, 3.0)}})    # c beats kNN
    assert (hits, total) == (2, 3)
    assert any("kNN beats b" in n for n in notes) and any("c beats kNN" in n for n in notes)


def test_claim_one_verdicts_follow_the_rule():
    def full(*cis):
        routers = {"knn": {"by_fraction": [row(50, None), row(60, None)], "full_auc": 60,
                           "fraction_to_95": 0.1}}
        for i, ci in enumerate(cis):
            routers[f"r{i}"] = {"by_fraction": [row(50, vs(0, -1, 1)), row(61, vs(1, *ci))],
                                "full_auc": 61, "fraction_to_95": 1.0}
        return {"sample-efficiency": efficiency(routers)}

    assert claim_matches(full((-1, 2), (-0.5, 0.5))).verdict == SUPPORTED
    assert claim_matches(full((-1, 2), (-1, 2), (0.2, 2))).verdict == PARTLY
    assert claim_matches(full((0.2, 2), (0.1, 1))).verdict == NOT_SUPPORTED
    assert claim_matches({}).verdict == NOT_RUN


def test_sample_efficiency_verdict_compares_shares_and_small_data_differences():
    knn = {"by_fraction": [row(55, None), row(60, None)], "full_auc": 60, "fraction_to_95": 0.1}
    slower = {"by_fraction": [row(40, vs(-15, -17, -13)), row(61, vs(1, -1, 3))],
              "full_auc": 61, "fraction_to_95": 1.0}
    faster = {"by_fraction": [row(59, vs(4, 2, 6)), row(61, vs(1, -1, 3))],
              "full_auc": 61, "fraction_to_95": 0.1}
    assert claim_efficiency({"sample-efficiency": efficiency(
        {"knn": knn, "mlp": slower})}).verdict == SUPPORTED
    assert claim_efficiency({"sample-efficiency": efficiency(
        {"knn": knn, "mlp": faster})}).verdict == NOT_SUPPORTED


def test_locality_needs_a_negative_interval_and_nearer_neighbours_agreeing_more():
    def loc(ci, nn, rnd):
        return {"spearman": sum(ci) / 2, "spearman_ci95": list(ci), "nn_agreement": nn,
                "random_agreement": rnd, "dimensions": []}

    local = StudyResult(study="locality", params={},
                        results={"a": loc((-0.2, -0.1), 0.7, 0.6),
                                 "b": loc((-0.01, 0.02), 0.6, 0.6)})
    assert claim_locality({"locality": local}).verdict == PARTLY
    assert "a: rho -0.150" in claim_locality({"locality": local}).evidence
    assert [c.verdict for c in claims({})][:5] == [NOT_RUN] * 5


def test_the_committed_study_files_load_and_write_back_unchanged(tmp_path):
    """``StudyResult`` is typed (its runs, tasks, encoders and protocol): every study file
    of benchmarks/paper reads back and saves byte for byte; a bad value is one line naming
    the file and the key."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks" / "paper"
    files = [p for p in sorted(folder.glob("*.json"))
             if json.loads(p.read_text()).get("schema") == STUDY_SCHEMA]
    assert files
    for path in files:
        result = StudyResult.load(path)
        assert result.save(tmp_path / path.name).read_text() == path.read_text(), path
    data = json.loads((folder / "sweep.json").read_text())
    data["runs"][1]["metrics"]["auc"] = "high"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(RouteHarnessError) as info:
        StudyResult.load(bad)
    assert str(info.value).startswith(f"{bad}: runs[1].metrics.auc: expected a number")
