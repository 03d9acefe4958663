"""Leaderboards: strict boards, real submissions, validation of hand edits, verification by
re-running, and rendering (a small board on routerbench:mbpp keeps the runs short)."""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeharness.boards.definition import (
    LeaderboardError,
    board_names,
    checksum,
    load_board,
    parse_board,
)
from routeharness.boards.run import (
    as_submission,
    load_submission,
    run_board,
    validate_submission,
    verify_submission,
)
from routeharness.boards.standings import ranking
from routeharness.common.errors import UnknownNameError
from routeharness.evaluation import metrics
from routeharness.results.records import ResultSet
from routeharness.results.sets import summarise_scores

ROOT = Path(__file__).resolve().parents[1]

BOARD = "mbpp-v1"
TASK = "routerbench:mbpp"
BOARD_YAML = f"""\
name: {BOARD}
version: 1
description: RouterBench MBPP only, untuned, two seeds (a test board).
tasks:
  - {{name: "{TASK}", version: 1}}
encoder: minilm
seeds: [0, 1]
protocol: {{tune: false, max_configs: 24, n_bootstrap: 0}}
main_metric: auc
tolerance: 0.0001
"""


@pytest.fixture(scope="module")
def boards(tmp_path_factory, cache_dir) -> Path:
    root = tmp_path_factory.mktemp("boards")
    (root / BOARD).mkdir()
    (root / BOARD / "board.yaml").write_text(BOARD_YAML, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def submission_file(boards, tmp_path_factory, minilm) -> Path:
    """A real submission of knn, written by the real CLI. The prompts are embedded first
    in this process with the session's encoder (already loaded), so the subprocess finds
    them in the session cache instead of loading the model again."""
    from conftest import run_cli

    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache

    cache = EmbeddingCache()  # the session cache (the cache_dir fixture set it)
    for data in load_task(TASK).splits.values():
        cache.embed(minilm, data.texts_to_embed())
    path = tmp_path_factory.mktemp("submission") / "knn.json"
    done = run_cli("leaderboard", "run", BOARD, "--router", "knn", "--boards-dir", str(boards),
                   "-o", str(path), "-q")
    assert done.returncode == 0, done.stderr
    assert re.search(rf"{BOARD}: knn mean auc = \d+\.\d\d", done.stdout)
    return path


@pytest.fixture
def submission(submission_file) -> dict[str, Any]:
    """The submission as plain data, for the tests that edit it by hand."""
    return load_submission(submission_file).to_dict()


# --- boards -------------------------------------------------------------------------------
def test_builtin_boards_parse():
    names = board_names()
    assert {"routerbench-v1", "text-v1"} <= set(names)
    text = load_board("text-v1")
    assert text.task_names() == ["routerbench", "alpacaeval", "llmrouter", "routerdc"]
    assert text.main_metric == "auc" and len(text.seeds) >= 1
    assert load_board("routerbench-v1").protocol().tune is True


@pytest.mark.parametrize("change, message", [
    ({"homepage": "x"}, "unknown key"),
    ({"name": "mbpp"}, "must end in '-v1'"),
    ({"version": 2}, "must end in '-v2'"),
    ({"main_metric": "accuracy"}, "main_metric: must be one of 'auc' or 'quality_at_0'"),
    ({"protocol": {"tune": False, "bootstrap": 0}}, r"protocol: unknown key\(s\) \['bootstrap'\]"),
    ({"seeds": []}, "seeds: must be a non-empty list"),
    ({"tasks": [{"name": "routerbench"}]}, r"tasks\[0\] \('routerbench'\): missing required"),
    ({"tasks": [{"name": "a", "version": 1}, {"name": "a", "version": 2}]},
     "tasks: name 'a' is listed twice"),
    ({"version": True}, "version: expected an integer, got true"),
])
def test_board_schema_is_strict(change, message, tmp_path):
    import yaml

    data = {**yaml.safe_load(BOARD_YAML), **change}
    path = tmp_path / BOARD / "board.yaml"
    with pytest.raises(LeaderboardError, match=message) as info:
        parse_board(data, path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_unknown_board_suggests_the_close_one():
    with pytest.raises(UnknownNameError, match="Did you mean 'text-v1'"):
        load_board("text-v2")


# --- run and validate ---------------------------------------------------------------------
def test_run_writes_a_submission_with_provenance(submission, submission_file, boards, cli):
    assert submission["board"] == {"name": BOARD, "version": 1}
    router = submission["router"]
    assert (router["name"], router["distribution"]) == ("knn", "routeharness")
    assert set(router["params"]) == {f"{TASK}/seed0", f"{TASK}/seed1"}
    provenance = submission["provenance"]
    assert provenance["encoder"]["name"] == "minilm" and provenance["encoder"]["revision"]
    assert provenance["tasks"][TASK]["version"] == 1
    assert len(provenance["tasks"][TASK]["fingerprint"]) == 64
    assert provenance["seeds"] == [0, 1] and provenance["platform"]["python"]
    assert {(r["task"], r["seed"]) for r in submission["result"]["records"]} == \
        {(TASK, 0), (TASK, 1)}
    done = cli("leaderboard", "validate", str(submission_file), "--boards-dir", str(boards))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout and "fingerprints match" in done.stdout


def _resign(data: dict[str, Any]) -> dict[str, Any]:
    data["checksum"] = checksum(data)
    return data


def _changed_number(data):
    data["result"]["records"][0]["metrics"]["auc"] += 1.0
    return data


def _missing_task(data):
    del data["result"]["tasks"][TASK]
    del data["provenance"]["tasks"][TASK]
    return data


def _wrong_board_version(data):
    data["board"]["version"] = 2
    return _resign(data)


def _fingerprint(data):
    data["provenance"]["tasks"][TASK]["fingerprint"] = "0" * 64
    data["result"]["tasks"][TASK]["fingerprint"] = "0" * 64
    return _resign(data)


def _missing_seed(data):
    data["result"]["records"] = [r for r in data["result"]["records"] if r["seed"] != 1]
    return data


def _changed_summary(data):
    data["scores"]["overall"]["auc"] += 0.5
    return data


def _other_protocol(data):
    data["result"]["protocol"]["tune"] = True
    return _resign(data)


def test_run_keeps_each_records_test_choices(submission_file, boards):
    """`leaderboard run` keeps every record's test choices (the board's paired intervals
    resample them): they reproduce each curve on the local data, and the row gets an
    interval and a tier."""
    from routeharness.boards.intervals import board_intervals

    data = load_submission(submission_file)
    for record in data.result.records:
        assert record.choices is not None
        assert record.choices.array().shape == (len(record.curve.cost), record.n_test)
    board = load_board(BOARD, boards)
    assert validate_submission(data, board=board) == []
    found = board_intervals(board, [(data.scores["overall"]["auc"], data)])
    row = found.rows[0]
    assert row.source == "recorded" and row.tier == 1 and found.note is None
    assert row.interval[0] <= data.scores["overall"]["auc"] <= row.interval[1]


@pytest.mark.parametrize("edit, messages", [
    (_changed_number, ["record 0 (knn on routerbench:mbpp, seed 0): metrics.auc",
                       "does not match its curve", "checksum mismatch"]),
    (_missing_task, ["result.tasks: must not be empty"]),  # its records name a task the file lacks
    (_wrong_board_version, [f"board version 2 does not match the local board {BOARD} (version 1)"]),
    (_fingerprint, [f"task '{TASK}': data fingerprint 000000000000... does not match the local data"]),
    (_missing_seed, [f"no record for router 'knn' on task '{TASK}', seed 1"]),
    (_changed_summary, ["scores.overall.auc", "does not match the records"]),
    (_other_protocol, ["protocol.tune is True, but board mbpp-v1 requires False"]),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_validate_rejects_hand_edits(edit, messages, submission, boards):
    assert validate_submission(submission, directory=boards) == []
    problems = validate_submission(edit(copy.deepcopy(submission)), directory=boards)
    text = "\n".join(problems)
    for message in messages:
        assert message in text, text


def test_validate_command_names_the_problem(submission, boards, tmp_path, cli):
    path = as_submission(_changed_number(copy.deepcopy(submission))).save(tmp_path / "edited.json")
    done = cli("leaderboard", "validate", str(path), "--boards-dir", str(boards), "--no-data")
    assert done.returncode == 1
    assert "invalid" in done.stdout and "metrics.auc" in done.stdout


# --- verify -------------------------------------------------------------------------------
def test_verify_reproduces_a_real_submission(submission_file, boards, cli):
    done = cli("leaderboard", "verify", str(submission_file), "--boards-dir", str(boards), "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout and "DIFFERS" not in done.stdout


def test_verify_catches_a_consistent_forgery(submission, boards):
    """A forger who edits a curve, recomputes every number from it and re-signs the file
    passes validate; re-running the protocol exposes it."""
    forged = copy.deepcopy(submission)
    record = forged["result"]["records"][0]
    cost = np.asarray(record["curve"]["cost"])
    quality = np.minimum(np.asarray(record["curve"]["quality"]) * 1.02, 1.0)
    record["curve"]["quality"] = quality.tolist()
    record["metrics"]["auc"] = metrics.auc(cost, quality)
    record["metrics"]["quality_at_0"] = float(quality[0]) * 100
    hull_c, hull_q = metrics.frontier(cost, quality)
    record["frontier"] = {"cost": hull_c.tolist(), "quality": hull_q.tolist()}
    forged["scores"] = summarise_scores(ResultSet.from_dict(forged["result"]), "knn")
    _resign(forged)
    assert validate_submission(forged, directory=boards, check_data=False) == []
    rows, _ = verify_submission(forged, directory=boards)
    differing = {(r.seed, r.metric) for r in rows if not r.ok}
    assert (record["seed"], "auc") in differing
    assert all(seed == record["seed"] for seed, _ in differing)


# --- show ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def populated(boards, submission_file, tmp_path_factory) -> Path:
    """The test board with two real submissions (knn, verified: re-run and recorded;
    best-single, unverified) and one edited file."""
    from routeharness.boards.verification import make_record, save_record

    root = tmp_path_factory.mktemp("populated")
    shutil.copytree(boards / BOARD, root / BOARD)
    folder = root / BOARD / "submissions"
    folder.mkdir()
    shutil.copy(submission_file, folder / "knn.json")
    board = load_board(BOARD, root)
    knn = load_submission(folder / "knn.json")
    rows, rerun = verify_submission(knn, board=board)
    save_record(make_record(board, folder / "knn.json", knn, rows, rerun, board.tolerance), board)
    as_submission(run_board(board, "best-single")).save(folder / "best-single.json")
    edited = _changed_number(load_submission(submission_file).to_dict())
    edited["router"]["name"] = "edited"
    as_submission(edited).save(folder / "edited.json")
    return root


def test_show_ranks_the_valid_submissions(populated, cli):
    done = cli("leaderboard", "show", BOARD, "--boards-dir", str(populated), "--format", "json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    routers = [row["router"] for row in shown["ranking"]]
    assert routers == ["knn", "oracle"]  # the verified rows, then the reference row
    oracle = shown["ranking"].pop()
    assert oracle["rank"] is None and oracle["upper_bound"] and oracle["file"] is None
    [apart] = shown["unverified"]  # listed apart, unranked
    assert (apart["router"], apart["rank"], apart["verified"]) == ("best-single", None, False)
    assert shown["ranking"][0]["rank"] == 1 and shown["ranking"][0]["verified"]
    assert oracle["main"] > shown["ranking"][0]["main"]
    for row in shown["ranking"] + shown["unverified"]:  # the numbers are the files' own
        data = load_submission(populated / BOARD / "submissions" / f"{row['router']}.json")
        assert row["main"] == pytest.approx(data.scores["overall"]["auc"])
    assert [r["file"] for r in shown["rejected"]] == ["edited.json"]
    assert "edited.json is not a valid submission" in done.stderr


def test_show_markdown_and_rich(populated, cli):
    markdown = cli("leaderboard", "show", BOARD, "--boards-dir", str(populated),
                   "--format", "markdown")
    board, apart = markdown.stdout.split("unverified submissions (not ranked)")
    lines = [line for line in board.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| rank | router |") and len(lines) == 4  # knn, oracle
    assert lines[-1].startswith("| - | oracle (upper bound) |")
    assert lines[2].startswith("| 1 | knn |")
    assert [line.split(" | ")[0] for line in apart.splitlines()
            if line.startswith("|")][2:] == ["| best-single"]
    rich = cli("leaderboard", "show", BOARD, "--boards-dir", str(populated))
    assert "knn" in rich.stdout and "best-single" in rich.stdout


def _html(populated: Path, tmp_path: Path, cli) -> Path:
    out = tmp_path / "board.html"
    done = cli("leaderboard", "show", BOARD, "--boards-dir", str(populated), "--format", "html",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_show_html_is_one_self_contained_page(populated, tmp_path, cli):
    page = _html(populated, tmp_path, cli).read_text(encoding="utf-8")
    assert "<table>" in page and "knn" in page and "best-single" in page
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match, "no embedded PNG"
    assert base64.b64decode(match.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(https?:|//)', page), "the page loads something external"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(populated, tmp_path, cli):
    page = _html(populated, tmp_path, cli)
    shot = tmp_path / "board.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (900, 1280)
    assert (pixels < 200).mean() > 0.01, "the screenshot is blank"


# --- the seeded boards --------------------------------------------------------------------
def _seeded(check_data: bool, data_dir: Path, boards: set[str] | None = None) -> int:
    checked = 0
    for name in board_names():
        board = load_board(name)
        for path in board.submission_files():
            data_here = check_data and (boards is None or name in boards)
            problems = validate_submission(load_submission(path), board=board,
                                           check_data=data_here, data_dir=str(data_dir))
            assert problems == [], f"{path}: {problems}"
            checked += 1
    return checked


def test_seeded_submissions_are_valid(shared_data):
    """Every accepted file validates; routerbench-v1's against the local data too (the
    text-v1 tasks take longer to load: see the slow test below)."""
    on_disk = len(list((ROOT / "leaderboards").glob("*/submissions/*.json")))
    assert on_disk >= 14  # routerbench-v1's 10 routers, text-v1's references and learned ones
    assert _seeded(check_data=True, data_dir=shared_data, boards={"routerbench-v1"}) == on_disk
    shown = ranking(load_board("routerbench-v1"))
    assert {row["router"] for row in shown.rows} >= {"knn", "best-single"} and not shown.rejected
    assert shown.board_rows[-1]["router"] == "oracle" and shown.board_rows[-1]["rank"] is None


@pytest.mark.slow
def test_seeded_submissions_match_the_local_data_of_every_board(shared_data):
    assert _seeded(check_data=True, data_dir=shared_data) == len(
        list((ROOT / "leaderboards").glob("*/submissions/*.json")))
