"""The one reader of routing datasets, the canonical writer, and the table -> task helper.

Every layout is read here, each file once: one file with a ``split`` column, a folder of split
files (``train.csv``, ...), a ``datasets`` folder, LLMRouter's files (``llmrouter_format``) and
the Hub, through one validation (``validate_path``: every problem; ``load_path``: the first).

Reading rules (docs/dataset-format.md): regular files only (a FIFO, a folder where a file
belongs, a symlink loop or an unreadable file is one error naming the path); UTF-8; CSV
fields of any size; text columns (id, prompt, group, embed_text, split, image) are read as
written, never as numbers or missing values; a column name may appear once; in a split's
own file (or saved split) a ``split`` column may only repeat that split; ``routing.json``
is strict (no repeated key, at least one model where ``models`` is given).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.common.contract import parse_json
from routeharness.common.errors import DataError, RouteHarnessError, one_line
from routeharness.common.files import new_folder
from routeharness.data.cards import DatasetSidecar, check_sidecar
from routeharness.data.columns import (
    EMBEDDING,
    SPLITS,
    arrow_table,
    embedding_array,
    model_names_of,
)
from routeharness.data.dataset import ModelInfo, RoutingData, RoutingTask
from routeharness.data.llmrouter import is_llmrouter_folder, read_folder
from routeharness.data.raw import Raw, os_error, read_bytes, regular_file
from routeharness.data.textio import read_csv, read_json_rows
from routeharness.data.validation import Enough, Part, Problems, check_parts, check_table

SIDECAR = "routing.json"  # its contract: routeharness.data.cards.DatasetSidecar
SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


def read_sidecar(directory: Path, text: bytes | None = None) -> DatasetSidecar:
    """``routing.json`` (optional) as a ``DatasetSidecar``: strict JSON (a key given
    twice refused) through the sidecar's contract; an empty one when there is none."""
    path = directory / SIDECAR
    if text is None:
        try:
            os.lstat(path)
        except FileNotFoundError:
            return DatasetSidecar()
        except OSError as exc:
            raise os_error(path, exc) from None
        text = read_bytes(path)
    return check_sidecar(parse_json(text, str(path), DataError), str(path))


def sidecar_models(meta: DatasetSidecar) -> list[ModelInfo] | None:
    return [ModelInfo.from_dict(dict(m)) for m in meta.models or []] or None


def read_file(path: Path, problems: Problems) -> Any | None:
    """One split file -> ``pyarrow.Table``; its problems go to ``problems`` (None then)."""
    builder = SUFFIXES.get(path.suffix.lower())
    if builder is None:
        problems.add(DataError(f"unsupported file type {path.suffix!r} (use .parquet, .csv "
                               "or .jsonl)", source=str(path)))
        return None
    try:
        if builder == "parquet":
            return _read_parquet(path)
        reader = read_csv if builder == "csv" else read_json_rows
        table, found = reader(read_bytes(path), str(path), problems.limit)
    except DataError as exc:
        problems.add(exc)
        return None
    for problem in found:
        problems.add(problem)
    return None if found else table


def _read_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    regular_file(path)
    try:
        table = pq.read_table(str(path))
    except OSError as exc:
        if exc.errno is not None:
            raise os_error(path, exc) from None
        detail = one_line(exc)
        raise DataError(f"cannot read parquet file: {detail}", source=str(path)) from None
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        detail = one_line(exc)
        raise DataError(f"cannot read parquet file: {detail}", source=str(path)) from None
    if table.num_rows == 0:
        raise DataError("empty split: no rows", source=str(path))
    return table


def _list_folder(directory: Path) -> list[str]:
    """The names in a dataset folder; a folder that cannot be listed is one error naming
    the folder (not a file inside it, which may not exist)."""
    try:
        return sorted(os.listdir(directory))
    except OSError as exc:
        raise DataError(f"cannot list the dataset folder: {exc.strerror or exc}",
                        source=str(directory)) from None


