"""Licences of shipped data: routerbench (MIT) and llmrouter (MIT) ship in the package,
alpacaeval (CC BY-NC 4.0) ships only with its licence and attribution beside it, routerdc
(no licence upstream) is never shipped and loads from the upstream files with --data-dir;
`routeharness tasks` shows each task's licence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from routeharness.cli._app import main
from routeharness.common.errors import RouteHarnessError
from routeharness.data.cards import load_card
from routeharness.data.tasks import load_task

ROOT = Path(__file__).resolve().parent.parent
TEXTTASKS_DATA = ROOT / "plugins" / "routeharness_texttasks" / "data"
ROUTERDC_FILES = ("mmlu_train.json", "mmlu_test.json", "gsm8k-train.json", "gsm8k-test.json",
                  "cmmlu_train.json", "cmmlu_test.json", "arc_challenge_train.json",
                  "arc_challenge_test.json", "arc_easy_train.json", "arc_easy_test.json",
                  "humaneval_train.json", "humaneval_test.json")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The real CLI in-process: (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _wheel_files(root: Path) -> list[str]:
    """The paths the wheel built from ``root`` would hold (hatchling's own file selection,
    without building the archive)."""
    from hatchling.builders.wheel import WheelBuilder

    return [f.distribution_path for f in WheelBuilder(str(root)).recurse_included_files()]


def _routerdc_card():
    return load_card(ROOT / "tasks" / "routerdc.yaml")


@pytest.fixture
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTEHARNESS_DATA", raising=False)


# --- routerdc is not redistributed ---------------------------------------------------------
def test_no_routerdc_data_in_the_package_folder():
    assert [p.name for p in TEXTTASKS_DATA.iterdir() if "routerdc" in p.name.lower()] == []
    assert "embedded" not in _routerdc_card().source


def test_the_wheel_excludes_routerdc_data_even_when_a_local_copy_exists(tmp_path: Path):
    """A copy rebuilt into the package folder (an old embed.py run) never reaches a wheel
    or an sdist: pyproject excludes it. Checked on a skeleton of the project with one."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for package in config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("", "utf-8")
    for folder in ("tasks", "leaderboards"):
        (tmp_path / folder).mkdir()
    data = tmp_path / "plugins" / "routeharness_texttasks" / "data"
    data.mkdir()
    for name in ("routerdc.parquet", "alpacaeval.parquet", "alpacaeval.LICENSE.md"):
        (data / name).write_bytes(b"x")
    files = _wheel_files(tmp_path)
    assert "routeharness_texttasks/data/alpacaeval.parquet" in files  # the skeleton builds
    assert "routeharness_texttasks/data/alpacaeval.LICENSE.md" in files
    assert not [f for f in files if "routerdc.parquet" in f]
    assert "plugins/routeharness_texttasks/data/routerdc*" in \
        config["tool"]["hatch"]["build"]["targets"]["sdist"]["exclude"]


def test_the_wheel_ships_the_alpacaeval_licence_beside_its_data():
    files = _wheel_files(ROOT)
    data = [f for f in files if f.startswith("routeharness_texttasks/data/")]
    assert "routeharness_texttasks/data/alpacaeval.parquet" in data
    assert "routeharness_texttasks/data/alpacaeval.LICENSE.md" in data
    assert "routeharness_texttasks/data/NOTICE.md" in data
    # a board's submission of the router named routerdc is a result file, not the data
    assert not [f for f in files if "routerdc" in f and f.endswith(
        (".parquet", ".json", ".jsonl", ".csv", ".arrow"))
        and not f.startswith("routeharness/_builtin/leaderboards/")]


def test_routerdc_without_a_data_dir_says_where_to_get_it(no_data_env):
    upstream = _routerdc_card().source["upstream"].split()[0]
    with pytest.raises(RouteHarnessError) as error:
        load_task("routerdc")
    message = str(error.value)
    assert "\n" not in message
    assert upstream in message and "--data-dir" in message and "ROUTEHARNESS_DATA" in message
    assert "not shipped" in message


@pytest.mark.parametrize("command", [["data", "info", "routerdc"],
                                     ["data", "info", "routerdc:gsm8k", "--json"]])
def test_data_info_without_routerdc_data_is_one_line(command, capsys, no_data_env):
    code, out, err = _run(command, capsys)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: task routerdc is not shipped")
    assert "https://github.com/shuhao02/RouterDC" in lines[0]


