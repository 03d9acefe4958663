"""The real CLI in a subprocess, on the embedded default data."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from routeharness.results.records import RESULT_SCHEMA


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, time; t = time.perf_counter()\n"
            "from routeharness.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for cmd in (['routers'], ['tasks'], ['encoders'], ['plugins']):\n"
            "    try:\n        main(cmd)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'faiss', 'datasets', 'sentence_transformers', "
            "'transformers', 'pandas') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "eval" in result.stdout
    assert elapsed < 5  # generous bound for a loaded CI machine; typically ~0.3 s


def test_routers_says_which_can_be_saved_and_updated(cli):
    """docs/serve.md sends users to `routeharness routers` to see which routers `fit` can
    save: the listing shows each router's saveable and updatable tags."""
    done = cli("routers", "--format", "json")
    assert done.returncode == 0, done.stderr
    [table] = json.loads(done.stdout)
    assert table["headers"][2:5] == ["saveable", "updatable", "online"]
    rows = {row["name"]: row for row in table["rows"]}
    assert (rows["knn"]["saveable"], rows["knn"]["updatable"]) == ("yes", "yes")
    assert (rows["linear"]["saveable"], rows["linear"]["updatable"]) == ("yes", "no")
    assert (rows["linucb"]["online"], rows["knn"]["online"], rows["linear"]["online"]) == \
        ("yes", "yes", "no")


def test_unknown_router_gets_did_you_mean_and_exit_2(cli):
    result = cli("eval", "--router", "knnn", "--task", "routerbench")
    assert result.returncode == 2
    assert "unknown router 'knnn'" in result.stderr and "Did you mean 'knn'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_task_and_group(cli):
    result = cli("eval", "--router", "knn", "--task", "routerbenhc")
    assert result.returncode == 2 and "Did you mean 'routerbench'" in result.stderr
    result = cli("eval", "--router", "knn", "--task", "routerbench:mbp", "--no-references")
    assert result.returncode == 2 and "Did you mean 'mbpp'" in result.stderr


def test_malformed_dataset_is_one_line_and_nonzero(cli, tmp_path):
    (tmp_path / "bad.csv").write_text(
        "id,prompt,group,split,score:a,cost:a\nq1,hello,g,train,0.5,-1\n"
        "q2,hi,g,validation,0.5,1\nq3,hey,g,test,0.5,1\n", encoding="utf-8")
    out = tmp_path / "out.json"
    result = cli("eval", "--router", "knn", "--task", str(tmp_path / "bad.csv"), "-o", str(out))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "bad.csv" in lines[0] and "row 0" in lines[0] and "'cost:a'" in lines[0]
    assert "cost -1.0 must be a finite number >= 0" in lines[0]
    assert not out.exists()  # nothing half-written


def test_eval_end_to_end_on_the_embedded_default(cli, cache_dir, tmp_path):
    out, plot = tmp_path / "results.json", tmp_path / "frontier.png"
    args = ("eval", "--router", "knn", "--task", "routerbench:mbpp", "-o", str(out),
            "--plot", str(plot), "--bootstrap", "50")
    env = {"ROUTEHARNESS_CACHE": str(cache_dir)}
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    for text in ("routerbench:mbpp", "knn", "best-single", "oracle (upper bound)", "random",
                 "single-model frontier"):
        assert text in first.stdout
    result = json.loads(out.read_text())
    assert result["schema"] == RESULT_SCHEMA
    assert result["encoder"]["identity"] == "sentence-transformers/all-MiniLM-L6-v2"
    records = {r["router"]: r for r in result["records"]}
    assert set(records) == {"knn", "best-single", "random"}  # the oracle is no router
    knn = records["knn"]
    assert knn["params"]["k"] in (1, 3, 5, 10, 20, 50, 100)
    assert len(knn["tuning"]) == 14  # the whole declared grid was tried on validation
    assert knn["metrics"]["auc_ci95"][0] <= knn["metrics"]["auc"] <= knn["metrics"]["auc_ci95"][1]
    oracle = result["tasks"]["routerbench:mbpp"]["oracle"]  # a reference row, from the labels
    assert oracle["auc"] >= knn["metrics"]["auc"] and oracle["auc_ci95"][0] <= oracle["auc"]
    assert knn["metrics"]["auc"] > records["random"]["metrics"]["auc"]
    provenance = result["tasks"]["routerbench:mbpp"]
    assert provenance["sizes"]["test"] == 128 and len(provenance["fingerprint"]) == 64
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    second = cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "0 prompts encoded" in second.stderr and "nothing encoded" in second.stderr
    again = json.loads(out.read_text())
    again_knn = next(r for r in again["records"] if r["router"] == "knn")
    assert np.isclose(again_knn["metrics"]["auc"], knn["metrics"]["auc"])


