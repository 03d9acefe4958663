"""Task cards (tasks/<name>.yaml): the schema, strictly validated with
``routeharness.common.schema`` (unknown keys rejected, types checked, nested ``source``,
``splits``, ``models`` and ``groups`` checked), and the ``TaskCard`` they parse into."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError, RouteHarnessError, TaskCardError
from routeharness.common.schema import (
    Field,
    check_items,
    check_mapping,
    non_empty,
    non_negative,
    str_values,
)
from routeharness.data.columns import name_problem

MODALITIES = ("text", "text+image")


def _modality(value: Any) -> str | None:
    return None if value in MODALITIES else f"must be one of {list(MODALITIES)}"


def _positive_int(value: Any) -> str | None:
    return None if value >= 1 else "must be a positive integer"


def name_text(value: Any) -> str | None:
    """A model or group name: not empty, no control characters, no outer whitespace."""
    return non_empty(value) or name_problem(value)


def check_names(items: Any, where: str, error: type[RouteHarnessError]) -> None:
    """The ``name`` of each item of a models or groups list, checked before the list is
    (the list's messages quote names as labels): ``where[i]: name ... holds ...``."""
    for i, item in enumerate(items if isinstance(items, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name_problem(name):
            raise error(f"{where}[{i}]: name {name!r} {name_problem(name)}")


TEXT = Field(str, check=non_empty)
NAME = Field(str, required=True, check=name_text)
PRICE = Field(float, check=non_negative)
NOTES = Field((str, list))

SOURCE_FIELDS = {"upstream": Field(str), "commit": Field(str), "hub": Field(str),
                 "revision": Field(str), "mirror": Field(str), "embedded": Field(str),
                 "files": Field(list)}
SPLIT_FIELDS = {"train": Field(str), "validation": Field(str), "test": Field(str)}
#: a candidate model; also the model entries of a dataset's routing.json sidecar
MODEL_FIELDS = {"name": NAME, "description": Field(str),
                "provider": Field(str), "size": Field(str), "price_input_per_mtok": PRICE,
                "price_output_per_mtok": PRICE, "price_per_image": PRICE, "notes": NOTES}
GROUP_FIELDS = {"name": NAME, "description": Field(str)}
CARD_FIELDS = {
    "name": Field(str, required=True, check=non_empty),
    "version": Field(int, required=True, check=_positive_int),
    "description": Field(str, required=True), "license": Field(str, required=True),
    "citation": Field(str, required=True), "source": Field(dict, required=True),
    "score": Field(dict, required=True), "cost": Field(dict, required=True),
    "splits": Field(dict, required=True), "models": Field(list, required=True),
    "groups": Field(list), "embedding": Field(dict), "notes": NOTES,
    "modality": Field(str, check=_modality),
    # the encoder spec eval uses when --encoder is not given (e.g. "effnet-minilm")
    "encoder": TEXT,
}


def _some_models(value: Any) -> str | None:
    return None if value else "must list at least one model (or be left out)"


def _group_names(value: Any) -> str | None:
    bad = next((k for k in value if isinstance(k, str) and name_problem(k)), None)
    return str_values(value) or (None if bad is None else
                                 f"has the group name {bad!r}, which {name_problem(bad)}")


#: a dataset's ``routing.json`` sidecar (read by ``routeharness.data.readers``)
SIDECAR_FIELDS = {
    "name": Field(str, check=name_text), "version": Field(int, check=_positive_int),
    "description": Field(str), "license": Field(str), "source": Field((str, dict)),
    "built_from": Field(str), "revision": Field(str), "models": Field(list, check=_some_models),
    "groups": Field(dict, check=_group_names), "suite": Field(str),
    "build_version": Field((int, str)), "counts": Field(dict), "notes": Field((str, list)),
}


def check_sidecar(data: Any, where: str) -> dict[str, Any]:
    """A ``routing.json`` mapping, strictly checked (its models as a card's); one
    ``DataError`` naming ``where`` and the key otherwise."""
    data = check_mapping(data, SIDECAR_FIELDS, where, DataError)
    check_names(data.get("models", []), f"{where}: models", DataError)
    check_items(data.get("models", []), MODEL_FIELDS, f"{where}: models", DataError)
    return data


@dataclass(frozen=True)
class TaskCard:
    """A parsed, validated task card (tasks/<name>.yaml)."""

    name: str
    version: int
    description: str
    license: str
    citation: str
    source: dict[str, Any]
    score: dict[str, Any]
    cost: dict[str, Any]
    splits: dict[str, Any]
    models: list[dict[str, Any]]
    path: Path
    groups: list[dict[str, Any]] = field(default_factory=list)
    embedding: dict[str, Any] = field(default_factory=dict)
    notes: Any = None
    modality: str = "text"
    encoder: str | None = None

    def model_infos(self) -> list[Any]:
        from routeharness.data.dataset import ModelInfo

        return [ModelInfo.from_dict(m) for m in self.models]

    def group_descriptions(self) -> dict[str, str]:
        return {g["name"]: g.get("description", "") for g in self.groups}

    @property
    def revision(self) -> str | None:
        return self.source.get("revision") or self.source.get("commit")


def parse_card(data: Any, path: Path) -> TaskCard:
    """Validate a card's mapping: unknown keys, missing keys and wrong types are errors,
    at the top level and inside source, splits, models and groups."""
    where = str(path)
    if not isinstance(data, dict):
        raise TaskCardError(f"{where}: a task card must be a YAML mapping, "
                            f"got {type(data).__name__}")
    data = check_mapping(data, CARD_FIELDS, where, TaskCardError)
    if path.suffix in (".yaml", ".yml") and path.stem != data["name"]:
        raise TaskCardError(f"{where}: card name {data['name']!r} does not match its file name")
    check_mapping(data["source"], SOURCE_FIELDS, f"{where}: source", TaskCardError)
    check_mapping(data["splits"], SPLIT_FIELDS, f"{where}: splits", TaskCardError)
    check_names(data["models"], f"{where}: models", TaskCardError)
    check_items(data["models"], MODEL_FIELDS, f"{where}: models", TaskCardError)
    if not data["models"]:
        raise TaskCardError(f"{where}: models must list at least one model")
    check_names(data.get("groups", []), f"{where}: groups", TaskCardError)
    check_items(data.get("groups", []), GROUP_FIELDS, f"{where}: groups", TaskCardError)
    return TaskCard(path=path, **data)


def load_card(path: str | Path) -> TaskCard:
    """Read and validate a task card file; every failure is one ``TaskCardError`` line."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskCardError(f"{path}: task card not found") from None
    except UnicodeDecodeError as exc:
        raise TaskCardError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise TaskCardError(f"{path}: cannot read task card: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskCardError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return parse_card(data, path)
