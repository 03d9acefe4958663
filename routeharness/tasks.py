"""Task cards (YAML, strictly validated) and task loading.

A task spec on the command line is one of:
- ``NAME`` or ``NAME:GROUP``: a registered task, or one group of it;
- a local file or directory in the canonical layout (docs/dataset-format.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.errors import RouteHarnessError, TaskCardError

CARD_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "version": int, "description": str, "license": str, "citation": str,
    "source": dict, "score": dict, "cost": dict, "splits": dict, "models": list,
    "groups": list, "embedding": dict, "notes": (str, list), "modality": str,
}
REQUIRED_CARD_KEYS = ("name", "version", "description", "license", "citation", "source",
                      "score", "cost", "splits", "models")
SOURCE_KEYS = {"upstream", "commit", "hub", "revision", "mirror", "embedded", "files"}
MODEL_KEYS = {"name", "description", "provider", "size", "price_input_per_mtok",
              "price_output_per_mtok", "price_per_image", "notes"}
GROUP_KEYS = {"name", "description"}
SPLIT_KEYS = {"train", "validation", "test"}
MODALITIES = {"text", "text+image"}


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

    def model_infos(self) -> list[Any]:
        from routeharness.data import ModelInfo

        return [ModelInfo.from_dict(m) for m in self.models]

    def group_descriptions(self) -> dict[str, str]:
        return {g["name"]: g.get("description", "") for g in self.groups}

    @property
    def revision(self) -> str | None:
        return self.source.get("revision") or self.source.get("commit")


def parse_card(data: Any, path: Path) -> TaskCard:
    """Validate a card's mapping: unknown keys, missing keys and wrong types are errors."""
    where = str(path)
    if not isinstance(data, dict):
        raise TaskCardError(f"{where}: a task card must be a YAML mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(CARD_KEYS))
    if unknown:
        raise TaskCardError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(CARD_KEYS)}")
    missing = [k for k in REQUIRED_CARD_KEYS if k not in data]
    if missing:
        raise TaskCardError(f"{where}: missing required key(s) {missing}")
    for key, value in data.items():
        expected = CARD_KEYS[key]
        if (key == "version" and isinstance(value, bool)) or not isinstance(value, expected):
            raise TaskCardError(f"{where}: key {key!r} must be {_type_name(expected)}, "
                                f"got {type(value).__name__}")
    if data["version"] < 1:
        raise TaskCardError(f"{where}: version must be a positive integer")
    if path.stem != data["name"] and path.suffix in (".yaml", ".yml"):
        raise TaskCardError(f"{where}: card name {data['name']!r} does not match its file name")
    _check_keys(data["source"], SOURCE_KEYS, f"{where}: source")
    _check_keys(data["splits"], SPLIT_KEYS, f"{where}: splits")
    if data.get("modality", "text") not in MODALITIES:
        raise TaskCardError(f"{where}: modality must be one of {sorted(MODALITIES)}")
    names: set[str] = set()
    for i, model in enumerate(data["models"]):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise TaskCardError(f"{where}: models[{i}] must be a mapping with a 'name'")
        _check_keys(model, MODEL_KEYS, f"{where}: models[{i}] ({model['name']})")
        if model["name"] in names:
            raise TaskCardError(f"{where}: model {model['name']!r} is listed twice")
        names.add(model["name"])
    if not names:
        raise TaskCardError(f"{where}: models must list at least one model")
    for i, group in enumerate(data.get("groups", [])):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise TaskCardError(f"{where}: groups[{i}] must be a mapping with a 'name'")
        _check_keys(group, GROUP_KEYS, f"{where}: groups[{i}]")
    return TaskCard(path=path, **data)


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def _check_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise TaskCardError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def load_card(path: str | Path) -> TaskCard:
    """Read and validate a task card file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskCardError(f"{path}: task card not found") from None
    except UnicodeDecodeError as exc:
        raise TaskCardError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskCardError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return parse_card(data, path)


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """``--data-dir`` if given, else ``$ROUTEHARNESS_DATA``, else None (embedded default)."""
    value = data_dir if data_dir is not None else os.environ.get("ROUTEHARNESS_DATA")
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise RouteHarnessError(f"data directory {path} does not exist")
    return path


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"routerbench:mbpp"`` -> ("routerbench", "mbpp")."""
    name, _, group = spec.partition(":")
    return name, (group or None)


