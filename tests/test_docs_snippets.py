"""The code in the docs runs as written: docs/your-own-data.md's pivot snippet turns a
long table of calls (the shape the page shows) into a dataset that `data validate`
accepts and `load_task` loads with the same numbers, with the page's routing.json."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from routeharness.cli._app import main

ROOT = Path(__file__).resolve().parent.parent
YOUR_OWN_DATA = ROOT / "docs" / "your-own-data.md"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _pivot_snippet() -> str:
    [snippet] = [b for b in _blocks(YOUR_OWN_DATA.read_text("utf-8"), "python")
                 if "pivot_table" in b]
    return snippet


def _write_calls(path: Path, header: list[str]) -> dict[tuple[str, str], tuple[int, float]]:
    """A long table with the page's columns: 60 prompts in the page's two groups, each
    answered by the page's two models; returns (prompt_id, model) -> (correct, usd)."""
    rng = np.random.default_rng(0)
    calls = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(60):
            task = "math" if i % 2 else "trivia"
            prompt = f"Question {i} about {task}: what is {i} * {i + 7}?"
            for model, price in (("small-7b", 0.00002), ("large-70b", 0.0003)):
                correct = int(rng.random() < (0.9 if model == "large-70b" else 0.5))
                usd = round(price * (1 + rng.random()), 8)
                writer.writerow([f"q{i}", prompt, task, model, correct, usd])
                calls[(f"q{i}", model)] = (correct, usd)
    return calls


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_the_pivot_snippet_builds_a_dataset_that_validates_and_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    text = YOUR_OWN_DATA.read_text("utf-8")
    # the example table's header, as the page shows it
    [example] = [b for b in _blocks(text, "") if b.startswith("prompt_id,")]
    header = example.splitlines()[0].split(",")
    monkeypatch.chdir(tmp_path)  # the snippet writes mydata/ in the current directory
    calls = _write_calls(tmp_path / "calls.csv", header)
    exec(compile(_pivot_snippet(), str(YOUR_OWN_DATA), "exec"), {"__name__": "snippet"})
    assert sorted(p.name for p in (tmp_path / "mydata").iterdir()) == [
        "test.parquet", "train.parquet", "validation.parquet"]
    [routing] = [b for b in _blocks(text, "json") if '"models"' in b]
    (tmp_path / "mydata" / "routing.json").write_text(routing, "utf-8")
    assert json.loads(routing)["name"] == "mydata"

    code, out, err = _run(["data", "validate", "mydata"], capsys)
    assert code == 0, err
    assert out.strip().startswith("ok:")

    from routeharness.data.tasks import load_task

    task = load_task("mydata")
    assert task.name == "mydata" and [m.name for m in task.models] == ["small-7b", "large-70b"]
    sizes = {split: data.n for split, data in task.splits.items()}  # per group: 30% of 30, 1/7 of 21
    assert sum(sizes.values()) == 60 and sizes["test"] == 2 * 9 and sizes["validation"] == 2 * 3
    for data in task.splits.values():
        for i, prompt_id in enumerate(data.ids):
            for j, model in enumerate(data.model_names):
                correct, usd = calls[(prompt_id, model)]
                assert data.scores[i, j] == correct
                assert math.isclose(data.costs[i, j], usd, rel_tol=1e-12)
