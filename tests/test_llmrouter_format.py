"""LLMRouter's routing-data format (``routeharness.data.llmrouter``): a built-in task
exported to it comes back with the same outcomes (missing cells stay missing), a deleted
record is a missing cell that eval excludes, prices in the candidate file give the costs,
and every bad input is one line naming its file and row. The real CLI exports, refuses an
existing output and evaluates an exported folder to the same AUC as ``write_task``'s."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from routeharness.common.errors import DataError
from routeharness.data.dataset import RoutingTask, check_task
from routeharness.data.llmrouter import (
    EMBEDDINGS_FILE,
    ROUTING_FILE,
    VALIDATION_FRACTION,
    write_llmrouter,
)
from routeharness.data.readers import load_path, validate_path, write_task
from routeharness.data.tasks import load_task

SPLITS = ("train", "validation", "test")


def _small_arc() -> tuple[RoutingTask, dict[str, np.ndarray]]:
    """RouterBench's ARC-Challenge, cut to its rows with a missing score plus a few more
    per split (real NaN cells), and seeded float32 vectors of 6 numbers per row."""
    task = load_task("routerbench:arc-challenge")
    rng = np.random.default_rng(7)
    for split, data in task.splits.items():
        rows = np.flatnonzero(~data.complete_rows()).tolist()
        rows = sorted(set(rows) | set(range(12)))
        task.splits[split] = data.subset(rows)
    check_task(task)
    return task, {s: rng.normal(size=(d.n, 6)).astype(np.float32) for s, d in task.splits.items()}


@pytest.fixture(scope="module")
def arc(tmp_path_factory):
    task, X = _small_arc()
    folder = write_llmrouter(task, tmp_path_factory.mktemp("arc") / "llmrouter", embeddings=X)
    return task, X, folder


def test_an_exported_task_reads_back_with_the_same_outcomes(arc):
    task, X, folder = arc
    assert sorted(p.name for p in folder.iterdir()) == [
        "default_llm.json", *(ROUTING_FILE.format(split=s) for s in ("test", "train",
                                                                     "validation")),
        EMBEDDINGS_FILE]
    back = load_path(folder)
    assert [m.to_dict() for m in back.models] == [m.to_dict() for m in task.models]
    missing = 0
    for split in SPLITS:
        a, b = task.splits[split], back.splits[split]
        assert b.ids == a.ids and b.prompts == a.prompts and list(b.groups) == list(a.groups)
        assert np.array_equal(b.scores, a.scores, equal_nan=True)  # NaN where upstream is
        scored = ~np.isnan(a.scores)
        assert np.array_equal(b.costs[scored], a.costs[scored])
        assert np.isnan(b.costs[~scored]).all()  # no record, no call: no cost either
        assert b.embeddings.dtype == np.float32 and np.array_equal(b.embeddings, X[split])
        missing += int((~scored).sum())
    assert missing > 0
    records = [json.loads(line) for line in (folder / ROUTING_FILE.format(split="test"))
               .read_text("utf-8").splitlines()]
    assert len(records) == int((~np.isnan(task.splits["test"].scores)).sum())
    assert {"query", "model_name", "performance", "embedding_id", "task_name"} <= set(records[0])
    vectors = torch.load(folder / EMBEDDINGS_FILE, weights_only=True)
    assert sorted(vectors) == list(range(sum(d.n for d in task.splits.values())))


def test_a_deleted_record_is_a_missing_cell(arc, tmp_path):
    task, _, folder = arc
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    path = copy / ROUTING_FILE.format(split="test")
    lines = path.read_text("utf-8").splitlines(keepends=True)
    gone = json.loads(lines[3])
    path.write_text("".join(lines[:3] + lines[4:]), "utf-8")
    back = load_path(copy).splits["test"]
    row = back.ids.index(gone["query_id"])
    column = back.model_names.index(gone["model_name"])
    assert math.isnan(back.scores[row, column]) and math.isnan(back.costs[row, column])
    expected = task.splits["test"].scores.copy()
    expected[row, column] = np.nan
    assert np.array_equal(back.scores, expected, equal_nan=True)


def _write_folder(folder: Path, records: dict[str, list[dict]], vectors: dict | None = None,
                  prices: dict | None = None) -> Path:
    """A hand-made LLMRouter folder: routing files by name, a .pt, a candidate file."""
    folder.mkdir(parents=True)
    for name, rows in records.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    if vectors is None:
        ids = {int(r["embedding_id"]) for rows in records.values() for r in rows
               if isinstance(r.get("embedding_id"), (int, float))}
        vectors = {i: torch.tensor([float(i), 1.0, -0.5]) for i in ids}
    torch.save(vectors, folder / "query_embeddings_longformer.pt")
    if prices is not None:
        (folder / "default_llm.json").write_text(json.dumps(prices), "utf-8")
    return folder


def _records(split: str, first_id: int, n: int, cost: bool = True) -> list[dict]:
    """n queries x models a, b (LLMRouter's fields; tokens instead of cost if not cost)."""
    out = []
    for i in range(n):
        for model, correct in (("a", i % 2), ("b", 1 - i % 2)):
            record = {"task_name": "g" + str(i % 2), "query": f"{split} question {i}",
                      "model_name": model, "performance": float(correct),
                      "embedding_id": first_id + i, "input_tokens": 100 + i,
                      "output_tokens": 20, "token_num": 120 + i, "response": "...",
                      "ground_truth": "A", "metric": "em_mc", "choices": None,
                      "task_id": None, "response_time": 0.5, "api_key_used": "",
                      "user_id": None, "fig_id": None}
            if cost:
                record["cost"] = 0.001 if model == "a" else 0.004
            out.append(record)
    return out


def _valid(cost: bool = True) -> dict[str, list[dict]]:
    return {"default_routing_train_data.jsonl": _records("train", 0, 20, cost),
            "default_routing_test_data.jsonl": _records("test", 100, 6, cost)}


def test_costs_from_tokens_and_prices_and_a_carved_validation(tmp_path):
    prices = {"b": {"input_price": 0.9, "output_price": 1.2, "size": "70B", "feature": "big"},
              "a": {"input_price": 0.1, "output_price": 0.2, "service": "NVIDIA"}}
    records = _valid(cost=False)
    for record in records["default_routing_test_data.jsonl"][:4]:
        record["embedding_id"] = float(record["embedding_id"])  # as pandas writes ids
    task = load_path(_write_folder(tmp_path / "f", records, prices=prices))
    assert [m.name for m in task.models] == ["b", "a"]  # the candidate file's order
    assert task.models[0].description == "big" and task.models[1].provider == "NVIDIA"
    test = task.splits["test"]
    row = test.ids.index("test-103")  # embedding_id 103: 103 input tokens, 20 output
    assert test.costs[row].tolist() == [103 * 0.9 / 1e6 + 20 * 1.2 / 1e6,  # USD per Mtok
                                        103 * 0.1 / 1e6 + 20 * 0.2 / 1e6]
    sizes = {split: data.n for split, data in task.splits.items()}
    assert sizes == {"train": 18, "validation": 2, "test": 6}  # 10% of each group of 10
    assert round(VALIDATION_FRACTION * 10) == 1
    again = load_path(tmp_path / "f")
    assert again.splits["validation"].ids == task.splits["validation"].ids  # seeded


def test_one_file_with_a_split_field(tmp_path):
    rows = [{**r, "split": "train"} for r in _records("train", 0, 10)]
    rows += [{**r, "split": "validation"} for r in _records("val", 50, 4)]
    rows += [{**r, "split": "test"} for r in _records("test", 100, 4)]
    task = load_path(_write_folder(tmp_path / "f", {"routing_data.jsonl": rows}))
    assert {s: d.n for s, d in task.splits.items()} == {"train": 10, "validation": 4, "test": 4}
    assert task.splits["train"].embeddings.shape == (10, 3)


def _mutated(change) -> dict[str, list[dict]]:
    records = _valid()
    change(records["default_routing_train_data.jsonl"])
    return records


CASES = {
    "duplicate": (lambda rows: rows.insert(3, dict(rows[2])), "a second record of "
                  "embedding_id 1 x model 'a'", 3, "model_name"),
    "performance above 1": (lambda rows: rows[5].update(performance=1.5),
                            "performance must be a number in [0, 1], got 1.5", 5, "performance"),
    "performance NaN": (lambda rows: rows[5].update(performance=float("nan")),
                        "got NaN", 5, "performance"),
    "performance null": (lambda rows: rows[5].update(performance=None),
                         "got null (a missing cell has no record)", 5, "performance"),
    "negative cost": (lambda rows: rows[6].update(cost=-1.0), "cost must be a finite", 6,
                      "cost"),
    "a 400-digit cost": (lambda rows: rows[6].update(cost=10 ** 400), "cost must be a finite",
                         6, "cost"),
    "null embedding_id": (lambda rows: rows[7].update(embedding_id=None),
                          "LLMRouter writes null when it could not embed", 7, "embedding_id"),
    "id not in the .pt": (lambda rows: rows[8].update(embedding_id=999),
                          "embedding_id 999 is not in the .pt file", 8, "embedding_id"),
    "another query": (lambda rows: rows[9].update(query="changed"),
                      "embedding_id 4 has another query in row 8", 9, "query"),
    "no cost": (lambda rows: rows[10].pop("cost"), "no input_price for model 'a'", 10,
                "model_name"),
    "a split the name contradicts": (lambda rows: rows[0].update(split="test"),
                                     "the file's name says 'train'", 0, "split"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_record_is_one_line_naming_file_row_and_field(tmp_path, case):
    change, message, row, column = CASES[case]
    records = _mutated(change)
    ids = {r["embedding_id"] for rows in records.values() for r in rows
           if isinstance(r.get("embedding_id"), int) and r["embedding_id"] != 999}
    folder = _write_folder(tmp_path / "f", records,
                           {i: torch.tensor([float(i), 1.0, -0.5]) for i in ids})
    with pytest.raises(DataError) as raised:
        load_path(folder)
    text = str(raised.value)
    assert "\n" not in text and message in text, text
    where = f"{folder / 'default_routing_train_data.jsonl'}, row {row}, column {column!r}"
    assert text.startswith(where), text


class _Custom:  # pickled into a .pt: torch.load(weights_only=True) must refuse it
    pass


PT_CASES = {
    "ragged": ({0: torch.zeros(3), 1: torch.zeros(4)}, "key 1: embedding of dimension 4, "
               "but key 0 has 3"),
    "not finite": ({0: torch.tensor([0.0, math.inf, 1.0])}, "key 0: value 1 is inf"),
    "not a tensor": ({0: "text"}, "key 0: expected a 1-d float tensor, got str"),
    "a matrix": ({0: torch.zeros(2, 3)}, "got shape [2, 3] torch.float32"),
    "integers": ({0: torch.tensor([1, 2, 3])}, "torch.int64"),
    "a string key": ({"q": torch.zeros(3)}, "keys must be integer embedding ids"),
    "a list": ([torch.zeros(3)], "expected a dict embedding_id -> tensor, got list"),
    "an object": ({0: _Custom()}, "cannot read with torch.load(weights_only=True)"),
}


@pytest.mark.parametrize("case", list(PT_CASES))
def test_each_bad_pt_file_is_one_line_naming_it(tmp_path, case):
    vectors, message = PT_CASES[case]
    folder = _write_folder(tmp_path / "f", _valid(), vectors)
    with pytest.raises(DataError) as raised:
        load_path(folder)
    text = str(raised.value)
    assert "\n" not in text and message in text, text
    assert text.startswith(str(folder / "query_embeddings_longformer.pt") + ": "), text


def _two_pt(folder: Path) -> None:
    torch.save({0: torch.zeros(3)}, folder / "other.pt")


FOLDER_CASES = {
    "two .pt files": (_valid(), _two_pt, "2 files (other.pt and query_embeddings_longformer.pt)"
                      " where one is read"),
    "two train files": ({**_valid(), "routing_train_2.jsonl": _records("t", 300, 2)}, None,
                        "one file per split: the name says train, as "
                        "default_routing_train_data.jsonl does"),
    "a name with two splits": ({**_valid(), "routing_train_test.jsonl": _records("t", 300, 2)},
                               None, "the name says test and train"),
    "no split anywhere": ({**_valid(), "routing_more.jsonl": _records("t", 300, 2)}, None,
                          "row 0, column 'split': split must be one of"),
    "no test": ({"default_routing_train_data.jsonl": _records("train", 0, 20)}, None,
                "no routing records for split 'test'"),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_each_bad_folder_is_one_line(tmp_path, case):
    records, change, message = FOLDER_CASES[case]
    folder = _write_folder(tmp_path / "f", records)
    if change is not None:
        change(folder)
    with pytest.raises(DataError) as raised:
        load_path(folder)
    assert "\n" not in str(raised.value) and message in str(raised.value), str(raised.value)


def test_validate_lists_every_bad_record(tmp_path):
    records = _valid()
    rows = records["default_routing_train_data.jsonl"]
    rows[1]["performance"] = 2
    rows[4]["embedding_id"] = "x"
    records["default_routing_test_data.jsonl"][0]["model_name"] = 7
    problems = validate_path(_write_folder(tmp_path / "f", records))
    assert [(Path(p.source).name, p.row, p.column) for p in problems] == [
        ("default_routing_test_data.jsonl", 0, "model_name"),
        ("default_routing_train_data.jsonl", 1, "performance"),
        ("default_routing_train_data.jsonl", 4, "embedding_id")]


def test_the_exporter_refuses_what_it_cannot_write(arc, tmp_path):
    task, X, _ = arc
    with pytest.raises(DataError, match="not an empty directory"):
        write_llmrouter(task, Path(__file__), embeddings=X)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty directory"):
        write_llmrouter(task, tmp_path / "full", embeddings=X)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    with pytest.raises(Exception, match="needs a query embedding per row"):
        write_llmrouter(task, tmp_path / "new", embeddings={**X, "test": X["test"][:3]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written


def test_the_cli_exports_a_datasets_own_vectors_and_refuses_a_full_output(tmp_path, cli):
    """``data export`` of a canonical JSON-lines folder with an ``embedding`` column: its
    own vectors go to the .pt, the rest comes back the same; a full output is refused."""
    source = tmp_path / "canonical"
    source.mkdir()
    rng = np.random.default_rng(3)
    for split, n in (("train", 12), ("validation", 4), ("test", 5)):
        rows = [{"id": f"{split}-{i}", "prompt": f"{split} prompt {i}", "group": "g",
                 "score:a": float(i % 2), "score:b": None if i == 1 else 0.5,
                 "cost:a": 0.001, "cost:b": 0.002,
                 "embedding": rng.normal(size=4).astype(np.float32).tolist()} for i in range(n)]
        (source / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = cli("data", "export", str(source), "--format", "llmrouter", "-o",
               str(tmp_path / "exported"))
    assert done.returncode == 0 and "4-d embeddings from precomputed" in done.stdout, done.stderr
    task, back = load_path(source), load_path(tmp_path / "exported")
    for split in SPLITS:
        a, b = task.splits[split], back.splits[split]
        assert b.ids == a.ids and np.array_equal(b.embeddings, a.embeddings)
        assert np.array_equal(b.scores, a.scores, equal_nan=True)
    again = cli("data", "export", str(source), "-o", str(tmp_path / "exported"))
    assert again.returncode == 1 and "not an empty directory" in again.stderr, again.stderr


def _three_folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A slice of RouterBench's Winogrande with lexical vectors, written by ``write_task``
    and by ``write_llmrouter``, and that export less its first test record."""
    from routeharness.common.progress import Reporter
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import get_encoder

    task = load_task("routerbench:winogrande")
    for split, n in (("train", 240), ("validation", 60), ("test", 120)):
        task.splits[split] = task.splits[split].subset(np.arange(n))
    embedded = embed_task(task, get_encoder("lexical:16"), EmbeddingCache(tmp_path / "cache"),
                          Reporter())
    for split, data in task.splits.items():
        data.embeddings = embedded.X[split]
    canonical = write_task(task, tmp_path / "canonical")
    exported = write_llmrouter(task, tmp_path / "exported")
    less = Path(shutil.copytree(exported, tmp_path / "less"))
    path = less / ROUTING_FILE.format(split="test")
    lines = path.read_text("utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[1:]), "utf-8")
    return exported, canonical, less


def _check_runs(records: list[dict]) -> None:
    """kNN's AUC on the export equals write_task's; the export less one record runs with
    that test prompt excluded."""
    runs = {(r["router"], r["task"]): r for r in records}
    mine, written = runs[("knn", "exported")], runs[("knn", "routerbench:winogrande")]
    less = runs[("knn", "less")]
    print(f"knn AUC: exported {mine['metrics']['auc']:.4f}, write_task "
          f"{written['metrics']['auc']:.4f}, less one record {less['metrics']['auc']:.4f}")
    assert mine["metrics"]["auc"] == written["metrics"]["auc"]
    assert (mine["n_test"], mine["n_test_excluded"]) == (120, 0)
    assert (less["n_test"], less["n_test_excluded"]) == (119, 1)


def test_the_cli_evals_an_export_to_write_tasks_auc(tmp_path, cli):
    """One real ``eval -e precomputed --seeds 0`` of the three folders."""
    exported, canonical, less = _three_folders(tmp_path)
    done = cli("eval", "-r", "knn", "-t", str(exported), "-t", str(canonical), "-t", str(less),
               "-e", "precomputed", "--seeds", "0", "--bootstrap", "0", "-o",
               str(tmp_path / "results.json"), "-q")
    assert done.returncode == 0, done.stderr
    _check_runs(json.loads((tmp_path / "results.json").read_text())["records"])


def test_the_cli_names_a_bad_folder_in_one_line(tmp_path, cli):
    prices = {"a": {"input_price": 0.1, "output_price": 0.2},
              "b": {"input_price": -1, "output_price": 0.2}}
    folder = _write_folder(tmp_path / "f", _valid(cost=False), prices=prices)
    done = cli("data", "validate", str(folder))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {folder / 'default_llm.json'}, column 'b.input_price': input_price must be a "
        "finite number >= 0 (USD per million tokens), got -1",
        f"Error: {folder}: 1 problem found"], done.stderr
