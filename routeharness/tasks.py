"""Task cards (YAML, strictly validated) and task loading.

A task spec on the command line is one of:
- ``NAME`` or ``NAME:GROUP``: a registered task, or one group of it;
- a local file or directory in the canonical layout (docs/dataset-format.md);
- ``hub:ORG/NAME[@REVISION][:GROUP]``: a Hugging Face Hub dataset in that layout.
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
    allow_leaks = bool(options.pop("allow_leaks", False))
    name, group = split_spec(spec)
    if spec.startswith(HUB_PREFIX):
        repo, revision, group = parse_hub_spec(spec)
        task = load_hub(repo, revision)
        if not allow_leaks:
            _raise_first_leak(task)
    elif name not in registry and (os.sep in spec or Path(spec).exists()):
        # a user's dataset: every schema check, with file rows, and no test prompt in train
        problems = validate_path(Path(spec), max_problems=1, check_leaks=not allow_leaks)
        if problems:
            raise problems[0]
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
    problems = (check_text_file(path, builder, max_problems=1) if builder in ("csv", "json")
                else check_parquet_file(path))
    if problems:
        raise problems[0]
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


# --- checks on a user's files, Hub datasets, `data info` and `data build` ---------------
HUB_PREFIX = "hub:"


def check_text_file(path: Path, builder: str, max_problems: int | None = None) -> list[Any]:
    """Problems a CSV or JSON-lines reader would hide or report without a row: bytes that
    are not UTF-8 (with the row and column they fall in), CSV rows with a different number
    of fields from the header, JSON lines that do not parse. 0-based data rows."""
    import csv
    import io
    import json
    import re

    from routeharness.data import DataError

    source = str(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[:exc.start].decode("utf-8", errors="replace")
        message = f"not UTF-8 text: byte {exc.start} (0x{raw[exc.start]:02x}) cannot be decoded"
        if builder == "csv":
            records = list(csv.reader(io.StringIO(prefix)))
            header = records[0] if records else []
            if prefix.endswith(("\n", "\r")) or not records:
                row, field = len(records) - 1, 0
            else:
                row, field = len(records) - 2, len(records[-1]) - 1
            column = header[field] if 0 <= field < len(header) else None
            return [DataError(message, source=source, row=row if row >= 0 else None,
                              column=column)]
        row = prefix.count("\n")
        keys = re.findall(r'"([^"\\]+)"\s*:', prefix.rsplit("\n", 1)[-1])
        return [DataError(message, source=source, row=row, column=keys[-1] if keys else None)]
    problems: list[Any] = []

    def add(problem: Any) -> bool:
        problems.append(problem)
        return max_problems is not None and len(problems) >= max_problems

    if builder == "csv":
        try:
            records = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            return [DataError(f"malformed CSV: {exc}", source=source)]
        if not records:
            return [DataError("empty file: no header", source=source)]
        header = records[0]
        if not any(records[1:]):
            return [DataError("empty split: no rows (only a header)", source=source)]
        for row, record in enumerate(records[1:]):
            if not record:
                continue
            if len(record) != len(header):
                missing = (f" (first missing column {header[len(record)]!r})"
                           if len(record) < len(header) else "")
                if add(DataError(f"{len(record)} fields but the header has {len(header)}"
                                 + missing, source=source, row=row,
                                 column=header[len(record)] if missing else None)):
                    return problems
        return problems
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return [DataError(f"invalid JSON at line {exc.lineno}: {exc.msg}", source=source)]
        if not all(isinstance(v, dict) for v in value):
            return [DataError("a JSON list must hold one object per row", source=source)]
        return problems
    if not text.strip():
        return [DataError("empty split: no rows (empty file)", source=source)]
    for row, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if add(DataError(f"invalid JSON line: {exc.msg} (character {exc.pos})",
                             source=source, row=row)):
                return problems
            continue
        if not isinstance(value, dict) and add(DataError("each line must be a JSON object",
                                                         source=source, row=row)):
            return problems
    return problems


def check_parquet_file(path: Path) -> list[Any]:
    """A parquet file pyarrow cannot open (truncated, not parquet) as one ``DataError``."""
    import pyarrow.parquet as pq

    from routeharness.data import DataError

    try:
        rows = pq.ParquetFile(str(path)).metadata.num_rows  # reading the footer is the check
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [DataError(f"cannot read parquet file: {detail}", source=str(path))]
    if rows == 0:
        return [DataError("empty split: no rows", source=str(path))]
    return []


def validate_path(path: str | Path, *, max_problems: int | None = None,
                  check_leaks: bool = True) -> list[Any]:
    """Every problem of a user's dataset (any layout ``load_local`` reads) as ``DataError``s
    naming file, row (0-based data row of that file) and column: unreadable files, schema
    problems of each split, models that differ between splits, ids repeated across splits
    and (``check_leaks``) test prompts that also appear in train or validation."""
    from routeharness.data import (
        SPLITS,
        DataError,
        ModelInfo,
        arrow_table,
        model_names_of,
        prompt_key,
        validate_table,
    )

    path = Path(path).expanduser()
    problems: list[Any] = []

    def remaining() -> int | None:
        return None if max_problems is None else max_problems - len(problems)

    def add(*items: Any) -> bool:
        for item in items:
            problems.append(item)
            if max_problems is not None and len(problems) >= max_problems:
                return True
        return False

    if not path.exists():
        return [DataError("no such file or directory", source=str(path))]
    try:
        meta = _sidecar(path if path.is_dir() else path.parent)
        models = [ModelInfo.from_dict(m) for m in meta.get("models", [])] or None
    except DataError as exc:
        return [exc]
    except (TypeError, AttributeError):
        return [DataError("'models' must be a list of objects with a 'name'",
                          source=str((path if path.is_dir() else path.parent) / SIDECAR))]
    # split -> (arrow table, source for messages, file row of each table row or None)
    parts: dict[str, tuple[Any, str, list[int] | None]] = {}
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        import datasets

        try:
            dataset_dict = datasets.load_from_disk(str(path), keep_in_memory=True)
        except Exception as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return [DataError(f"cannot load saved dataset: {detail}", source=str(path))]
        for split in SPLITS:
            if split not in dataset_dict:
                if add(DataError(f"split {split!r} is missing", source=str(path))):
                    return problems
                continue
            table, source = arrow_table(dataset_dict[split]), f"{path}[{split}]"
            if add(*validate_table(table, source=source, models=models,
                                   max_problems=remaining())):
                return problems
            parts[split] = (table, source, None)
    elif path.is_dir():
        for split in SPLITS:
            files = sorted(p for p in path.glob(f"{split}.*") if p.suffix.lower() in _BUILDERS)
            if not files:
                if add(DataError(f"no file for split {split!r} ({split}.parquet, .csv or "
                                 ".jsonl)", source=str(path))):
                    return problems
                continue
            try:
                table = arrow_table(_read_split_file(files[0]))
            except DataError as exc:
                if add(exc):
                    return problems
                continue
            if add(*validate_table(table, source=str(files[0]), models=models,
                                   max_problems=remaining())):
                return problems
            parts[split] = (table, str(files[0]), None)
    else:
        try:
            table = arrow_table(_read_split_file(path))
        except DataError as exc:
            return [exc]
        if "split" not in table.column_names:
            return [DataError("one-file datasets need a 'split' column (train/validation/test)",
                              source=str(path), column="split")]
        if add(*validate_table(table, source=str(path), models=models,
                               max_problems=remaining())):
            return problems
        values = table.column("split").to_pylist()
        for row, value in enumerate(values):
            if value not in SPLITS and add(DataError(
                    f"split must be one of {list(SPLITS)}, got {value!r}", source=str(path),
                    row=row, column="split")):
                return problems
        for split in SPLITS:
            rows = [i for i, v in enumerate(values) if v == split]
            if not rows:
                if add(DataError(f"split {split!r} is empty: no row has split {split!r}",
                                 source=str(path), column="split")):
                    return problems
                continue
            parts[split] = (table.take(rows), str(path), rows)

    def file_row(split: str, row: int) -> int:
        rows = parts[split][2]
        return rows[row] if rows is not None else row

    usable = {s: p for s, p in parts.items()
              if {"id", "prompt"} <= set(p[0].column_names) and len(p[0])}
    if "train" in usable:
        reference = model_names_of(usable["train"][0].column_names)
        for split in ("validation", "test"):
            if split not in usable:
                continue
            names = model_names_of(usable[split][0].column_names)
            if names != reference:
                odd = [n for n in names if n not in reference] or [
                    n for n in reference if n not in names]
                column = "score:" + odd[0] if odd else None
                if add(DataError(f"split {split!r} has models {names}, but train has "
                                 f"{reference}", source=usable[split][1], column=column)):
                    return problems
    owner: dict[str, tuple[str, int]] = {}
    for split in SPLITS:
        if split not in usable:
            continue
        for row, value in enumerate(usable[split][0].column("id").to_pylist()):
            key = str(value)
            if key in owner and owner[key][0] != split:
                first_split, first_row = owner[key]
                if add(DataError(f"id {key!r} is also in split {first_split!r} (row "
                                 f"{file_row(first_split, first_row)} of "
                                 f"{usable[first_split][1]})", source=usable[split][1],
                                 row=file_row(split, row), column="id")):
                    return problems
            owner.setdefault(key, (split, row))
    if check_leaks and "test" in usable:
        seen: dict[str, tuple[str, int]] = {}
        for split in ("train", "validation"):
            if split not in usable:
                continue
            table = usable[split][0]
            images = (table.column("image").to_pylist() if "image" in table.column_names
                      else [None] * len(table))
            for row, (prompt, image) in enumerate(zip(table.column("prompt").to_pylist(),
                                                      images)):
                seen.setdefault(prompt_key(str(prompt), image), (split, row))
        table = usable["test"][0]
        images = (table.column("image").to_pylist() if "image" in table.column_names
                  else [None] * len(table))
        for row, (prompt, image) in enumerate(zip(table.column("prompt").to_pylist(), images)):
            hit = seen.get(prompt_key(str(prompt), image))
            if hit is not None and add(DataError(
                    f"test prompt also appears in {hit[0]} (row {file_row(*hit)} of "
                    f"{usable[hit[0]][1]}): a leaked test prompt inflates every "
                    "nearest-neighbour score; remove it from test", source=usable["test"][1],
                    row=file_row("test", row), column="prompt")):
                return problems
    return problems


def _raise_first_leak(task: Any) -> None:
    from routeharness.data import DataError, find_leaks

    leaks = find_leaks(task)
    for pair in ("test-train", "test-validation"):
        if leaks.get(pair):
            row, other = leaks[pair][0]
            raise DataError(f"test prompt also appears in {pair.split('-')[1]} (row {other}); "
                            f"{len(leaks[pair])} leaked test prompts: remove them from test",
                            source=f"{task.source}[test]", row=row, column="prompt")


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``hub:org/name[@revision][:group]`` -> (repo, revision, group)."""
    body = spec[len(HUB_PREFIX):] if spec.startswith(HUB_PREFIX) else spec
    repo_revision, _, group = body.partition(":")
    repo, _, revision = repo_revision.partition("@")
    if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
        raise RouteHarnessError(f"{spec!r}: a Hub dataset is hub:ORG/NAME[@REVISION][:GROUP]")
    return repo, (revision or None), (group or None)


