"""The data path's hostile findings (after issue 10): image cells that name a FIFO, a
device, a folder or nothing; a ``split`` column that contradicts its split file; names
with control characters or outer whitespace; invisible prompts and blank ``embed_text``;
an empty ``models`` list and repeated keys in ``routing.json``; task specs with an empty
group, an empty revision or two groups; a dataset folder that cannot be listed.

Each is one line naming the file, row and column (or the spec), in both modes of the one
validation: ``data validate`` (every problem) and loading for eval (the first)."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest

from routeharness.cli._app import main
from routeharness.common.errors import DataError, RouteHarnessError, TaskCardError
from routeharness.data.cards import parse_card
from routeharness.data.readers import validate_path
from routeharness.data.spec import parse_hub_spec, parse_task_spec
from routeharness.data.tasks import load_task

HEADER = ["id", "prompt", "group", "score:small", "cost:small", "score:large", "cost:large"]


def _rows(split: str, n: int) -> list[list[str]]:
    return [[f"{split}-{i}", f"Question {i} of {split}: explain topic {split}{i}.",
             "a" if i % 2 else "b", str(i % 2), "0.001", "1", "0.01"] for i in range(n)]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _folder(path: Path, header: list[str] = HEADER, **splits: list[list[str]]) -> Path:
    """A valid folder of split files; ``splits`` replaces a split's rows."""
    path.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 8), ("validation", 4), ("test", 4)):
        _write(path / f"{split}.csv", splits.get(split, _rows(split, n)), header)
    return path


def _with_column(name: str, values: dict[str, list[str]], path: Path) -> Path:
    """A folder whose splits have an extra column ``name`` (values per split, default
    empty cells)."""
    rows = {s: [[*r, v] for r, v in zip(_rows(s, n), values.get(s, [""] * n))]
            for s, n in (("train", 8), ("validation", 4), ("test", 4))}
    return _folder(path, [*HEADER, name], **rows)


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _both_modes(path: Path) -> tuple[list[DataError], DataError]:
    """Every problem (``data validate``) and the first (loading for eval)."""
    problems = validate_path(path)
    with pytest.raises(DataError) as caught:
        load_task(str(path))
    return problems, caught.value


@pytest.fixture
def no_hang():
    """A read that blocks (a FIFO, /dev/zero) fails the test instead of hanging it."""
    def expire(signum, frame):
        raise TimeoutError("blocked on an image cell")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# --- 3: an image cell must name a readable regular file ----------------------------------
def _image_target(kind: str, tmp_path: Path) -> str:
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe.png")
        return str(tmp_path / "pipe.png")
    if kind == "device":
        return "/dev/zero"
    if kind == "directory":
        return str(tmp_path)
    return str(tmp_path / "nope.png")


@pytest.mark.parametrize("kind, reason", [
    ("fifo", "not a regular file"), ("device", "not a regular file"),
    ("directory", "is a directory"), ("missing", "No such file")])
def test_image_cell_that_is_not_a_regular_file_is_one_error(kind, reason, tmp_path: Path,
                                                             capsys, no_hang):
    if kind == "device" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    target = _image_target(kind, tmp_path)
    data = _with_column("image", {"train": [target] + [""] * 7}, tmp_path / "d")
    problems, first = _both_modes(data)
    assert [(p.source, p.row, p.column) for p in problems] == [
        (str(data / "train.csv"), 0, "image")]
    assert reason in str(problems[0]) and target in str(problems[0])
    assert str(first) == str(problems[0])
    code, out, err = _run(["data", "validate", str(data)], capsys)
    assert code == 1 and "Traceback" not in out + err
    assert f"{data / 'train.csv'}, row 0, column 'image'" in out + err


def test_image_cell_naming_a_regular_file_passes(tmp_path: Path, no_hang):
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG not really")
    data = _with_column("image", {"train": [str(picture)] + [""] * 7}, tmp_path / "d")
    assert validate_path(data) == []
    assert load_task(str(data)).splits["train"].images[0] == str(picture)


