"""Helpers shared by the text task loaders: reading upstream files with one-line errors,
token estimates, turning canonical columns into a ``RoutingTask`` (``task_from_table``),
and writing the canonical dataset (``write_task`` + a dataset card)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from routeharness import (
    COST_PREFIX,
    SCORE_PREFIX,
    SPLITS,
    DataError,
    ModelInfo,
    RouteHarnessError,
    RoutingTask,
    task_from_table,
    write_task,
)

DATA_DIR = Path(__file__).parent / "data"
CHARS_PER_TOKEN = 4.0


def approx_tokens(text_or_chars: str | float) -> float:
    """Tokens estimated from characters (about 4 characters per token for English text,
    OpenAI's rule of thumb); a string or a character count."""
    chars = len(text_or_chars) if isinstance(text_or_chars, str) else float(text_or_chars)
    return chars / CHARS_PER_TOKEN


def prompt_tokens(text: str) -> int:
    """Input tokens of a prompt: ``ceil(chars / 4)``, at least 1."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def stable_id(prefix: str, text: str) -> str:
    """An id that depends on the text only (sha256, 12 hex digits)."""
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def find_source(data_dir: Path, subdirs: str | Sequence[str], required: Sequence[str],
                task: str, where_to_get: str = "") -> Path:
    """The first of ``data_dir/<subdir>`` (for each of ``subdirs``) and ``data_dir``
    itself that holds every required file; else a one-line error ending in
    ``where_to_get`` (where the files come from), if given."""
    data_dir = Path(data_dir)
    subdirs = [subdirs] if isinstance(subdirs, str) else list(subdirs)
    candidates = [data_dir / subdir for subdir in subdirs] + [data_dir]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in required):
            return candidate
    looked = ", ".join(f"{subdir}/" for subdir in subdirs)
    raise RouteHarnessError(f"{data_dir}: no {task} files ({', '.join(required[:2])}, ...) "
                            f"here or in {looked}" + (f"; {where_to_get}" if where_to_get else ""))


def upstream_of(card: Any) -> str:
    """Where a task's upstream files come from, as its card says: URL (and commit)."""
    upstream = str(card.source.get("upstream", "")).strip()
    commit = card.source.get("commit")
    return f"{upstream} at commit {commit}" if commit else upstream


def read_json(path: Path) -> Any:
    """A JSON file; a missing, non-UTF-8 or invalid file is a one-line ``DataError``."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: byte {exc.start} cannot be decoded",
                        source=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON at line {exc.lineno}: {exc.msg}",
                        source=str(path)) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines file of objects; errors name the row (0-based line)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: byte {exc.start} cannot be decoded",
                        source=str(path)) from None
    records = []
    for row, line in enumerate(text.split("\n")):  # not splitlines: U+2028 is data
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", source=str(path), row=row) from None
        if not isinstance(value, dict):
            raise DataError("each line must be a JSON object", source=str(path), row=row)
        records.append(value)
    return records


def question_records(path: Path, models: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The ``[{"question": str, "scores": {model: float}}]`` files of RouterDC/LLMRouter,
    checked: every row has a question and a score for each model (named in the error)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError("expected a JSON list of {question, scores} records", source=str(path))
    for row, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError("record must be an object", source=str(path), row=row)
        if not isinstance(record.get("question"), str):
            raise DataError("missing or non-string 'question'", source=str(path), row=row,
                            column="question")
        scores = record.get("scores")
        if not isinstance(scores, dict):
            raise DataError("missing 'scores' object", source=str(path), row=row,
                            column="scores")
        for name in models or ():
            value = scores.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"missing or non-numeric score for model {name!r}",
                                source=str(path), row=row, column=f"scores.{name}")
    return data


def model_prices(card: Any) -> dict[str, tuple[float, float]]:
    """(input, output) USD per million tokens of each model in the card."""
    prices = {}
    for model in card.models:
        try:
            prices[model["name"]] = (float(model.get("price_input_per_mtok", 0.0)),
                                     float(model["price_output_per_mtok"]))
        except (KeyError, TypeError, ValueError):
            raise RouteHarnessError(f"{card.path}: model {model['name']!r} has no "
                                    "price_output_per_mtok") from None
    return prices


def columns_to_task(columns: dict[str, list[Any]] | Any, card: Any, source: str,
                    models: list[ModelInfo] | None = None,
                    revision: str | None = None) -> RoutingTask:
    """Canonical columns (or a table) with a ``split`` column -> a validated
    ``RoutingTask``, through the one validation (``task_from_table``)."""
    return task_from_table(columns, name=card.name, version=card.version, source=source,
                           models=models if models is not None else card.model_infos(),
                           card=card, revision=revision or card.revision,
                           group_descriptions=card.group_descriptions(), notes=_notes(card))


def _notes(card: Any) -> list[str]:
    if card.notes is None:
        return []
    return [card.notes] if isinstance(card.notes, str) else [str(n) for n in card.notes]


def embedded_path(name: str) -> Path:
    return DATA_DIR / f"{name}.parquet"


def load_embedded(card: Any) -> RoutingTask:
    """The task from the canonical copy shipped in the package (``data/<name>.parquet``)."""
    import pyarrow.parquet as pq

    path = embedded_path(card.name)
    if not path.is_file():
        raise RouteHarnessError(f"the embedded {card.name} copy is missing ({path}); "
                                "reinstall routeharness or pass --data-dir")
    return columns_to_task(pq.read_table(path), card, f"embedded:{path.name}")


def write_embedded(columns: dict[str, list[Any]], name: str) -> Path:
    """Write the canonical columns (with ``split``) as the embedded zstd parquet copy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = embedded_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="zstd", compression_level=19)
    return path