def load_task(spec: str, *, data_dir: str | Path | None = None, **options: Any) -> Any:
    """Load a task by spec (see module docstring) as a checked ``RoutingTask``."""
    from routeharness.data import check_task
    from routeharness.registry import get_registry

    registry = get_registry("task")
    name, group = split_spec(spec)
    if name not in registry and (os.sep in spec or Path(spec).exists()):
        task = load_local(Path(spec))
    else:
        entry = registry.get(name)
        card_path = entry.options.get("card")
        card = load_card(card_path) if card_path else None
        loader = entry.load()
        task = loader(card, data_dir=resolve_data_dir(data_dir), **options)
    check_task(task)
    if group is not None:
        task = task.restrict_to_group(group)
    return task


# --- a user's own data, in the canonical layout -----------------------------------------
_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
SIDECAR = "routing.json"


def _read_split_file(path: Path) -> Any:
    """One file -> ``datasets.Dataset``; unreadable files become one-line DataErrors."""
    import datasets

    from routeharness.data import DataError

    builder = _BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"unsupported file type {path.suffix!r} (use .parquet, .csv or .jsonl)",
                        source=str(path))
    if builder == "csv":
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text: byte {exc.start} cannot be decoded",
                            source=str(path)) from None
    try:
        datasets.disable_progress_bars()
        reader = {"parquet": datasets.Dataset.from_parquet, "csv": datasets.Dataset.from_csv,
                  "json": datasets.Dataset.from_json}[builder]
        return reader(str(path), keep_in_memory=True)
    except Exception as exc:  # pyarrow/pandas raise many types for a broken file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {builder} file: {detail}", source=str(path)) from None


def _sidecar(directory: Path) -> dict[str, Any]:
    import json

    from routeharness.data import DataError

    path = directory / SIDECAR
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise DataError("must be a JSON object", source=str(path))
    return data


def load_local(path: Path) -> Any:
    """A user's dataset: a ``save_to_disk`` directory, a directory of split files
    (``train.parquet``, ``validation.csv``, ``test.jsonl``, ...) or one file with a
    ``split`` column. An optional ``routing.json`` gives name, version and model metadata."""
    from routeharness.data import SPLITS, DataError, ModelInfo, RoutingData, RoutingTask

    path = path.expanduser()
    if not path.exists():
        raise DataError("no such file or directory", source=str(path))
    meta = _sidecar(path if path.is_dir() else path.parent)
    models = [ModelInfo.from_dict(m) for m in meta.get("models", [])] or None
    splits: dict[str, RoutingData] = {}
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        import datasets

        try:
            dataset_dict = datasets.load_from_disk(str(path), keep_in_memory=True)
        except Exception as exc:
            raise DataError(f"cannot load saved dataset: {exc}", source=str(path)) from None
        for split in SPLITS:
            if split not in dataset_dict:
                raise DataError(f"split {split!r} is missing", source=str(path))
            splits[split] = RoutingData.from_table(dataset_dict[split], source=f"{path}[{split}]",
                                                   split=split, models=models)
    elif path.is_dir():
        for split in SPLITS:
            files = sorted(p for p in path.glob(f"{split}.*") if p.suffix.lower() in _BUILDERS)
            if not files:
                raise DataError(f"no file for split {split!r} ({split}.parquet, .csv or .jsonl)",
                                source=str(path))
            table = _read_split_file(files[0])
            splits[split] = RoutingData.from_table(table, source=str(files[0]), split=split,
                                                   models=models)
    else:
        table = _read_split_file(path)
        if "split" not in table.column_names:
            raise DataError("one-file datasets need a 'split' column (train/validation/test)",
                            source=str(path), column="split")
        from routeharness.data import arrow_table, validate_table

        problems = validate_table(arrow_table(table), source=str(path), models=models,
                                  max_problems=1)
        if problems:
            raise problems[0]
        split_values = table["split"]
        for row, value in enumerate(split_values):
            if value not in SPLITS:
                raise DataError(f"split must be one of {list(SPLITS)}, got {value!r}",
                                source=str(path), row=row, column="split")
        for split in SPLITS:
            rows = [i for i, v in enumerate(split_values) if v == split]
            if not rows:
                raise DataError(f"split {split!r} is empty", source=str(path), column="split")
            part = table.select(rows).remove_columns("split")
            splits[split] = RoutingData.from_table(part, source=str(path), split=split,
                                                   models=models, row_offset=0)
    name = str(meta.get("name") or path.stem)
    return RoutingTask(name=name, version=int(meta.get("version", 1)), splits=splits,
                       source=str(path), group_descriptions=dict(meta.get("groups", {})))
