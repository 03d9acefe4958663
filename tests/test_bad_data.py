"""The malformed-dataset corpus (tests/data/malformed/): every case is rejected by
`routeharness data validate` and by `routeharness eval --task PATH` with one clear line
naming the file, the row and the column, and a non-zero exit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from routeharness.cli._app import main
from routeharness.data.dataset import find_leaks
from routeharness.data.readers import validate_path
from routeharness.data.tasks import load_task

CORPUS = Path(__file__).resolve().parent / "data" / "malformed"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.json").is_file())


def _target(name: str) -> Path:
    """The path a user would pass: the directory, or its one file with a split column."""
    directory = CORPUS / name
    one_file = directory / "data.csv"
    return one_file if one_file.is_file() else directory


def _expect(name: str) -> dict:
    return json.loads((CORPUS / name / "expect.json").read_text(encoding="utf-8"))


def _names_the_place(message: str, expect: dict) -> bool:
    if expect["file"] is not None and f"{expect['file']}" not in message:
        return False
    if expect["row"] is not None and not re.search(rf"\brow {expect['row']}\b", message):
        return False
    if expect["column"] is not None and repr(expect["column"]) not in message:
        return False
    return expect["words"] in message


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def test_the_corpus_covers_the_required_cases():
    required = {"missing_column", "wrong_number_of_scores", "nan_cost", "out_of_range_score",
                "negative_cost", "duplicate_id", "unknown_model", "empty_split",
                "leaked_test_prompt", "non_utf8", "truncated_parquet"}
    assert required <= set(CASES)
    assert len(CASES) >= 12


def test_the_valid_base_dataset_passes(capsys):
    assert validate_path(CORPUS / "valid") == []
    task = load_task(str(CORPUS / "valid"))
    assert {s: d.n for s, d in task.splits.items()} == {"train": 8, "validation": 4, "test": 4}
    main(["data", "validate", str(CORPUS / "valid")])
    assert "ok:" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_validate_lists_the_problem_with_file_row_column(name: str):
    expect = _expect(name)
    problems = [str(p) for p in validate_path(_target(name))]
    assert problems, f"{name}: not rejected"
    assert all("\n" not in p for p in problems)
    assert any(_names_the_place(p, expect) for p in problems), (expect, problems)


@pytest.mark.parametrize("name", CASES)
def test_data_validate_command_exits_non_zero(name: str, capsys):
    code, _, err = _run(["data", "validate", str(_target(name))], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "problem" in lines[-1]
    assert any(_names_the_place(line, _expect(name)) for line in lines[:-1]), err


@pytest.mark.parametrize("name", CASES)
def test_eval_rejects_it_in_one_line(name: str, capsys, tmp_path: Path):
    output = tmp_path / "results.json"
    code, _, err = _run(["eval", "--router", "knn", "--task", str(_target(name)), "-q",
                         "-o", str(output)], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and _names_the_place(lines[0], _expect(name)), err
    assert not output.exists()


def test_the_real_cli_rejects_bad_files(cli, tmp_path: Path):
    for name, args in (
            ("non_utf8", ["data", "validate", str(_target("non_utf8"))]),
            ("truncated_parquet", ["eval", "-r", "knn", "-t", str(_target("truncated_parquet")),
                                   "-o", str(tmp_path / "r.json")])):
        result = cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert _names_the_place(result.stderr, _expect(name)), result.stderr
        assert "Traceback" not in result.stderr


def test_leaked_prompts_are_an_error_for_eval_but_a_warning_for_info(capsys):
    path = str(CORPUS / "leaked_test_prompt")
    task = load_task(path, allow_leaks=True)
    assert [(row, other) for row, other in find_leaks(task)["test-train"]] == [(2, 5)]
    main(["data", "info", path])
    captured = capsys.readouterr()
    assert "1 test prompt also appears in train" in captured.err
    assert "prompts per split and group" in captured.out


def test_validate_prints_every_problem_not_only_the_first(capsys, tmp_path: Path):
    rows = (CORPUS / "valid" / "train.csv").read_text(encoding="utf-8").splitlines()
    header, body = rows[0], rows[1:]
    body[1] = body[1].replace(",1,0.002", ",1.5,0.002")   # score out of range, row 1
    body[5] = body[5].replace(",0.0001,", ",-1,")           # negative cost, row 5
    for split in ("validation", "test"):
        (tmp_path / f"{split}.csv").write_text(
            (CORPUS / "valid" / f"{split}.csv").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "train.csv").write_text("\n".join([header, *body]) + "\n", encoding="utf-8")
    code, _, err = _run(["data", "validate", str(tmp_path)], capsys)
    assert code == 1
    assert "row 1, column 'score:large'" in err and "row 5, column 'cost:small'" in err
    assert "2 problems found" in err
