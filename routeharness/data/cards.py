"""Task cards (``tasks/<name>.yaml``) and a dataset's ``routing.json`` sidecar: typed
contracts (``routeharness.common.contract``). Unknown keys, missing keys, wrong types
and values out of range are one line naming the file and the key's path
(``routerbench.yaml: models[2] ('gpt-4').price_input_per_mtok: expected a number, got
"cheap"``); nothing is coerced.

``TaskCard`` is what a task plugin's loader receives as ``card`` (public API). Its nested
records (``source``, ``splits``, each of ``models`` and ``groups``) are typed, and still
read as the mappings they are written as (``model["name"]``, ``card.source.get("commit")``,
``dict(card.source)``): plugins written against the dict form keep working.
``DatasetSidecar`` is ``routing.json``; its ``models`` are a card's (``CardModel``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from routeharness.common.contract import Contract, Field, NonNegative, check, read_yaml
from routeharness.common.errors import DataError, TaskCardError
from routeharness.data.columns import name_problem


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _name(value: str) -> str:
    """A model, group or task name: not empty, no control characters, no outer spaces."""
    _not_blank(value)
    problem = name_problem(value)
    if problem:
        raise ValueError(f"name {value!r} {problem}")
    return value


#: text that shows something
Text = Annotated[str, AfterValidator(_not_blank)]
#: a model, group or task name (``columns.name_problem``)
Name = Annotated[str, AfterValidator(_name)]
#: caveats shown with results: one text or a list of texts
Notes = str | list[str]


def _unique_names(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"name {item.name!r} is listed twice")
        seen.add(item.name)
    return items


class CardRecord(Contract):
    """A nested record of a card, read as the mapping it is written as: ``record[key]``,
    ``record.get(key)``, ``keys()``, ``items()``, ``key in record`` and ``dict(record)``
    see the keys given (those not None); it is written with those keys only."""

    @model_serializer(mode="wrap")
    def _without_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def _given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __getitem__(self, key: str) -> Any:
        return self._given()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._given()

    def get(self, key: str, default: Any = None) -> Any:
        return self._given().get(key, default)

    def keys(self) -> list[str]:
        return list(self._given())

    def values(self) -> list[Any]:
        return list(self._given().values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._given().items())


class CardSource(CardRecord):
    """Where a task's data comes from, pinned: an upstream and its commit, or a Hub id
    and revision."""

    upstream: str | None = Field(None, description="the upstream repository or URL")
    commit: str | None = Field(None, description="the upstream commit the data is read at")
    hub: str | None = Field(None, description="the Hugging Face Hub dataset id")
    revision: str | None = Field(None, description="the Hub revision (or the upstream's "
                                 "named version)")
    mirror: str | None = Field(None, description="the folder under --data-dir holding a "
                               "local copy")
    embedded: str | None = Field(None, description="the canonical copy shipped in a "
                                 "plugin package")
    files: list[str] | None = Field(None, description="the upstream files read")


class CardSplits(CardRecord):
    """How each split is made (text)."""

    train: str | None = Field(None, description="how the training split is made")
    validation: str | None = Field(None, description="how the validation split is made")
    test: str | None = Field(None, description="how the test split is made")


class CardModel(CardRecord):
    """A candidate model: its name (the ``score:<name>`` and ``cost:<name>`` columns),
    the text GraphRouter-style routers embed, and its prices (USD)."""

    name: Name = Field(description="the model's name, as in its score:/cost: columns")
    description: str | None = Field(None, description="what the model is (routers such as "
                                    "GraphRouter embed it)")
    provider: str | None = Field(None, description="who serves the model")
    size: str | None = Field(None, description="the model's size, as text")
    price_input_per_mtok: NonNegative | None = Field(None, description="USD per million "
                                                     "input tokens")
    price_output_per_mtok: NonNegative | None = Field(None, description="USD per million "
                                                      "output tokens")
    price_per_image: NonNegative | None = Field(None, description="USD per input image")
    notes: Notes | None = Field(None, description="caveats about this model")


class CardGroup(CardRecord):
    """A group (source benchmark or sub-task) of prompts."""

    name: Name = Field(description="the group's name, as in the group column")
    description: str | None = Field(None, description="what the group is")


class TaskCard(Contract):
    """A parsed, strictly validated task card (``tasks/<name>.yaml``): what a task
    loader receives as ``card``. ``path`` is the file it was read from."""

    model_config = ConfigDict(title="routeharness task card")

    name: Text = Field(description="the task's name; a card file is named <name>.yaml")
    version: int = Field(ge=1, description="the task's version: a changed task is a new "
                         "version")
    description: str = Field(description="what the task is")
    license: str = Field(description="the data's license(s)")
    citation: str = Field(description="how to cite the data (BibTeX)")
    source: CardSource = Field(description="where the data comes from, pinned")
    score: dict[str, Any] = Field(description="the score definition (definition, range, "
                                  "...)")
    cost: dict[str, Any] = Field(description="the cost model (definition, unit, price "
                                 "table, ...)")
    splits: CardSplits = Field(description="how the train, validation and test splits "
                               "are made")
    models: list[CardModel] = Field(description="the candidate models, in order; names "
                                    "unique, at least one")
    groups: list[CardGroup] = Field(default_factory=list, description="the groups, names "
                                    "unique")
    embedding: dict[str, Any] = Field(default_factory=dict, description="how prompts are "
                                      "prepared for embedding")
    notes: Notes | None = Field(None, description="caveats shown with results")
    modality: Literal["text", "text+image"] = Field("text", description="what a prompt is")
    encoder: Text | None = Field(None, description="the encoder eval uses when --encoder "
                                 "is not given (e.g. effnet-minilm)")

    _path: Path = PrivateAttr(default_factory=Path)

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[CardModel]) -> list[CardModel]:
        if not value:
            raise ValueError("must list at least one model")
        return _unique_names(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[CardGroup]) -> list[CardGroup]:
        return _unique_names(value)

    @property
    def path(self) -> Path:
        """The card file."""
        return self._path

    def model_infos(self) -> list[Any]:
        from routeharness.data.dataset import ModelInfo

        return [ModelInfo.from_dict(dict(m)) for m in self.models]

    def group_descriptions(self) -> dict[str, str]:
        return {g.name: g.description or "" for g in self.groups}

    @property
    def revision(self) -> str | None:
        return self.source.revision or self.source.commit


def parse_card(data: Any, path: Path) -> TaskCard:
    """A card's mapping as a ``TaskCard`` (``path``: where it was read); the first
    problem one ``TaskCardError`` line naming the file and the key."""
    return _named(check(TaskCard, data, str(path), TaskCardError), Path(path))


def load_card(path: str | Path) -> TaskCard:
    """Read and validate a task card file (YAML, a key given twice refused); every
    failure is one ``TaskCardError`` line."""
    path = Path(path)
    return _named(read_yaml(path, TaskCard, "task card", error=TaskCardError), path)


def _named(card: TaskCard, path: Path) -> TaskCard:
    if path.suffix in (".yaml", ".yml") and path.stem != card.name:
        raise TaskCardError(f"{path}: card name {card.name!r} does not match its file name")
    card._path = path
    return card


class DatasetSidecar(Contract):
    """A dataset's optional ``routing.json`` (docs/dataset-format.md): every key
    optional, none unknown."""

    model_config = ConfigDict(title="routeharness dataset sidecar (routing.json)")

    name: Name | None = Field(None, description="the task's name (default: the folder or "
                              "file name)")
    version: int | None = Field(None, ge=1, description="the task's version (default 1)")
    description: str | None = Field(None, description="what the task is")
    license: str | None = Field(None, description="the data's license")
    source: str | dict[str, Any] | None = Field(None, description="where the data came "
                                                "from")
    built_from: str | None = Field(None, description="what the builder read")
    revision: str | None = Field(None, description="the data's revision")
    models: list[CardModel] | None = Field(None, description="the models and their order "
                                           "(at least one; names unique)")
    groups: dict[str, str] | None = Field(None, description="group name -> description")
    suite: str | None = Field(None, description="the upstream suite a builder read")
    build_version: int | str | None = Field(None, description="the builder's version")
    counts: dict[str, Any] | None = Field(None, description="row counts a builder recorded")
    notes: Notes | None = Field(None, description="caveats shown with results")
    encoder: Text | None = Field(None, description="the encoder eval uses when --encoder "
                                 "is not given, as a task card's (a builder of image + "
                                 "text data writes effnet-minilm)")

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[CardModel] | None) -> list[CardModel] | None:
        if value is not None and not value:
            raise ValueError("must list at least one model (or be left out)")
        return None if value is None else _unique_names(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for group in value or {}:
            if name_problem(group):
                raise ValueError(f"has the group name {group!r}, which "
                                 f"{name_problem(group)}")
        return value


def check_sidecar(data: Any, where: str) -> DatasetSidecar:
    """A ``routing.json`` value as a ``DatasetSidecar``; one ``DataError`` line naming
    ``where`` and the key otherwise."""
    return check(DatasetSidecar, data, where, DataError)
