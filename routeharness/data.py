"""The canonical routing dataset: an outcome matrix of n prompts x m models per split.

On disk (and in any ``datasets.Dataset``) a split is a table with one row per prompt:

=================  ==========================================================
``id``             string, unique across all splits
``prompt``         string: what the user sent
``group``          string: source benchmark or sub-task
``score:<model>``  float in [0, 1], or null when the cell is missing
``cost:<model>``   float >= 0, USD for that call; null only where the score is
``image``          optional: ``datasets.Image`` (or a path) for multimodal tasks
``embed_text``     optional string: the text to embed when it differs from the prompt
``split``          optional: train / validation / test, for one-file datasets
=================  ==========================================================

See docs/dataset-format.md. Validation (``validate_table``) lists every problem with its
file, row and column; ``RoutingData.from_table`` raises the first as a ``DataError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from routeharness.errors import DataError

SPLITS = ("train", "validation", "test")
SCORE_PREFIX = "score:"
COST_PREFIX = "cost:"
REQUIRED_COLUMNS = ("id", "prompt", "group")
OPTIONAL_COLUMNS = ("image", "embed_text", "split")


@dataclass(frozen=True)
class ModelInfo:
    """A candidate model. ``description`` is the text GraphRouter-style routers embed."""

    name: str
    description: str = ""
    provider: str | None = None
    size: str | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "description": self.description, "provider": self.provider,
               "size": self.size, "price_input_per_mtok": self.price_input_per_mtok,
               "price_output_per_mtok": self.price_output_per_mtok}
        out.update(self.extra)
        return {k: v for k, v in out.items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        known = {"name", "description", "provider", "size", "price_input_per_mtok",
                 "price_output_per_mtok"}
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class Outcomes:
    """What a router may learn from: the labels of its training prompts.

    scores: (n, m) in [0, 1], NaN where missing. costs: (n, m), normalised so that the
    most expensive model's mean training cost is 1 (``cost_scale`` USD = 1 unit).
    ``encode_text(texts) -> (k, d)`` embeds extra texts (model or group descriptions) in
    the same space as the prompts (the run's encoder, cached); None outside the harness.
    ``texts``: the n training prompts as the encoder saw them, for routers that train
    their own text encoder; ``encoder_path``: a local Hugging Face transformer directory
    of the run's encoder when it is one that can be fine-tuned (else None).
    """

    scores: np.ndarray
    costs: np.ndarray
    groups: np.ndarray
    models: list[ModelInfo]
    cost_scale: float = 1.0
    group_descriptions: dict[str, str] = field(default_factory=dict)
    encode_text: Callable[[list[str]], np.ndarray] | None = None
    texts: list[str] | None = None
    encoder_path: str | None = None

    @property
    def n(self) -> int:
        return int(self.scores.shape[0])

    @property
    def m(self) -> int:
        return int(self.scores.shape[1])

    def subset(self, index: np.ndarray) -> Outcomes:
        texts = None if self.texts is None else [self.texts[int(i)] for i in
                                                 np.arange(self.n)[index]]
        return replace(self, scores=self.scores[index], costs=self.costs[index],
                       groups=self.groups[index], texts=texts)


@dataclass
class RoutingData:
    """One split of a routing task.

    scores: (n, m) float64 in [0, 1], NaN = missing cell. costs: (n, m) float64 USD.
    groups: (n,) str. images: one entry per prompt (PIL image, path or None) or None.
    """

    ids: list[str]
    prompts: list[str]
    groups: np.ndarray
    scores: np.ndarray
    costs: np.ndarray
    models: list[ModelInfo]
    images: list[Any] | None = None
    embed_texts: list[str] | None = None
    split: str = ""

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def m(self) -> int:
        return len(self.models)

    @property
    def model_names(self) -> list[str]:
        return [model.name for model in self.models]

    @property
    def has_images(self) -> bool:
        return self.images is not None and any(image is not None for image in self.images)

    def texts_to_embed(self) -> list[str]:
        return list(self.embed_texts) if self.embed_texts is not None else list(self.prompts)

    def subset(self, index: np.ndarray | Sequence[int]) -> RoutingData:
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        pick = [int(i) for i in index]
        return RoutingData(
            ids=[self.ids[i] for i in pick],
            prompts=[self.prompts[i] for i in pick],
            groups=self.groups[index],
            scores=self.scores[index],
            costs=self.costs[index],
            models=self.models,
            images=[self.images[i] for i in pick] if self.images is not None else None,
            embed_texts=[self.embed_texts[i] for i in pick] if self.embed_texts is not None else None,
            split=self.split,
        )

    def complete_rows(self) -> np.ndarray:
        """Boolean (n,): rows with a score for every model."""
        return ~np.isnan(self.scores).any(axis=1)

    def outcomes(self, cost_scale: float, group_descriptions: dict[str, str] | None = None,
                 encode_text: Callable[[list[str]], np.ndarray] | None = None,
                 encoder_path: str | None = None) -> Outcomes:
        return Outcomes(self.scores.copy(), self.costs / cost_scale, self.groups.copy(),
                        list(self.models), cost_scale, dict(group_descriptions or {}),
                        encode_text, self.texts_to_embed(), encoder_path)

    def fingerprint(self) -> str:
        """sha256 of ids, prompts, groups, scores and costs: identical data, identical hash."""
        digest = hashlib.sha256()
        for text in (*self.ids, "\x00", *self.prompts, "\x00", *map(str, self.groups), "\x00",
                     *self.model_names):
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f")
        digest.update(np.ascontiguousarray(np.nan_to_num(self.scores, nan=-1.0), "<f8").tobytes())
        digest.update(np.ascontiguousarray(np.nan_to_num(self.costs, nan=-1.0), "<f8").tobytes())
        return digest.hexdigest()

    # --- conversion -------------------------------------------------------------------
    def to_columns(self) -> dict[str, list[Any]]:
        """Columns in the canonical layout (for ``datasets.Dataset.from_dict``)."""
        cols: dict[str, list[Any]] = {"id": list(self.ids), "prompt": list(self.prompts),
                                      "group": [str(g) for g in self.groups]}
        if self.embed_texts is not None:
            cols["embed_text"] = list(self.embed_texts)
        for j, name in enumerate(self.model_names):
            cols[SCORE_PREFIX + name] = [None if np.isnan(v) else float(v) for v in self.scores[:, j]]
        for j, name in enumerate(self.model_names):
            cols[COST_PREFIX + name] = [None if np.isnan(v) else float(v) for v in self.costs[:, j]]
        return cols

    @classmethod
    def from_table(cls, table: Any, *, source: str, split: str = "",
                   models: Sequence[ModelInfo] | None = None,
                   images: list[Any] | None = None, row_offset: int = 0) -> RoutingData:
        """Build and validate from a ``datasets.Dataset`` or ``pyarrow.Table``.

        ``models`` gives metadata (and order) for the models; every model named there must
        have score and cost columns. Rows are numbered from ``row_offset`` in messages.
        """
        arrow = arrow_table(table)
        problems = validate_table(arrow, source=source, models=models, row_offset=row_offset,
                                  max_problems=1)
        if problems:
            raise problems[0]
        names = [m.name for m in models] if models else model_names_of(arrow.column_names)
        by_name = {m.name: m for m in models} if models else {}
        model_infos = [by_name.get(name, ModelInfo(name)) for name in names]
        scores = np.column_stack([_float_column(arrow, SCORE_PREFIX + n) for n in names])
        costs = np.column_stack([_float_column(arrow, COST_PREFIX + n) for n in names])
        columns = arrow.column_names
        if images is None and "image" in columns:
            images = arrow.column("image").to_pylist()
        embed_texts = arrow.column("embed_text").to_pylist() if "embed_text" in columns else None
        return cls(
            ids=[str(v) for v in arrow.column("id").to_pylist()],
            prompts=arrow.column("prompt").to_pylist(),
            groups=np.asarray([str(v) for v in arrow.column("group").to_pylist()], dtype=object),
            scores=scores.reshape(len(arrow), len(names)),
            costs=costs.reshape(len(arrow), len(names)),
            models=model_infos,
            images=images,
            embed_texts=embed_texts,
            split=split,
        )


def arrow_table(table: Any) -> Any:
    """The ``pyarrow.Table`` of a ``datasets.Dataset`` (honouring a selection) or a table."""
    if hasattr(table, "flatten_indices") and getattr(table, "_indices", None) is not None:
        table = table.flatten_indices()
    if hasattr(table, "data") and hasattr(table.data, "table"):
        return table.data.table
    return table


def model_names_of(columns: Sequence[str]) -> list[str]:
    """Model names in column order, from the ``score:<model>`` columns."""
    return [c[len(SCORE_PREFIX):] for c in columns if c.startswith(SCORE_PREFIX)]


def _float_column(arrow: Any, name: str) -> np.ndarray:
    column = arrow.column(name)
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def validate_table(arrow: Any, *, source: str, models: Sequence[ModelInfo] | None = None,
                   row_offset: int = 0, max_problems: int | None = None) -> list[DataError]:
    """Every problem in one split's table, as ``DataError``s naming file, row and column.

    Rows are 0-based data rows (the header is not counted), offset by ``row_offset``.
    """
    problems: list[DataError] = []

    def add(message: str, row: int | None = None, column: str | None = None) -> bool:
        problems.append(DataError(message, source=source,
                                  row=None if row is None else row + row_offset, column=column))
        return max_problems is not None and len(problems) >= max_problems

    columns = list(arrow.column_names)
    for name in REQUIRED_COLUMNS:
        if name not in columns and add(f"missing required column {name!r}", column=name):
            return problems
    names = model_names_of(columns)
    cost_names = [c[len(COST_PREFIX):] for c in columns if c.startswith(COST_PREFIX)]
    if not names and add(f"no '{SCORE_PREFIX}<model>' columns: a routing dataset needs at "
                         "least one model's scores"):
        return problems
    for name in names:
        if name not in cost_names and add(f"model {name!r} has scores but no cost column",
                                          column=COST_PREFIX + name):
            return problems
    for name in cost_names:
        if name not in names and add(f"model {name!r} has costs but no score column",
                                     column=SCORE_PREFIX + name):
            return problems
    if models is not None:
        expected = [m.name for m in models]
        for name in expected:
            if name not in names and add(f"model {name!r} of the task has no score column",
                                         column=SCORE_PREFIX + name):
                return problems
        for name in names:
            if name not in expected and add(
                    f"unknown model {name!r}: not among the task's models {expected}",
                    column=SCORE_PREFIX + name):
                return problems
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for column in columns:
        if column not in known and not column.startswith((SCORE_PREFIX, COST_PREFIX)) and add(
                f"unknown column {column!r} (expected id, prompt, group, score:<model>, "
                "cost:<model>, and optionally image, embed_text, split)", column=column):
            return problems
    if problems:
        return problems
    if len(arrow) == 0:
        add("empty split: no rows")
        return problems

    ids = arrow.column("id").to_pylist()
    seen: dict[str, int] = {}
    for row, value in enumerate(ids):
        if value is None or str(value) == "":
            if add("missing id", row, "id"):
                return problems
            continue
        key = str(value)
        if key in seen:
            if add(f"duplicate id {key!r} (first at row {seen[key] + row_offset})", row, "id"):
                return problems
        else:
            seen[key] = row
    for row, value in enumerate(arrow.column("prompt").to_pylist()):
        if not isinstance(value, str) and add(f"prompt must be a string, got {value!r}", row,
                                              "prompt"):
            return problems
    for row, value in enumerate(arrow.column("group").to_pylist()):
        if (value is None or str(value) == "") and add("missing group", row, "group"):
            return problems
    for name in names:
        try:
            scores = _float_column(arrow, SCORE_PREFIX + name)
            costs = _float_column(arrow, COST_PREFIX + name)
        except (TypeError, ValueError) as exc:
            row, column, value = _first_non_number(arrow, name)
            detail = f"not a number: {value!s}" if row is not None else str(exc)
            if add(f"non-numeric value in model {name!r}: {detail}", row, column):
                return problems
            continue
        score_col, cost_col = SCORE_PREFIX + name, COST_PREFIX + name
        for row in np.flatnonzero(np.isinf(scores) | (scores < 0) | (scores > 1)):
            if add(f"score {float(scores[row])!r} outside [0, 1]", int(row), score_col):
                return problems
        score_known = ~np.isnan(scores)
        for row in np.flatnonzero(score_known & np.isnan(costs)):
            if add("cost missing (NaN or empty) where the score is present", int(row), cost_col):
                return problems
        for row in np.flatnonzero(np.isinf(costs) | (costs < 0)):
            if add(f"cost {float(costs[row])!r} must be a finite number >= 0 (USD)", int(row), cost_col):
                return problems
        if not score_known.any() and add(f"model {name!r} has no scores at all", column=score_col):
            return problems
    return problems


def dataset_fingerprint(splits: dict[str, RoutingData]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(splits[name].fingerprint().encode())
    return digest.hexdigest()


@dataclass
class RoutingTask:
    """A loaded task: its card (may be None for a user's own data) and its splits."""

    name: str
    version: int
    splits: dict[str, RoutingData]
    source: str
    card: Any = None
    group_descriptions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    revision: str | None = None

    @property
    def models(self) -> list[ModelInfo]:
        return self.splits["train"].models

    @property
    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for split in SPLITS:
            for g in self.splits[split].groups:
                seen.setdefault(str(g), None)
        return list(seen)

    def fingerprint(self) -> str:
        return dataset_fingerprint(self.splits)

    def restrict_to_group(self, group: str) -> RoutingTask:
        """The sub-task of one group (``routerbench:mbpp``)."""
        if group not in self.groups:
            from routeharness.errors import UnknownNameError

            raise UnknownNameError(f"group of task {self.name!r}", group, self.groups)
        splits = {name: data.subset(data.groups == group) for name, data in self.splits.items()}
        return replace(self, name=f"{self.name}:{group}", splits=splits)


def check_task(task: RoutingTask) -> None:
    """Checks across splits: all three present and non-empty, same models, unique ids."""
    for split in SPLITS:
        if split not in task.splits:
            raise DataError(f"split {split!r} is missing", source=task.source)
        if task.splits[split].n == 0:
            raise DataError(f"split {split!r} is empty", source=task.source)
    reference = task.splits["train"].model_names
    for split in SPLITS:
        names = task.splits[split].model_names
        if names != reference:
            raise DataError(f"split {split!r} has models {names}, but train has {reference}",
                            source=task.source)
    owner: dict[str, str] = {}
    for split in SPLITS:
        for identifier in task.splits[split].ids:
            if identifier in owner:
                raise DataError(f"id {identifier!r} appears in both {owner[identifier]!r} and "
                                f"{split!r}", source=task.source, column="id")
            owner[identifier] = split


def carve_validation(ids: Sequence[str], groups: Sequence[str], fraction: float,
                     seed: int) -> np.ndarray:
    """Boolean mask of the training rows moved to validation: ``fraction`` of each group,
    chosen by a seeded permutation of the sorted ids, so it depends on nothing else."""
    ids_array = np.asarray([str(i) for i in ids], dtype=object)
    groups_array = np.asarray([str(g) for g in groups], dtype=object)
    mask = np.zeros(len(ids_array), dtype=bool)
    rng = np.random.default_rng(seed)
    for group in sorted(set(groups_array)):
        rows = np.flatnonzero(groups_array == group)
        rows = rows[np.argsort(ids_array[rows], kind="stable")]
        take = int(round(fraction * len(rows)))
        mask[rows[rng.permutation(len(rows))[:take]]] = True
    return mask


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


def prompt_key(prompt: str, image: Any = None) -> str:
    """What makes two prompts "the same" for leak checks: the text, and the image where
    there is one (its path or a hash of its bytes), so that image tasks that reuse a few
    question templates are not flagged."""
    if image is None:
        return prompt
    if isinstance(image, dict):
        data = image.get("bytes")
        image = hashlib.sha256(data).hexdigest() if data else image.get("path")
    elif isinstance(image, (bytes, bytearray)):
        image = hashlib.sha256(image).hexdigest()
    elif hasattr(image, "tobytes"):
        image = hashlib.sha256(image.tobytes()).hexdigest()
    return f"{prompt}\x00{image}"


def split_keys(data: RoutingData) -> list[str]:
    images = data.images if data.images is not None else [None] * data.n
    return [prompt_key(p, i) for p, i in zip(data.prompts, images)]


def find_leaks(task: RoutingTask) -> dict[str, list[tuple[int, int]]]:
    """Prompts shared between splits: ``{"test-train": [(test row, train row)], ...}`` for
    test-train, test-validation and validation-train (rows 0-based within each split)."""
    keys = {split: split_keys(task.splits[split]) for split in SPLITS if split in task.splits}
    out: dict[str, list[tuple[int, int]]] = {}
    for later, earlier in (("test", "train"), ("test", "validation"), ("validation", "train")):
        if later not in keys or earlier not in keys:
            continue
        first: dict[str, int] = {}
        for row, key in enumerate(keys[earlier]):
            first.setdefault(key, row)
        out[f"{later}-{earlier}"] = [(row, first[key]) for row, key in enumerate(keys[later])
                                     if key in first]
    return out


def duplicate_prompts(data: RoutingData) -> int:
    """Rows whose prompt (and image) repeats an earlier row of the same split."""
    keys = split_keys(data)
    return len(keys) - len(set(keys))
