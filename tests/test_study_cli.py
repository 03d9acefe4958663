"""``routeharness study`` through the real CLI in a subprocess, on RouterBench's MBPP
group with MiniLM (the session's embedding cache): saved JSON, tables, plots, bad input
refused in one line before any work, and a third-party router plugin taking part."""

from __future__ import annotations

import json

import pytest
from plugin_site import env_with, plugin_site

from routeharness.study.record import STUDY_SCHEMA

TASK = "routerbench:mbpp"


@pytest.fixture
def env(cache_dir):
    return {"ROUTEHARNESS_CACHE": str(cache_dir)}


def test_study_sweep_saves_json_tables_and_plot(cli, env, tmp_path):
    out, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    result = cli("study", "sweep", "-r", "knn", "-t", TASK, "--param", "k=1,10,50",
                 "-o", str(out), "--plot", str(plot), "-q", env=env)
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["schema"] == STUDY_SCHEMA and saved["study"] == "sweep"
    assert saved["wall_seconds"] > 0
    assert saved["tasks"][TASK]["sizes"]["test"] == 128
    assert saved["encoders"][0]["identity"] == "sentence-transformers/all-MiniLM-L6-v2"
    rows = saved["results"][TASK]["rows"]
    assert [r["value"] for r in rows] == [1, 10, 50]
    assert rows[0]["test_auc"] < rows[-1]["test_auc"]  # k=1 is a noisy lookup
    assert "picked by eval's tuning" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    shown = cli("study", "show", str(out), "--format", "markdown", env=env)
    assert shown.returncode == 0 and "| k | validation AUC | test AUC | tuning |" in shown.stdout


