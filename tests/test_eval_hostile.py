"""Failures a hostile tester found in ``eval`` after the redesign, each reproduced: a fixed
hyper-parameter the router refuses, a bootstrap count that would hang, an output written
into the embedding cache, two tasks of one name pooled into one, and a checkpoint that
cannot be resumed (malformed, or with numbers that do not follow from its curves)."""

from __future__ import annotations

import json
import shutil

import pytest
from test_eval_cli import eval_cli, one_error
from test_eval_protocol import (  # noqa: F401 (fixtures)
    ENCODER,
    hash_encoder,
    tiny_task,
    write_dataset,
)

from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation.protocol import MAX_BOOTSTRAP, Protocol


def _args(tmp_path, task: str, *extra: str) -> list[str]:
    return ["-t", task, "-e", ENCODER, "--no-references", "--bootstrap", "0", "-q",
            "--cache-dir", str(tmp_path / "cache"), *extra]


@pytest.mark.parametrize("spec, words", [
    ("knn:k=-1", "k must be >= 1"),
    ("knn:k=0", "k must be >= 1"),
    ("knn:weighting=bogus", "weighting"),
])
def test_a_fixed_parameter_the_router_refuses_is_one_line(capsys, tmp_path, hash_encoder,
                                                          tiny_task, spec, words):
    out = tmp_path / "r.json"
    code, _, err = eval_cli(capsys, "-r", spec, *_args(tmp_path, tiny_task, "-o", str(out)))
    line = one_error(err)
    assert code == 1 and spec in line and "refuses its fixed hyper-parameters" in line
    assert words in line and not out.exists()


def test_the_protocol_refuses_numbers_that_would_hang_whoever_builds_it():
    for bad in (-1, MAX_BOOTSTRAP + 1, 10 ** 20, 1.5, True):
        with pytest.raises(RouteHarnessError, match="n_bootstrap"):
            Protocol(n_bootstrap=bad)
    for seeds in ((), (0, 0), (-1,), (2 ** 32,), tuple(range(1001))):
        with pytest.raises(RouteHarnessError, match="seeds"):
            Protocol(seeds=seeds)
    with pytest.raises(RouteHarnessError, match="max_configs"):
        Protocol(max_configs=0)
    assert Protocol(n_bootstrap=MAX_BOOTSTRAP).n_bootstrap == MAX_BOOTSTRAP


def test_an_output_inside_the_embedding_cache_is_refused(capsys, tmp_path, hash_encoder,
                                                         tiny_task):
    cache = tmp_path / "cache"
    cache.mkdir()
    entry = cache / "entry.json"
    entry.write_text("{}", encoding="utf-8")
    for target in (entry, cache / "sub" / "new.json"):
        code, _, err = eval_cli(capsys, "-r", "knn", *_args(tmp_path, tiny_task, "-o",
                                                             str(target)))
        assert code == 1 and "would overwrite the input" in one_error(err)
    assert entry.read_text(encoding="utf-8") == "{}"


def test_two_tasks_of_one_name_are_refused_not_pooled(capsys, tmp_path, hash_encoder):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    first = write_dataset(tmp_path / "one" / "dd.csv", seed=1)
    second = write_dataset(tmp_path / "two" / "dd.csv", seed=2)
    out = tmp_path / "r.json"
    code, _, err = eval_cli(capsys, "-r", "knn", *_args(tmp_path, str(first), "-t",
                                                         str(second), "-o", str(out)))
    line = one_error(err)
    assert code == 1 and "are both named 'dd'" in line and not out.exists()
    code, _, err = eval_cli(capsys, "-r", "knn", *_args(tmp_path, str(first), "-t",
                                                         str(first), "-o", str(out)))
    assert code == 1 and "both named" in one_error(err)


def _checkpoint(capsys, tmp_path, task: str) -> tuple[list[str], dict]:
    """A finished run's results copied to OUTPUT.partial, as an interrupted run leaves."""
    out = tmp_path / "r.json"
    args = ["-r", "knn", *_args(tmp_path, task, "-o", str(out))]
    code, _, err = eval_cli(capsys, *args)
    assert code == 0, err
    shutil.copy(out, f"{out}.partial")
    return args, json.loads(out.read_text(encoding="utf-8"))


def test_a_malformed_checkpoint_is_one_line_without_the_resume_hint(capsys, tmp_path,
                                                                    hash_encoder, tiny_task):
    args, data = _checkpoint(capsys, tmp_path, tiny_task)
    del data["records"][0]["task"]
    (tmp_path / "r.json.partial").write_text(json.dumps(data), encoding="utf-8")
    code, _, err = eval_cli(capsys, *args, "--resume")
    line = one_error(err)  # one line: no "continues from there" hint for a broken file
    assert code == 1 and line.startswith(f"Error: cannot resume from {tmp_path / 'r.json'}")
    assert "records[0]" in line and "delete it or run without --resume" in line


def test_a_checkpoint_whose_numbers_do_not_follow_from_its_curves_is_refused(
        capsys, tmp_path, hash_encoder, tiny_task):
    args, data = _checkpoint(capsys, tmp_path, tiny_task)
    data["records"][0]["metrics"]["auc"] = 99.0  # forged: its curve says otherwise
    (tmp_path / "r.json.partial").write_text(json.dumps(data), encoding="utf-8")
    code, _, err = eval_cli(capsys, *args, "--resume")
    line = one_error(err)
    assert code == 1 and "metrics.auc = 99.0 does not match its curve" in line
