"""The reproduction report of ``study paper``: the paper's claims one by one, each with
its evidence (numbers with intervals and seeds) and a verdict on this data, then every
part's tables. Verdicts follow fixed rules (``RULES``) applied to the saved parts, so a
re-run on other data, routers or encoders is judged the same way."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeharness.results.tables import ReportTable, fmt, markdown_cell, to_markdown
from routeharness.study.encoders import short
from routeharness.study.record import StudyResult
from routeharness.study.runs import REFERENCE_ROUTER

SUPPORTED, PARTLY, NOT_SUPPORTED, NOT_RUN = ("supported", "partly supported", "not supported",
                                            "not run")
RULES = {
    "matches": "kNN matches a learned router on a task when the paired 95% interval of "
               "(router - kNN) AUC contains 0 or is below it; beats it when the interval is "
               "below 0. Supported: kNN matches every learned router on every task; partly: "
               "on most of the (task, router) pairs; not supported otherwise.",
    "locality": "Local on a task when Spearman(distance, agreement) has a 95% interval below "
                "0 and a prompt's nearest neighbour agrees with it more than a random "
                "prompt does. Supported: on every task; partly: on some.",
    "efficiency": "kNN is more sample-efficient than a router on a task when it reaches 95% "
                  "of its full-data AUC at a smaller share of the training data, or at the "
                  "smallest share the paired interval of (router - kNN) is below 0. "
                  "Supported: against every learned router on every task; partly: on some "
                  "pairs; not supported: on none.",
    "shift": "Under shift, kNN matches a router on a held-out group by the rule of the first "
             "claim (paired over that group's test prompts). Supported: on every (fold, "
             "router) pair; partly: on most.",
    "tuning": "Context, not a claim: test AUC at k = 1 and at the k eval's tuning picks.",
    "encoders": "kNN's standing holds under an encoder when kNN matches every learned router "
                "under it (rule of the first claim). Supported: under every encoder; partly: "
                "under some.",
}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper as judged on this data."""

    claim: str
    evidence: str
    verdict: str

    def to_dict(self) -> dict[str, str]:
        return {"claim": self.claim, "evidence": self.evidence, "verdict": self.verdict}


def _share(hits: int, total: int, *, partly: str = "most") -> str:
    """All -> supported; ``partly`` ("most": over half, "some": at least one) -> partly."""
    if total == 0:
        return NOT_RUN
    enough = hits * 2 > total if partly == "most" else hits > 0
    return SUPPORTED if hits == total else PARTLY if enough else NOT_SUPPORTED


def _ci(entry: dict[str, Any] | None) -> tuple[float, float] | None:
    ci = (entry or {}).get("ci95")
    return (ci[0], ci[1]) if ci and None not in ci else None


def _pairs(routers: dict[str, dict[str, Any]], vs: str = "vs_knn") -> list[tuple[str, Any]]:
    return [(label, e.get(vs)) for label, e in routers.items() if label != REFERENCE_ROUTER]


