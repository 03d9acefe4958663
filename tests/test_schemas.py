"""The JSON Schemas in docs/schemas/ are the ones the contract models generate, and every
file of those kinds committed in the repository loads through its model and validates
against its committed schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routeharness.cli.schemas import SCHEMAS, schema_text

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "schemas"


def committed(kind: str) -> list[Path]:
    """The repository's files of ``kind``."""
    by_schema = {"result": "routeharness.results/1", "submission": "routeharness.submission/1",
                 "verification": "routeharness.verification/1", "study": "routeharness.study/1"}
    if kind in by_schema:
        found = []
        for path in sorted([*ROOT.glob("benchmarks/**/*.json"),
                            *ROOT.glob("leaderboards/**/*.json")]):
            data = json.loads(path.read_text("utf-8"))
            if isinstance(data, dict) and data.get("schema") == by_schema[kind]:
                found.append(path)
        return found
    patterns = {"board": ["leaderboards/*/board.yaml"], "task-card": ["tasks/*.yaml"]}[kind]
    return sorted(p for pattern in patterns for p in ROOT.glob(pattern))


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_committed_schema_is_the_models(kind):
    """A model change that moves the schema fails here until docs/schemas/ is rewritten."""
    path = DOCS / f"{kind}.schema.json"
    assert path.is_file(), f"{path} is missing: run `routeharness schema --write docs/schemas`"
    assert path.read_text("utf-8") == schema_text(kind), (
        f"{path} differs from the model {SCHEMAS[kind][0]}.{SCHEMAS[kind][1]}: run "
        "`routeharness schema --write docs/schemas` and commit it")


def test_docs_schemas_holds_nothing_else():
    assert sorted(p.name for p in DOCS.glob("*.json")) == sorted(
        f"{kind}.schema.json" for kind in SCHEMAS)


#: kinds of which no file is committed: checked on files the harness writes
WRITTEN = ("dataset-sidecar", "router-manifest", "request-log", "outcome-label")


def _loads_and_validates(kind: str, paths: list[Path]) -> None:
    import importlib

    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    module, name, _ = SCHEMAS[kind]
    model = getattr(importlib.import_module(module), name)
    schema = json.loads((DOCS / f"{kind}.schema.json").read_text("utf-8"))
    assert paths, f"no {kind} file found"
    for path in paths:
        text = path.read_text("utf-8")
        data = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
        model.model_validate(data)
        jsonschema.validate(data, schema)


@pytest.mark.parametrize("kind", sorted(set(SCHEMAS) - set(WRITTEN)))
def test_committed_files_load_through_their_model_and_validate(kind):
    """Every committed file of each kind loads through its model unchanged and validates
    against its committed schema."""
    _loads_and_validates(kind, committed(kind))


def test_written_files_load_through_their_model_and_validate(cli, tmp_path):
    """No dataset sidecar or router manifest is committed: ones the harness writes
    (`data synth`, `fit`) load through their models and validate against their schemas."""
    synth, fitted = tmp_path / "synth", tmp_path / "fitted"
    done = cli("data", "synth", str(synth), "--train", "60", "--validation", "30", "--test",
               "30", "--models", "3", "--dim", "8")
    assert done.returncode == 0, done.stderr
    done = cli("fit", "-r", "knn", "-t", str(synth), "-e", "precomputed", "-o", str(fitted),
               "--no-tune", env={"ROUTEHARNESS_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    _loads_and_validates("dataset-sidecar", [synth / "routing.json"])
    _loads_and_validates("router-manifest", [fitted / "manifest.json"])


def test_the_schema_command_prints_one_kind(cli):
    done = cli("schema", "task-card")
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema_text("task-card")
    unknown = cli("schema", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