# --- 9: a split column inside a split file ------------------------------------------------
@pytest.mark.parametrize("value", ["test", "banana"])
def test_split_column_contradicting_its_split_file_is_refused(value, tmp_path: Path):
    data = _with_column("split", {"train": [value] * 8, "validation": ["validation"] * 4,
                                  "test": ["test"] * 4}, tmp_path / "d")
    problems, first = _both_modes(data)
    assert [(p.source, p.row, p.column) for p in problems] == [
        (str(data / "train.csv"), row, "split") for row in range(8)]
    assert repr(value) in str(first) and "'train'" in str(first)


def test_split_column_repeating_its_split_file_is_accepted(tmp_path: Path):
    data = _with_column("split", {"train": ["train"] * 8, "validation": ["validation"] * 4,
                                  "test": ["test"] * 4}, tmp_path / "d")
    assert validate_path(data) == []
    assert load_task(str(data)).splits["train"].n == 8


# --- 11: names, invisible prompts, blank embed_text --------------------------------------
@pytest.mark.parametrize("name", ["\x1b[31mRED\x1b[0m", "two\nlines", "zero\u200bwidth",
                                  " small ", "small "])
def test_model_name_with_control_characters_or_outer_whitespace_is_refused(name,
                                                                           tmp_path: Path):
    header = [*HEADER[:3], f"score:{name}", f"cost:{name}", *HEADER[5:]]
    data = _folder(tmp_path / "d", header)
    problems, first = _both_modes(data)
    assert problems and all(p.column in (f"score:{name}", f"cost:{name}") for p in problems)
    assert "\x1b" not in str(first) and "\n" not in str(first)
    assert ("whitespace" if name.strip() == "small" else "character U+") in str(first)


@pytest.mark.parametrize("group", ["\x1b]8;;http://evil\x07click\x1b]8;;\x07", "a\u200b",
                                   " a", "a\n"])
def test_group_name_with_control_characters_or_outer_whitespace_is_refused(group,
                                                                           tmp_path: Path):
    train = _rows("train", 8)
    train[3][2] = group
    data = _folder(tmp_path / "d", train=train)
    problems, first = _both_modes(data)
    assert [(p.source, p.row, p.column) for p in problems] == [
        (str(data / "train.csv"), 3, "group")]
    assert "\x1b" not in str(first) and "\n" not in str(first)


@pytest.mark.parametrize("prompt", ["\u200b", "\u200b\u200d\ufeff", "\u00a0\u3000",
                                    "\u2800", "\t\n"])
def test_prompt_of_invisible_characters_is_blank(prompt, tmp_path: Path):
    train = _rows("train", 8)
    train[2][1] = prompt
    data = _folder(tmp_path / "d", train=train)
    problems, first = _both_modes(data)
    assert [(p.row, p.column) for p in problems] == [(2, "prompt")]
    assert "empty prompt" in str(first)


def test_invisible_prompt_with_an_image_is_accepted(tmp_path: Path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"pixels")
    train = [[*r, ""] for r in _rows("train", 8)]
    train[2][1], train[2][-1] = "\u200b", str(picture)
    data = _folder(tmp_path / "d", [*HEADER, "image"], train=train,
                   validation=[[*r, ""] for r in _rows("validation", 4)],
                   test=[[*r, ""] for r in _rows("test", 4)])
    assert validate_path(data) == []


@pytest.mark.parametrize("text", ["", "   ", "\u200b"])
def test_blank_embed_text_is_refused(text, tmp_path: Path):
    values = {s: [f"embed {s} {i}" for i in range(n)]
              for s, n in (("train", 8), ("validation", 4), ("test", 4))}
    values["train"][0] = text
    data = _with_column("embed_text", values, tmp_path / "d")
    problems, first = _both_modes(data)
    assert [(p.row, p.column) for p in problems] == [(0, "embed_text")]
    assert "blank embed_text" in str(first)


def test_model_names_differing_only_in_unicode_normalisation_are_refused(tmp_path: Path):
    header = [*HEADER[:3], "score:cafe\u0301", "cost:cafe\u0301", "score:caf\u00e9",
              "cost:caf\u00e9"]
    problems, first = _both_modes(_folder(tmp_path / "d", header))
    assert len(problems) == 3  # one per split
    assert "look the same" in str(first) and "\\u0301" in str(first)