def load_hub(repo: str, revision: str | None = None) -> Any:
    """A Hub dataset in the canonical layout (splits train/validation/test), loaded with
    ``datasets.load_dataset`` (no remote code); an optional ``routing.json`` in the
    repository gives model metadata. Failure to reach it is one line."""
    import json

    import datasets
    from huggingface_hub.utils import logging as hub_logging

    from routeharness.data import SPLITS, DataError, ModelInfo, RoutingData, RoutingTask

    label = repo + (f"@{revision}" if revision else "")
    datasets.disable_progress_bars()
    verbosity = hub_logging.get_verbosity()
    hub_logging.set_verbosity_error()  # its retry warnings would bury the one-line error
    try:
        dataset_dict = datasets.load_dataset(repo, revision=revision)
    except Exception as exc:  # network, auth, missing repo: all a user can act on
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RouteHarnessError(f"cannot load Hub dataset {label!r}: {detail} (offline? "
                                "download it and pass the local directory instead)") from None
    finally:
        hub_logging.set_verbosity(verbosity)
    meta: dict[str, Any] = {}
    try:
        from huggingface_hub import hf_hub_download

        meta = json.loads(Path(hf_hub_download(repo, SIDECAR, repo_type="dataset",
                                               revision=revision)).read_text("utf-8"))
    except Exception:  # the sidecar is optional
        meta = {}
    models = [ModelInfo.from_dict(m) for m in meta.get("models", [])] or None
    splits = {}
    for split in SPLITS:
        if split not in dataset_dict:
            raise DataError(f"split {split!r} is missing (has {list(dataset_dict)})",
                            source=f"hub:{label}")
        splits[split] = RoutingData.from_table(dataset_dict[split],
                                               source=f"hub:{label}[{split}]", split=split,
                                               models=models)
    return RoutingTask(name=str(meta.get("name") or repo.split("/")[-1]),
                       version=int(meta.get("version", 1)), splits=splits,
                       source=f"hub:{label}", revision=revision or "main",
                       group_descriptions=dict(meta.get("groups", {})))


