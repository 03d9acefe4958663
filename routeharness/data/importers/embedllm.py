"""EmbedLLM's correctness data (the Hub's RZ412/EmbedLLM), docs/formats/embedllm.md: long
CSV files ``train.csv``, ``val.csv``, ``test.csv`` (one row per prompt x model:
``prompt_id``, ``model_id``, ``label`` 0/1, ``category``; ``model_name`` where present),
``question_order.csv`` (``prompt_id``, ``prompt``) and ``model_order.csv`` (``model_id``,
``model_name``). The ``.pth`` tensors beside them are pickles and are never opened.
Written from the repository's scripts (richardzhuang0412/EmbedLLM) and public code that
reads these files; not checked against a real file.
"""

from __future__ import annotations

from pathlib import Path

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    read_csv_rows,
)

NAME = "embedllm"
DOC = "docs/formats/embedllm.md"
SPLIT_FILES = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}
EXPECTED = "EmbedLLM's correctness CSV (prompt_id, model_id, label)"


def looks_like(source: Path) -> bool:
    return source.is_dir() and ((source / "question_order.csv").is_file()
                                or (source / "model_order.csv").is_file())


def _integer(value: str, source: str, row: int, column: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{column} must be an integer, got {value[:40]!r}", source=source,
                        row=row) from None
    if not number.is_integer():
        raise DataError(f"{column} must be an integer, got {value[:40]!r}", source=source,
                        row=row)
    return int(number)


def _label(value: str, source: str, row: int) -> float:
    try:
        label = float(value)
    except ValueError:
        raise DataError(f"label must be 0 or 1, got {value[:40]!r}", source=source,
                        row=row) from None
    if label not in (0.0, 1.0):
        raise DataError(f"label must be 0 or 1, got {value[:40]!r}", source=source, row=row)
    return label


def read(source: Path) -> Imported:
    if not source.is_dir():
        raise WrongFormat("expected EmbedLLM's folder (train.csv, val.csv, test.csv, "
                          "question_order.csv, model_order.csv)", source=str(source))
    questions_path = source / "question_order.csv"
    present = {s: source / f for s, f in SPLIT_FILES.items() if (source / f).is_file()}
    if not questions_path.is_file() or "train" not in present or "test" not in present:
        needed = [f for f in ("question_order.csv", "train.csv", "test.csv")
                  if not (source / f).is_file()]
        raise WrongFormat(f"no {needed[0]}: not EmbedLLM's folder (train.csv, val.csv, "
                          "test.csv, question_order.csv)", source=str(source))
    prompts: dict[int, tuple[str, int]] = {}
    for row, record in read_csv_rows(questions_path, "EmbedLLM's question_order.csv "
                                     "(prompt_id, prompt)", DOC,
                                     required=("prompt_id", "prompt")):
        pid = _integer(record["prompt_id"], str(questions_path), row, "prompt_id")
        if pid in prompts:
            raise DataError(f"prompt_id {pid} given twice (first at row {prompts[pid][1]})",
                            source=str(questions_path), row=row)
        prompts[pid] = (record["prompt"], row)
    names: dict[int, str] = {}
    order_path = source / "model_order.csv"
    if order_path.is_file():
        for row, record in read_csv_rows(order_path, "EmbedLLM's model_order.csv "
                                         "(model_id, model_name)", DOC,
                                         required=("model_id", "model_name")):
            names[_integer(record["model_id"], str(order_path), row, "model_id")] = \
                record["model_name"]
    imported = Imported(format=NAME, source=str(source))
    imported.description = ("EmbedLLM (Zhuang et al., ICLR 2025) correctness of open LLMs "
                            "on 10 benchmarks, imported")
    imported.license = "Apache-2.0 (RZ412/EmbedLLM dataset card)"
    imported.built_from = "https://huggingface.co/datasets/RZ412/EmbedLLM"
    imported.own_splits = "train.csv, val.csv (validation), test.csv"
    #: prompt_id -> (row, split); (row, model) -> its labels (a prompt may be listed
    #: under several categories, so a cell may have several rows)
    row_of: dict[int, tuple[int, str]] = {}
    labels: dict[tuple[int, str], list[float]] = {}
    origins: dict[tuple[int, str], tuple[str, int]] = {}
    several_categories: set[int] = set()
    for split, path in present.items():
        where = str(path)
        for row, record in read_csv_rows(path, EXPECTED, DOC,
                                         required=("prompt_id", "model_id", "label")):
            pid = _integer(record["prompt_id"], where, row, "prompt_id")
            mid = _integer(record["model_id"], where, row, "model_id")
            model = names.get(mid) or record.get("model_name") or f"model_{mid}"
            if pid in row_of:
                i, first_split = row_of[pid]
                if first_split != split:
                    first = imported.origins[i]
                    raise DataError(f"prompt_id {pid} is in {first_split} ({first[0]}, row "
                                    f"{first[1]}) and in {split}: a prompt belongs to one "
                                    "split", source=where, row=row)
                if (record.get("category") or "embedllm") != imported.groups[i]:
                    several_categories.add(i)
            else:
                if pid not in prompts:
                    raise DataError(f"prompt_id {pid} is not in {questions_path.name}",
                                    source=where, row=row)
                i = imported.add_row(str(pid), prompts[pid][0],
                                     record.get("category") or "embedllm", (where, row),
                                     split=split)
                row_of[pid] = (i, split)
            labels.setdefault((i, model), []).append(_label(record["label"], where, row))
            origins.setdefault((i, model), (where, row))
    models = sorted({m for _, m in labels}, key=lambda m: (
        next((k for k, v in names.items() if v == m), 1 << 30), m))
    for model in models:
        imported.add_model(model)
    conflicting = repeated = 0
    for (i, model), values in labels.items():
        if len(values) > 1:
            repeated += 1
            conflicting += len(set(values)) > 1
        imported.set_cell(i, model, sum(values) / len(values), origins[(i, model)])
    if repeated:
        imported.notes.append(f"{repeated} prompt x model cells have several rows (a prompt "
                              f"listed under several categories); the score is their mean "
                              f"({conflicting} disagree)")
    if several_categories:
        imported.notes.append(f"{len(several_categories)} prompts are listed under several "
                              "categories: the group is the first one read")
    pth = sorted(p.name for p in source.glob("*.pth"))
    if pth:
        imported.notes.append(f"not read: {', '.join(pth)} (pickled tensors; routeharness "
                              "never unpickles)")
    return imported