def matches(routers: dict[str, dict[str, Any]]) -> tuple[int, int, list[str]]:
    """(pairs where kNN matches, pairs, notes) from per-router ``vs_knn`` entries."""
    hits, total, notes = 0, 0, []
    for label, entry in _pairs(routers):
        ci = _ci(entry)
        if ci is None:
            continue
        total += 1
        if ci[0] <= 0:
            hits += 1
            if ci[1] < 0:
                notes.append(f"kNN beats {label} ({entry['difference']:+.2f})")
        else:
            notes.append(f"{label} beats kNN by {entry['difference']:+.2f} "
                         f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
    return hits, total, notes


def claim_matches(parts: dict[str, StudyResult]) -> Claim:
    """Claim 1 on the sample-efficiency part's full-data runs (paired over test prompts)."""
    text = "A well-tuned kNN router matches or beats learned routers (text tasks)."
    eff = parts.get("sample-efficiency")
    if eff is None:
        return Claim(text, "sample-efficiency part not run", NOT_RUN)
    hits = total = 0
    lines = []
    for task, summary in eff.results.items():
        full = {label: {"vs_knn": e["by_fraction"][-1]["vs_knn"], "auc": e["full_auc"]}
                for label, e in summary["routers"].items()}
        h, t, notes = matches(full)
        hits, total = hits + h, total + t
        aucs = ", ".join(f"{label} {fmt(e['auc'])}" for label, e in full.items())
        lines.append(f"{task}: {aucs}" + (f" ({'; '.join(notes)})" if notes else ""))
    beats = sum(line.count("kNN beats") for line in lines)
    evidence = (f"kNN matches {hits} of {total} (task, router) pairs and is ahead, beyond "
                f"the interval, in {beats} of them; full-data test AUC, seeds "
                f"{eff.protocol.seeds if eff.protocol else None}: " + " | ".join(lines))
    return Claim(text, evidence, _share(hits, total))


def claim_locality(parts: dict[str, StudyResult], part: str = "locality") -> Claim:
    text = ("Model performance is local in embedding space: close prompts agree on which "
            "models succeed, less so as distance grows (and the embeddings have a low "
            "intrinsic dimension).")
    loc = parts.get(part)
    if loc is None:
        return Claim(text, "locality part not run", NOT_RUN)
    hits, lines = 0, []
    for task, r in loc.results.items():
        ci = r.get("spearman_ci95") or [None, None]
        local = (ci[1] is not None and ci[1] < 0
                 and (r.get("nn_agreement") or 0) > (r.get("random_agreement") or 0))
        hits += local
        dims = ", ".join(f"{d['estimator']}{'' if d['estimator'] == 'twonn' else ' k=' + str(d['k'])} "
                         f"{fmt(d['value'], digits=1)}" for d in r.get("dimensions", []))
        lines.append(f"{task}: rho {fmt(r.get('spearman'), digits=3)} "
                     f"[{fmt(ci[0], digits=3)}, {fmt(ci[1], digits=3)}], agreement nearest "
                     f"{fmt(r.get('nn_agreement'), digits=3)} vs random "
                     f"{fmt(r.get('random_agreement'), digits=3)}; dimension {dims}")
    return Claim(text, " | ".join(lines), _share(hits, len(loc.results), partly="some"))


def claim_efficiency(parts: dict[str, StudyResult]) -> Claim:
    text = "kNN needs fewer training outcomes than parametric routers to reach its quality."
    eff = parts.get("sample-efficiency")
    if eff is None:
        return Claim(text, "sample-efficiency part not run", NOT_RUN)
    hits = total = 0
    lines = []
    for task, summary in eff.results.items():
        routers = summary["routers"]
        knn = routers.get(REFERENCE_ROUTER)
        if knn is None:
            continue
        reach = ", ".join(f"{label} {e['fraction_to_95']}" for label, e in routers.items())
        for label, entry in routers.items():
            if label == REFERENCE_ROUTER:
                continue
            total += 1
            first = _ci(entry["by_fraction"][0]["vs_knn"])
            mine, theirs = knn["fraction_to_95"], entry["fraction_to_95"]
            earlier = mine is not None and (theirs is None or mine < theirs)
            hits += bool(earlier or (first is not None and first[1] < 0))
        small = ", ".join(f"{label} {_diff(e['by_fraction'][0]['vs_knn'])}"
                          for label, e in routers.items() if label != REFERENCE_ROUTER)
        lines.append(f"{task}: share of train reaching 95% of full AUC: {reach}; at "
                     f"{summary['fractions'][0]:g} ({summary['sizes'][0]} prompts) router - "
                     f"kNN: {small}")
    return Claim(text, f"{hits} of {total} pairs favour kNN; " + " | ".join(lines),
                 _share(hits, total, partly="some"))


def _diff(entry: dict[str, Any] | None) -> str:
    ci = _ci(entry)
    if entry is None or ci is None:
        return "-"
    return f"{entry['difference']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def claim_encoders(parts: dict[str, StudyResult], study: str = "encoders",
                   text: str = "kNN's standing is not an artefact of one encoder "
                               "(the referees' question).") -> Claim:
    """Over every saved part of kind ``study`` (the plan's, and extra runs)."""
    runs = [p for p in parts.values() if p.study == study]
    if not runs:
        return Claim(text, f"{study} part not run", NOT_RUN)
    held: dict[str, bool] = {}
    lines = []
    for task, summary in ((t, s) for enc in runs for t, s in enc.results.items()):
        summary = summary.get("routing", summary)
        for spec, entry in summary["encoders"].items():
            h, t, notes = matches(entry["routers"])
            held[spec] = held.get(spec, True) and h == t
            lines.append(f"{task}/{short(spec)}: kNN rank {entry['knn_rank']} of "
                         f"{len(entry['routers'])}" + (f" ({'; '.join(notes)})" if notes else ""))
        taus = ", ".join(f"{short(t['a'])}~{short(t['b'])} {fmt(t['tau'])}" for t in summary["kendall_tau"])
        if taus:
            lines.append(f"{task}: Kendall's tau {taus}")
    return Claim(text, " | ".join(lines), _share(sum(held.values()), len(held), partly="some"))


