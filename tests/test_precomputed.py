"""Bring-your-own embeddings: the ``embedding`` column through every layout and the
canonical writer, its validation (both modes, one-line errors naming file, row and
column), and the ``precomputed`` encoder that routes on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import DataError, RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.data.readers import load_path, validate_path, write_task
from routeharness.data.synth import synthetic_task
from routeharness.embedding.embed import PrecomputedEncoder, embed_task
from routeharness.embedding.encoders import get_encoder
from routeharness.routers.base import one_torch_thread

SPLITS = ("train", "validation", "test")


def _rows(split: str, n: int, dim: int = 2) -> list[dict]:
    """``n`` valid rows of a two-model split; row i's vector is [i, -i, ...] + offsets."""
    rows = []
    for i in range(n):
        rows.append({"id": f"{split}-{i}", "prompt": f"{split} prompt {i}", "group": "g",
                     "score:a": float(i % 2), "score:b": 1.0 - i % 2, "cost:a": 1.0,
                     "cost:b": 2.0, "embedding": [float(i) + 0.25 * k for k in range(dim)]})
    return rows


def _write(folder: Path, splits: dict[str, list[dict]], suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        path = folder / f"{split}{suffix}"
        if suffix == ".jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            continue
        names = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            for row in rows:
                cell = row.get("embedding")
                if not isinstance(cell, str) and cell is not None:
                    row = {**row, "embedding": json.dumps(cell)}
                writer.writerow(row)
    return folder


def _valid(dim: int = 2) -> dict[str, list[dict]]:
    return {split: _rows(split, 4, dim) for split in SPLITS}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_column_round_trips_through_csv_json_lines_and_write_task(tmp_path, suffix):
    source = _write(tmp_path / "in", _valid(dim=3), suffix)
    assert validate_path(source) == []
    task = load_path(source)
    for split in SPLITS:
        expected = np.array([[i, i + 0.25, i + 0.5] for i in range(4)], dtype=np.float32)
        assert task.splits[split].embeddings.dtype == np.float32
        assert task.splits[split].embeddings.flags.writeable
        np.testing.assert_array_equal(task.splits[split].embeddings, expected)
    # the canonical writer stores it (list<float>) and the reader gives the same numbers
    written = write_task(task, tmp_path / "out")
    again = load_path(written)
    assert again.splits["test"].embeddings.flags.writeable  # not a view of Arrow's buffer
    for split in SPLITS:
        np.testing.assert_array_equal(again.splits[split].embeddings,
                                      task.splits[split].embeddings)
    assert again.fingerprint() == task.fingerprint()
    # subsets (groups, derived tasks) keep each row's vector
    part = again.splits["train"].subset(np.array([False, True, False, True]))
    np.testing.assert_array_equal(part.embeddings, task.splits["train"].embeddings[[1, 3]])


def test_a_parquet_list_column_and_a_one_file_csv_read_the_same(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "pq"
    folder.mkdir()
    for split, rows in _valid().items():
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}.parquet")
    one = tmp_path / "one.csv"
    rows = [{**r, "split": s, "embedding": json.dumps(r["embedding"])}
            for s, split_rows in _valid().items() for r in split_rows]
    with open(one, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    a, b = load_path(folder), load_path(one)
    for split in SPLITS:
        np.testing.assert_array_equal(a.splits[split].embeddings, b.splits[split].embeddings)


def test_vectors_change_the_fingerprint_and_data_without_them_keep_theirs(tmp_path):
    plain = _valid()
    for rows in plain.values():
        for row in rows:
            del row["embedding"]
    without = load_path(_write(tmp_path / "plain", plain, ".csv"))
    assert all(d.embeddings is None for d in without.splits.values())
    with_vectors = load_path(_write(tmp_path / "vec", _valid(), ".csv"))
    moved = _valid()
    moved["test"][0]["embedding"] = [0.0, 0.5]  # one number of one row differs
    other = load_path(_write(tmp_path / "moved", moved, ".csv"))
    assert len({without.fingerprint(), with_vectors.fingerprint(), other.fingerprint()}) == 3
    # a task without vectors hashes as it did before the column existed
    data = with_vectors.splits["train"]
    bare = data.subset(np.arange(data.n))
    bare.embeddings = None
    assert bare.fingerprint() == without.splits["train"].fingerprint()


def _bad(tmp_path: Path, suffix: str, edit) -> tuple[list[DataError], Path]:
    splits = _valid()
    edit(splits)
    folder = _write(tmp_path / "bad", splits, suffix)
    return validate_path(folder), folder


BAD_CELLS = [  # (layout, split, row, cell, what the message says)
    (".csv", "train", 2, "", "missing embedding"),
    (".jsonl", "validation", 1, None, "missing embedding"),
    (".csv", "train", 1, "[1, 2, 3]", "embedding has 3 numbers, but row 0 has 2"),
    (".jsonl", "test", 3, [5.0], "embedding has 1 number, but row 0 has 2"),
    (".csv", "test", 0, "[NaN, 1]", "embedding value 0 is nan: every number must be finite"),
    (".csv", "train", 3, "[1, Infinity]", "embedding value 1 is inf"),
    (".csv", "train", 3, "[1, -1e39]", "embedding value 1 is -1e+39"),
    (".jsonl", "train", 2, [1.0, None], "embedding value 1 is null"),
    (".csv", "validation", 2, "not a list", "must be a JSON array of numbers, got 'not a list'"),
    (".jsonl", "train", 0, 5, "embedding must be a list of numbers, got int '5'"),
    (".jsonl", "train", 1, "[1, 2]x", "must be a JSON array of numbers"),
    (".jsonl", "test", 2, [[1.0], [2.0]], "embedding value 0 is [1.0], not a number"),
    (".jsonl", "train", 2, [True, 1.0], "embedding value 0 is true, not a number"),
    (".csv", "train", 1, "[]", "empty embedding: a vector needs at least one number"),
]


@pytest.mark.parametrize("suffix, split, row, cell, says", BAD_CELLS)
def test_each_bad_cell_is_one_line_naming_file_row_and_column(tmp_path, suffix, split, row,
                                                              cell, says):
    def edit(splits):
        splits[split][row]["embedding"] = cell

    problems, folder = _bad(tmp_path, suffix, edit)
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert (problem.row, problem.column) == (row, "embedding")
    assert problem.source == str(folder / f"{split}{suffix}")
    assert says in problem.detail and "\n" not in str(problem)
    with pytest.raises(DataError) as raised:  # eval's mode: the same check, stops there
        load_path(folder)
    assert str(raised.value) == str(problem)


def test_every_problem_is_listed_and_splits_must_agree(tmp_path):
    def cells(splits):
        splits["train"][1]["embedding"] = "[1, nan]"  # JSON spells it NaN
        splits["train"][2]["embedding"] = ""

    problems, _ = _bad(tmp_path / "cells", ".csv", cells)
    assert [(Path(p.source).name, p.row, p.detail.split(":")[0]) for p in problems] == [
        ("train.csv", 1, "embedding must be a JSON array of numbers, got '[1, nan]'"),
        ("train.csv", 2, "missing embedding")]

    def splits_disagree(splits):
        for row in splits["test"]:
            row["embedding"] = [1.0, 2.0, 3.0]
        for row in splits["validation"]:
            del row["embedding"]

    problems, _ = _bad(tmp_path / "splits", ".csv", splits_disagree)
    assert [(Path(p.source).name, p.row, p.column, p.detail) for p in problems] == [
        ("validation.csv", None, "embedding", "no 'embedding' column, but split 'train' has "
         "one: every row of every split needs an embedding"),
        ("test.csv", None, "embedding", "embeddings of dimension 3, but split 'train' has 2: "
         "one dimension for the whole dataset")]


def test_one_file_errors_name_the_file_row(tmp_path):
    rows = [{**r, "split": s, "embedding": json.dumps(r["embedding"])}
            for s, split_rows in _valid().items() for r in split_rows]
    rows[9]["embedding"] = "[1, 2, 3]"
    path = tmp_path / "one.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    problems = validate_path(path)
    assert [(p.row, p.column) for p in problems] == [(9, "embedding")]


def test_the_precomputed_encoder_takes_the_column_and_refuses_a_task_without_it(tmp_path):
    encoder = get_encoder("precomputed")
    assert isinstance(encoder, PrecomputedEncoder)
    task = load_path(_write(tmp_path / "vec", _valid(dim=3), ".jsonl"))

    class NoCache:  # precomputed vectors never touch the cache
        def embed(self, *args, **kwargs):
            raise AssertionError("the cache was used")

    embedded = embed_task(task, encoder, NoCache(), Reporter())
    for split in SPLITS:
        np.testing.assert_array_equal(embedded.X[split], task.splits[split].embeddings)
    assert (embedded.encoded, embedded.cached) == (0, 0)
    bound = encoder.for_tasks([task])
    assert bound.identity.startswith("precomputed:") and bound.identity in embedded.notes[0]
    moved = _valid(dim=3)
    moved["train"][0]["embedding"] = [9.0, 9.0, 9.0]
    other = load_path(_write(tmp_path / "moved", moved, ".jsonl"))
    assert encoder.for_tasks([other]).identity != bound.identity
    with pytest.raises(RouteHarnessError, match="encodes no text"):
        encoder.encode(["x"])
    plain = _valid()
    for rows in plain.values():
        for row in rows:
            del row["embedding"]
    without = load_path(_write(tmp_path / "plain", plain, ".csv"))
    with pytest.raises(RouteHarnessError) as raised:
        embed_task(without, encoder, NoCache(), Reporter())
    message = str(raised.value)
    assert "has no 'embedding' column" in message and "\n" not in message


def test_knn_is_near_the_oracle_on_a_strongly_local_task_with_its_own_vectors(tmp_path):
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    task, X = synthetic_task(300, 100, 200, n_models=4, n_clusters=6, dim=16,
                             locality=1.0, seed=5)
    for split, data in task.splits.items():
        data.embeddings = X[split]
    folder = write_task(task, tmp_path / "local")
    with one_torch_thread():
        result = evaluate(["knn"], [str(folder)], encoder="precomputed",
                          protocol=Protocol(seeds=(0,), n_bootstrap=20),
                          cache_dir=str(tmp_path / "cache"))
    auc = {r.router: r.metrics.auc for r in result.records}
    oracle = result.tasks["synthetic"].oracle.auc
    print(f"knn {auc['knn']:.2f}, oracle {oracle:.2f}, random {auc['random']:.2f}")
    assert auc["knn"] > oracle - 2.0 and auc["knn"] > auc["random"] + 30
    assert not any(path.is_file() for path in (tmp_path / "cache").rglob("*"))  # no cache