def test_study_sample_efficiency_end_to_end(cli, env, tmp_path):
    out = tmp_path / "eff.json"
    result = cli("study", "sample-efficiency", "-r", "linear", "-t", TASK, "--fractions",
                 "0.1,0.5", "--seeds", "0", "--bootstrap", "100", "-o", str(out), "-q",
                 "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout)
    assert tables[0]["headers"][1:4] == ["0.1 (27)", "0.5 (135)", "1 (269)"]
    summary = json.loads(out.read_text())["results"][TASK]
    assert summary["routers"]["linear"]["by_fraction"][0]["vs_knn"]["ci95"] is not None


@pytest.mark.parametrize("args, message", [
    (("nosuch",), "No such command 'nosuch'"),
    (("sweep", "-r", "nosuch", "-t", TASK, "--param", "k=1"), "unknown router 'nosuch'"),
    (("sweep", "-r", "knn", "-t", "nosuchtask", "--param", "k=1"), "nosuchtask"),
    (("sweep", "-r", "knn", "-t", TASK, "--param", "depth=1,2"), "no parameter 'depth'"),
    (("sample-efficiency", "-r", "knn", "-t", TASK, "--fractions", "0,0.5"),
     "0 is not in (0, 1]"),
    (("sample-efficiency", "-r", "knn", "-t", TASK, "--fractions", "1.5"),
     "1.5 is not in (0, 1]"),
    (("encoders", "-r", "knn", "-t", TASK, "-e", "nosuch"), "unknown encoder 'nosuch'"),
    (("images", "-r", "knn", "-t", TASK), "needs a task with images"),
])
def test_bad_study_input_is_one_line_and_writes_nothing(cli, env, tmp_path, args, message):
    out = tmp_path / "out.json"
    result = cli("study", *args, *(("-o", str(out)) if args[0] != "nosuch" else ()), env=env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_an_output_over_the_dataset_is_refused_before_work(cli, env, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("id,prompt\n")
    result = cli("study", "sweep", "-r", "knn", "-t", str(data), "--param", "k=1",
                 "-o", str(data), env=env)
    assert result.returncode == 1 and "would overwrite the input" in result.stderr
    assert data.read_text() == "id,prompt\n"


def test_a_third_party_router_takes_part_with_no_extra_code(cli, env, tmp_path_factory,
                                                           tmp_path):
    plugins = env_with(plugin_site(tmp_path_factory))
    out = tmp_path / "eff.json"
    result = cli("study", "sample-efficiency", "-r", "nearest-centroid", "-t", TASK,
                 "--fractions", "0.5", "--seeds", "0", "--bootstrap", "50", "-o", str(out),
                 "-q", env={**env, **plugins})
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert set(saved["results"][TASK]["routers"]) == {"knn", "nearest-centroid"}
    run = next(r for r in saved["runs"] if r["router"] == "nearest-centroid")
    assert run["distribution"] == "routeharness-nearest-centroid"
    out2 = tmp_path / "enc.json"
    result = cli("study", "encoders", "-r", "nearest-centroid", "-t", TASK, "-e", "minilm",
                 "--seeds", "0", "--bootstrap", "50", "-o", str(out2), "-q",
                 env={**env, **plugins})
    assert result.returncode == 0, result.stderr
    entry = json.loads(out2.read_text())["results"][TASK]["encoders"]["minilm"]
    assert entry["knn_rank"] in (1, 2) and set(entry["ranking"]) == {"knn", "nearest-centroid"}


# --- study paper on any task (issue 19, item 7) ---------------------------------------------------
@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """A user's own dataset folder, written by `routeharness data synth` (its vectors in
    the 'embedding' column: `-e precomputed`)."""
    from conftest import run_cli

    folder = tmp_path_factory.mktemp("own") / "mine"
    done = run_cli("data", "synth", str(folder), "--train", "300", "--validation", "80",
                   "--test", "150", "--models", "3", "--clusters", "4", "--dim", "16",
                   "--seed", "1")
    assert done.returncode == 0, done.stderr
    return folder


def test_study_paper_on_own_data_end_to_end(cli, env, own_data, tmp_path):
    out = tmp_path / "report"
    done = cli("study", "paper", "-t", str(own_data), "-e", "precomputed", "-r", "knn",
               "-r", "linear", "--seeds", "0,1", "--bootstrap", "100", "--margin", "0.5",
               "-o", str(out), "-q", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.glob("*.json")} == {"locality.json", "sweep.json",
                                                    "sample-efficiency.json", "shift.json",
                                                    "report.json"}
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["margin"] == 0.5
    verdicts = {c["claim"][:30]: c["verdict"] for c in report["claims"]}
    assert verdicts["A well-tuned kNN router matche"] == "supported"  # kNN reaches the oracle
    assert verdicts["Model performance is local in "] == "supported"
    matches = report["claims"][0]["evidence"]
    assert matches.startswith("Point estimates: kNN is ")
    assert "Bonferroni over m = 1: 90.0% intervals" in matches
    assert "bootstrap over seeds [0, 1], then test prompts" in matches
    assert "kNN against the single-model frontier: above on synthetic" in matches
    # the held-out groups have 31-42 test prompts each: reported, not judged
    assert report["claims"][5]["verdict"] == "not judged"
    text = (out / "report.md").read_text()
    assert "equivalence margin delta = 0.5 AUC points" in text
    assert "- efficiency: kNN is more sample-efficient" in text
    tables = json.loads(done.stdout)
    assert tables[0]["headers"] == ["claim", "verdict", "evidence"]
    again = cli("study", "paper", "--report-only", "-o", str(out), "--margin", "2", "-q",
                env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "report.json").read_text())["settings"]["margin"] == 2.0


@pytest.mark.parametrize("margin", ["-1", "abc", "nan"])
def test_study_paper_refuses_a_bad_margin_in_one_line(cli, env, own_data, tmp_path, margin):
    out = tmp_path / "report"
    done = cli("study", "paper", "-t", str(own_data), "-e", "precomputed", "--margin", margin,
               "-o", str(out), env=env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--margin" in lines[0], done.stderr
    assert not out.exists()


def test_study_paper_refuses_a_task_without_a_validation_split(cli, env, tmp_path):
    data = tmp_path / "novalidation.csv"
    rows = ["id,prompt,group,split,score:a,cost:a,score:b,cost:b"]
    rows += [f"q{i},prompt {i},g,{'train' if i < 30 else 'test'},{i % 2},0.1,1,1.0"
             for i in range(40)]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "report"
    done = cli("study", "paper", "-t", str(data), "-o", str(out), env=env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "validation" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_the_committed_report_is_writable_from_its_parts(cli, env, tmp_path):
    """`study paper --report-only` on a copy of benchmarks/paper: files written before
    issue 19 still load, and the report says what they did not measure."""
    import shutil
    from pathlib import Path

    committed = Path(__file__).resolve().parent.parent / "benchmarks" / "paper"
    copy = tmp_path / "paper"
    shutil.copytree(committed, copy)
    done = cli("study", "paper", "--report-only", "-o", str(copy), "-q", "--format",
               "markdown", env=env)
    assert done.returncode == 0, done.stderr
    assert "not measured in this file" in done.stdout
    assert "| A well-tuned kNN router matches or beats learned routers (text tasks). | " \
           "inconclusive |" in done.stdout
