"""``routeharness eval``'s failure classes, through the real CLI in-process: outputs that
would overwrite an input, unwritable outputs, numbers that would exhaust memory or
overflow, results saved before anything is printed, fixed hyper-parameters; and the
plain progress lines printed when standard error is not a terminal."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from test_eval_protocol import ENCODER, hash_encoder, tiny_task, write_dataset  # noqa: F401

from routeharness.cli._app import main


def eval_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``routeharness eval ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        main(["eval", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error"), err
    return lines[0]


# --- output over input: refused before any work --------------------------------------------
def test_output_equal_to_the_dataset_file_is_refused(capsys, tmp_path):
    data = write_dataset(tmp_path / "mine.csv")
    before = data.read_bytes()
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", str(data), "-o", str(data), "-q")
    assert code == 1
    assert "--output" in one_error(err) and "would overwrite the input" in err
    assert data.read_bytes() == before


def test_output_onto_a_split_file_of_a_dataset_folder_is_refused(capsys, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        (folder / f"{split}.csv").write_text("id,prompt\n", encoding="utf-8")
    before = (folder / "test.csv").read_bytes()
    for target in (folder / "test.csv", folder / "new.json"):
        code, _, err = eval_cli(capsys, "-r", "knn", "-t", f"{folder}:g1", "-o", str(target))
        assert code == 1 and "would overwrite the input" in one_error(err)
    assert (folder / "test.csv").read_bytes() == before and not (folder / "new.json").exists()


def test_output_equal_to_the_plot_is_refused(capsys, tmp_path):
    same = tmp_path / "x.png"
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench", "-o", str(same),
                            "--plot", str(same))
    assert code == 1 and "--output and --plot are the same file" in one_error(err)


def test_output_inside_the_data_dir_is_refused(capsys, tmp_path):
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench", "--data-dir",
                            str(tmp_path), "-o", str(tmp_path / "r.json"))
    assert code == 1 and "would overwrite the input" in one_error(err)


# --- outputs that cannot be written ----------------------------------------------------------
def test_an_output_under_a_file_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench",
                            "-o", str(blocker / "r.json"))
    assert code == 1 and "is not a directory" in one_error(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_folder_is_one_line(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench",
                                "-o", str(locked / "r.json"))
    finally:
        locked.chmod(stat.S_IRWXU)
    assert code == 1 and "is not writable" in one_error(err)


def test_an_unwritable_output_is_one_line_even_for_root(capsys, tmp_path, monkeypatch):
    import routeharness.cli.evaluation as evaluation

    real_access = os.access
    monkeypatch.setattr(evaluation.os, "access",  # nothing writable, as for a non-root user
                        lambda path, mode: not mode & os.W_OK and real_access(path, mode))
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench",
                            "-o", str(tmp_path / "r.json"))
    assert code == 1 and "is not writable" in one_error(err)
    existing = tmp_path / "old.json"
    existing.write_text("{}", encoding="utf-8")
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench", "-o", str(existing))
    assert code == 1 and f"--output {existing} is not writable" in one_error(err)


# --- numbers accepted until they crash ---------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (("--bootstrap", "-1"), "-1 is not in the range 0<=x<=100000"),
    (("--bootstrap", "100000000"), "is not in the range 0<=x<=100000"),
    (("--bootstrap", "99999999999999999999"), "is not in the range"),
    (("--seeds", "1,,2"), "an empty seed between commas"),
    (("--seeds", "0-100000000"), "at most 1000 seeds"),
    (("--seeds", "99999999999999"), "below 2**32"),
    (("--seeds", "0-999,1000"), "at most 1000 seeds"),
    (("--seeds", "-3"), "non-negative"),
])
def test_numbers_that_would_crash_are_refused_at_once(capsys, tmp_path, args, message):
    code, _, err = eval_cli(capsys, "-r", "knn", "-t", "routerbench",
                            "-o", str(tmp_path / "r.json"), *args)
    assert code == 2 and message in err
    assert not (tmp_path / "r.json").exists()


def test_a_bad_fixed_parameter_is_one_line_listing_the_parameters(capsys, tmp_path):
    code, _, err = eval_cli(capsys, "-r", "knn:kk=3", "-t", "routerbench",
                            "-o", str(tmp_path / "r.json"))
    assert code == 1
    assert "router 'knn' has no parameter 'kk'; its parameters: ef_search, index, k, nprobe, prior, recall, weighting" in one_error(err)


# --- results saved before anything is printed ---------------------------------------------------
def test_results_are_saved_before_the_tables_are_printed(capsys, tmp_path, hash_encoder,
                                                         tiny_task, monkeypatch):
    import routeharness.cli.evaluation as evaluation

    def crashing_print(result, fmt="rich"):
        raise RuntimeError("a name that breaks the renderer")

    monkeypatch.setattr(evaluation, "print_tables", crashing_print)
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError, match="breaks the renderer"):
        main(["eval", "-r", "knn:k=5", "-t", tiny_task, "-e", ENCODER, "-o", str(out),
              "--bootstrap", "10", "-q", "--cache-dir", str(tmp_path / "cache")])
    saved = json.loads(out.read_text())
    assert saved["records"][0]["router"] == "knn:k=5"
    assert saved["records"][0]["fixed_params"] == {"k": 5}
    assert not (tmp_path / "r.json.partial").exists()


# --- progress when standard error is not a terminal ---------------------------------------------
def test_plain_progress_lines_name_the_work_without_flooding():
    from rich.console import Console

    from routeharness.cli.progress import RichReporter

    buffer = io.StringIO()
    reporter = RichReporter(console=Console(file=buffer, width=60, force_terminal=False))
    reporter.log("task [bold]x[/bold] loaded")
    with reporter.progress("routing [red]t", 1000) as advance:
        for i in range(1000):
            advance(1, f"knn seed 0: tuning {i + 1}/1000 (k=[5])")
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "• task [bold]x[/bold] loaded"  # names are plain text
    assert 3 <= len(lines) <= 13, lines  # start, each tenth, the end: not 1000 lines
    assert lines[1].startswith("routing [red]t: 0/1000 (0%)")
    assert any("(k=[5])" in line and "100/1000 (10%)" in line for line in lines)
    assert lines[-1].startswith("routing [red]t: 1000/1000 (100%)")
    assert lines[-1].endswith("(done)")
    assert all(len(line) > 60 for line in lines[2:-1])  # never wrapped at the console width