def test_eval_without_routerdc_data_stops_before_any_work(capsys, tmp_path: Path,
                                                         no_data_env, monkeypatch):
    import routeharness.evaluation.matrix as evaluate_module

    def must_not_encode(*args, **kwargs):  # the old code went on to embed the shipped copy
        raise AssertionError("eval reached the embedding step")

    monkeypatch.setattr(evaluate_module, "embed_task", must_not_encode, raising=False)
    out_path = tmp_path / "r.json"
    code, _, err = _run(["eval", "-r", "knn", "-t", "routerdc", "-o", str(out_path)], capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "--data-dir" in errors[0] and "https://github.com/shuhao02/RouterDC" in errors[0]
    assert not out_path.exists() and not list(tmp_path.iterdir())


def test_routerdc_data_dir_without_its_files_names_the_upstream(tmp_path: Path):
    (tmp_path / "routerdc").mkdir()
    (tmp_path / "routerdc" / "mmlu_train.json").write_text("[]", "utf-8")  # one of twelve
    with pytest.raises(RouteHarnessError) as error:
        load_task("routerdc", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "https://github.com/shuhao02/RouterDC" in message


def test_routerdc_loads_from_a_checkout_of_the_upstream_repository(tmp_path: Path,
                                                                  shared_data: Path):
    """`--data-dir RouterDC` (a clone: files in datasets/split2_model7/) gives the data the
    text-v1 board's submissions were made on (same fingerprint as the old shipped copy)."""
    files = tmp_path / "RouterDC" / "datasets" / "split2_model7"
    files.mkdir(parents=True)
    for name in ROUTERDC_FILES:
        (files / name).symlink_to(shared_data / "routerdc" / name)
    task = load_task("routerdc", data_dir=tmp_path / "RouterDC")
    submission = json.loads((ROOT / "leaderboards" / "text-v1" / "submissions" / "knn.json")
                            .read_text("utf-8"))
    assert task.fingerprint() == submission["provenance"]["tasks"]["routerdc"]["fingerprint"]


def test_the_embed_script_refuses_routerdc(tmp_path: Path):
    from routeharness_texttasks import embed

    with pytest.raises(SystemExit, match="not embeddable: routerdc"):
        embed.main([str(tmp_path), "routerdc"])
    assert "routerdc" not in embed.TASK_NAMES


# --- alpacaeval ships with its licence and attribution ---------------------------------------
def test_alpacaeval_licence_and_attribution_beside_the_data_and_in_the_card():
    assert (TEXTTASKS_DATA / "alpacaeval.parquet").is_file()
    licence = (TEXTTASKS_DATA / "alpacaeval.LICENSE.md").read_text("utf-8")
    card = load_card(ROOT / "tasks" / "alpacaeval.yaml")
    for text in (licence, card.license):
        assert "CC BY-NC 4.0" in text and "non-commercial" in text.lower()
        assert "https://creativecommons.org/licenses/by-nc/4.0/" in text
        assert "tatsu-lab/alpaca_eval" in text and "Hashimoto" in text
    assert card.source["commit"] in licence  # which upstream version it was derived from
    assert "Changes made" in licence  # CC BY-NC 4.0 section 3(a)(1)(B)
    assert "alpacaeval.LICENSE.md" in card.license
    notice = (TEXTTASKS_DATA / "NOTICE.md").read_text("utf-8")
    shipped = sorted(p.name for p in TEXTTASKS_DATA.glob("*.parquet"))
    assert shipped == ["alpacaeval.parquet", "llmrouter.parquet"]
    assert all(f"`{name}`" in notice for name in shipped)


# --- `routeharness tasks` shows each licence -------------------------------------------------
def test_tasks_lists_the_licence_of_every_task_from_its_card(capsys):
    from routeharness.cli.listing import licence_summary
    from routeharness.plugins.registry import get_registry

    code, out, _ = _run(["tasks", "--format", "json"], capsys)
    assert code == 0
    [table] = json.loads(out)
    assert "licence" in table["headers"]
    rows = {row["name"]: row for row in table["rows"]}
    assert set(rows) == set(get_registry("task").names())
    for name in ("routerbench", "alpacaeval", "llmrouter", "routerdc"):
        card = load_card(ROOT / "tasks" / f"{name}.yaml")
        assert rows[name]["licence"] == licence_summary(card.license)
        assert card.license.startswith(rows[name]["licence"])
    assert rows["alpacaeval"]["licence"].startswith("CC BY-NC 4.0")
    assert rows["routerbench"]["licence"] == "MIT (RouterBench)"
    assert rows["routerdc"]["licence"].startswith("No license file upstream")


def test_tasks_table_prints_whole_licences_as_plain_text(capsys):
    code, out, _ = _run(["tasks"], capsys)
    assert code == 0 and "licence" in out
    assert "CC BY-NC 4.0, non-commercial use only" in out  # not cut, not wrapped


@pytest.mark.parametrize(("licence", "summary"), [
    ("MIT (RouterBench). The re-export has no license file; cite both.", "MIT (RouterBench)"),
    ("CC BY-NC 4.0 (x); see https://creativecommons.org/licenses/by-nc/4.0/.", "CC BY-NC 4.0 (x)"),
    ("Apache-2.0 v2.1.0", "Apache-2.0 v2.1.0"),
    ("  MIT\n  (wrapped\n card)  ", "MIT (wrapped card)"),
])
def test_licence_summary_is_the_first_clause(licence: str, summary: str):
    from routeharness.cli.listing import licence_summary

    assert licence_summary(licence) == summary
