"""The built-in task plugins on the one data path: each turns its table into a task
through ``task_from_table`` (the one validation) and writes canonical datasets through
``write_task``; fingerprints stay what the leaderboards recorded; the ``routers`` and
``encoders`` listings are plain tables in every ``--format``; the benchmarks find the data.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import routeharness
from routeharness import DataError, task_from_table, write_task
from routeharness.cli._app import main
from routeharness.data.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "vhelm"

#: fingerprints of the committed loaders (before they moved to task_from_table); the
#: text ones are those the leaderboards' submissions record
FINGERPRINTS = {
    "routerbench": "a37447d51ab52acf2cf0359c94b62c29e48d1d0087d4eb890c0a134a1bfdb1ab",
    "alpacaeval": "9be6e629d816023fbb0a59e4df36c80cca6c2f9272165a3b66caa8aedb466266",
    "llmrouter": "e4ea0bae7f9760c0e7a88753b2886a51b7c34f2c7b2bce3917dd83cbe3bd7e43",
    "routerdc": "7efcf64418436980f9c60d4ac4b010e83cd40a8f6f04f3a1e07f0e2abd8d0133",
    "blindtest-ci": "2e2cd313d39c1627a36b5421ae24bc572dedeb77205b951c189c44f68ed75aa0",
    "blindtest": "e06ec85915d917b7bb0f4e3a4f2ce1a8e5a16b4fd18bf62540e8c6727f40b287",
    "vhelm-mm": "3b6ae3dd432a948e89e434582201b434ff4fef6519d64f57b02e0ca17edfa83c",
}
ON_BOARDS = ("routerbench", "alpacaeval", "llmrouter", "routerdc")

#: the modules that turn upstream data into tasks or write datasets
LOADERS = [*sorted((ROOT / "plugins").glob("routeharness_texttasks/*.py")),
           ROOT / "plugins/routeharness_routerbench/loader.py",
           ROOT / "plugins/routeharness_blindtest/loader.py",
           ROOT / "plugins/routeharness_vhelm/loader.py",
           ROOT / "plugins/routeharness_vhelm/build.py",
           ROOT / "scripts/build_routerbench_embedded.py"]


# --- one path: task_from_table in, write_task out -----------------------------------------

@pytest.mark.parametrize("path", LOADERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_loader_builds_a_task_or_writes_a_dataset_by_hand(path: Path):
    source = path.read_text(encoding="utf-8")
    for banned in ("RoutingData.from_table", "RoutingTask(", "save_to_disk",
                   "routing.json\").write", "SIDECAR).write"):
        assert banned not in source, f"{path}: {banned}"


def test_every_builder_goes_through_the_one_helpers():
    text = {p.name if p.parent.name != "routeharness_vhelm" else f"vhelm/{p.name}":
            p.read_text(encoding="utf-8") for p in LOADERS}
    for name in ("common.py", "loader.py", "vhelm/build.py", "build_routerbench_embedded.py"):
        assert "task_from_table" in text[name], name
    for name in ("common.py", "vhelm/build.py"):
        assert "write_task" in text[name], name


def test_task_from_table_and_write_task_are_public():
    from routeharness.data import readers as dataio

    assert {"task_from_table", "write_task"} <= set(routeharness.__all__)
    assert task_from_table is dataio.task_from_table and write_task is dataio.write_task


# --- fingerprints unchanged ---------------------------------------------------------------

@pytest.mark.parametrize("name", list(FINGERPRINTS))
def test_fingerprints_are_unchanged(name: str, shared_data: Path, tmp_path: Path):
    if name == "vhelm-mm":
        from routeharness_vhelm.build import build

        task = load_task(name, data_dir=build(str(FIXTURE), tmp_path / "b", suite="v2.1.0"))
    elif name in ("routerbench", "alpacaeval"):
        task = load_task(name)  # the embedded copies
    else:
        task = load_task(name, data_dir=shared_data)
    assert task.fingerprint() == FINGERPRINTS[name]


def test_routerbench_from_the_upstream_csvs_equals_the_embedded_copy(shared_data: Path):
    assert load_task("routerbench", data_dir=shared_data).fingerprint() == \
        FINGERPRINTS["routerbench"]


@pytest.mark.parametrize("name", ON_BOARDS)
def test_the_constants_are_the_leaderboards_recorded_fingerprints(name: str):
    recorded = "".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "leaderboards").glob("*/submissions/*.json"))
    assert FINGERPRINTS[name] in recorded


# --- a malformed upstream row: the validation's one line, at the upstream file and row ----

def _rewrite_csv(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
        header = list(records[0])
    records[row][column] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(records)


@pytest.fixture
def routerbench_copy(shared_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "routerbench"
    shutil.copytree(shared_data / "routerbench", out)
    return out


def test_routerbench_score_out_of_range_names_the_upstream_file_row_column(
        routerbench_copy: Path, capsys: pytest.CaptureFixture[str]):
    path = routerbench_copy / "mbpp_test.csv"
    _rewrite_csv(path, 7, "gpt-4-1106-preview", "1.5")
    with pytest.raises(DataError) as caught:
        load_task("routerbench", data_dir=routerbench_copy)
    exc = caught.value
    assert (exc.source, exc.row, exc.column) == (str(path), 7, "gpt-4-1106-preview")
    assert "\n" not in str(exc)
    # the same one line through the CLI: `Error: ...`, exit 1, no traceback
    with pytest.raises(SystemExit) as stopped:
        main(["data", "info", "routerbench", "--data-dir", str(routerbench_copy)])
    err = capsys.readouterr().err
    assert stopped.value.code == 1
    assert err == f"Error: {exc}\n" and "Traceback" not in err


def test_routerbench_blank_prompt_is_refused_at_its_row(routerbench_copy: Path):
    path = routerbench_copy / "winograde_train.csv"
    _rewrite_csv(path, 3, "prompt", "['  ']")
    with pytest.raises(DataError, match=r"empty prompt") as caught:
        load_task("routerbench", data_dir=routerbench_copy)
    assert (caught.value.source, caught.value.row, caught.value.column) == \
        (str(path), 3, "prompt")


def test_blindtest_score_out_of_range_names_items_csv_row_column(shared_data: Path,
                                                                  tmp_path: Path):
    folder = tmp_path / "blindtest" / "ci_subset"
    shutil.copytree(shared_data / "blindtest" / "ci_subset", folder)
    _rewrite_csv(folder / "items.csv", 5, "claude-3-sonnet", "2.0")
    with pytest.raises(DataError) as caught:
        load_task("blindtest-ci", data_dir=tmp_path)
    exc = caught.value
    assert (exc.source, exc.row, exc.column) == (str(folder / "items.csv"), 5,
                                                 "claude-3-sonnet")
    assert "\n" not in str(exc)


def test_task_from_table_without_origins_keeps_the_table_row():
    columns = {"id": ["a", "b", "c"], "prompt": ["x", "y", "z"], "group": ["g"] * 3,
               "split": ["train", "validation", "test"], "score:m": [0.5, -1.0, 1.0],
               "cost:m": [1.0, 1.0, 1.0]}
    with pytest.raises(DataError) as caught:
        task_from_table(columns, name="t", version=1, source="memory")
    assert (caught.value.source, caught.value.row) == ("memory", 1)
    with pytest.raises(DataError) as caught:
        task_from_table(columns, name="t", version=1, source="memory",
                        origins=[("up.csv", 10), ("up.csv", 11), ("other.csv", 0)])
    assert (caught.value.source, caught.value.row, caught.value.column) == \
        ("up.csv", 11, "score:m")


# --- write_task round trips ---------------------------------------------------------------

def test_a_built_task_written_with_write_task_loads_back_identically(tmp_path: Path):
    task = load_task("routerbench")
    out = write_task(task, tmp_path / "rb", meta={"built_from": "embedded"})
    loaded = load_task(str(out), allow_leaks=True)  # upstream repeats a few prompts
    assert loaded.fingerprint() == task.fingerprint() == FINGERPRINTS["routerbench"]
    assert [m.to_dict() for m in loaded.models] == [m.to_dict() for m in task.models]


def test_write_task_keeps_images_as_images(shared_data: Path, tmp_path: Path):
    import datasets

    task = load_task("blindtest-ci", data_dir=shared_data)
    out = write_task(task, tmp_path / "bt")
    saved = datasets.load_from_disk(str(out))
    assert isinstance(saved["test"].features["image"], datasets.Image)
    loaded = load_task(str(out))
    assert loaded.fingerprint() == FINGERPRINTS["blindtest-ci"]
    assert loaded.splits["test"].has_images


def test_text_build_writes_the_canonical_dataset_and_card(shared_data: Path, tmp_path: Path):
    from routeharness.data.tasks import build_task

    out = tmp_path / "llmrouter"
    build_task("llmrouter", shared_data, out)
    meta = json.loads((out / "routing.json").read_text("utf-8"))
    assert meta["name"] == "llmrouter" and meta["built_from"] == str(shared_data)
    assert "MIT" in meta["license"] and (out / "README.md").is_file()
    assert load_task(str(out)).fingerprint() == FINGERPRINTS["llmrouter"]


def test_vhelm_build_writes_through_write_task(tmp_path: Path):
    import datasets
    from routeharness_vhelm.build import build

    out = build(str(FIXTURE), tmp_path / "v", suite="v2.1.0")
    meta = json.loads((out / "routing.json").read_text("utf-8"))
    assert meta["counts"] == {"rows": 50, "dropped_incomplete": 0, "train": 30,
                              "validation": 5, "test": 15}
    assert meta["suite"] == "v2.1.0" and not (out / ".download").exists()
    assert isinstance(datasets.load_from_disk(str(out))["train"].features["image"],
                      datasets.Image)


# --- routers and encoders listings --------------------------------------------------------

@pytest.mark.parametrize("command", ["routers", "encoders"])
def test_listings_print_in_every_format(command: str, capsys: pytest.CaptureFixture[str]):
    # routers also say which can be saved (fit, route, serve) and updated (update)
    tags = ["saveable", "updatable", "online"] if command == "routers" else []
    main([command, "--format", "json"])
    (table,) = json.loads(capsys.readouterr().out)
    assert table["headers"] == ["name", "description", *tags, "plugin", "distribution"]
    names = {row["name"] for row in table["rows"]}
    assert ("knn" in names) if command == "routers" else ("minilm" in names)
    main([command, "--format", "markdown"])
    header = " | ".join(["name", "description", *tags, "plugin", "distribution"])
    assert re.search(rf"^\| {header} \|$", capsys.readouterr().out, re.M)


def test_listing_names_and_descriptions_are_plain_text(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]):
    import routeharness.plugins.registry

    entry = SimpleNamespace(name="[bold]evil[/bold]", description="$x^2$ [red]no[/red]",
                            plugin="p[i]", distribution="dist", version="1")
    monkeypatch.setattr(routeharness.plugins.registry, "get_registry",
                        lambda kind: SimpleNamespace(entries=lambda: [entry]))
    main(["routers"])
    out = capsys.readouterr().out
    assert "[bold]evil[/bold]" in out and "$x^2$ [red]no[/red]" in out and "p[i]" in out


# --- benchmarks ---------------------------------------------------------------------------

def test_train_time_takes_a_data_dir():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_time.py"),
                             "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--data-dir" in result.stdout


def test_text_matrix_sets_the_data_dir_after_cd():
    lines = (ROOT / "benchmarks" / "text_matrix.sh").read_text("utf-8").splitlines()
    cd = next(i for i, line in enumerate(lines) if line.startswith("cd "))
    assert lines[cd + 1].startswith("export ROUTEHARNESS_DATA=${ROUTEHARNESS_DATA:-")


def _embed_script(monkeypatch: pytest.MonkeyPatch, target: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_routerbench_embedded", ROOT / "scripts" / "build_routerbench_embedded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "EMBEDDED_PATH", target)  # never the shipped copy
    return module


def test_embedding_script_validates_before_writing(routerbench_copy: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    import pyarrow.parquet as pq

    target = tmp_path / "out" / "routerbench.parquet"
    script = _embed_script(monkeypatch, target)
    script.main(str(routerbench_copy))
    table = pq.read_table(target)
    shipped = pq.read_table(ROOT / "plugins/routeharness_routerbench/data/routerbench.parquet")
    assert table.column_names == shipped.column_names and table.num_rows == shipped.num_rows
    target.unlink()
    _rewrite_csv(routerbench_copy / "arc_challenge_train.csv", 2, "claude-v2|total_cost", "-3")
    with pytest.raises(DataError) as caught:
        script.main(str(routerbench_copy))
    assert (caught.value.source, caught.value.row, caught.value.column) == \
        (str(routerbench_copy / "arc_challenge_train.csv"), 2, "claude-v2|total_cost")
    assert not target.exists() and not target.with_suffix(".tmp").exists()
