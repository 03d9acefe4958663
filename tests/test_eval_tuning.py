"""Tuning that can face a shift, and ties broken by a declared rule (issue 19, item 5).

- ``tune_on="groups"``: each configuration scored on every training group held out in
  turn (fitted on the others); on a task built so that neighbours from another group are
  noise, it picks a large k where the random validation split (whose prompts have twins
  in train) picks a small one, and the large k is the better one on a held-out group;
- the folds are whole groups, never fitted on the group they score;
- a tie on the tuning AUC goes to the router's ``tie_preference`` (kNN: the larger k),
  whatever the grid's order; a router that declares none prefers its defaults; a
  declaration the grid contradicts is refused;
- the protocol records the setting, the CLI sets it end to end, and a task with fewer
  than two groups is one line."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.data.columns import SPLITS
from routeharness.data.dataset import ModelInfo
from routeharness.data.readers import task_from_table
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.run import route_one
from routeharness.evaluation.tuning import (
    TIE_TOLERANCE,
    RouterRun,
    TuningInputs,
    candidate_configs,
    group_folds,
    pick,
    plan_routers,
    tune,
)
from routeharness.routers.base import BaseRouter, RouterContractError, tie_preference_of
from routeharness.study.runs import hold_out

PRICES = (0.1, 0.3, 1.0)
RATES = (0.3, 0.8, 0.85)


def shifted_task(groups=("a", "b", "c", "h"), n_protos: int = 40, rates=RATES,
                 seed: int = 0) -> EmbeddedTask:
    """Groups far apart (centre 10 * e_g in 16-d); in each, prototypes whose prompts come
    as near twins (4 in train, 1 in validation, 2 in test) sharing one outcome row drawn
    with the models' ``rates`` (prices ``PRICES``). In distribution a validation prompt's
    nearest training prompts are its twins (small k is exact); across groups the nearest
    prompts are arbitrary, so only the mean of many (large k) helps."""
    rng = np.random.default_rng(seed)
    names = [f"m{j}" for j in range(len(PRICES))]
    copies = {"train": 4, "validation": 1, "test": 2}
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "split": []}
    columns.update({f"score:{m}": [] for m in names})
    columns.update({f"cost:{m}": [] for m in names})
    X: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for g, group in enumerate(groups):
        centre = np.zeros(16)
        centre[g] = 10.0
        for p in range(n_protos):
            prototype = centre + rng.normal(size=16)
            row = (rng.random(len(names)) < np.asarray(rates)).astype(float)
            for split in SPLITS:
                for c in range(copies[split]):
                    X[split].append(prototype + 0.01 * rng.normal(size=16))
                    columns["id"].append(f"{group}-{p}-{split}-{c}")
                    columns["prompt"].append(f"prompt {p} of {group} ({split} {c})")
                    columns["group"].append(group)
                    columns["split"].append(split)
                    for j, name in enumerate(names):
                        columns[f"score:{name}"].append(float(row[j]))
                        columns[f"cost:{name}"].append(PRICES[j])
    task = task_from_table(columns, name="shifted", version=1, source="test",
                           models=[ModelInfo(m) for m in names])
    return EmbeddedTask(task, {s: np.asarray(v, dtype=np.float32) for s, v in X.items()},
                        0, 0)


def _tuned(routed, plan) -> dict[str, Any]:
    return {k: routed.record.params[k] for k in plan.grid}


def test_tuning_on_groups_picks_the_k_that_holds_up_on_a_held_out_group():
    # train and tune on a, b, c; test on h (prompts unlike any training prompt)
    derived = hold_out(shifted_task(), ["h"])
    spec = "knn:weighting=uniform"  # k alone is tuned
    picked, test_auc = {}, {}
    for tune_on in ("validation", "groups"):
        plan = plan_routers([spec], references=False)[0]
        routed = route_one(plan, derived, 0, Protocol(n_bootstrap=0, tune_on=tune_on))
        picked[tune_on] = _tuned(routed, plan)["k"]
        test_auc[tune_on] = routed.record.metrics.auc
    assert picked["validation"] <= 5  # the twins: a few neighbours are exact in distribution
    assert picked["groups"] >= 20  # neighbours from another group are noise: average many
    assert test_auc["groups"] > test_auc["validation"] + 2.0
    # and the k group tuning picked is better on the held-out group than validation's pick
    # by the held-out group's own test numbers (each k fixed, nothing tuned)
    fixed = {}
    for k in (picked["validation"], picked["groups"]):
        plan = plan_routers([f"knn:k={k},weighting=uniform"], references=False)[0]
        fixed[k] = route_one(plan, derived, 0, Protocol(n_bootstrap=0)).record.metrics.auc
    assert fixed[picked["groups"]] > fixed[picked["validation"]]


def test_group_folds_are_whole_groups_never_fitted_on_the_group_they_score():
    embedded = hold_out(shifted_task(), ["h"])
    train, validation = embedded.task.splits["train"], embedded.task.splits["validation"]
    folds = group_folds(embedded)
    assert [f.name for f in folds] == ["a", "b", "c"]
    for fold in folds:
        assert set(fold.fit.groups.astype(str)) == {"a", "b", "c"} - {fold.name}
        assert set(fold.scored.groups.astype(str)) == {fold.name}
        # every training and validation row of the group is scored, and only those
        expected = int((train.groups == fold.name).sum() + (validation.groups == fold.name).sum())
        assert fold.scored.n == expected == fold.X_scored.shape[0]
        assert fold.fit.n == int((train.groups != fold.name).sum()) == fold.X_fit.shape[0]
        # the vectors follow the rows: a scored vector is never one the fold fitted on
        fitted = {row.tobytes() for row in fold.X_fit}
        assert not any(row.tobytes() in fitted for row in fold.X_scored)
    inputs = TuningInputs.of(embedded, "groups")
    assert inputs.tune_on == "groups" and len(inputs.folds) == 3
    assert TuningInputs.of(embedded).folds[0].name == "validation"


def test_tuning_on_groups_needs_two_training_groups_one_line():
    from routeharness.evaluation.tuning import check_tune_on

    one = hold_out(shifted_task(), ["h"], ["a"])
    with pytest.raises(RouteHarnessError, match=r"task 'shifted' has 1 group in its training "
                                                 r"split \(a\).*needs at least 2") as caught:
        check_tune_on(one.task, Protocol(tune_on="groups"))
    assert "\n" not in str(caught.value)
    check_tune_on(one.task, Protocol())  # validation: fine
    plan = plan_routers(["knn"], references=False)[0]
    with pytest.raises(RouteHarnessError, match="needs at least 2"):
        route_one(plan, one, 0, Protocol(n_bootstrap=0, tune_on="groups"))


def test_the_protocol_records_what_tuning_was_scored_on():
    assert Protocol().recorded().tune_on == "validation"  # files before the option: the same
    assert Protocol(tune_on="groups").recorded().tune_on == "groups"
    assert Protocol(tune_on="groups").recorded().differences(Protocol().recorded()) == ["tune_on"]
    with pytest.raises(RouteHarnessError, match="tune_on must be one of validation, groups"):
        Protocol(tune_on="test")
    with pytest.raises(RouteHarnessError, match="without tuning"):
        Protocol(tune_on="groups", tune=False)


# --- the tie rule -----------------------------------------------------------------------
def _plan(router_cls: type, fixed: dict[str, Any] | None = None) -> RouterRun:
    return RouterRun(router_cls.__name__, router_cls.__name__, None, router_cls, fixed or {})


def test_a_flat_curve_goes_to_the_larger_k_whatever_the_grid_order():
    from routeharness_knn.router import KNNRouter

    class Reversed(KNNRouter):
        param_grid: ClassVar[dict[str, list[Any]]] = {
            "k": KNNRouter.param_grid["k"][::-1],
            "weighting": KNNRouter.param_grid["weighting"][::-1],
            "prior": KNNRouter.param_grid["prior"][::-1]}

    for cls in (KNNRouter, Reversed):
        plan = _plan(cls)
        configs = candidate_configs(plan.grid_for(sparse=False), 24, 0)
        best, table = pick(plan, configs, [50.0] * len(configs))
        assert best == {"k": 100, "weighting": "uniform"}
        row = next(r for r in table if r.get("chosen"))
        assert row["params"] == best
        assert row["tie"] == (f"14 configurations within 1e-09 of the best AUC; kept by "
                              f"{cls.__name__}'s tie_preference: the larger k (k=100), then "
                              "weighting=uniform (first of ['uniform', 'distance'])")
        assert sum(bool(r.get("chosen")) for r in table) == 1
        assert all("tie" not in r for r in table if not r.get("chosen"))
    # within the tolerance is a tie; beyond it the better AUC wins, whatever the rule says
    plan = _plan(KNNRouter, {"weighting": "uniform"})
    configs = candidate_configs(plan.grid_for(sparse=False), 24, 0)  # k = 1 ... 100
    values = [50.0] * len(configs)
    values[0] = 50.0 + TIE_TOLERANCE / 2
    assert pick(plan, configs, values)[0] == {"k": 100}
    values[0] = 50.0 + 1e-6
    best, table = pick(plan, configs, values)
    assert best == {"k": 1} and "tie" not in table[0] and table[0]["chosen"]
    # a NaN never wins; all NaN: all tied
    values = [float("nan")] * len(configs)
    values[2] = 10.0
    assert pick(plan, configs, values)[0] == {"k": 5}
    assert pick(plan, configs, [float("nan")] * len(configs))[0] == {"k": 100}


def test_tuning_a_flat_validation_curve_keeps_the_larger_k_end_to_end():
    from routeharness_knn.router import KNNRouter

    class Reversed(KNNRouter):
        param_grid: ClassVar[dict[str, list[Any]]] = {"k": [100, 50, 20, 10, 5, 3, 1],
                                                      "weighting": ["distance", "uniform"],
                                                      "prior": [1.0, 0.25, 0.0]}

    # every prompt has the same outcome row: every k routes the same on validation
    flat = shifted_task(rates=(1.0, 1.0, 1.0))
    for cls in (KNNRouter, Reversed):
        plan = _plan(cls, {"weighting": "uniform"})
        inputs = TuningInputs.of(flat)
        best, table = tune(plan, inputs, Protocol(), seed_streams(0))
        assert len({row["validation_auc"] for row in table}) == 1
        assert best == {"k": 100}


class _Undeclared(BaseRouter):
    """A router with a grid and no tie preference: ties prefer its defaults."""

    param_grid: ClassVar[dict[str, list[Any]]] = {"alpha": [0.01, 0.1, 10.0, 1.0, 100.0],
                                                  "mode": ["b", "a", "c"]}

    def __init__(self, alpha: float = 1.0, mode: str = "a"):
        self.alpha = alpha
        self.mode = mode


def test_a_router_that_declares_nothing_prefers_its_defaults_not_the_grid_order():
    plan = _plan(_Undeclared)
    configs = candidate_configs(plan.grid_for(sparse=False), 24, 0)
    for order in (configs, configs[::-1]):
        best, table = pick(plan, order, [1.0] * len(order))
        assert best == {"alpha": 1.0, "mode": "a"}
        tie = next(r["tie"] for r in table if r.get("chosen"))
        assert "the harness's default, no preference declared: alpha nearest the router's " \
               "default 1.0" in tie
    # without its default in the tie: the nearest value (log scale), equal distance to
    # the smaller one
    tied = [{"alpha": 0.1, "mode": "a"}, {"alpha": 10.0, "mode": "a"},
            {"alpha": 100.0, "mode": "a"}]
    for order in (tied, tied[::-1]):
        assert pick(plan, order, [1.0] * 3)[0] == {"alpha": 0.1, "mode": "a"}


def test_every_built_in_router_declares_a_valid_tie_preference():
    from routeharness.plugins.registry import get_registry

    seen = 0
    for name in get_registry("router").names():
        cls = get_registry("router").get(name).load()
        if getattr(cls, "param_grid", None):
            assert tie_preference_of(cls), f"{name} tunes a grid and declares no tie_preference"
            seen += 1
    assert seen >= 8


@pytest.mark.parametrize("declared, message", [
    (["k"], "must be a dict"),
    ({"depth": "larger"}, "names 'depth', which param_grid does not tune"),
    ({"k": "bigger"}, "'bigger'; a rule is one of larger, smaller, default"),
    ({"weighting": "larger"}, "holds a value that is not a number"),
    ({"weighting": ["uniform", "cosine"]}, "lists 'cosine', which is not in param_grid"),
    ({"weighting": ["uniform", "uniform"]}, "lists a value twice"),
    ({"k": []}, "non-empty list"),
])
def test_a_tie_preference_the_grid_contradicts_is_refused(declared, message):
    from routeharness_knn.router import KNNRouter

    from routeharness.testing.checks import check_tie_preference

    bad = type("Bad", (KNNRouter,), {"tie_preference": declared})
    with pytest.raises(RouterContractError, match=message):
        tie_preference_of(bad)
    with pytest.raises(AssertionError, match=message):  # the conformance kit says so too
        check_tie_preference(bad())
    check_tie_preference(KNNRouter())


def test_the_cli_tunes_on_groups_end_to_end(cli, tmp_path):
    from routeharness.cli._app import main

    data = tmp_path / "synth"
    try:
        main(["data", "synth", str(data), "--train", "200", "--validation", "60", "--test",
              "60", "--models", "3", "--clusters", "4", "--dim", "8", "--locality", "0.7"])
    except SystemExit as exc:
        assert not exc.code
    out = tmp_path / "groups.json"
    done = cli("eval", "-r", "knn", "-r", "linear", "-t", str(data), "-e", "precomputed",
               "--tune-on", "groups", "--bootstrap", "0", "--no-references", "-q",
               "-o", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text("utf-8"))
    assert result["protocol"]["tune_on"] == "groups"
    for record in result["records"]:
        chosen = [row for row in record["tuning"] if row.get("chosen")]
        assert len(chosen) == 1
        assert all(record["params"][k] == v for k, v in chosen[0]["params"].items())
    # one group: one line, nothing written
    done = cli("eval", "-r", "knn", "-t", f"{data}:g0", "-e", "precomputed", "--tune-on",
               "groups", "-q", "-o", str(tmp_path / "none.json"))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: task 'synthetic:g0' has 1 group in its training split (g0)")
    assert not (tmp_path / "none.json").exists()
    # the shift study: both tunings side by side
    study = tmp_path / "shift.json"
    done = cli("study", "shift", "-r", "linear", "-t", str(data), "-e", "precomputed",
               "--tune-on", "both", "--bootstrap", "50", "-o", str(study), "--format",
               "markdown")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "AUC, group-tuned" in done.stdout and "what each tuning picked" in done.stdout
    saved = json.loads(study.read_text("utf-8"))
    assert saved["params"]["tune_on"] == "both"
    assert saved["protocol"]["tune_on"] == "validation"
    for fold in saved["results"]["synthetic"]["folds"]:
        for label, entry in fold["routers"].items():
            grouped = entry["tuned_on_groups"]
            assert grouped["auc"] is not None and grouped["tuned"]
            assert (grouped["vs_knn"] is None) == (label == "knn")
    assert {r["condition"]["tune_on"] for r in saved["runs"]} == {"validation", "groups"}
