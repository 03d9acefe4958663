"""The one validation of routing data, in two modes: collect every problem (``data
validate``) or stop at the first (``eval``, ``load_task``), with the same checks in both,
so that a dataset that validates never crashes eval.

Three layers, each on what the one read produced (``routeharness.data.readers``):

- ``validate_table``: one table's columns and cells (schema, ids, prompts, groups,
  scores in [0, 1], costs finite and >= 0, duplicate columns, empty model names; model
  and group names without control or invisible characters or outer whitespace; prompts
  and ``embed_text`` not blank, invisible characters counting as blank, unless the row
  has an image; an image path names a readable regular file, checked by ``os.stat``;
  ``embedding`` cells lists of finite numbers of one dimension: ``routeharness.data.columns``);
- ``outcome_problems``: what the protocol needs of one split's matrices (every model has
  a score somewhere; validation and test have a row with every score, the rows eval
  scores; the cost scale, the most expensive model's mean cost, is finite and > 0);
- ``cross_split_problems``: the same models in every split, embeddings in every split or
  none and of one dimension, ids unique across splits, and (optionally) no test prompt
  repeated from train or validation.

Problems are ``DataError``s naming the file, the 0-based data row and the column.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from routeharness.common.errors import DataError
from routeharness.common.textinput import is_blank
from routeharness.data.columns import (
    COST_PREFIX,
    EMBEDDING,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SCORE_PREFIX,
    SPLITS,
    embedding_problems,
    float_column,
    group_problem,
    model_names_of,
    name_problem,
    prompt_key,
    split_problems,
)


class ModelInfo(Protocol):
    """What validation needs of a model (``routeharness.data.dataset.ModelInfo``, which imports
    this module, not the reverse): its name."""

    name: str


@dataclass
class Part:
    """One split as read: its table, the file named in messages, and the file row of each
    table row (one-file layout; None when table rows are file rows)."""

    table: Any
    source: str
    rows: list[int] | None = None
    #: the table was checked already (a one-file dataset is checked once, as a whole)
    checked: bool = False


class Enough(Exception):
    """Raised by ``Problems.add`` when the wanted number of problems is reached."""


class Problems:
    """Collects ``DataError``s; ``limit=1`` stops at the first (``Enough`` is raised and
    caught by whoever started the validation)."""

    def __init__(self, limit: int | None = None):
        self.items: list[DataError] = []
        self.limit = limit

    def add(self, problem: DataError) -> None:
        self.items.append(problem)
        if self.limit is not None and len(self.items) >= self.limit:
            raise Enough

    def __len__(self) -> int:
        return len(self.items)


def _row_of(rows: Sequence[int] | None, row: int) -> int:
    return rows[row] if rows is not None else row


def validate_table(arrow: Any, *, source: str, models: Sequence[ModelInfo] | None = None,
                   row_offset: int = 0, max_problems: int | None = None,
                   rows: Sequence[int] | None = None) -> list[DataError]:
    """Every problem in one table, as ``DataError``s naming file, row and column. Rows are
    0-based data rows (the header is not counted): ``rows[i]`` (the file row of table row
    ``i``) where given, else ``i + row_offset``."""
    problems = Problems(max_problems)
    try:
        check_table(arrow, source, models, problems,
                    rows if rows is not None else None, row_offset)
    except Enough:
        pass
    return problems.items


def check_table(arrow: Any, source: str, models: Sequence[ModelInfo] | None,
                problems: Problems, rows: Sequence[int] | None = None,
                row_offset: int = 0) -> bool:
    """``validate_table`` into ``problems``; True when this table had none."""
    before = len(problems)

    def add(message: str, row: int | None = None, column: str | None = None) -> None:
        file_row = None if row is None else _row_of(rows, row) + row_offset
        problems.add(DataError(message, source=source, row=file_row, column=column))

    columns = list(arrow.column_names)
    for column, count in Counter(columns).items():
        if count > 1:
            add(f"column {column!r} appears {count} times: one column per name "
                "(two columns for one model?)", column=column)
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            add(f"missing required column {name!r}", column=name)
    names = model_names_of(columns)
    cost_names = [c[len(COST_PREFIX):] for c in columns if c.startswith(COST_PREFIX)]
    for prefix, group in ((SCORE_PREFIX, names), (COST_PREFIX, cost_names)):
        for name in group:
            if not name.strip():
                add(f"empty model name in column {prefix + name!r}: write "
                    f"{prefix}<model>", column=prefix + name)
            elif name_problem(name):
                add(f"model name {name!r} {name_problem(name)}", column=prefix + name)
    looks: dict[str, str] = {}
    for name in names:
        other = looks.setdefault(unicodedata.normalize("NFC", name), name)
        if other != name:
            add(f"models {other!a} and {name!a} look the same (they differ only in "
                "Unicode normalisation): give them distinct names", column=SCORE_PREFIX + name)
    if not names:
        add(f"no '{SCORE_PREFIX}<model>' columns: a routing dataset needs at least one "
            "model's scores")
    for name in names:
        if name not in cost_names:
            add(f"model {name!r} has scores but no cost column", column=COST_PREFIX + name)
    for name in cost_names:
        if name not in names:
            add(f"model {name!r} has costs but no score column", column=SCORE_PREFIX + name)
    if models is not None:
        expected = [m.name for m in models]
        for name in expected:
            if name not in names:
                add(f"model {name!r} of the task has no score column",
                    column=SCORE_PREFIX + name)
        for name in names:
            if name not in expected:
                add(f"unknown model {name!r}: not among the task's models {expected}",
                    column=SCORE_PREFIX + name)
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for column in columns:
        if column not in known and not column.startswith((SCORE_PREFIX, COST_PREFIX)):
            add(f"unknown column {column!r} (expected id, prompt, group, score:<model>, "
                "cost:<model>, and optionally image, embed_text, embedding, split)", column=column)
    if len(problems) > before:
        return False
    if len(arrow) == 0:
        add("empty split: no rows")
        return False
    _check_cells(arrow, names, add)
    return len(problems) == before


def _check_cells(arrow: Any, names: list[str], add: Any) -> None:
    seen: dict[str, int] = {}
    for row, value in enumerate(arrow.column("id").to_pylist()):
        key = "" if value is None else str(value)
        if not key.strip():
            add("missing id", row, "id")
        elif key in seen:
            add(f"duplicate id {key!r} (first at row {seen[key]})", row, "id")
        else:
            seen[key] = row
    images = (arrow.column("image").to_pylist() if "image" in arrow.column_names
              else [None] * len(arrow))
    for row, image in enumerate(images):
        problem = image_problem(image)
        if problem:
            add(problem, row, "image")
    for row, (value, image) in enumerate(zip(arrow.column("prompt").to_pylist(), images)):
        if not isinstance(value, str):
            add(f"prompt must be a string, got {value!r}", row, "prompt")
        elif is_blank(value) and image is None:
            add("empty prompt (blank or only invisible characters, and no image): nothing "
                "to route on", row, "prompt")
    for row, value in enumerate(arrow.column("group").to_pylist()):
        problem = group_problem(None if value is None else str(value))  # cached per name
        if problem:
            add(problem, row, "group")
    if "embed_text" in arrow.column_names:
        texts = arrow.column("embed_text").to_pylist()
        for row, (value, image) in enumerate(zip(texts, images)):
            if not isinstance(value, str):
                add(f"embed_text must be a string, got {value!r}", row, "embed_text")
            elif is_blank(value) and image is None:
                add("blank embed_text (and no image): nothing to embed; write the text, or "
                    "drop the embed_text column to embed the prompt", row, "embed_text")
    for row, problem in (embedding_problems(arrow) if EMBEDDING in arrow.column_names
                         else ()):
        add(problem, row, EMBEDDING)
    for name in names:
        score_col, cost_col = SCORE_PREFIX + name, COST_PREFIX + name
        try:
            scores, costs = float_column(arrow, score_col), float_column(arrow, cost_col)
        except (TypeError, ValueError) as exc:
            row, column, value = _first_non_number(arrow, name)
            add(f"non-numeric value in model {name!r}: "
                + (f"not a number: {value!s}" if row is not None else str(exc)), row, column)
            continue
        for row in np.flatnonzero(np.isinf(scores) | (scores < 0) | (scores > 1)):
            add(f"score {float(scores[row])!r} outside [0, 1]", int(row), score_col)
        for row in np.flatnonzero(~np.isnan(scores) & np.isnan(costs)):
            add("cost missing (NaN or empty) where the score is present", int(row), cost_col)
        for row in np.flatnonzero(np.isinf(costs) | (costs < 0)):
            add(f"cost {float(costs[row])!r} must be a finite number >= 0 (USD)", int(row),
                cost_col)


def image_problem(image: Any) -> str | None:
    """Why an ``image`` cell cannot be read (None when it can, or holds no path): a path
    (text, or a ``datasets.Image`` dict without bytes) must name a readable regular file,
    found as eval reads it (relative to the working directory). Only ``os.stat`` looks
    at it: a FIFO or a device is never opened."""
    if isinstance(image, dict) and image.get("bytes"):
        return None
    path = image.get("path") if isinstance(image, dict) else image
    if path is None or isinstance(path, (bytes, bytearray)):
        return None
    if not isinstance(path, str):
        return f"image must be a file path or image bytes, got {type(path).__name__}"
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return f"cannot read image {path!r}: {reason}"
    if stat.S_ISDIR(info.st_mode):
        return f"image {path!r} is a directory, expected an image file"
    if not stat.S_ISREG(info.st_mode):
        return (f"image {path!r} is not a regular file (a FIFO, socket or device): only "
                "regular files are read")
    if not os.access(path, os.R_OK):
        return f"cannot read image {path!r}: Permission denied"
    return None


def _first_non_number(arrow: Any, name: str) -> tuple[int | None, str, Any]:
    """(row, column, value) of the first score/cost cell of ``name`` that is not a number."""
    for column in (SCORE_PREFIX + name, COST_PREFIX + name):
        for row, value in enumerate(arrow.column(column).to_pylist()):
            if value is None or isinstance(value, bool):
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                return row, column, value
    return None, SCORE_PREFIX + name, None


def _mean_costs(costs: np.ndarray) -> np.ndarray:
    """Each model's mean known cost (NaN where it has none), without numpy's warnings."""
    known = ~np.isnan(costs)
    with np.errstate(over="ignore", invalid="ignore"):
        totals = np.where(known, costs, 0.0).sum(axis=0)
        counts = known.sum(axis=0)
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def outcome_problems(scores: np.ndarray, costs: np.ndarray, names: Sequence[str],
                     split: str, source: str,
                     groups: np.ndarray | None = None) -> list[DataError]:
    """What the protocol needs of one split's (n, m) scores and costs (USD). Eval scores
    the validation and test rows with every model's score and normalises costs by the
    most expensive model's mean cost (train: over all rows; validation and test: over
    the scored rows, and on test within each group too): that must be finite and > 0."""
    out: list[DataError] = []
    for j, name in enumerate(names):
        if np.isnan(scores[:, j]).all():
            out.append(DataError(f"model {name!r} has no scores at all in split {split!r}",
                                 source=source, column=SCORE_PREFIX + name))
    if out:
        return out
    scored = np.ones(len(scores), dtype=bool)
    if split in ("validation", "test"):
        scored = ~np.isnan(scores).any(axis=1)
        if not scored.any():
            return [DataError(f"every row of split {split!r} has a missing score: eval "
                              "scores only rows with every model's score, so this split "
                              "needs at least one", source=source)]
    parts = [("", scored)]
    if split == "test" and groups is not None:
        parts += [(f" of group {g!r}", scored & (groups == g))
                  for g in dict.fromkeys(map(str, groups))]
    for label, rows in parts:
        if not rows.any():
            continue
        means = _mean_costs(costs[rows])
        for j in np.flatnonzero(np.isinf(means)):
            out.append(DataError(f"the costs of model {names[j]!r}{label} are so large that "
                                 "their mean overflows (USD per call, as float64)",
                                 source=source, column=COST_PREFIX + names[j]))
        if out:
            return out
        if not np.nanmax(means) > 0:
            out.append(DataError(
                f"every cost in split {split!r}{label} is 0: costs are normalised by the "
                "most expensive model's mean cost, which must be > 0 (give real per-call "
                "costs, or a token-based estimate)", source=source))
            return out
    return out


def check_parts(parts: dict[str, Part], models: Sequence[ModelInfo] | None,
                problems: Problems, *, check_leaks: bool = True) -> None:
    """The one validation of a dataset as read: each split's table, what the protocol
    needs of each split, then the checks across splits (on the splits that passed)."""
    good: dict[str, Part] = {}
    for split in SPLITS:
        part = parts.get(split)
        if part is None or not (part.checked or check_table(part.table, part.source, models,
                                                            problems, part.rows)):
            continue
        names = model_names_of(part.table.column_names)
        table = part.table
        scores = np.column_stack([float_column(table, SCORE_PREFIX + n) for n in names])
        costs = np.column_stack([float_column(table, COST_PREFIX + n) for n in names])
        groups = np.asarray([str(g) for g in table.column("group").to_pylist()], dtype=object)
        for problem in outcome_problems(scores, costs, names, split, part.source, groups):
            problems.add(problem)
        good[split] = part
    cross_split_problems(good, problems, check_leaks=check_leaks)


def cross_split_problems(parts: dict[str, Part], problems: Problems, *,
                         check_leaks: bool = True) -> None:
    """Problems across splits of validated tables."""
    present = [s for s in SPLITS if s in parts]
    if "train" in parts:
        reference = model_names_of(parts["train"].table.column_names)
        for split in present[1:]:
            names = model_names_of(parts[split].table.column_names)
            if sorted(names) != sorted(reference):
                odd = [n for n in names if n not in reference] or [
                    n for n in reference if n not in names]
                problems.add(DataError(f"split {split!r} has models {names}, but train has "
                                       f"{reference}", source=parts[split].source,
                                       column=SCORE_PREFIX + odd[0] if odd else None))
    for split, problem in split_problems({s: parts[s].table for s in present}):
        problems.add(DataError(problem, source=parts[split].source, column=EMBEDDING))
    owner: dict[str, tuple[str, int]] = {}
    for split in present:
        part = parts[split]
        for row, value in enumerate(part.table.column("id").to_pylist()):
            key = str(value)
            if key in owner and owner[key][0] != split:
                first_split, first_row = owner[key]
                first = parts[first_split]
                problems.add(DataError(
                    f"id {key!r} is also in split {first_split!r} (row "
                    f"{_row_of(first.rows, first_row)} of {first.source})",
                    source=part.source, row=_row_of(part.rows, row), column="id"))
            owner.setdefault(key, (split, row))
    if check_leaks and "test" in parts:
        seen: dict[str, tuple[str, int]] = {}
        for split in ("train", "validation"):
            if split in parts:
                for row, key in enumerate(table_keys(parts[split].table)):
                    seen.setdefault(key, (split, row))
        test = parts["test"]
        for row, key in enumerate(table_keys(test.table)):
            hit = seen.get(key)
            if hit is not None:
                other = parts[hit[0]]
                problems.add(DataError(
                    f"test prompt also appears in {hit[0]} (row {_row_of(other.rows, hit[1])}"
                    f" of {other.source}): a leaked test prompt inflates every "
                    "nearest-neighbour score; remove it from test", source=test.source,
                    row=_row_of(test.rows, row), column="prompt"))


def table_keys(table: Any) -> list[str]:
    """``prompt_key`` of every row of a table (the text, and the image where there is one)."""
    images = (table.column("image").to_pylist() if "image" in table.column_names
              else [None] * len(table))
    return [prompt_key(str(p), i) for p, i in zip(table.column("prompt").to_pylist(), images)]
