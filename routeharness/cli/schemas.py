"""``routeharness schema``: the JSON Schema of every file the harness reads and writes,
generated from the contract models that read them (docs/schemas/ holds the committed
copies; tests/test_schemas.py fails when they differ from the models)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import click

from routeharness.cli._app import cli, say
from routeharness.cli.render import emit, format_option
from routeharness.results.tables import ReportTable

#: file kind -> (module, model, what the file is)
SCHEMAS: dict[str, tuple[str, str, str]] = {
    "result": ("routeharness.results.records", "ResultSet",
               "a result file (`eval -o`, `results show -o`): routeharness.results/1"),
    "submission": ("routeharness.boards.definition", "Submission",
                   "a leaderboard submission (leaderboards/BOARD/submissions/*.json)"),
    "verification": ("routeharness.boards.verification", "VerificationRecord",
                     "a verification record (leaderboards/BOARD/verifications/*.json)"),
    "board": ("routeharness.boards.definition", "Board",
              "a board definition (leaderboards/BOARD/board.yaml)"),
    "router-manifest": ("routeharness.deploy.saved", "RouterManifest",
                        "a saved router's manifest.json (`fit -o FOLDER`)"),
    "task-card": ("routeharness.data.cards", "TaskCard", "a task card (tasks/NAME.yaml)"),
    "dataset-sidecar": ("routeharness.data.cards", "DatasetSidecar",
                        "a dataset's routing.json (docs/dataset-format.md)"),
    "study": ("routeharness.study.record", "StudyResult",
              "a study file (`routeharness study ... -o`): routeharness.study/1"),
    "request-log": ("routeharness.deploy.requestlog", "RequestLogLine",
                    "a line of serve's request log (`serve --request-log`): "
                    "routeharness.request-log/1"),
    "outcome-label": ("routeharness.deploy.fromlog", "OutcomeLabel",
                      "a line of the labels file of `data from-log`"),
}


def schema_of(kind: str) -> dict[str, Any]:
    """The JSON Schema of a file ``kind`` (a key of ``SCHEMAS``)."""
    from routeharness.common.contract import json_schema

    module, model, _ = SCHEMAS[kind]
    return json_schema(getattr(importlib.import_module(module), model))


def schema_text(kind: str) -> str:
    """``schema_of(kind)`` as the text docs/schemas/KIND.schema.json holds."""
    return json.dumps(schema_of(kind), indent=1, ensure_ascii=False, sort_keys=True) + "\n"


@cli.command(name="schema")
@click.argument("kind", required=False, type=click.Choice(sorted(SCHEMAS)))
@click.option("--write", "directory", type=click.Path(file_okay=False),
              help="Write every schema to DIRECTORY/KIND.schema.json (as docs/schemas/ is made).")
@format_option
def schema_command(kind: str | None, directory: str | None, fmt: str) -> None:
    """The JSON Schema of a file KIND the harness reads and writes (a result file, a
    submission, a router manifest, a task card...); without KIND, the list of kinds."""
    if directory is not None:
        from routeharness.common.files import write_text

        for name in SCHEMAS:
            write_text(schema_text(name), Path(directory) / f"{name}.schema.json", "schema")
        say(f"wrote {len(SCHEMAS)} schemas to {directory}")
        return
    if kind is not None:
        click.echo(schema_text(kind), nl=False)
        return
    table = ReportTable("File kinds with a JSON Schema (routeharness schema KIND)",
                        ["kind", "file", "model"])
    for name, (module, model, what) in SCHEMAS.items():
        table.add([name, what, f"{module}.{model}"])
    emit([table], fmt)