def task_info(spec: str, *, data_dir: str | Path | None = None,
              **options: Any) -> dict[str, Any]:
    """What ``routeharness data info`` shows: sizes per split and group, each model's mean
    score (x100) and mean cost (USD per call) per split, missing cells, the best single
    model and the oracle per split, and prompts duplicated within or leaked across splits.
    Means skip missing cells; the oracle is over rows with every score present."""
    import numpy as np

    from routeharness.data import SPLITS, duplicate_prompts, find_leaks

    task = load_task(spec, data_dir=data_dir, allow_leaks=True, **options)
    splits = [s for s in SPLITS if s in task.splits]
    sizes = {s: {g: int((task.splits[s].groups == g).sum()) for g in task.groups}
             for s in splits}
    models = []
    for j, model in enumerate(task.models):
        models.append({
            "model": model.name,
            "score": {s: _nanmean(task.splits[s].scores[:, j]) * 100 for s in splits},
            "cost_usd": {s: _nanmean(task.splits[s].costs[:, j]) for s in splits},
            "missing": {s: int(np.isnan(task.splits[s].scores[:, j]).sum()) for s in splits},
        })
    best, oracle = {}, {}
    for s in splits:
        data = task.splits[s]
        means = [_nanmean(data.scores[:, j]) for j in range(data.m)]
        top = int(np.nanargmax(means)) if not all(np.isnan(means)) else 0
        best[s] = {"model": data.model_names[top], "score": means[top] * 100}
        complete = data.complete_rows()
        oracle[s] = (float(data.scores[complete].max(axis=1).mean()) * 100
                     if complete.any() else float("nan"))
    leaks = {pair: len(rows) for pair, rows in find_leaks(task).items()}
    return {
        "name": task.name, "version": task.version, "source": task.source,
        "revision": task.revision, "splits": splits, "groups": task.groups,
        "sizes": sizes, "models": models, "best_single": best, "oracle": oracle,
        "missing_cells": {s: int(np.isnan(task.splits[s].scores).sum()) for s in splits},
        "incomplete_rows": {s: int((~task.splits[s].complete_rows()).sum()) for s in splits},
        "duplicates": {s: duplicate_prompts(task.splits[s]) for s in splits},
        "leaks": leaks,
    }


def _nanmean(values: Any) -> float:
    import numpy as np

    values = np.asarray(values, dtype=float)
    known = values[~np.isnan(values)]
    return float(known.mean()) if known.size else float("nan")


def build_task(name: str, source: str | Path, out: str | Path, **options: Any) -> Any:
    """``routeharness data build``: the registered task's builder converts the upstream
    layout in ``source`` (a directory, or an http(s) URL for builders that download) into
    the canonical dataset in ``out``; returns it, loaded back. ``options`` (e.g. ``suite``)
    go to the builder."""
    from routeharness.registry import Entry, get_registry

    entry = get_registry("task").get(name)
    target = entry.options.get("build")
    if not target:
        raise RouteHarnessError(f"task {name!r} has no builder (its plugin registers none)")
    if not str(source).startswith(("http://", "https://")):
        source = Path(source).expanduser()
        if not source.is_dir():
            raise RouteHarnessError(f"{source}: source directory does not exist")
    builder = Entry("task", name, target, entry.plugin, entry.distribution,
                    entry.version).load()
    out_dir = builder(source, Path(out).expanduser(), **options)
    return load_local(Path(out_dir))
