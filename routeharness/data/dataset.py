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
``embedding``      optional list of d numbers: the row's own vector (``precomputed``)
``split``          optional: train / validation / test, for one-file datasets
=================  ==========================================================

See docs/dataset-format.md. The one validation lives in ``routeharness.data.validation`` (it
lists every problem with its file, row and column; ``RoutingData.from_table`` raises the
first as a ``DataError``); the one reader of every layout, ``task_from_table`` and the
canonical writer ``write_task`` in ``routeharness.data.readers``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from routeharness.common.errors import DataError
from routeharness.data.columns import (  # noqa: F401  (the column schema, re-exported)
    COST_PREFIX,
    EMBEDDING,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SCORE_PREFIX,
    SPLITS,
    arrow_table,
    float_column,
    model_names_of,
    prompt_key,
    read_embeddings,
)
from routeharness.data.validation import outcome_problems, validate_table

#: texts hashed per ``update`` by ``RoutingData.fingerprint``
_FINGERPRINT_BLOCK = 1 << 16


def _raw_bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    """The bytes of ``values`` as ``dtype``, C order (what ``tobytes`` gives), uncopied
    where they already are."""
    return np.ascontiguousarray(values, dtype).reshape(-1).view(np.uint8)


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
    embeddings: float32 (n, d), the dataset's own vectors (its ``embedding`` column, read
    by the ``precomputed`` encoder), or None.
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
    embeddings: np.ndarray | None = None

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
            embeddings=self.embeddings[index] if self.embeddings is not None else None,
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
        """sha256 of ids, prompts, groups, scores, costs and the ``embedding`` vectors
        where there are any: identical data, identical hash."""
        digest = hashlib.sha256()
        texts = (*self.ids, "\x00", *self.prompts, "\x00", *map(str, self.groups), "\x00",
                 *self.model_names)
        # each text then a unit separator, as bytes: joined in blocks (the same bytes as
        # one update per text, a few calls instead of millions)
        for start in range(0, len(texts), _FINGERPRINT_BLOCK):
            block = texts[start:start + _FINGERPRINT_BLOCK]
            digest.update(("\x1f".join(block) + "\x1f").encode("utf-8", "surrogatepass"))
        for values in (self.scores, self.costs):  # buffers hashed in place, not copied
            digest.update(_raw_bytes(np.nan_to_num(values, nan=-1.0), "<f8"))
        if self.embeddings is not None:  # absent: the hash of data without vectors is kept
            digest.update(b"embedding\x1f")
            digest.update(_raw_bytes(self.embeddings, "<f4"))
        return digest.hexdigest()

    # --- conversion -------------------------------------------------------------------
    def to_columns(self) -> dict[str, list[Any]]:
        """Columns in the canonical layout (for ``datasets.Dataset.from_dict``), without
        ``embedding`` (``vectors.embedding_array(self.embeddings)`` is its column)."""
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
                   images: list[Any] | None = None, row_offset: int = 0,
                   validate: bool = True) -> RoutingData:
        """Build and validate from a ``datasets.Dataset`` or ``pyarrow.Table``.

        ``models`` gives metadata (and order) for the models; every model named there must
        have score and cost columns. Rows are numbered from ``row_offset`` in messages.
        With a ``split`` name, what the protocol needs of that split is checked too
        (``routeharness.data.validation.outcome_problems``). ``validate=False``: the table was
        validated already (``routeharness.data.readers`` does, once, for every split).
        """
        arrow = arrow_table(table)
        if validate:
            problems = validate_table(arrow, source=source, models=models,
                                      row_offset=row_offset, max_problems=1)
            if problems:
                raise problems[0]
        names = [m.name for m in models] if models else model_names_of(arrow.column_names)
        by_name = {m.name: m for m in models} if models else {}
        model_infos = [by_name.get(name, ModelInfo(name)) for name in names]
        scores = np.column_stack([float_column(arrow, SCORE_PREFIX + n) for n in names])
        costs = np.column_stack([float_column(arrow, COST_PREFIX + n) for n in names])
        columns = arrow.column_names
        if images is None and "image" in columns:
            images = arrow.column("image").to_pylist()
        embed_texts = arrow.column("embed_text").to_pylist() if "embed_text" in columns else None
        embeddings = None
        if EMBEDDING in columns:
            embeddings, problems = read_embeddings(arrow)
            if problems:  # only when validate=False was given a table never validated
                row, message = problems[0]
                raise DataError(message, source=source, row=row + row_offset, column=EMBEDDING)
        data = cls(
            ids=[str(v) for v in arrow.column("id").to_pylist()],
            prompts=arrow.column("prompt").to_pylist(),
            groups=np.asarray([str(v) for v in arrow.column("group").to_pylist()], dtype=object),
            scores=scores.reshape(len(arrow), len(names)),
            costs=costs.reshape(len(arrow), len(names)),
            models=model_infos,
            images=images,
            embed_texts=embed_texts,
            split=split,
            embeddings=embeddings,
        )
        if validate and split:
            data.check_outcomes(source)
        return data

    def check_outcomes(self, source: str) -> None:
        """Raise the first thing the protocol cannot work with in this split (no score
        for a model, no fully scored row in validation or test, a zero or overflowing
        cost scale): see ``routeharness.data.validation.outcome_problems``."""
        problems = outcome_problems(self.scores, self.costs, self.model_names, self.split,
                                    source, self.groups)
        if problems:
            raise problems[0]


def dataset_fingerprint(splits: dict[str, RoutingData]) -> str:
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(splits[name].fingerprint().encode())
    return digest.hexdigest()


@dataclass
class RoutingTask:
    """A loaded task: its card (may be None for a user's own data) and its splits.
    ``embedding_seeds``: read-only embedding-cache folders its plugin ships (the cache's
    own layout), consulted for prompts the cache lacks (``embedding/cache.py``)."""

    name: str
    version: int
    splits: dict[str, RoutingData]
    source: str
    card: Any = None
    group_descriptions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    revision: str | None = None
    embedding_seeds: tuple[str, ...] = ()
    #: a user's dataset's default encoder (its ``routing.json``'s ``encoder``), used like a
    #: card's when the task has no card
    default_encoder: str | None = None

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
            from routeharness.common.errors import UnknownNameError

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
    for split in SPLITS:
        task.splits[split].check_outcomes(f"{task.source}[{split}]")


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