def test_routing_json_and_card_names_with_control_characters_are_refused(tmp_path: Path):
    data = _folder(tmp_path / "d")
    for meta, where in (({"models": [{"name": "small\x1b[2J"}, {"name": "large"}]},
                         "models[0]"),
                        ({"groups": {"a\u200b": "", "b": ""}}, "groups"),
                        ({"name": "task\n"}, "name")):
        (data / "routing.json").write_text(json.dumps(meta), encoding="utf-8")
        problems, first = _both_modes(data)
        assert len(problems) == 1 and where in str(first)
        assert "\x1b" not in str(first) and "\n" not in str(first)
    card = {"name": "t", "version": 1, "description": "", "license": "", "citation": "",
            "source": {}, "score": {}, "cost": {}, "splits": {},
            "models": [{"name": " small"}]}
    with pytest.raises(TaskCardError, match="whitespace"):
        parse_card(card, Path("t.yaml"))


# --- minor: routing.json, task specs, unreadable folders --------------------------------
def test_routing_json_with_no_models_or_a_repeated_key_is_refused(tmp_path: Path):
    data = _folder(tmp_path / "d")
    for text, reason in (('{"models": []}', "at least one model"),
                         ('{"name": "a", "name": "b"}', "key 'name' is given twice"),
                         ('{"models": [{"name": "small", "name": "large"}]}',
                          "key 'name' is given twice")):
        (data / "routing.json").write_text(text, encoding="utf-8")
        problems, first = _both_modes(data)
        assert len(problems) == 1 and reason in str(first)
        assert str(data / "routing.json") in str(first)


def test_task_spec_with_an_empty_group_or_revision_or_two_groups(tmp_path: Path,
                                                                 monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "d_ok")
    known = ["routerbench"]
    for spec, reason in (("d_ok:", "empty group"), ("routerbench:", "empty group"),
                         ("d_ok:science:general", "at most one ':GROUP'"),
                         (":science", "no task before ':'"),
                         ("hub:a/b@", "empty revision"), ("hub:a/b@main:", "empty group"),
                         ("hub:a/b:", "empty group")):
        with pytest.raises(RouteHarnessError, match=reason):
            parse_task_spec(spec, known)
    with pytest.raises(RouteHarnessError, match="empty revision"):
        parse_hub_spec("a/b@")
    assert parse_task_spec("d_ok:a", known).group == "a"
    assert parse_task_spec("routerbench:a:b", known).group == "a:b"  # the registry judges
    code, out, err = _run(["data", "info", "d_ok:"], capsys)
    assert code == 1 and (out + err).strip().count("\n") == 0 and "empty group" in out + err


def test_unlistable_dataset_folder_names_the_folder(tmp_path: Path, monkeypatch):
    data = _folder(tmp_path / "d")
    real_listdir, real_stat, real_lstat = os.listdir, os.stat, os.lstat

    def denied(call):
        def inner(path, *args, **kwargs):
            if str(path).startswith(str(data)) and (call is real_listdir
                                                    or str(path) != str(data)):
                raise PermissionError(13, "Permission denied", str(path))
            return call(path, *args, **kwargs)
        return inner

    monkeypatch.setattr(os, "listdir", denied(real_listdir))
    monkeypatch.setattr(os, "stat", denied(real_stat))
    monkeypatch.setattr(os, "lstat", denied(real_lstat))
    problems, first = _both_modes(data)
    assert [str(p) for p in problems] == [str(first)]
    assert str(first) == f"{data}: cannot list the dataset folder: Permission denied"
    assert "routing.json" not in str(first)


def test_data_validate_says_a_group_does_not_narrow_it(capsys):
    """``data validate PATH:GROUP`` used to say "no such file" for a folder that exists."""
    from routeharness.cli._app import main

    folder = Path(__file__).resolve().parent / "data" / "malformed" / "valid"
    with pytest.raises(SystemExit) as info:
        main(["data", "validate", f"{folder}:g1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(err) == 1
    assert "checks a whole dataset; pass" in err[0] and str(folder) in err[0]
