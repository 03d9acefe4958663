"""``routeharness study transfer`` through the real CLI in a subprocess: two synthetic
tasks (``data synth``, their own vectors), a synthetic task against RouterBench's MBPP
group through an alias table (the lexical encoder: nothing to download), and bad input
refused in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.study.record import STUDY_SCHEMA
from routeharness.study.transfer import read_aliases

SYNTH = ("--train", "200", "--validation", "60", "--test", "80", "--models", "4")
MBPP = "routerbench:mbpp"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """Two synthetic tasks of 4 models (m0..m3), seeds 1 and 2; the second renamed
    ``synthetic-b`` (two tasks of one name are refused, as by eval)."""
    from conftest import run_cli

    home = tmp_path_factory.mktemp("transfer")
    source, target = home / "source", home / "target"
    for out, seed in ((source, "1"), (target, "2")):
        done = run_cli("data", "synth", str(out), *SYNTH, "--seed", seed)
        assert done.returncode == 0, done.stderr
    sidecar = target / "routing.json"
    sidecar.write_text(sidecar.read_text().replace('"name": "synthetic"',
                                                   '"name": "synthetic-b"'))
    return source, target


@pytest.fixture
def env(cache_dir):
    return {"ROUTEHARNESS_CACHE": str(cache_dir)}


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_transfer_between_two_synthetic_tasks(cli, env, pair, tmp_path):
    source, target = pair
    out = tmp_path / "transfer.json"
    done = cli("study", "transfer", "-t", str(source), "-t", str(target), "-r", "knn",
               "-e", "precomputed", "--bootstrap", "50", "-o", str(out), "--format", "json",
               env=env)
    assert done.returncode == 0, done.stderr
    saved = json.loads(out.read_text())
    assert saved["schema"] == STUDY_SCHEMA and saved["study"] == "transfer"
    summary = saved["results"]["synthetic->synthetic-b"]
    assert [s["model"] for s in summary["shared_models"]] == ["m0", "m1", "m2", "m3"]
    assert summary["sizes"]["transferred"] == {"train": 200, "validation": 60, "test": 80}
    knn = summary["routers"]["knn"]
    change = knn["transferred_vs_in_task"]
    assert change["difference"] == pytest.approx(knn["transferred"]["auc"]
                                                 - knn["in_task"]["auc"])
    low, high = change["ci95"]
    assert low <= change["difference"] <= high
    assert 0 <= knn["transferred"]["arena_score"] <= 100
    # one condition per run, both on the target's 80 test prompts
    assert sorted(r["condition"]["condition"] for r in saved["runs"]) == \
        ["in task", "transferred"]
    assert {r["n_test"] for r in saved["runs"]} == {80}
    table = json.loads(done.stdout)[0]
    assert table["title"].startswith("synthetic → synthetic-b: test AUC on synthetic-b's 80")
    assert [row["router"] for row in table["rows"]] == ["knn"]
    # the in-task run is eval's run on the target: same protocol, same number
    evaluated = tmp_path / "eval.json"
    done = cli("eval", "-r", "knn", "-t", str(target), "-e", "precomputed", "-o",
               str(evaluated), "--no-references", "-q", env=env)
    assert done.returncode == 0, done.stderr
    record = json.loads(evaluated.read_text())["records"][0]
    assert knn["in_task"]["auc"] == pytest.approx(record["metrics"]["auc"])


def test_an_alias_table_matches_the_names_of_two_pools(cli, env, pair, tmp_path):
    source, _ = pair
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("model,same_as\nm0,mistralai/mistral-7b-chat\n"
                       "m3,gpt-4-1106-preview\n")
    out = tmp_path / "transfer.json"
    done = cli("study", "transfer", "-t", str(source), "-t", MBPP, "-r", "knn", "-e",
               "lexical", "--aliases", str(aliases), "--bootstrap", "50", "-o", str(out),
               env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())["results"]["synthetic->routerbench:mbpp"]
    assert summary["shared_models"] == [
        {"model": "mistralai/mistral-7b-chat", "source": "m0",
         "target": "mistralai/mistral-7b-chat"},
        {"model": "gpt-4-1106-preview", "source": "m3", "target": "gpt-4-1106-preview"}]
    assert summary["sizes"]["in task"]["test"] == 128
    assert f"models matched through {aliases}" in done.stdout


def test_read_aliases_yaml_and_csv_agree(tmp_path):
    yaml_file, csv_file = tmp_path / "a.yaml", tmp_path / "a.csv"
    yaml_file.write_text("aliases:\n  claude-v2: claude-2\n  m1: x\n")
    csv_file.write_text("model,same_as\nclaude-v2,claude-2\n\nm1,x\n")
    assert read_aliases(yaml_file) == read_aliases(csv_file) == {"claude-v2": "claude-2",
                                                                  "m1": "x"}


@pytest.mark.parametrize("name, content, message", [
    ("a.txt", "m0: x\n", "must be .yaml, .yml or .csv"),
    ("a.yaml", "aliases: [m0, x]\n", "aliases"),
    ("a.yaml", "m0: x\n", "m0"),
    ("a.yaml", "aliases: {m0: x\n", "not valid YAML"),
    ("a.yaml", "aliases: {}\n", "the alias table is empty"),
    ("a.csv", "name,alias\nm0,x\n", "row 1 must be the header model,same_as"),
    ("a.csv", "model,same_as\nm0,x,y\n", "row 2: two names expected"),
    ("a.csv", "model,same_as\nm0,x\nm0,y\n", "row 3: model 'm0' is given twice"),
])
def test_bad_alias_tables_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(RouteHarnessError) as caught:
        read_aliases(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


@pytest.mark.parametrize("case, message", [
    ("unknown task", "unknown task 'nosuchtask'"),
    ("one task", "study transfer takes exactly two tasks, -t SOURCE -t TARGET (got 1)"),
    ("no shared models", "share 0 model(s) (none); a transfer needs at least 2: match "
                         "names with --aliases FILE"),
    ("one shared model", "share 1 model(s) (gpt-4-1106-preview)"),
    ("missing alias file", "no such alias table"),
    ("bad alias file", "not valid YAML"),
    ("two models, one name", "models 'm0' and 'm1' both stand for 'x'"),
])
def test_bad_transfer_input_is_one_line_and_writes_nothing(cli, env, pair, tmp_path, case,
                                                           message):
    source, _ = pair
    out = tmp_path / "out.json"
    aliases = tmp_path / "aliases.yaml"
    tasks = ["-t", str(source), "-t", MBPP]
    extra: list[str] = []
    if case == "unknown task":
        tasks = ["-t", str(source), "-t", "nosuchtask"]
    elif case == "one task":
        tasks = ["-t", str(source)]
    elif case == "one shared model":
        aliases.write_text("aliases:\n  m3: gpt-4-1106-preview\n")
        extra = ["--aliases", str(aliases)]
    elif case == "missing alias file":
        extra = ["--aliases", str(tmp_path / "nosuch.yaml")]
    elif case == "bad alias file":
        aliases.write_text("aliases: {m0: x\n")
        extra = ["--aliases", str(aliases)]
    elif case == "two models, one name":
        aliases.write_text("aliases:\n  m0: x\n  m1: x\n")
        extra = ["--aliases", str(aliases)]
    done = cli("study", "transfer", *tasks, "-e", "lexical", "-r", "knn", *extra,
               "-o", str(out), env=env)
    assert done.returncode != 0
    errors = _error_lines(done.stderr)
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["transfer-routerdc.json",
                                  "transfer-routerbench-alpacaeval.json"])
def test_the_committed_transfer_tables_show_again(cli, name):
    """benchmarks/transfer.md's files: ``study show`` prints their tables, real names."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / name
    done = cli("study", "show", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)[0]
    assert [row["router"] for row in table["rows"]] == ["knn", "linear", "mlp"]
    assert " → " in table["title"] and "shared models" in table["title"]