def _split_files(directory: Path, names: list[str]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for name in names:
        stem, dot, suffix = name.partition(".")
        if dot and stem in found and "." + suffix.lower() in SUFFIXES:
            found[stem].append(directory / name)
    return found


def read_local(path: Path, problems: Problems) -> Raw:
    """Read a user's dataset in any local layout, each file once."""
    path = Path(path).expanduser()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError("no such file or directory", source=str(path)) from None
    except OSError as exc:
        raise os_error(path, exc) from None
    is_dir = stat.S_ISDIR(info.st_mode)
    if is_dir:
        names = _list_folder(path)
        meta = read_sidecar(path) if SIDECAR in names else DatasetSidecar()
    else:
        regular_file(path)
        meta = read_sidecar(path.parent)
    raw = Raw(str(path), meta=meta, models=sidecar_models(meta),
              default_name=path.name if is_dir else path.stem)
    if is_dir and is_llmrouter_folder(names):  # a .pt beside routing JSON lines
        read_folder(path, names, raw, problems)
    elif is_dir and "dataset_dict.json" in names:
        regular_file(path / "dataset_dict.json")
        _read_saved(path, raw, problems)
    elif is_dir:
        for split, files in _split_files(path, names).items():
            if len(files) > 1:
                problems.add(DataError(f"{len(files)} files for split {split!r}: "
                                       f"{' and '.join(f.name for f in files)}; keep one",
                                       source=str(path)))
            elif not files:
                problems.add(DataError(f"no file for split {split!r} ({split}.parquet, .csv "
                                       "or .jsonl)", source=str(path)))
            else:
                table = read_file(files[0], problems)
                if table is not None:
                    _check_split_column(table, split, str(files[0]), problems)
                    raw.parts[split] = Part(table, str(files[0]))
    else:
        table = read_file(path, problems)
        if table is not None:
            _split_one_file(table, str(path), raw, problems)
    return raw


def _regular_tree(path: Path) -> None:
    """Every file under a saved dataset folder is a regular file (``datasets`` would block
    on a FIFO, and report a symlink loop as a traceback)."""
    def fail(exc: OSError) -> None:
        raise os_error(Path(exc.filename or path), exc)

    for folder, _, files in os.walk(path, onerror=fail):
        for name in files:
            regular_file(Path(folder) / name)


def _read_saved(path: Path, raw: Raw, problems: Problems) -> None:
    import datasets

    _regular_tree(path)
    datasets.disable_progress_bars()
    try:
        saved = datasets.load_from_disk(str(path), keep_in_memory=True)
    except Exception as exc:  # datasets raises many types for a broken folder
        detail = one_line(exc)
        raise DataError(f"cannot load saved dataset: {detail}", source=str(path)) from None
    if not isinstance(saved, datasets.DatasetDict):
        raise DataError("a saved dataset must be a DatasetDict with splits train, "
                        "validation and test", source=str(path))
    _add_dict(saved, str(path), raw, problems)


def _add_dict(dataset_dict: Any, source: str, raw: Raw, problems: Problems) -> None:
    for split in SPLITS:
        if split not in dataset_dict:
            problems.add(DataError(f"split {split!r} is missing (has {list(dataset_dict)})",
                                   source=source))
        else:
            table = arrow_table(dataset_dict[split])
            _check_split_column(table, split, f"{source}[{split}]", problems)
            raw.parts[split] = Part(table, f"{source}[{split}]")


def _check_split_column(table: Any, split: str, source: str, problems: Problems) -> None:
    """In a split's own file a ``split`` column may only repeat that split: a row that
    says another split (or ``banana``) would be silently used as this one."""
    if "split" not in table.column_names:
        return
    for row, value in enumerate(table.column("split").to_pylist()):
        if value != split:
            problems.add(DataError(f"split {value!r} in the {split!r} split's file: a split "
                                   f"column here must say {split!r} on every row (or be "
                                   "left out)", source=source, row=row, column="split"))


def _split_one_file(table: Any, source: str, raw: Raw, problems: Problems) -> None:
    if "split" not in table.column_names:
        problems.add(DataError("one-file datasets need a 'split' column "
                               "(train/validation/test)", source=source, column="split"))
        return
    values = table.column("split").to_pylist()
    for row, value in enumerate(values):
        if value not in SPLITS:
            problems.add(DataError(f"split must be one of {list(SPLITS)}, got {value!r}",
                                   source=source, row=row, column="split"))
    rest = table.drop_columns(["split"])
    if not check_table(rest, source, raw.models, problems):
        return  # columns and cells are checked once, for the whole file
    for split in SPLITS:
        rows = [i for i, v in enumerate(values) if v == split]
        if not rows:
            problems.add(DataError(f"split {split!r} is empty: no row has split {split!r}",
                                   source=source, column="split"))
        else:
            raw.parts[split] = Part(rest.take(rows), source, rows, checked=True)


def check_raw(raw: Raw, problems: Problems, *, check_leaks: bool = True) -> None:
    """The one validation of what was read (``routeharness.data.validation.check_parts``)."""
    check_parts(raw.parts, raw.models, problems, check_leaks=check_leaks)


def validate_path(path: str | Path, *, max_problems: int | None = None,
                  check_leaks: bool = True) -> list[DataError]:
    """Every problem of a user's dataset (any local layout), as one-line ``DataError``s
    naming file, 0-based data row and column; [] when it is valid."""
    problems = Problems(max_problems)
    try:
        check_raw(read_local(Path(path), problems), problems, check_leaks=check_leaks)
    except Enough:
        pass
    except DataError as exc:  # the dataset cannot be read at all
        return [*problems.items, exc][:max_problems]
    return problems.items


def to_task(raw: Raw, *, check_leaks: bool = True, name: str | None = None,
            version: int | None = None, **fields: Any) -> RoutingTask:
    """What was read -> a ``RoutingTask``, or the first problem raised."""
    problems = Problems(1)
    try:
        check_raw(raw, problems, check_leaks=check_leaks)
    except Enough:
        raise problems.items[0] from None
    train_models = raw.models or [ModelInfo(n) for n in
                                  model_names_of(raw.parts["train"].table.column_names)]
    splits = {split: RoutingData.from_table(part.table, source=part.source, split=split,
                                            models=train_models, validate=False)
              for split, part in raw.parts.items()}
    meta = raw.meta
    return RoutingTask(name=name or meta.name or raw.default_name,
                       version=version or meta.version or 1, splits=splits,
                       source=raw.source,
                       group_descriptions=dict(fields.pop("group_descriptions", None)
                                               or meta.groups or {}),
                       revision=fields.pop("revision", None) or raw.revision,
                       default_encoder=fields.pop("default_encoder", None) or meta.encoder,
                       **fields)


def load_path(path: str | Path, *, check_leaks: bool = True) -> RoutingTask:
    """A user's dataset (any local layout) as a validated ``RoutingTask``."""
    problems = Problems(1)
    try:
        raw = read_local(Path(path), problems)
    except Enough:
        raise problems.items[0] from None
    return to_task(raw, check_leaks=check_leaks)


def task_from_table(table: Any, *, name: str, version: int, source: str,
                    models: list[ModelInfo] | None = None, card: Any = None,
                    revision: str | None = None, group_descriptions: dict[str, str] | None
                    = None, notes: list[str] | None = None,
                    check_leaks: bool = False,
                    origins: Sequence[tuple[str, int]] | None = None) -> RoutingTask:
    """A table with a ``split`` column (``pyarrow.Table``, ``datasets.Dataset`` or a dict
    of columns) -> a validated ``RoutingTask``: the same checks as ``data validate``.
    ``models``: metadata and order (default: the table's ``score:`` columns).
    ``origins``: (file, row) each table row was read from, so that a plugin merging
    upstream files reports a problem at its upstream file and row."""
    import pyarrow as pa

    table = pa.table(table) if isinstance(table, dict) else arrow_table(table)
    raw = Raw(source, models=models)
    problems = Problems(1)
    try:
        _split_one_file(table, source, raw, problems)
        return to_task(raw, check_leaks=check_leaks, name=name, version=version, card=card,
                       revision=revision, group_descriptions=group_descriptions or {},
                       notes=list(notes or []))
    except Enough:
        raise _at_origin(problems.items[0], origins) from None
    except DataError as exc:
        raise _at_origin(exc, origins) from None


def _at_origin(exc: DataError, origins: Sequence[tuple[str, int]] | None) -> DataError:
    """``exc`` at the upstream (file, row) of its table row, when ``origins`` says."""
    if origins is None or exc.row is None or not 0 <= exc.row < len(origins):
        return exc
    source, row = origins[exc.row]
    return DataError(exc.detail, source=source, row=row, column=exc.column)


def write_task(task: RoutingTask, directory: str | Path, *,
               meta: dict[str, Any] | None = None) -> Path:
    """The canonical writer: ``task`` as a ``datasets`` DatasetDict (``save_to_disk``)
    in a new or empty ``directory``, with the ``routing.json`` sidecar (name, version,
    models, groups, and ``meta``'s keys, checked like any sidecar); a split's
    ``embeddings`` are its ``embedding`` column. Loads back with
    ``--task DIRECTORY``; returns the directory."""
    import datasets

    out = Path(directory).expanduser()
    sidecar = {"name": task.name, "version": task.version,
               "models": [m.to_dict() for m in task.models],
               "groups": {g: task.group_descriptions.get(g, "") for g in task.groups},
               **(meta or {})}
    text = (json.dumps(sidecar, indent=1) + "\n").encode("utf-8")
    read_sidecar(out, text)  # a bad sidecar is refused before anything is written
    try:
        with new_folder(out, "dataset") as work:
            datasets.disable_progress_bars()
            splits = {}
            for split in SPLITS:
                data = task.splits[split]
                columns = data.to_columns()
                if data.images is not None:
                    columns["image"] = list(data.images)
                dataset = datasets.Dataset.from_dict(columns)
                if "image" in columns:  # stored as images (bytes or path), as they were read
                    dataset = dataset.cast_column("image", datasets.Image())
                if data.embeddings is not None:  # list<float32>, built without a Python loop
                    dataset = dataset.add_column(EMBEDDING, embedding_array(data.embeddings))
                splits[split] = dataset
            datasets.DatasetDict(splits).save_to_disk(str(work))
            (work / SIDECAR).write_bytes(text)
    except RouteHarnessError as exc:
        raise DataError(str(exc).removeprefix(f"{out}: "), source=str(out)) from None
    return out