def test_summary_ranks_routers_by_mean_auc_over_tasks():
    from rich.console import Console

    from routeharness.cli._app import _ranking_table

    def row(router, auc, upper=False):
        return {"router": router, "auc": auc, "auc_std": 0.0, "upper_bound": upper}

    summary = {"t1": [row("a", 50.0), row("b", 70.0), row("oracle", 90.0, True)],
               "t2": [row("a", 80.0), row("b", 40.0), row("oracle", 95.0, True)]}
    console = Console(width=200, record=True)
    console.print(_ranking_table(summary))
    lines = [line for line in console.export_text().splitlines() if "│" in line]
    assert "1 │ a" in lines[0] and "65.00" in lines[0]  # a: (50 + 80) / 2 beats b: 55
    assert "2 │ b" in lines[1] and "55.00" in lines[1]
    assert " 1.5 │" in lines[0] and " 1.5 │" in lines[1]  # a: ranks 2 and 1; b: 1 and 2
    assert "- │ oracle (upper bound)" in lines[2]


def test_results_show_merges_pieces_of_one_matrix(cli, cache_dir, tmp_path):
    """Routers run in separate processes merge into one table set; a clash or a different
    protocol is refused in one line, and nothing is written."""
    env = {"ROUTEHARNESS_CACHE": str(cache_dir)}
    base = ("eval", "--task", "routerbench:mbpp", "--bootstrap", "20", "-q")
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for args in ((*base, "-r", "knn", "-o", str(a)),
                 (*base, "-r", "linear", "--no-references", "-o", str(b)),
                 ("eval", "--task", "routerbench:mbpp", "--bootstrap", "30", "-q",
                  "-r", "linear", "--no-references", "-o", str(c))):
        done = cli(*args, env=env)
        assert done.returncode == 0, done.stderr
    merged_path = tmp_path / "merged.json"
    shown = cli("results", "show", str(a), str(b), "-o", str(merged_path), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "linear" in shown.stdout and "knn" in shown.stdout and "fit s" in shown.stdout
    merged = json.loads(merged_path.read_text())
    assert {r["router"] for r in merged["records"]} == {"knn", "linear", "best-single",
                                                          "random"}
    assert [m["path"] for m in merged["merged_from"]] == [str(a), str(b)]
    markdown = cli("results", "show", str(merged_path), "--format", "markdown", env=env)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("### routerbench:mbpp (v1)")
    rows = [line for line in markdown.stdout.splitlines() if line.startswith("| linear |")]
    header = next(line for line in markdown.stdout.splitlines() if line.startswith("| router |"))
    assert "Arena@λ0" in header  # RouterArena's score beside AUC (docs/metrics.md)
    assert len(rows) == 1 and rows[0].count("|") == header.count("|") == 10  # 9 columns

    clash = cli("results", "show", str(a), str(a), "-o", str(tmp_path / "x.json"), env=env)
    assert clash.returncode == 1
    assert "knn" in clash.stderr and "also in" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1
    differ = cli("results", "show", str(a), str(c), "-o", str(tmp_path / "x.json"), env=env)
    assert differ.returncode == 1 and "n_bootstrap" in differ.stderr
    assert not (tmp_path / "x.json").exists()


def test_seed_lists_ranges_and_single_seeds():
    """A bare number is one seed, not a count: `--seeds 3` once ran seed 3 alone."""
    import click

    from routeharness.cli.evaluation import _parse_seeds

    assert _parse_seeds("0,1,2") == [0, 1, 2]
    assert _parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert _parse_seeds("3") == [3]
    assert _parse_seeds("0-2, 10") == [0, 1, 2, 10]
    for bad in ("", "a", "2-0", "1,1", "-3", "0-"):
        with pytest.raises(click.BadParameter):
            _parse_seeds(bad)


def test_an_interrupted_eval_resumes_from_its_checkpoint(cli, cache_dir, tmp_path):
    """eval saves OUTPUT.partial after every run; --resume reuses those runs (the same
    records, timings included) and runs only the rest; another protocol is refused."""
    import shutil

    env = {"ROUTEHARNESS_CACHE": str(cache_dir)}
    base = ("eval", "-r", "knn", "--task", "routerbench:mbpp", "--bootstrap", "20", "-q")
    first = tmp_path / "first.json"
    done = cli(*base, "--seeds", "0", "-o", str(first), env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "first.json.partial").exists()  # removed once the run is whole

    resumed = tmp_path / "resumed.json"
    shutil.copy(first, tmp_path / "resumed.json.partial")  # as if killed after seed 0
    again = cli(*base[:-1], "--seeds", "0,1", "-o", str(resumed), "--resume", env=env)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stderr and "3 of 6 runs reused" in again.stderr
    old = {(r["router"], r["seed"]): r for r in json.loads(first.read_text())["records"]}
    new = {(r["router"], r["seed"]): r for r in json.loads(resumed.read_text())["records"]}
    assert set(new) == {(r, s) for r in ("knn", "best-single", "random")
                        for s in (0, 1)}
    for key, record in old.items():
        assert new[key]["timings"] == record["timings"]  # reused, not recomputed
    assert not (tmp_path / "resumed.json.partial").exists()

    shutil.copy(first, tmp_path / "other.json.partial")
    refused = cli("eval", "-r", "knn", "--task", "routerbench:mbpp", "--bootstrap", "30",
                  "-q", "-o", str(tmp_path / "other.json"), "--resume", env=env)
    assert refused.returncode == 1
    assert "cannot resume" in refused.stderr and "n_bootstrap" in refused.stderr
    assert not (tmp_path / "other.json").exists()
