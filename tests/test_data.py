"""The canonical schema, its validation, task cards, and the RouterBench task."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from routeharness.common.errors import DataError, TaskCardError
from routeharness.data.cards import load_card
from routeharness.data.dataset import RoutingData, carve_validation
from routeharness.data.tasks import load_local, load_task
from routeharness.data.validation import validate_table


def _table(**overrides):
    columns = {
        "id": ["a", "b", "c"], "prompt": ["p1", "p2", "p3"], "group": ["g", "g", "h"],
        "score:m1": [1.0, 0.0, None], "cost:m1": [0.1, 0.1, None],
        "score:m2": [0.5, 1.0, 1.0], "cost:m2": [1.0, 2.0, 1.5],
    }
    columns.update(overrides)
    return pa.table({k: v for k, v in columns.items() if v is not None})


def test_valid_table_loads_with_missing_cell_as_nan():
    data = RoutingData.from_table(_table(), source="mem.parquet", split="train")
    assert data.model_names == ["m1", "m2"]
    assert data.scores.shape == (3, 2)
    assert np.isnan(data.scores[2, 0]) and np.isnan(data.costs[2, 0])
    assert data.complete_rows().tolist() == [True, True, False]


@pytest.mark.parametrize(("overrides", "row", "column", "words"), [
    ({"score:m2": [0.5, 1.5, 1.0]}, 1, "score:m2", "outside [0, 1]"),
    ({"score:m2": [0.5, float("nan"), 1.0], "cost:m2": [1.0, float("nan"), 1.5]}, None, None, None),
    ({"cost:m2": [1.0, -2.0, 1.5]}, 1, "cost:m2", ">= 0"),
    ({"cost:m2": [1.0, None, 1.5]}, 1, "cost:m2", "cost missing"),
    ({"id": ["a", "b", "a"]}, 2, "id", "duplicate id 'a'"),
    ({"group": ["g", None, "h"]}, 1, "group", "missing group"),
])
def test_validation_names_row_and_column(overrides, row, column, words):
    problems = validate_table(_table(**overrides), source="bad.parquet")
    if words is None:  # a NaN score with a NaN cost is a missing cell, not an error
        assert problems == []
        return
    assert problems, "expected a problem"
    message = str(problems[0])
    assert message.startswith("bad.parquet")
    assert f"row {row}" in message and repr(column) in message and words in message
    assert "\n" not in message


def test_missing_and_unknown_columns():
    table = _table().drop(["cost:m2"])
    problems = validate_table(table, source="x.csv")
    assert "has scores but no cost column" in str(problems[0])
    table = _table().append_column("colour", pa.array(["r", "g", "b"]))
    assert "unknown column 'colour'" in str(validate_table(table, source="x.csv")[0])
    table = _table().drop(["prompt"])
    assert "missing required column 'prompt'" in str(validate_table(table, source="x.csv")[0])


def test_models_must_match_the_task(tmp_path: Path):
    from routeharness.data.dataset import ModelInfo

    with pytest.raises(DataError, match="unknown model 'm2'"):
        RoutingData.from_table(_table(), source="x", models=[ModelInfo("m1")])


def test_carve_validation_is_stratified_and_deterministic():
    ids = [f"q{i}" for i in range(100)]
    groups = ["a"] * 60 + ["b"] * 40
    mask = carve_validation(ids, groups, 0.1, seed=3)
    assert mask[:60].sum() == 6 and mask[60:].sum() == 4
    assert (carve_validation(list(reversed(ids)), list(reversed(groups)), 0.1, 3)[::-1] == mask).all()
    assert not (carve_validation(ids, groups, 0.1, seed=4) == mask).all()


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _rows(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "prompt": f"question {prefix} {i}", "group": "g",
             "score:small": i % 2, "cost:small": 0.001, "score:large": 1, "cost:large": 0.01}
            for i in range(n)]


def test_local_directory_of_csv_files_loads(tmp_path: Path):
    for split, n in (("train", 6), ("validation", 3), ("test", 3)):
        _write_csv(tmp_path / f"{split}.csv", _rows(split, n))
    task = load_local(tmp_path)
    assert {s: d.n for s, d in task.splits.items()} == {"train": 6, "validation": 3, "test": 3}
    assert task.models[1].name == "large"


def test_local_malformed_csv_is_rejected_with_file_row_column(tmp_path: Path):
    rows = _rows("train", 6)
    rows[4]["score:large"] = 7
    _write_csv(tmp_path / "train.csv", rows)
    _write_csv(tmp_path / "validation.csv", _rows("validation", 3))
    _write_csv(tmp_path / "test.csv", _rows("test", 3))
    with pytest.raises(DataError) as info:
        load_task(str(tmp_path))
    message = str(info.value)
    assert "train.csv" in message and "row 4" in message and "'score:large'" in message


def test_task_card_schema_is_strict(tmp_path: Path):
    card = load_card(Path(__file__).resolve().parent.parent / "tasks" / "routerbench.yaml")
    assert card.name == "routerbench" and card.version == 1 and len(card.models) == 11
    text = (Path(card.path)).read_text()
    bad = tmp_path / "routerbench.yaml"
    bad.write_text(text + "\ncolour: blue\n")
    with pytest.raises(TaskCardError, match=r"routerbench\.yaml: unknown key\(s\) \['colour'\]"):
        load_card(bad)
    bad.write_text(text.replace("version: 1", "version: one"))
    with pytest.raises(TaskCardError, match=r'routerbench\.yaml: version: expected an integer, '
                                            r'got "one"'):
        load_card(bad)
    bad.write_text(text.replace("version: 1", "version: 1\nversion: 2"))
    with pytest.raises(TaskCardError, match=r"routerbench\.yaml: .*key 'version' is given twice"):
        load_card(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(TaskCardError, match=r"routerbench\.yaml: not valid YAML"):
        load_card(bad)


def test_routerbench_embedded_matches_upstream_csvs(shared_data: Path, routerbench_embedded):
    upstream = load_task("routerbench", data_dir=shared_data)
    embedded = routerbench_embedded
    assert upstream.fingerprint() == embedded.fingerprint()
    total = sum(d.n for d in embedded.splits.values())
    assert total == 3178
    assert embedded.splits["test"].n == 445 + 128 + 380
    assert embedded.splits["train"].n + embedded.splits["validation"].n == 1039 + 299 + 887
    assert len(embedded.models) == 11
    assert set(embedded.groups) == {"arc-challenge", "mbpp", "winogrande"}
    # 8 ARC-Challenge test rows have blank (missing) cells upstream
    assert (~embedded.splits["test"].complete_rows()).sum() == 8
    # real per-call costs: GPT-4 is the most expensive model on average
    means = np.nanmean(embedded.splits["train"].costs, axis=0)
    assert embedded.models[int(np.argmax(means))].name == "gpt-4-1106-preview"


def test_routerbench_embed_text_drops_the_shared_few_shot_prefix(routerbench_embedded):
    train = routerbench_embedded.splits["train"]
    arc = [i for i, g in enumerate(train.groups) if g == "arc-challenge"]
    embed = [train.embed_texts[i] for i in arc]
    prompts = [train.prompts[i] for i in arc]
    assert all(p.endswith(e) for p, e in zip(prompts, embed))
    assert np.mean([len(e) for e in embed]) < 0.5 * np.mean([len(p) for p in prompts])
    assert len(set(e[:200] for e in embed)) > 0.9 * len(embed)


def test_group_subtask(routerbench_embedded):
    sub = routerbench_embedded.restrict_to_group("mbpp")
    assert sub.name == "routerbench:mbpp"
    assert sub.splits["test"].n == 128
    assert set(sub.splits["train"].groups) == {"mbpp"}


@pytest.mark.parametrize(("old", "new", "words"), [
    ("version: 1", "version: 1\nencoder: 3", "encoder: expected a string, got 3"),
    ("provider: OpenAI,", "provider: OpenAI, price_input_per_mtok: cheap,",
     "('gpt-3.5-turbo-1106').price_input_per_mtok: expected a number, got \"cheap\""),
    ("provider: OpenAI,", "provider: OpenAI, price_input_per_mtok: -1,",
     ".price_input_per_mtok: must be >= 0"),
    ("provider: OpenAI,", "provider: [OpenAI],", ".provider: expected a string, got a list"),
    ("provider: OpenAI,", "provider: OpenAI, colour: red,",
     "('gpt-3.5-turbo-1106'): unknown key(s) ['colour']"),
    ("splits:", "splits:\n  dev: none", "splits: unknown key(s) ['dev']"),
    ("  upstream: https", "  upstream: 7\n  commit: https",
     "source.upstream: expected a string, got 7"),
    ("  - {name: gpt-3.5-turbo-1106,", "  - {name: gpt-4-1106-preview,",
     "models: name 'gpt-4-1106-preview' is listed twice"),
    ("modality: text", "modality: image", "modality: must be one of 'text' or 'text+image'"),
    ("version: 1", "version: 0", "version: must be >= 1, got 0"),
])
def test_card_nested_values_are_type_checked(tmp_path: Path, old: str, new: str, words: str):
    text = (Path(__file__).resolve().parent.parent / "tasks" / "routerbench.yaml").read_text()
    assert old in text
    bad = tmp_path / "routerbench.yaml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(TaskCardError) as info:
        load_card(bad)
    assert str(info.value).startswith(f"{bad}: ")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_card_is_typed_and_still_reads_as_the_mappings_plugins_use():
    """TaskCard is public API: plugins read ``model["name"]``, ``card.source.get(...)``,
    ``dict(card.source)`` and copy a card with other models."""
    from routeharness import TaskCard

    card = load_card(Path(__file__).resolve().parent.parent / "tasks" / "alpacaeval.yaml")
    assert isinstance(card, TaskCard) and card.path.name == "alpacaeval.yaml"
    first = card.models[0]
    assert first["name"] == first.name and first.get("size") == first.size
    assert first.get("price_per_image") is None and "price_per_image" not in first
    assert card.source["commit"] == card.source.commit == card.revision
    assert dict(card.source) == {k: v for k, v in card.source.model_dump().items()}
    assert None not in dict(card.source).values() and "hub" not in card.source
    assert set(card.splits.keys()) == {"train", "validation", "test"}
    assert card.group_descriptions() == {g["name"]: g.get("description", "")
                                         for g in card.groups}
    assert card.model_infos()[0].name == first.name
    subset = card.model_copy(update={"models": card.models[:2]})
    assert len(subset.models) == 2 and subset.path == card.path and len(card.models) > 2
    with pytest.raises(Exception, match="frozen"):
        card.name = "other"  # type: ignore[misc]
    # the JSON Schema docs/schemas/ is generated from describes every key
    schema = TaskCard.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())
    assert "path" not in schema["properties"]


def test_a_card_s_file_name_and_its_name_agree(tmp_path: Path):
    text = (Path(__file__).resolve().parent.parent / "tasks" / "routerbench.yaml").read_text()
    other = tmp_path / "other.yaml"
    other.write_text(text, encoding="utf-8")
    with pytest.raises(TaskCardError, match="card name 'routerbench' does not match its file"):
        load_card(other)
    with pytest.raises(TaskCardError, match=r"routerbench\.yaml: no such task card"):
        load_card(tmp_path / "routerbench.yaml")


@pytest.mark.parametrize("sidecar, says", [
    ({"models": [{"name": "small", "price_input_per_mtok": -1}]},
     "models[0] ('small').price_input_per_mtok: must be >= 0.0, got -1"),
    ({"models": [{"name": "small"}, {"name": "small"}]}, "models: name 'small' is listed twice"),
    ({"version": 0}, "version: must be >= 1, got 0"),
    ({"groups": {"a": 1}}, "groups.a: expected a string, got 1"),
    ({"source": 3}, "source: expected a string or an object, got 3"),
    ({"notes": [1]}, "notes[0]: expected a string, got 1"),
])
def test_routing_json_values_out_of_range_name_the_key(tmp_path: Path, sidecar, says):
    import json

    from routeharness.data.readers import read_sidecar

    (tmp_path / "routing.json").write_text(json.dumps(sidecar), encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_sidecar(tmp_path)
    assert str(info.value) == f"{tmp_path / 'routing.json'}: {says}"


def test_multimodal_cards_declare_the_offline_image_text_encoder():
    from routeharness.plugins.registry import get_registry

    tasks = Path(__file__).resolve().parent.parent / "tasks"
    for name in ("blindtest", "vhelm-mm"):
        card = load_card(tasks / f"{name}.yaml")
        assert card.encoder == "effnet-minilm"
        assert card.encoder in get_registry("encoder").names()
    assert load_card(tasks / "routerbench.yaml").encoder is None
