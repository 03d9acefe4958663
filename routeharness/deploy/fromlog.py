"""``routeharness data from-log LOG LABELS OUT`` (docs/serve.md, "From a log to a
dataset"): ``serve``'s request log plus outcome labels -> a routing dataset that
``eval`` and ``update`` read.

The labels are JSON lines, one ``OutcomeLabel`` each: ``id`` (a request's id from the
log, or a prompt's ``prompt_sha256``), ``model``, ``score`` in [0, 1], and optionally
``cost_usd`` (default: the cost the log recorded for that model's answer to that
prompt), ``prompt`` (the text, needed when the log kept hashes only; its hash must be
the log's) and ``group`` (default ``log``). One row per distinct prompt; one outcome per
prompt x model. The dataset is written by the importers' ``finish``: a seeded split by
prompt text within each group, the one validation, ``write_task``; nothing is written
when a line is wrong, and each problem is one line naming the file and the line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator

from routeharness.common.contract import Contract, Field, NonNegative, check
from routeharness.common.errors import DataError, RouteHarnessError
from routeharness.deploy.requestlog import MAX_LOG_BYTES, prompt_sha256, read_log

#: the group of a labelled prompt whose label names none
DEFAULT_GROUP = "log"


def _unit(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a number in [0, 1]")
    return value


class OutcomeLabel(Contract):
    """One line of the labels file of ``data from-log``."""

    id: str = Field(description="a request id of the log, or a prompt_sha256")
    model: str = Field(description="the pool model whose answer was judged")
    score: Annotated[float, AfterValidator(_unit)] = Field(description="its quality, in "
                                                           "[0, 1]")
    cost_usd: NonNegative | None = Field(None, description="its cost, USD (default: the "
                                         "log's cost of that model's answer)")
    prompt: str | None = Field(None, description="the prompt's text (needed when the log "
                                                 "kept hashes only)")
    group: str | None = Field(None, description=f"its group (default {DEFAULT_GROUP!r})")


@dataclass
class _Prompt:
    text: str | None
    costs: dict[str, float]


def from_log(log: str | Path, labels: str | Path, out: str | Path, *, seed: int | None = None,
             name: str = "from-log", outcomes: str | Path | None = None) -> Any:
    """The dataset of ``log`` and ``labels`` written to the new folder ``out``; returns
    the importers' ``Written``. ``outcomes``: also every row as one JSON-lines file of
    the canonical columns, the file ``update`` reads."""
    from routeharness.common.files import check_new_folder, check_output_path
    from routeharness.common.textinput import decode, json_lines, parse_json, read_file_bytes
    from routeharness.data.importers.common import Imported, finish

    target = check_new_folder(out, "dataset")
    if outcomes is not None:
        check_output_path(outcomes, "outcomes file")
    prompts: dict[str, _Prompt] = {}
    by_request: dict[str, str] = {}
    for _, line in read_log(log):
        by_request[line.id] = line.prompt_sha256
        entry = prompts.setdefault(line.prompt_sha256, _Prompt(line.prompt, {}))
        if entry.text is None and line.prompt is not None:
            entry.text = line.prompt
        if line.answered and line.model is not None and line.cost_usd is not None:
            entry.costs.setdefault(line.model, float(line.cost_usd))
    if not prompts:
        raise DataError("the request log has no line", source=str(log))
    labels_path = Path(labels)
    text = decode(read_file_bytes(labels_path, "labels file", MAX_LOG_BYTES, option=None),
                  str(labels_path))
    imported = Imported(format="request-log", source=str(labels_path))
    imported.description = f"routeharness serve's request log {log} with outcome labels"
    rows: dict[str, int] = {}
    for number, raw in json_lines(text):
        if not raw.strip():
            continue
        where = f"{labels_path}, line {number}"
        label = check(OutcomeLabel, parse_json(raw, where, DataError), where, DataError)
        sha = by_request.get(label.id, label.id)
        entry = prompts.get(sha)
        if entry is None:
            raise DataError(f"{where}: id {label.id!r} is neither a request id nor a "
                            f"prompt_sha256 of the log {log}")
        if label.prompt is not None:
            if prompt_sha256(label.prompt) != sha:
                raise DataError(f"{where}: prompt: its SHA-256 is not the log's "
                                f"prompt_sha256 {sha[:12]}... (another text)")
            entry.text = entry.text or label.prompt
        if entry.text is None:
            raise DataError(f"{where}: no text for prompt {sha[:12]}...: the log keeps "
                            "hashes only (serve --log-prompts keeps the text); give "
                            "\"prompt\" in the label")
        if sha not in rows:
            rows[sha] = imported.add_row(sha, entry.text, label.group or DEFAULT_GROUP,
                                         (str(labels_path), number))
        cost = label.cost_usd if label.cost_usd is not None else entry.costs.get(label.model)
        imported.set_cell(rows[sha], label.model, label.score, (str(labels_path), number),
                          cost=cost)
    if not rows:
        raise RouteHarnessError(f"{labels_path}: no label")
    written = finish(imported, target, name=name, seed=seed)
    if outcomes is not None:
        write_outcomes(written.path, outcomes)
    return written


def write_outcomes(dataset: str | Path, path: str | Path) -> Path:
    """Every row of the dataset in ``dataset`` (all splits) as JSON lines of the canonical
    columns (a missing cell null): the file ``routeharness update`` reads."""
    import json

    from routeharness.common.files import write_text
    from routeharness.data.tasks import load_task

    task = load_task(str(dataset))
    lines = []
    for split in task.splits.values():
        columns = split.to_columns()
        for i in range(split.n):
            lines.append(json.dumps({key: values[i] for key, values in columns.items()},
                                    ensure_ascii=False))
    return write_text("\n".join(lines) + "\n", path, "outcomes file")
