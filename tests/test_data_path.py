"""The straight data path (issue 10): one read, one validation, the task spec grammar, the
table -> task helper and the canonical writer, and the failure classes of users' data that
the malformed corpus (test_bad_data.py) does not hold as files: valid data that was
refused, OS errors, and data that validates and then must run in eval."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from routeharness.cli._app import main
from routeharness.common.errors import DataError, RouteHarnessError, UnknownNameError
from routeharness.data.readers import task_from_table, validate_path, write_task
from routeharness.data.spec import parse_task_spec
from routeharness.data.tasks import load_local, load_task

CORPUS = Path(__file__).resolve().parent / "data" / "malformed"
HEADER = ["id", "prompt", "group", "score:small", "cost:small", "score:large", "cost:large"]


def _rows(split: str, n: int) -> list[list[str]]:
    return [[f"{split}-{i}", f"Question {i} of {split}: explain topic {split}{i}.",
             "a" if i % 2 else "b", str(i % 2), "0.001", "1", "0.01"] for i in range(n)]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _folder(path: Path, **splits: list[list[str]]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 8), ("validation", 4), ("test", 4)):
        _write(path / f"{split}.csv", splits.get(split, _rows(split, n)))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:  # an error (or --help) exits; success may simply return
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_hang():
    """A read that blocks (a FIFO) fails the test instead of hanging the suite."""
    def expire(signum, frame):
        raise TimeoutError("blocked reading a dataset")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# --- valid data that was refused --------------------------------------------------------
def test_text_columns_are_read_as_written_not_as_missing_values_or_numbers(tmp_path: Path):
    train = _rows("train", 8)
    for row, (identifier, text) in enumerate((("1", "NA"), ("01", "None"), ("1.0", "null"),
                                              ("NA", "N/A"), ("None", "nan"))):
        train[row][0], train[row][1] = identifier, text
    train[5][2] = "null"  # a group named null
    _folder(tmp_path, train=train)
    assert validate_path(tmp_path) == []
    task = load_task(str(tmp_path))
    data = task.splits["train"]
    assert data.ids[:5] == ["1", "01", "1.0", "NA", "None"]
    assert data.prompts[:5] == ["NA", "None", "null", "N/A", "nan"]
    assert data.groups[5] == "null"


def test_json_lines_ids_stay_text(tmp_path: Path):
    _folder(tmp_path)
    (tmp_path / "test.csv").unlink()
    lines = [json.dumps({"id": identifier, "prompt": "NA", "group": "g", "score:small": 1,
                         "cost:small": 0.001, "score:large": 1, "cost:large": 0.01})
             for identifier in ("01", "1", "1.0")]
    (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = load_local(tmp_path)
    assert task.splits["test"].ids == ["01", "1", "1.0"]
    assert task.splits["test"].prompts == ["NA"] * 3


def test_csv_prompt_over_128_kib_is_read(tmp_path: Path):
    train = _rows("train", 8)
    train[2][1] = "word " * 60_000  # 300 kB: over the csv module's 128 KiB field limit
    _folder(tmp_path, train=train)
    assert validate_path(tmp_path) == []
    assert len(load_task(str(tmp_path)).splits["train"].prompts[2]) == 300_000


# --- OS errors: one line naming the path, never a hang ----------------------------------
def _assert_one_line(path: Path, problems: list, words: str, capsys) -> None:
    assert len(problems) >= 1 and all("\n" not in str(p) for p in problems)
    assert str(path) in str(problems[0]) and words in str(problems[0]), problems
    code, _, err = _run(["eval", "-r", "knn", "-t", str(path), "-q", "-o",
                         str(path.parent / "out.json")], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Error: ") and words in err


def test_a_fifo_is_refused_not_read(tmp_path: Path, capsys, no_hang):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    _assert_one_line(fifo, validate_path(fifo), "not a regular file", capsys)
    folder = _folder(tmp_path / "folder")
    (folder / "test.csv").unlink()
    os.mkfifo(folder / "test.csv")
    problems = validate_path(folder)
    assert "test.csv" in str(problems[0]) and "not a regular file" in str(problems[0])
    with pytest.raises(DataError, match="not a regular file"):
        load_task(str(folder))


def test_a_directory_where_a_file_belongs(tmp_path: Path, capsys):
    folder = _folder(tmp_path / "d")
    (folder / "train.csv").unlink()
    (folder / "train.csv").mkdir()
    problems = validate_path(folder)
    assert "train.csv" in str(problems[0]) and "is a directory" in str(problems[0])
    (folder / "train.csv").rmdir()
    _write(folder / "train.csv", _rows("train", 8))
    (folder / "routing.json").mkdir()
    _assert_one_line(folder, validate_path(folder), "is a directory", capsys)


def test_symlink_loops(tmp_path: Path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    problems = validate_path(loop)
    assert len(problems) == 1 and str(problems[0]).startswith(f"{loop}: cannot read")
    with pytest.raises(DataError, match="cannot read"):
        load_task(str(loop))
    code, _, err = _run(["data", "validate", str(loop)], capsys)
    assert code == 1 and "Traceback" not in err and f"{loop}: cannot read" in err
    folder = _folder(tmp_path / "d")
    (folder / "validation.csv").unlink()
    (folder / "validation.csv").symlink_to(folder / "validation.csv")
    problems = validate_path(folder)
    assert "validation.csv" in str(problems[0]) and "cannot read" in str(problems[0])


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root reads any file")
def test_an_unreadable_file(tmp_path: Path, capsys):
    folder = _folder(tmp_path / "d")
    (folder / "train.csv").chmod(0)
    problems = validate_path(folder)
    assert "train.csv" in str(problems[0]) and "cannot read" in str(problems[0])


def test_an_unreadable_file_is_one_line(tmp_path: Path, monkeypatch):
    """As root nothing is unreadable: an ``os.open`` that fails stands in for it (the
    one reader of regular files, ``files.read_regular_file``, opens with it)."""
    folder = _folder(tmp_path / "d")
    real_open = os.open

    def failing_open(file, *args, **kwargs):
        if str(file).endswith("train.csv"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_open)
    problems = validate_path(folder)
    assert str(problems[0]).endswith("train.csv: cannot read: Permission denied")


# --- the task spec grammar --------------------------------------------------------------
def test_task_spec_grammar(tmp_path: Path, monkeypatch):
    known = ["routerbench"]
    assert parse_task_spec("routerbench", known).kind == "name"
    spec = parse_task_spec("routerbench:mbpp", known)
    assert (spec.kind, spec.name, spec.group) == ("name", "routerbench", "mbpp")
    spec = parse_task_spec("hub:org/data@v2:math", known)
    assert (spec.kind, spec.name, spec.revision, spec.group) == ("hub", "org/data", "v2", "math")
    folder = _folder(tmp_path / "runs:2024")  # a path holding ':' that exists wins
    spec = parse_task_spec(str(folder), known)
    assert (spec.kind, spec.group) == ("path", None)
    spec = parse_task_spec(f"{folder}:a", known)
    assert (spec.kind, spec.path, spec.group) == ("path", folder, "a")
    spec = parse_task_spec("mydata.csv:g", known)  # not there: still a path, read errors
    assert (spec.kind, spec.name, spec.group) == ("path", "mydata.csv", "g")
    with pytest.raises(RouteHarnessError, match="hub:ORG/NAME"):
        parse_task_spec("hub:", known)


def test_path_colon_group_narrows_a_users_own_data(tmp_path: Path):
    folder = _folder(tmp_path / "mine")
    task = load_task(f"{folder}:a")
    assert task.name == "mine:a"
    assert {s: d.n for s, d in task.splits.items()} == {"train": 4, "validation": 2, "test": 2}
    assert set(task.splits["test"].groups) == {"a"}
    with pytest.raises(UnknownNameError, match="group"):
        load_task(f"{folder}:nope")
    one_file = tmp_path / "one.csv"
    _write(one_file, [[*r, s] for s in ("train", "validation", "test")
                      for r in _rows(s, 4)], [*HEADER, "split"])
    assert load_task(f"{one_file}:b").splits["train"].n == 2


# --- the table -> task helper and the canonical writer ----------------------------------
def _columns() -> dict[str, list]:
    rows = [(s, r) for s in ("train", "validation", "test") for r in _rows(s, 6)]
    columns = {name: [r[j] for _, r in rows] for j, name in enumerate(HEADER)}
    for name in HEADER[3:]:
        columns[name] = [float(v) for v in columns[name]]
    columns["split"] = [s for s, _ in rows]
    return columns


def test_task_from_table_then_write_task_round_trips(tmp_path: Path):
    task = task_from_table(_columns(), name="mine", version=2, source="memory",
                           group_descriptions={"a": "group a"})
    assert (task.name, task.version) == ("mine", 2)
    assert [m.name for m in task.models] == ["small", "large"]
    out = write_task(task, tmp_path / "canonical")
    meta = json.loads((out / "routing.json").read_text(encoding="utf-8"))
    assert meta["name"] == "mine" and meta["groups"]["a"] == "group a"
    loaded = load_task(str(out))
    assert loaded.fingerprint() == task.fingerprint()
    assert (loaded.name, loaded.version) == ("mine", 2)
    with pytest.raises(DataError, match="not an empty directory"):
        write_task(task, out)


def test_task_from_table_runs_the_same_validation(tmp_path: Path):
    columns = _columns()
    columns["cost:small"] = [0.0] * len(columns["id"])
    columns["cost:large"] = [0.0] * len(columns["id"])
    with pytest.raises(DataError, match="every cost in split 'train' is 0"):
        task_from_table(columns, name="x", version=1, source="memory")
    columns = _columns()
    columns["prompt"][3] = " "
    with pytest.raises(DataError, match="row 3, column 'prompt': empty prompt"):
        task_from_table(columns, name="x", version=1, source="memory")


def test_write_task_refuses_a_bad_sidecar_before_writing(tmp_path: Path):
    task = task_from_table(_columns(), name="mine", version=1, source="memory")
    with pytest.raises(DataError, match="unknown key"):
        write_task(task, tmp_path / "out", meta={"colour": "red"})
    assert not (tmp_path / "out").exists()


# --- data that validates runs in eval ----------------------------------------------------
def test_edge_data_that_validates_runs_in_eval(tmp_path: Path, capsys, minilm, cache_dir):
    """Ids as written, text that looks like a missing value, a 200 kB prompt, a model
    whose costs are all 0 (the other's are not), missing cells in every split."""
    train, validation, test = _rows("train", 8), _rows("validation", 4), _rows("test", 4)
    for rows in (train, validation, test):
        for row in rows:
            row[4] = "0"  # small is free
    train[0][0], train[1][0], train[2][1] = "01", "1", "word " * 40_000
    train[3][1], train[4][2] = "NA", "null"
    train[5][3:5] = ["", ""]
    test[1][5:7] = ["NA", "NA"]  # excluded from scoring, three rows remain
    folder = _folder(tmp_path / "edge", train=train, validation=validation, test=test)
    code, out, _ = _run(["data", "validate", str(folder)], capsys)
    assert code == 0 and "ok:" in out
    output = tmp_path / "r.json"
    code, _, err = _run(["eval", "--router", "knn", "--task", str(folder), "--no-references",
                         "--bootstrap", "0", "-q", "-o", str(output)], capsys)
    assert code == 0, err
    assert "Traceback" not in err and output.is_file()


def test_data_info_counts_identical_embeddings(tmp_path: Path, capsys, minilm, cache_dir):
    """Prompts that share a passage longer than the encoder's window embed alike."""
    passage = "Read the passage. " + " ".join(f"sentence {i} of a long story." for i in range(300))
    train = _rows("train", 8)
    train[0][1], train[1][1] = passage + " Q: who?", passage + " Q: when?"
    test = _rows("test", 4)
    test[0][1] = passage + " Q: where?"
    folder = _folder(tmp_path / "long", train=train, test=test)
    code, out, _ = _run(["data", "info", str(folder), "--encoder", "minilm",
                         "--format", "json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["duplicates"]["train"] == 0 and info["leaks"]["test-train"] == 0
    assert info["identical_embeddings"]["within"]["train"] == 1
    assert info["identical_embeddings"]["across"]["test-train"] == 1
    code, out, err = _run(["data", "info", str(folder), "-e", "minilm"], capsys)
    assert "identical embeddings within (minilm)" in out
    assert "1 test row embeds identically to a train row" in err


def test_data_info_prints_names_as_written(tmp_path: Path, capsys):
    train = _rows("train", 8)
    train[0][2] = "[bold]loud[/bold]"
    folder = _folder(tmp_path / "names", train=train)
    code, out, _ = _run(["data", "info", str(folder)], capsys)
    assert code == 0 and "[bold]loud[/bold]" in out
    code, out, _ = _run(["data", "info", str(folder), "--format", "markdown"], capsys)
    assert "| [bold]loud[/bold] | 1 | 0 | 0 | 1 |" in out


def test_data_build_help_says_urls_work(capsys):
    code, out, _ = _run(["data", "build", "--help"], capsys)
    assert code == 0 and "DIRECTORY|URL" in out and "http" in out


def test_a_one_file_dataset_is_checked_once_as_a_whole(tmp_path: Path):
    """A column problem of a one-file dataset is one problem, not one per split; and a
    JSON prompt that is a number is refused, not turned into text."""
    one_file = tmp_path / "one.csv"
    _write(one_file, [[*r, s, "red"] for s in ("train", "validation", "test")
                      for r in _rows(s, 4)], [*HEADER, "split", "colour"])
    problems = validate_path(one_file)
    assert [p.column for p in problems] == ["colour"]
    lines = [json.dumps({"id": f"r{i}", "prompt": 5 if i == 2 else "q", "group": "g",
                         "score:a": 1, "cost:a": 0.1, "split": "train"}) for i in range(3)]
    (tmp_path / "one.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = validate_path(tmp_path / "one.jsonl")
    assert "row 2, column 'prompt': prompt must be a string, got 5" in str(problems[0])


def test_a_fifo_inside_a_saved_dataset_is_refused(tmp_path: Path, no_hang):
    task = task_from_table(_columns(), name="mine", version=1, source="memory")
    out = write_task(task, tmp_path / "saved")
    arrow_file = next((out / "test").glob("*.arrow"))
    arrow_file.unlink()
    os.mkfifo(arrow_file)
    problems = validate_path(out)
    assert len(problems) == 1 and str(arrow_file) in str(problems[0])
    assert "not a regular file" in str(problems[0])


def test_a_hub_dataset_goes_through_the_same_validation(tmp_path: Path, monkeypatch):
    """No network here: the Hub download is replaced by a local DatasetDict and sidecar."""
    import datasets
    import huggingface_hub

    columns = _columns()
    saved = write_task(task_from_table(columns, name="x", version=1, source="m"),
                       tmp_path / "hub")
    dataset_dict = datasets.load_from_disk(str(saved))
    sidecar = tmp_path / "sidecar" / "routing.json"
    sidecar.parent.mkdir()
    sidecar.write_text(json.dumps({"name": "hubtask", "version": 3}), encoding="utf-8")
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, revision=None: dataset_dict)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(sidecar))
    task = load_task("hub:org/data@v1:a")
    assert (task.name, task.version, task.revision) == ("hubtask:a", 3, "v1")
    assert task.source == "hub:org/data@v1"
    sidecar.write_text(json.dumps({"name": "hubtask", "version": "3"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"routing\.json: version: expected an integer, got \"3\""):
        load_task("hub:org/data")
    sidecar.write_text("{}", encoding="utf-8")
    bad = dataset_dict["train"].map(lambda row: {"cost:small": 0.0, "cost:large": 0.0})
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda repo, revision=None: datasets.DatasetDict(
                            {**dataset_dict, "train": bad}))
    with pytest.raises(DataError, match=r"hub:org/data\[train\]: every cost in split"):
        load_task("hub:org/data")


def test_data_info_json_is_strict_json(tmp_path: Path, capsys):
    train = _rows("train", 8)
    for i, row in enumerate(train):  # no train row has both scores: its oracle is n/a
        if i % 2:
            row[3:5] = ["", ""]
        else:
            row[5:7] = ["", ""]
    folder = _folder(tmp_path / "gaps", train=train)
    code, out, _ = _run(["data", "info", str(folder), "--json"], capsys)

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    info = json.loads(out, parse_constant=refuse)
    assert code == 0 and info["oracle"]["train"] is None and info["oracle"]["test"] == 100.0