def claim_shift(parts: dict[str, StudyResult]) -> Claim:
    text = ("On prompts unlike the training ones (a held-out group), where a lookup table "
            "should suffer most, kNN still matches learned routers.")
    shift = parts.get("shift")
    if shift is None:
        return Claim(text, "shift part not run", NOT_RUN)
    hits = total = 0
    lines = []
    for task, summary in shift.results.items():
        for fold in summary["folds"]:
            h, t, notes = matches(fold["routers"])
            hits, total = hits + h, total + t
            knn = fold["routers"].get(REFERENCE_ROUTER, {})
            drop = (None if knn.get("in_distribution_auc") is None or knn.get("auc") is None
                    else knn["in_distribution_auc"] - knn["auc"])
            lines.append(f"{task}/{'+'.join(fold['test_groups'])}: kNN {fmt(knn.get('auc'))}"
                         + ("" if drop is None else f" (drop {drop:+.2f})")
                         + (f" ({'; '.join(notes)})" if notes else ""))
    return Claim(text, f"kNN matches {hits} of {total} (fold, router) pairs, seeds "
                       f"{shift.protocol.seeds if shift.protocol else None}: "
                       + " | ".join(lines),
                 _share(hits, total))


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


def claims(parts: dict[str, StudyResult]) -> list[Claim]:
    """Every claim judged on the saved parts."""
    multimodal = claim_encoders(parts, "images", "The same holds on a routing task with "
                                "images (text-only, image-only and fused encoders).")
    return [claim_matches(parts), claim_locality(parts), claim_efficiency(parts),
            claim_encoders(parts), multimodal, claim_shift(parts), claim_tuning(parts)]


def claim_table(found: Sequence[Claim]) -> ReportTable:
    table = ReportTable("the paper's claims on this data", ["claim", "verdict", "evidence"])
    for c in found:
        table.add([c.claim, c.verdict, c.evidence])
    return table


def write_report(parts: dict[str, StudyResult], out_dir: str | Path) -> Path:
    """``report.md`` and ``report.json`` (the claims, the rules, the parts' provenance)
    and the parts' plots, in ``out_dir``."""
    from routeharness.common.files import write_text
    from routeharness.study import study_module

    out_dir = Path(out_dir)
    found = claims(parts)
    versions = sorted({str(p.routeharness_version) for p in parts.values()})
    commits = sorted({str(p.git_commit)[:12] for p in parts.values()})
    lines = ["# Reproducing arXiv 2505.12601 with routeharness", "",
             f"Written by `routeharness study paper` from the part files beside it (run with "
             f"routeharness {', '.join(versions)}, commits {', '.join(commits)}; each part "
             "below says when it ran and for how long). Rules for the verdicts are at the "
             "end.", "",
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
    lines += ["## Verdict rules", ""] + [f"- {k}: {v}" for k, v in RULES.items()]
    report = {"schema": "routeharness.paper/1", "claims": [c.to_dict() for c in found],
              "rules": RULES, "parts": {n: {"file": f"{n}.json", "created": r.created,
                                             "git_commit": r.git_commit}
                                         for n, r in parts.items()}}
    write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", out_dir / "report.json",
               "report")
    return write_text("\n".join(lines) + "\n", out_dir / "report.md", "report")
