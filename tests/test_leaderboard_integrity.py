"""Leaderboard integrity: the board is the folder a submission sits in, the records are
exactly the board's task x seed set, board files are strictly checked, and names from
submissions are plain text in every rendering. Fast: submissions are made from a seeded
file (brought to the installed protocol and re-signed), nothing is re-run."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from routeharness.boards.definition import LeaderboardError, checksum, load_board
from routeharness.boards.run import validate_submission
from routeharness.boards.standings import ranking
from routeharness.cli._app import main

ROOT = Path(__file__).resolve().parent.parent
BOARD = "routerbench-v1"
SEEDED = ROOT / "leaderboards" / BOARD / "submissions"


def _resign(data: dict[str, Any]) -> dict[str, Any]:
    data["checksum"] = checksum(data)
    return data


def make_submission(router_file: str = "random.json", name: str | None = None
                    ) -> dict[str, Any]:
    """A seeded submission under the installed protocol, optionally renamed."""
    board = load_board(BOARD, ROOT / "leaderboards")
    data = json.loads((SEEDED / router_file).read_text())
    data["result"]["protocol"] = board.protocol().to_dict()
    data["provenance"]["protocol"] = board.protocol().to_dict()
    if name is not None:
        data["router"]["name"] = name
        for record in data["result"]["records"]:
            record["router"] = name
    return _resign(data)


@pytest.fixture
def boards(tmp_path) -> Path:
    """A boards folder holding routerbench-v1 (its board.yaml, no submissions) and a
    second board other-v1 on the same task."""
    root = tmp_path / "boards"
    (root / BOARD / "submissions").mkdir(parents=True)
    shutil.copy(ROOT / "leaderboards" / BOARD / "board.yaml", root / BOARD / "board.yaml")
    text = (root / BOARD / "board.yaml").read_text().replace(f"name: {BOARD}", "name: other-v1")
    (root / "other-v1").mkdir()
    (root / "other-v1" / "board.yaml").write_text(text.replace("seeds: [0, 1, 2]", "seeds: [5]"))
    return root


def put(boards: Path, data: dict[str, Any], file: str, board: str = BOARD) -> Path:
    path = boards / board / "submissions" / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def problems_of(boards: Path, data: dict[str, Any]) -> str:
    board = load_board(BOARD, boards)
    return "\n".join(validate_submission(data, board=board, check_data=False))


def test_the_made_submission_is_valid(boards):
    assert problems_of(boards, make_submission()) == ""


# --- the records are exactly the board's task x seed set ---------------------------------------
def _extra_seed(data):
    record = copy.deepcopy(data["result"]["records"][0])
    record["seed"] = 7
    data["result"]["records"].append(record)
    return data


def _second_record(data):
    data["result"]["records"].append(copy.deepcopy(data["result"]["records"][1]))
    return data


def _other_router(data):
    record = copy.deepcopy(data["result"]["records"][0])
    record["router"] = "knn"
    data["result"]["records"][0] = record
    return data


@pytest.mark.parametrize("edit, message", [
    (_extra_seed, "has seed 7, not one of board routerbench-v1's seeds [0, 1, 2]"),
    (_second_record, "records[1], [3]: the same router x task x seed ['random', 'routerbench', 1]"),
    (_other_router, "record 0 is for router 'knn', not 'random'"),
])
def test_records_must_be_exactly_the_boards_set(boards, capsys, edit, message):
    """Before: an extra seed or a second record for a seed was accepted (and could rank
    first); now each is a problem by name, and `show` lists the file as rejected."""
    data = _resign(edit(make_submission()))
    assert message in problems_of(boards, data)
    put(boards, data, "edited.json")
    code, out, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                         "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["ranking"] == []
    assert shown["rejected"][0]["file"] == "edited.json" and message in err


# --- the board is the folder ------------------------------------------------------------------
@pytest.mark.parametrize("board_name", ["../other-v1", "/etc/board.yaml", "x/board.yaml"])
def test_a_board_name_that_is_a_path_is_refused(boards, tmp_path, capsys, board_name):
    """Before: `board.name` chose the board file a submission was checked against."""
    data = make_submission()
    data["board"]["name"] = board_name
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(_resign(data)))
    code, out, err = run(capsys, "leaderboard", "validate", str(path), "--boards-dir",
                         str(boards), "--no-data")
    assert code == 1 and "not a plain name" in out + err


def test_a_submission_of_another_board_in_a_boards_folder_is_rejected(boards, capsys):
    """Before: `show` crashed on it; now it is listed as rejected and the rest shows."""
    put(boards, make_submission(), "random.json")
    other = make_submission("best-single.json")
    other["board"]["name"] = "other-v1"
    put(boards, _resign(other), "other.json")
    code, out, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                         "--format", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert [row["router"] for row in shown["ranking"]] == ["oracle"]  # random: unverified
    assert [row["router"] for row in shown["unverified"]] == ["random"]
    assert "for board 'other-v1', not 'routerbench-v1'" in shown["rejected"][0]["problems"][0]
    code, out, _ = run(capsys, "leaderboard", "validate",
                       str(boards / BOARD / "submissions" / "other.json"), "--no-data",
                       "--boards-dir", str(boards))
    assert code == 1 and "not 'routerbench-v1' whose folder holds it" in out


def test_a_file_of_the_wrong_shape_is_rejected_not_a_crash(boards, capsys):
    data = make_submission()
    data["result"]["records"][2]["metrics"]["auc"] = "x"
    path = put(boards, _resign(data), "bad.json")
    code, _, err = run(capsys, "leaderboard", "validate", str(path), "--no-data")
    assert code == 1 and err.count("\n") == 1
    assert f"{path}: result.records[2].metrics.auc: expected a number, got \"x\"" in err
    shown = ranking(load_board(BOARD, boards))
    assert shown.rejected[0][0] == "bad.json" and not shown.rows


def test_the_oracle_is_the_boards_reference_row_not_a_submission(tmp_path):
    """No submission file is an oracle: the board's upper bound is the oracle reference
    row that `leaderboard run` stores with every task, shown last and unranked; a file
    claiming to be an upper bound is rejected."""
    board = load_board(BOARD, ROOT / "leaderboards")
    assert not any("oracle" in p.name for p in board.submission_files())
    shown = ranking(board)
    oracle = [row for row in shown.rows if row["router"] == "oracle"]
    assert oracle and oracle[0]["rank"] is None and oracle[0]["upper_bound"]
    assert shown.board_rows[-1]["router"] == "oracle"
    reference = shown.submissions[0].result.tasks["routerbench"].oracle
    assert oracle[0]["main"] == pytest.approx(reference.auc)
    data = shown.submissions[0].to_dict()
    data["router"]["upper_bound"] = True
    data["checksum"] = checksum(data)
    problems = validate_submission(data, board=board)
    assert any("an upper bound is not a submission" in p for p in problems)


# --- board.yaml: numbers accepted until they crash ----------------------------------------------
@pytest.mark.parametrize("old, new, message", [
    ("tolerance: 0.0001", "tolerance: -1", "tolerance: must be >= 0.0, got -1"),
    ("tolerance: 0.0001", "tolerance: .nan", "tolerance: must be a finite number, got nan"),
    ("seeds: [0, 1, 2]", "seeds: [0, -1]", "seeds: must be a non-empty list of distinct"),
    ("seeds: [0, 1, 2]", "seeds: [0, 0]", "seeds: must be a non-empty list of distinct"),
    ("seeds: [0, 1, 2]", "seeds: [true]", "seeds[0]: expected an integer, got true"),
    ("n_bootstrap: 200", "n_bootstrap: -5", "protocol.n_bootstrap: must be >= 0, got -5"),
    ("max_configs: 24", "max_configs: 0", "protocol.max_configs: must be > 0, got 0"),
    ("main_metric: auc", "main_metric: auc\nhomepage: x", "unknown key(s) ['homepage']"),
    ("encoder: minilm", "encoder: 3", "encoder: expected a string, got 3"),
    ("main_metric: auc", "main_metric: auc\nmain_metric: auc", "key 'main_metric' is given "
                                                               "twice"),
])
def test_board_files_are_strict(boards, capsys, old, new, message):
    """Before: a negative or NaN tolerance, negative seeds and a negative n_bootstrap were
    accepted and failed (or passed everything) later."""
    yaml_path = boards / BOARD / "board.yaml"
    text = yaml_path.read_text()
    assert old in text
    yaml_path.write_text(text.replace(old, new))
    with pytest.raises(LeaderboardError) as info:
        load_board(BOARD, boards)
    assert str(info.value).startswith(str(yaml_path)) and message in str(info.value)
    code, _, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards))
    assert code == 1 and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("tolerance", ["-1", "nan", "inf"])
def test_verify_refuses_a_bad_tolerance_before_any_work(boards, capsys, tolerance):
    path = put(boards, make_submission(), "random.json")
    code, _, err = run(capsys, "leaderboard", "verify", str(path), "--tolerance", tolerance)
    assert code == 1 and "tolerance must be a finite number >= 0" in err
    assert err.count("\n") == 1


# --- names as plain text ------------------------------------------------------------------------
NAME = "[bold red]x[/] <b>$\\frac{a}{0}$</b> | _y"


@pytest.mark.parametrize("fmt", ["rich", "markdown", "html", "json"])
def test_a_submissions_name_never_takes_the_board_down(boards, tmp_path, capsys, fmt):
    """Before: one submission named like markup took the whole board down (terminal and
    HTML), and Markdown did not escape names as HTML did."""
    put(boards, make_submission(name=NAME), "evil.json")
    put(boards, make_submission("best-single.json"), "best.json")
    out_file = tmp_path / f"board.{fmt}"
    code, _, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                       "--format", fmt, "-o", str(out_file))
    assert code == 0, err
    text = out_file.read_text()
    if fmt == "rich":
        assert NAME in text
    elif fmt == "json":
        shown = json.loads(text)
        assert NAME in [row["router"] for row in shown["ranking"] + shown["unverified"]]
    elif fmt == "markdown":
        assert "&lt;b&gt;" in text and "<b>" not in text and "\\|" in text
    else:
        assert "&lt;b&gt;" in text and "<b>$" not in text and "[bold red]x[/]" in text


def test_show_never_writes_over_the_boards_own_files(boards, capsys):
    board_file = boards / BOARD / "board.yaml"
    before = board_file.read_bytes()
    code, _, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(boards),
                       "--format", "markdown", "-o", str(board_file))
    assert code == 1 and "one of the board's own files" in err
    assert board_file.read_bytes() == before


def test_list_takes_every_format(boards, capsys):
    code, out, _ = run(capsys, "leaderboard", "list", "--boards-dir", str(boards),
                       "--format", "json")
    assert code == 0
    assert [row["board"] for row in json.loads(out)[0]["rows"]] == ["other-v1", BOARD]
