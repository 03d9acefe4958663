"""The hostile tester's result-file, board and file-mode failures (#4, #8, #10, #13):
each is one line naming the file and what is wrong, checked before any work."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from test_leaderboard_integrity import BOARD, ROOT, _resign, make_submission, put, run
from test_records import make_result, write

from routeharness.boards.definition import LeaderboardError, load_board
from routeharness.boards.standings import ranking
from routeharness.results.records import RecordFormatError, ResultSet


@pytest.fixture
def boards(tmp_path) -> Path:
    root = tmp_path / "boards"
    (root / BOARD / "submissions").mkdir(parents=True)
    shutil.copy(ROOT / "leaderboards" / BOARD / "board.yaml", root / BOARD / "board.yaml")
    return root


# --- #8: one router x task x seed twice ---------------------------------------------------------
def test_a_record_given_twice_is_refused_naming_both_indices(tmp_path, capsys):
    """Before: `results show` averaged the two copies silently."""
    data = make_result()
    data["records"].append(dict(data["records"][0]))
    file = write(tmp_path / "dup.json", data)
    with pytest.raises(RecordFormatError, match=r"records\[0\], \[4\]: the same router x task"):
        ResultSet.from_json(file)
    code, _, err = run(capsys, "results", "show", str(file))
    assert code == 1 and err.count("\n") == 1 and f"{file}: records[0], [4]" in err


# --- #10: values out of range -------------------------------------------------------------------
@pytest.mark.parametrize("path, value, message", [
    (("protocol", "lambdas"), "abc", 'protocol.lambdas: expected a list, got "abc"'),
    (("protocol", "lambdas"), [0.1, -1], "protocol.lambdas[1]: expected a number >= 0"),
    (("records", 0, "metrics", "auc"), -5, "records[0].metrics.auc: expected a finite number"),
    (("records", 0, "metrics", "auc"), 1e300, "records[0].metrics.auc: expected a finite"),
    (("records", 0, "metrics", "quality_at_0"), 101, "records[0].metrics.quality_at_0"),
    (("records", 0, "metrics", "cost_at_0"), -1, "records[0].metrics.cost_at_0"),
    (("records", 0, "metrics", "cost_at_0_usd"), "inf", "records[0].metrics.cost_at_0_usd"),
    (("records", 0, "seed"), 10**40, "records[0].seed: expected an integer seed in [0, 2**32)"),
    (("protocol", "seeds"), [2**32], "protocol.seeds[0]: expected an integer seed"),
])
def test_values_out_of_range_are_one_line_naming_the_json_path(tmp_path, capsys, path, value,
                                                                message):
    data = make_result()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    file = write(tmp_path / "bad.json", data)
    code, _, err = run(capsys, "results", "show", str(file))
    assert code == 1 and err.count("\n") == 1 and f"{file}: {message}" in err, err


def test_old_files_lambdas_with_inf_and_null_metrics_still_load(tmp_path):
    data = make_result()
    data["protocol"]["lambdas"] = [0.0, 1.0, "inf"]
    data["records"][0]["metrics"]["cost_at_0_usd"] = None
    assert ResultSet.from_json(write(tmp_path / "ok.json", data)).records


# --- file modes ---------------------------------------------------------------------------------
def test_result_files_are_written_with_the_umasks_mode(tmp_path):
    """Before: mkstemp's 0600, unlike every other file (the PNGs)."""
    old = os.umask(0o022)
    try:
        path = ResultSet.from_dict(make_result()).save(tmp_path / "r.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --- #4: outputs into a board's folder ----------------------------------------------------------
@pytest.mark.parametrize("target", ["board.yaml", "submissions/random.json", "notes.json",
                                    "submissions/new.json"])
def test_run_refuses_an_output_in_a_boards_folder_before_any_work(boards, capsys, target):
    put(boards, make_submission(), "random.json")
    path = boards / BOARD / target
    before = path.read_bytes() if path.exists() else None
    code, _, err = run(capsys, "leaderboard", "run", BOARD, "-r", "knn", "--boards-dir",
                       str(boards), "-o", str(path), "-q")
    assert code == 1 and err.count("\n") == 1 and f"board {BOARD}" in err, err
    assert (path.read_bytes() if path.exists() else None) == before


def test_show_never_writes_into_a_boards_submissions(boards, capsys):
    target = boards / BOARD / "submissions" / "page.json"
    code, _, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                       "--format", "json", "-o", str(target))
    assert code == 1 and "would write into the board's folder" in err and not target.exists()


# --- #13: boards naming unregistered names; one router twice -------------------------------------
@pytest.mark.parametrize("old, new, key", [("encoder: minilm", "encoder: nosuch", "encoder"),
                                           ("name: routerbench,", "name: nosuchtask,",
                                            "tasks[0].name")])
def test_a_board_naming_an_unregistered_encoder_or_task_is_refused(boards, capsys, old, new,
                                                                   key):
    """Before: an empty ranking, every submission 'left out'."""
    board_file = boards / BOARD / "board.yaml"
    text = board_file.read_text()
    assert old in text
    board_file.write_text(text.replace(old, new))
    with pytest.raises(LeaderboardError, match=re.escape(f"key '{key}'")):
        load_board(BOARD, boards)
    code, _, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards))
    assert code == 1 and err.count("\n") == 1 and str(board_file) in err


def test_a_second_submission_of_one_router_is_rejected_the_newest_ranked(boards):
    older = make_submission()
    newer = json.loads(json.dumps(older))
    newer["provenance"]["created"] = "2099-01-01T00:00:00+00:00"
    put(boards, older, "a.json")
    put(boards, _resign(newer), "b.json")
    result = ranking(load_board(BOARD, boards))
    assert [row["file"] for row in result.rows if row["file"]] == ["b.json"]
    assert [name for name, _ in result.rejected] == ["a.json"]
    assert "b.json" in result.rejected[0][1][0]
