"""The studies through the library on a small dataset of its own (3 groups, 3 models;
group g needs model >= g) and the in-process hash encoder: the same protocol as eval,
derived tasks (subsamples, held-out groups), paired comparisons and the study file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_eval_protocol import hash_encoder, write_dataset  # noqa: F401 (a fixture)

from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.evaluation.protocol import Protocol
from routeharness.study.common import StudySettings
from routeharness.study.record import STUDY_SCHEMA, StudyResult


@pytest.fixture
def dataset(tmp_path) -> str:
    return str(write_dataset(tmp_path / "groups.csv", n=240))


def settings(seeds=(0,), bootstrap=100) -> StudySettings:
    return StudySettings(protocol=Protocol(seeds=seeds, n_bootstrap=0),
                         paired_bootstrap=bootstrap)


def embedded(dataset, encoder):
    from routeharness.study.runs import prepare

    return prepare([dataset], encoder)[1][0]


def test_subsamples_are_seeded_nested_and_leave_validation_and_test_alone(hash_encoder,
                                                                         dataset):
    from routeharness.study.runs import MIN_TRAIN, subsample_size, subsample_train

    full = embedded(dataset, hash_encoder)
    n = full.task.splits["train"].n
    small, large = subsample_train(full, 0.1, 3), subsample_train(full, 0.5, 3)
    assert small.task.splits["train"].n == max(MIN_TRAIN, int(np.ceil(0.1 * n)))
    assert set(small.task.splits["train"].ids) <= set(large.task.splits["train"].ids)
    assert small.task.splits["train"].ids != subsample_train(full, 0.1, 4).task.splits["train"].ids
    assert small.task.splits["train"].ids == subsample_train(full, 0.1, 3).task.splits["train"].ids
    for split in ("validation", "test"):
        assert small.task.splits[split].ids == full.task.splits[split].ids
    rows = [full.task.splits["train"].ids.index(i) for i in small.task.splits["train"].ids]
    assert np.array_equal(small.X["train"], full.X["train"][rows])  # embeddings follow rows
    assert subsample_size(n, 1.0) == n
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(RouteHarnessError, match="in \\(0, 1\\]"):
            subsample_size(n, bad)


def test_holding_out_a_group_keeps_it_out_of_train_and_validation(hash_encoder, dataset):
    from routeharness.study.runs import hold_out

    full = embedded(dataset, hash_encoder)
    derived = hold_out(full, ["g2"])
    assert set(derived.task.splits["train"].groups) == {"g0", "g1"}
    assert set(derived.task.splits["validation"].groups) == {"g0", "g1"}
    assert set(derived.task.splits["test"].groups) == {"g2"}
    with pytest.raises(RouteHarnessError, match="no group 'g9'"):
        hold_out(full, ["g9"])
    with pytest.raises(RouteHarnessError, match="both trained and tested"):
        hold_out(full, ["g1"], ["g1", "g0"])


def test_paired_bootstrap_of_identical_routes_is_exactly_zero():
    from routeharness.evaluation.metrics import paired_bootstrap_auc

    rng = np.random.default_rng(0)
    scores = (rng.random((200, 3)) < [0.2, 0.5, 0.9]).astype(float)
    costs = np.tile([0.1, 0.3, 1.0], (200, 1))
    same = rng.integers(0, 3, size=(5, 200))
    assert paired_bootstrap_auc(scores, costs, [same], [same], n_resamples=50) == (0.0, 0.0, 0.0)
    best = np.tile(np.argmax(scores * 10 - costs, axis=1), (5, 1))
    diff, low, high = paired_bootstrap_auc(scores, costs, [best], [same], n_resamples=200)
    assert 0 < low <= diff <= high
    with pytest.raises(ValueError):
        paired_bootstrap_auc(scores, costs, [best], [], n_resamples=10)


def test_sample_efficiency_runs_the_eval_protocol_and_compares_with_knn(hash_encoder, dataset,
                                                                        tmp_path):
    from routeharness.evaluation.matrix import evaluate
    from routeharness.study import efficiency

    result = efficiency.run(["linear"], [dataset], encoder=hash_encoder,
                            fractions=[0.1, 0.5], settings=settings(seeds=(0, 1)))
    summary = result.results["groups"]
    assert summary["fractions"] == [0.1, 0.5, 1.0]  # the full-data reference added
    assert summary["sizes"] == sorted(summary["sizes"])
    assert list(summary["routers"]) == ["knn", "linear"]  # kNN: the reference, first
    knn, linear = summary["routers"]["knn"], summary["routers"]["linear"]
    assert all(row["vs_knn"] is None for row in knn["by_fraction"])
    for row in linear["by_fraction"]:
        low, high = row["vs_knn"]["ci95"]
        assert low <= row["vs_knn"]["difference"] <= high
    # full data is eval: the same AUC as `eval` on the same task, encoder and seeds
    plain = evaluate(["knn", "linear"], [dataset], encoder=hash_encoder, references=False,
                     protocol=Protocol(seeds=(0, 1), n_bootstrap=0))
    for label in ("knn", "linear"):
        aucs = [r.metrics.auc for r in plain.records if r.router == label]
        assert summary["routers"][label]["full_auc"] == pytest.approx(np.mean(aucs))
    # fractions x routers x seeds, re-tuned; and below full data, with the full-data
    # hyper-parameters of the same router and seed (no tuning)
    assert len(result.runs) == 3 * 2 * 2 + 2 * 2 * 2
    assert {r.condition["fraction"] for r in result.runs} == {0.1, 0.5, 1.0}
    fixed = [r for r in result.runs if r.condition.get("tuning")]
    assert {r.condition["fraction"] for r in fixed} == {0.1, 0.5}
    for run in fixed:
        full = next(r for r in result.runs if r.router == run.router and r.seed == run.seed
                    and r.condition == {"fraction": 1.0})
        grid = {k: v for k, v in full.params.items() if k != "random_state"}
        assert all(run.params.get(k) == v for k, v in grid.items()), (run.params, full.params)
    # the comparisons: seeds then prompts, the area between the curves, the frontier
    entry = linear["by_fraction"][-1]["vs_knn"]
    assert entry["n_seeds"] == 2 and entry["resampled"] == "seeds, then test prompts"
    assert set(entry) >= {"tails", "quality_at_0", "quality_at_budget", "budget", "n_test"}
    assert set(linear["area_vs_knn"]) == {"retuned", "fixed"}
    area = linear["area_vs_knn"]["retuned"]
    weights = summary["area"]["weights"]
    assert area["difference"] == pytest.approx(
        sum(w * r["vs_knn"]["difference"] for w, r in zip(weights, linear["by_fraction"])))
    assert summary["target"]["auc"]["value"] == pytest.approx(
        0.95 * max(knn["full_auc"], linear["full_auc"]))
    assert knn["vs_frontier"]["difference"] is not None and "vs_frontier" in linear
    assert summary["verdict_tuning"] == "retuned"
    assert result.tasks["groups"].cost_spread is not None
    path = result.save(tmp_path / "eff.json")
    assert json.loads(path.read_text())["schema"] == STUDY_SCHEMA
    again = StudyResult.load(path)
    assert again.results == json.loads(json.dumps(result.results))
    tables = efficiency.tables(again)
    assert [t.rows[0][0] for t in tables] == ["knn", "knn", "linear"]
    assert "re-tuned at every share" in tables[0].title and "the verdict reads" in tables[0].note
    assert "full-data hyper-parameters" in tables[1].title
    assert tables[2].headers[-2:] == ["area (re-tuned)", "area (full-data hyper-parameters)"]
    assert efficiency.plot(again, tmp_path / "eff.png").read_bytes()[:4] == b"\x89PNG"


def test_shift_holds_each_group_out_and_sets_it_against_in_distribution(hash_encoder,
                                                                        dataset):
    from routeharness.study import shift

    result = shift.run(["linear"], [dataset], encoder=hash_encoder, settings=settings())
    folds = result.results["groups"]["folds"]
    assert [f["test_groups"] for f in folds] == [["g0"], ["g1"], ["g2"]]
    for fold in folds:
        assert fold["test_groups"][0] not in fold["train_groups"]
        for entry in fold["routers"].values():
            assert entry["in_distribution_auc"] is not None and entry["auc"] is not None
    named = shift.run(["linear"], [dataset], encoder=hash_encoder, train_groups=["g0"],
                      test_groups=["g2"], settings=settings())
    assert [(f["train_groups"], f["test_groups"]) for f in named.results["groups"]["folds"]] \
        == [(["g0"], ["g2"])]
    assert shift.tables(named)[0].rows


def test_sweep_marks_the_value_tuning_picks(hash_encoder, dataset, tmp_path):
    from routeharness.study import sweep

    result = sweep.run("knn", [dataset], "k=1,5,20", encoder=hash_encoder,
                       settings=settings(seeds=(0, 1)))
    summary = result.results["groups"]
    assert summary["values"] == [1, 5, 20]  # typed by the router's parameter
    assert all(r["validation_auc"] is not None and r["test_auc"] is not None
               for r in summary["rows"])
    assert len(summary["tuned"]["picked"]) == 2
    by_grid = sweep.run("knn", [dataset], "k", encoder=hash_encoder, settings=settings())
    assert len(by_grid.results["groups"]["values"]) > 3  # the router's own grid
    with pytest.raises(RouteHarnessError, match="has no parameter 'depth'"):
        sweep.run("knn", [dataset], "depth=1,2", encoder=hash_encoder, settings=settings())
    with pytest.raises(RouteHarnessError, match="already fixes 'k'"):
        sweep.run("knn:k=5", [dataset], "k=1,2", encoder=hash_encoder, settings=settings())
    with pytest.raises(RouteHarnessError, match="NAME=V1,V2"):
        sweep.parse_param("k=1,,2")


def test_study_inputs_are_refused_in_one_line(hash_encoder, dataset):
    from routeharness.study import efficiency, images, shift, study_module

    with pytest.raises(UnknownNameError, match="unknown study 'nope'"):
        study_module("nope")
    with pytest.raises(UnknownNameError, match="unknown router"):
        efficiency.run(["nosuch"], [dataset], encoder=hash_encoder, settings=settings())
    with pytest.raises(RouteHarnessError, match=r"1\.5 is not in"):
        efficiency.run(["linear"], [dataset], fractions=[1.5], settings=settings())
    with pytest.raises(RouteHarnessError, match="needs a task with images"):
        images.run(["linear"], [dataset], settings=settings())
    with pytest.raises(RouteHarnessError, match="--train-groups needs --test-groups"):
        shift.run(["linear"], [dataset], train_groups=["g0"], settings=settings())


def test_a_study_file_of_another_kind_or_shape_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "routeharness.results/1"}))
    with pytest.raises(RouteHarnessError, match="not a routeharness study result"):
        StudyResult.load(bad)
    bad.write_text(json.dumps({"schema": STUDY_SCHEMA, "study": "sweep", "params": {},
                               "results": []}))
    with pytest.raises(RouteHarnessError, match="results"):
        StudyResult.load(bad)
    assert not Path(tmp_path / "nothing.json").exists()


class LookupEncoder:
    """The synthetic task's own embeddings, looked up by prompt text."""

    name = identity = "lookup-test"
    revision = "1"
    modalities = frozenset({"text"})

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table

    def encode(self, texts, images=None, **kwargs):
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


