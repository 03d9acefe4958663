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