def save_canonical(task: RoutingTask, out_dir: Path, card: Any, built_from: str) -> Path:
    """Write ``task`` as the canonical dataset (``write_task``: a ``datasets`` DatasetDict
    and the ``routing.json`` sidecar, with the card's license and source) plus a README.md
    dataset card. ``routeharness.load_local`` loads the result."""
    out = write_task(task, out_dir, meta={"license": card.license, "source": dict(card.source),
                                          "built_from": built_from})
    try:
        (out / "README.md").write_text(dataset_card(task, card, built_from), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write: {exc.strerror or exc}",
                        source=str(out / "README.md")) from None
    return out


def dataset_card(task: RoutingTask, card: Any, built_from: str) -> str:
    """A Hugging Face style dataset card: source, license, citation, score and cost."""
    sizes = ", ".join(f"{split} {task.splits[split].n}" for split in SPLITS)
    lines = [
        "---", f"pretty_name: {task.name}", f"license: other  # {card.license}",
        "tags: [llm-routing, routeharness]", "---", "",
        f"# {task.name} (routeharness task, version {task.version})", "",
        card.description.strip(), "",
        "## Source", "",
        *(f"- {key}: {value}" for key, value in card.source.items()),
        f"- built from: {built_from}", "",
        "## License", "", card.license.strip(), "",
        "## Citation", "", "```bibtex", card.citation.strip(), "```", "",
        "## Layout", "",
        f"Canonical routeharness layout (docs/dataset-format.md). Splits: {sizes}. "
        f"{len(task.models)} models; groups: {', '.join(task.groups)}.", "",
        "## Score", "", str(card.score.get("definition", "")).strip(), "",
        "## Cost", "", str(card.cost.get("definition", "")).strip(), "",
        "## Splits", "", *(f"- {k}: {v}" for k, v in card.splits.items()), "",
    ]
    return "\n".join(lines)


def load_card_of(name: str) -> Any:
    from routeharness import load_card, task_card_path

    return load_card(task_card_path(name))


def move_validation_rows(columns: dict[str, list[Any]], fraction: float, seed: int) -> None:
    """Moves a seeded ``fraction`` of each group's ``split == "train"`` rows to
    ``"validation"`` (``carve_validation``), in place."""
    import numpy as np

    from routeharness import carve_validation

    train_rows = np.flatnonzero(np.asarray([s == "train" for s in columns["split"]]))
    moved = carve_validation([columns["id"][i] for i in train_rows],
                             [columns["group"][i] for i in train_rows], fraction, seed)
    for i in train_rows[moved]:
        columns["split"][i] = "validation"


def empty_columns(models: Sequence[str]) -> dict[str, list[Any]]:
    """Canonical columns to fill row by row: id, prompt, group, split, score:, cost:."""
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "split": []}
    columns.update({SCORE_PREFIX + name: [] for name in models})
    columns.update({COST_PREFIX + name: [] for name in models})
    return columns


def append_costs(columns: dict[str, list[Any]], models: Sequence[str],
                 prices: dict[str, tuple[float, float]], tokens_in: float,
                 output_tokens: float) -> None:
    """One row's USD cost per model: prompt tokens and the assumed output tokens, priced
    per million tokens (``model_prices``)."""
    for name in models:
        price_in, price_out = prices[name]
        columns[COST_PREFIX + name].append((tokens_in * price_in + output_tokens * price_out)
                                           / 1e6)


def mirror_loader(name: str, required: Sequence[str], label: str,
                  build_columns: Callable[[Path, Any], dict[str, list[Any]]], *,
                  embedded: bool = True, subdirs: Sequence[str] = ()
                  ) -> tuple[Callable[..., RoutingTask], Callable[[str | Path, str | Path], Path]]:
    """The registered ``load(card, data_dir=None)`` and ``build(source_dir, out_dir)``
    (``routeharness data build``) of a task whose mirror ``build_columns`` reads.

    ``load`` reads the mirror layout under ``data_dir`` (in ``data_dir/<name>``, one of
    ``subdirs`` or ``data_dir`` itself) if given; else the copy embedded in the package,
    or, for a task whose data may not be redistributed (``embedded=False``), stops with
    one line saying where to get the files and how to pass them."""

    def load(card: Any, data_dir: Path | None = None, **_: Any) -> RoutingTask:
        if data_dir is None:
            if embedded:
                return load_embedded(card)
            raise RouteHarnessError(
                f"task {name} is not shipped with routeharness (its data may not be "
                f"redistributed): download {upstream_of(card)} and pass --data-dir DIR "
                "or set ROUTEHARNESS_DATA=DIR, DIR holding those files or a "
                + " or ".join(f"{d}/" for d in (name, *subdirs)) + " folder of them")
        source = find_source(Path(data_dir), [name, *subdirs], required, label,
                             f"get them from {upstream_of(card)}")
        return columns_to_task(build_columns(source, card), card, str(source))

    def build(source_dir: str | Path, out_dir: str | Path) -> Path:
        card = load_card_of(name)
        task = load(card, data_dir=Path(source_dir))
        return save_canonical(task, Path(out_dir), card, str(source_dir))

    where = "the copy embedded in the package" if embedded else "nowhere: it is not shipped"
    load.__doc__ = f"The {label} task: from ``data_dir`` (the mirror layout) if given, else " \
                   f"{where}."
    build.__doc__ = f"``routeharness data build {name}``: mirror layout -> canonical dataset."
    return load, build