@pytest.fixture
def synthetic(tmp_path):
    """A strongly local synthetic task on disk and an encoder that gives back its
    embeddings: outcomes depend only on a prompt's cluster."""
    import types

    from routeharness import hookimpl
    from routeharness.data.readers import write_task
    from routeharness.data.synth import synthetic_task
    from routeharness.plugins.host import get_host, reset_plugin_manager

    task, X = synthetic_task(600, 150, 300, n_models=4, n_clusters=6, locality=1.0, seed=1)
    table = {t: x for split in X for t, x in zip(task.splits[split].texts_to_embed(), X[split])}
    module = types.ModuleType("lookup_test_encoder")
    module.register_encoders = hookimpl(lambda register: register(
        name="lookup-test", target=lambda: LookupEncoder(table), description="test only"))
    reset_plugin_manager()
    get_host().add(module, "lookup-test-encoder")
    yield str(write_task(task, tmp_path / "synthetic")), task
    reset_plugin_manager()


def test_on_strongly_local_data_knn_nears_the_oracle_from_a_few_outcomes(synthetic):
    from routeharness.evaluation import metrics
    from routeharness.evaluation.protocol import seed_streams
    from routeharness.evaluation.scoring import oracle_reference
    from routeharness.study import efficiency, neighbours

    path, task = synthetic
    result = efficiency.run(["linear"], [path], encoder="lookup-test", fractions=[0.05],
                            settings=settings())
    summary = result.results["synthetic"]
    assert summary["sizes"][0] == 30  # 5% of 600 training prompts: 5 per cluster
    test = task.splits["test"]
    oracle = oracle_reference(test, metrics.cost_scale(task.splits["train"].costs),
                              Protocol(n_bootstrap=0), seed_streams(0))
    knn = summary["routers"]["knn"]["by_fraction"]
    assert knn[0]["auc"] >= 0.95 * oracle.auc
    assert summary["routers"]["knn"]["fraction_to_target"]["auc"] == 0.05
    local = neighbours.run([path], encoder="lookup-test", n_pairs=5000, settings=settings())
    loc = local.results["synthetic"]
    assert loc["spearman_ci95"][1] < 0 and loc["nn_agreement"] > loc["random_agreement"]
    assert loc["nn_minus_random_ci95"][0] > loc["nn_minus_random_null_high"]


