"""Regenerate the malformed-dataset corpus in this folder (committed; tiny files).

    .venv/bin/python tests/data/malformed/generate.py

Every case starts from one small valid dataset (``valid/``: train/validation/test CSV
files, two models) and breaks one thing. ``expect.json`` in each case names the file, the
0-based data row and the column that the error message must name (null where the problem
has no row or column, e.g. a truncated file), and words the message must contain.
tests/test_bad_data.py checks that ``routeharness data validate`` and ``routeharness eval
--task`` reject each one with that message and a non-zero exit.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = ["id", "prompt", "group", "score:small", "cost:small", "score:large", "cost:large"]
TOPICS = ["the capital of France", "photosynthesis", "the Pythagorean theorem", "inflation",
          "a binary search", "the French revolution", "plate tectonics", "compound interest",
          "recursion in Python", "the water cycle", "Newton's second law", "supply and demand",
          "a hash table", "the Krebs cycle", "the Roman empire", "prime numbers"]


def base_rows(split: str) -> list[list[str]]:
    count = {"train": 8, "validation": 4, "test": 4}[split]
    offset = {"train": 0, "validation": 8, "test": 12}[split]
    rows = []
    for i in range(count):
        topic = TOPICS[offset + i]
        rows.append([f"{split}-{i}", f"Explain {topic} in two sentences.",
                     "science" if i % 2 else "general",
                     str((i + offset) % 2), "0.0001", "1", "0.002"])
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_jsonl(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> None:
    lines = []
    for row in rows:
        record = {}
        for key, value in zip(header, row):
            record[key] = value if key in ("id", "prompt", "group", "split") else float(value)
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_valid(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        write_csv(directory / f"{split}.csv", base_rows(split))


def case(name: str, file: str | None, row: int | None, column: str | None, words: str,
         what: str) -> Path:
    directory = HERE / name
    if directory.exists():
        shutil.rmtree(directory)
    write_valid(directory)
    (directory / "expect.json").write_text(json.dumps(
        {"what": what, "file": file, "row": row, "column": column, "words": words},
        indent=1) + "\n", encoding="utf-8")
    return directory


def drop_column(rows: list[list[str]], column: str) -> tuple[list[str], list[list[str]]]:
    index = HEADER.index(column)
    return ([c for c in HEADER if c != column],
            [[v for j, v in enumerate(r) if j != index] for r in rows])


def main() -> None:
    write_valid(HERE / "valid")

    d = case("missing_column", "test.csv", None, "prompt", "missing required column",
             "the test file has no prompt column")
    write_csv(d / "test.csv", *reversed(drop_column(base_rows("test"), "prompt")))

    d = case("wrong_number_of_scores", "train.csv", 2, "cost:large", "fields but the header has",
             "a row with one value fewer than the header (a score or cost left out)")
    rows = base_rows("train")
    rows[2] = rows[2][:-1]
    write_csv(d / "train.csv", rows)

    d = case("extra_field", "validation.csv", 1, None, "fields but the header has",
             "a row with one value more than the header")
    rows = base_rows("validation")
    rows[1] = [*rows[1], "0.5"]
    write_csv(d / "validation.csv", rows)

    d = case("nan_cost", "train.csv", 3, "cost:small", "cost missing",
             "a score without its cost (NaN / empty cost)")
    rows = base_rows("train")
    rows[3][4] = "nan"
    write_csv(d / "train.csv", rows)

    d = case("all_nan_scores", "test.csv", None, "score:large", "no scores at all",
             "a model whose scores are all NaN in one split")
    rows = base_rows("test")
    for r in rows:
        r[5], r[6] = "NaN", "NaN"
    write_csv(d / "test.csv", rows)

    d = case("out_of_range_score", "test.csv", 1, "score:large", "outside [0, 1]",
             "a score of 1.5")
    rows = base_rows("test")
    rows[1][5] = "1.5"
    write_csv(d / "test.csv", rows)

    d = case("negative_cost", "validation.csv", 0, "cost:large", ">= 0",
             "a negative cost")
    rows = base_rows("validation")
    rows[0][6] = "-0.002"
    write_csv(d / "validation.csv", rows)

    d = case("infinite_cost", "train.csv", 6, "cost:small", ">= 0", "an infinite cost")
    rows = base_rows("train")
    rows[6][4] = "inf"
    write_csv(d / "train.csv", rows)

    d = case("duplicate_id", "train.csv", 4, "id", "duplicate id", "two train rows share an id")
    rows = base_rows("train")
    rows[4][0] = rows[1][0]
    write_csv(d / "train.csv", rows)

    d = case("duplicate_id_across_splits", "test.csv", 0, "id", "is also in split 'train'",
             "a test row reuses a train row's id")
    rows = base_rows("test")
    rows[0][0] = "train-0"
    write_csv(d / "test.csv", rows)

    d = case("unknown_model", "train.csv", None, "score:medium", "unknown model 'medium'",
             "the data has a model that routing.json does not list")
    header = [*HEADER, "score:medium", "cost:medium"]
    for split in ("train", "validation", "test"):
        write_csv(d / f"{split}.csv", [[*r, "1", "0.001"] for r in base_rows(split)], header)
    (d / "routing.json").write_text(json.dumps(
        {"name": "unknown_model", "models": [{"name": "small"}, {"name": "large"}]}) + "\n",
        encoding="utf-8")

    d = case("models_differ", "test.csv", None, "score:large", "has models",
             "test has one model fewer than train")
    _, rows = drop_column(base_rows("test"), "score:large")
    header, rows = drop_column([r + [""] for r in rows], "cost:large")
    write_csv(d / "test.csv", [r[:-1] for r in rows],
              [c for c in HEADER if c not in ("score:large", "cost:large")])

    d = case("score_without_cost", "test.csv", None, "cost:large", "no cost column",
             "a model with a score column and no cost column")
    write_csv(d / "test.csv", *reversed(drop_column(base_rows("test"), "cost:large")))

    d = case("empty_split", "validation.csv", None, None, "empty split",
             "the validation file has a header and no rows")
    write_csv(d / "validation.csv", [])

    d = case("missing_split_file", None, None, None, "no file for split 'test'",
             "there is no test file")
    (d / "test.csv").unlink()

    d = case("leaked_test_prompt", "test.csv", 2, "prompt", "test prompt also appears in train",
             "a test prompt that also appears, word for word, in train")
    rows = base_rows("test")
    rows[2][1] = base_rows("train")[5][1]
    write_csv(d / "test.csv", rows)

    d = case("missing_group", "train.csv", 0, "group", "missing group", "a row without a group")
    rows = base_rows("train")
    rows[0][2] = ""
    write_csv(d / "train.csv", rows)

    d = case("non_utf8", "test.csv", 2, "prompt", "not UTF-8",
             "a Latin-1 byte in a prompt of a CSV file")
    rows = base_rows("test")
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *rows])
    data = text.getvalue().encode("utf-8").replace(b"Explain the Roman", b"Explain the R\xf4man")
    (d / "test.csv").write_bytes(data)

    d = case("truncated_parquet", "train.parquet", None, None, "cannot read parquet file",
             "a parquet file cut off in the middle")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = base_rows("train")
    table = pa.table({c: [r[j] if j < 3 else float(r[j]) for r in rows]
                      for j, c in enumerate(HEADER)})
    (d / "train.csv").unlink()
    sink = io.BytesIO()
    pq.write_table(table, sink)
    blob = sink.getvalue()
    (d / "train.parquet").write_bytes(blob[: len(blob) // 2])

    d = case("non_numeric_score", "test.jsonl", 2, "score:small", "not a number",
             "a JSON-lines file with a word where a score belongs")
    (d / "test.csv").unlink()
    write_jsonl(d / "test.jsonl", base_rows("test"))
    lines = (d / "test.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    record["score:small"] = "high"
    lines[2] = json.dumps(record)
    (d / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    d = case("invalid_json_line", "validation.jsonl", 1, None, "invalid JSON",
             "a JSON-lines file with a line cut off")
    (d / "validation.csv").unlink()
    write_jsonl(d / "validation.jsonl", base_rows("validation"))
    lines = (d / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    (d / "validation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    d = case("bad_split_value", "data.csv", 3, "split", "split must be one of",
             "a one-file dataset with an unknown split name")
    for split in ("train", "validation", "test"):
        (d / f"{split}.csv").unlink()
    rows = [[*r, s] for s in ("train", "validation", "test") for r in base_rows(s)]
    rows[3][-1] = "dev"
    write_csv(d / "data.csv", rows, [*HEADER, "split"])

    d = case("unknown_column", "train.csv", None, "colour", "unknown column 'colour'",
             "a column that is not part of the schema")
    write_csv(d / "train.csv", [[*r, "red"] for r in base_rows("train")], [*HEADER, "colour"])

    new_cases()


def new_cases() -> None:
    """Issue 10: data that `data validate` passed and `eval` crashed on, and bad input
    that was silently accepted."""
    d = case("all_zero_costs", "train.csv", None, None, "every cost in split 'train' is 0",
             "every cost of every model is 0: the cost scale would divide by zero")
    write_csv(d / "train.csv", [[*r[:4], "0", r[5], "0"] for r in base_rows("train")])

    d = case("overflowing_costs", "train.csv", None, "cost:large", "mean overflows",
             "finite costs so large that their mean is infinite")
    write_csv(d / "train.csv", [[*r[:6], "1e308"] for r in base_rows("train")])

    d = case("zero_cost_test_group", "test.csv", None, None,
             "every cost in split 'test' of group 'science' is 0",
             "one test group where every cost is 0 (per-group metrics scale by it)")
    write_csv(d / "test.csv", [[*r[:4], "0", r[5], "0"] if r[2] == "science" else r
                               for r in base_rows("test")])

    d = case("no_complete_test_row", "test.csv", None, None,
             "every row of split 'test' has a missing score",
             "every test row misses one model's score: nothing left to score")
    write_csv(d / "test.csv", [[*r[:3], "", "", *r[5:]] if i % 2 else [*r[:5], "", ""]
                               for i, r in enumerate(base_rows("test"))])

    d = case("model_without_scores_in_one_split", "data.csv", None, "score:large",
             "has no scores at all in split 'validation'",
             "a one-file dataset where one model has no score in the validation rows")
    for split in ("train", "validation", "test"):
        (d / f"{split}.csv").unlink()
    rows = [[*(r[:5] + ["", ""] if s == "validation" else r), s]
            for s in ("train", "validation", "test") for r in base_rows(s)]
    write_csv(d / "data.csv", rows, [*HEADER, "split"])

    for name, meta, words in (
            ("sidecar_version_not_int", {"version": "2"},
             "version: expected an integer, got \"2\""),
            ("sidecar_models_not_objects", {"models": ["small", "large"]},
             "models[0]: expected an object, got \"small\""),
            ("sidecar_unknown_key", {"name": "x", "colour": "red"},
             "unknown key(s) ['colour']")):
        d = case(name, "routing.json", None, None, words,
                 f"an ill-typed routing.json: {json.dumps(meta)}")
        (d / "routing.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")

    d = case("duplicate_model_column", "train.csv", None, "score:large", "appears twice",
             "two score columns for one model (pandas renamed the second score:large.1)")
    for split in ("train", "validation", "test"):  # in every split: nothing else is odd
        write_csv(d / f"{split}.csv", [[*r, "0", "0.5"] for r in base_rows(split)],
                  [*HEADER, "score:large", "cost:large"])

    d = case("duplicate_json_key", "test.jsonl", 1, "cost:small", "appears twice",
             "a JSON line that names one column twice")
    (d / "test.csv").unlink()
    write_jsonl(d / "test.jsonl", base_rows("test"))
    lines = (d / "test.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:-1] + ', "cost:small": 0.5}'
    (d / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    d = case("empty_model_name", "train.csv", None, "score:", "empty model name",
             "a score column with no model name (score:), in every split")
    for split in ("train", "validation", "test"):
        write_csv(d / f"{split}.csv", [[*r, "1", "0.1"] for r in base_rows(split)],
                  [*HEADER, "score:", "cost:"])

    d = case("blank_prompt", "train.csv", 3, "prompt", "empty prompt",
             "a prompt of spaces only")
    rows = base_rows("train")
    rows[3][1] = "   "
    write_csv(d / "train.csv", rows)

    d = case("two_files_for_one_split", None, None, None, "train.csv and train.jsonl",
             "train.csv beside train.jsonl: which one is meant?")
    write_jsonl(d / "train.jsonl", base_rows("train"))


if __name__ == "__main__":
    main()