def test_a_group_without_test_prompts_is_not_held_out(hash_encoder, tmp_path):
    from routeharness.study import shift

    path = write_dataset(tmp_path / "d.csv", n=240)
    lines = path.read_text().splitlines()
    # g2's test rows move to train: g2 can no longer be held out
    kept = [lines[0]] + [line.replace(",g2,test,", ",g2,train,") for line in lines[1:]]
    path.write_text("\n".join(kept) + "\n")
    result = shift.run(["linear"], [str(path)], encoder=hash_encoder, settings=settings())
    summary = result.results["d"]
    assert [f["test_groups"] for f in summary["folds"]] == [["g0"], ["g1"]]
    assert summary["not_held_out"] == ["g2"]
    assert "not held out: g2" in shift.tables(result)[0].note


# --- study paper --resume compares every setting of a part (issue 18) --------------------------
def test_paper_resume_reuses_a_part_only_when_every_setting_matches(dataset, tmp_path,
                                                                    cache_dir):
    """A saved part is reused only when its parameters, every protocol field, the paired
    bootstrap's size, each task's data and each encoder match the run asked for; anything
    else is named in one log line and the part runs again (it once compared only the
    parameters and the seeds)."""
    from dataclasses import replace

    from routeharness.common.progress import Reporter
    from routeharness.study import paper
    from routeharness.study.common import StudySettings

    class Log(Reporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def log(self, message: str) -> None:
            self.lines.append(message)

    plan = paper.PaperPlan(text_tasks=(dataset,), parts=("sweep",), sweep="k=1,5")
    out = tmp_path / "paper"

    def run(**changes) -> list[str]:
        log = Log()
        base = StudySettings(protocol=Protocol(seeds=(0,), n_bootstrap=0), paired_bootstrap=50,
                             cache_dir=str(cache_dir), reporter=log)
        paper.run(out, plan, settings=replace(base, **changes), resume=True)
        return log.lines

    assert "paper: running sweep" in run()
    assert any(line.startswith("paper: sweep reused") for line in run())
    assert StudyResult.load(out / "sweep.json").paired_bootstrap == 50
    lines = run(paired_bootstrap=60)
    assert any("other settings (paired bootstrap size)" in line for line in lines), lines
    lines = run(paired_bootstrap=60, protocol=Protocol(seeds=(0,), n_bootstrap=7))
    assert any("other settings (protocol.n_bootstrap)" in line for line in lines), lines
    lines = run(paired_bootstrap=60, protocol=Protocol(seeds=(0,), n_bootstrap=7, tune=False))
    assert any("protocol.tune" in line for line in lines), lines
    write_dataset(Path(dataset), n=240, seed=1)  # the same file, other outcomes
    lines = run(paired_bootstrap=60, protocol=Protocol(seeds=(0,), n_bootstrap=7, tune=False))
    assert any("task groups's data" in line for line in lines), lines
    assert any(line.startswith("paper: sweep reused") for line in run(
        paired_bootstrap=60, protocol=Protocol(seeds=(0,), n_bootstrap=7, tune=False)))


def test_paper_output_inside_a_dataset_is_refused_before_any_work(cli, tmp_path):
    """`study paper -o` goes through eval's rule for outputs: never into a dataset folder,
    the data directory or the cache."""
    data = tmp_path / "data"
    (data / "routerbench").mkdir(parents=True)
    done = cli("study", "paper", "-o", str(data / "routerbench" / "paper"), "--data-dir",
               str(data), "--part", "sweep")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "would overwrite the input" in lines[0], done.stderr
    assert not (data / "routerbench" / "paper").exists()


# --- the narrow-cost flag (issue 19, item 6) -----------------------------------------------------
def test_a_narrow_cost_range_is_flagged_in_eval_and_study_tables(hash_encoder, tmp_path):
    """Prices within 10% of each other: every hull lies on [0.9, 1], AUC is capped near
    10 and tracks quality. eval's table and the study tables say so; the study shows
    quality at lambda 0 by share, which its verdicts read instead."""
    import csv

    from routeharness.evaluation.matrix import evaluate
    from routeharness.results.sets import report_tables
    from routeharness.study import efficiency

    path = write_dataset(tmp_path / "narrow.csv", n=240)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    costs = [k for k in rows[0] if k.startswith("cost:")]
    for row in rows:
        for key, price in zip(costs, (0.0009, 0.00095, 0.001)):
            row[key] = str(price)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = evaluate(["knn"], [str(path)], encoder=hash_encoder,
                      protocol=Protocol(seeds=(0,), n_bootstrap=0))
    table = report_tables(result)[0]
    assert "AUC uninformative: normalised costs span only 0.900-1" in table.title
    assert "compare the routers by Q@λ0" in table.note
    study = efficiency.run(["linear"], [str(path)], encoder=hash_encoder, fractions=[0.5],
                           settings=settings())
    assert study.tasks["narrow"].cost_spread == pytest.approx(0.1)
    titles = [t.title for t in efficiency.tables(study)]
    assert all("AUC uninformative" in t for t in titles)
    assert any(t.startswith("narrow: Q@λ0 by share") for t in titles)
