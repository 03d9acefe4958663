"""``routeharness data import FORMAT SOURCE OUT`` (docs/formats/): each format's fixture
(tests/fixtures/importers/<format>/make.py, written from its page) goes through the real
CLI, ``data validate`` accepts the output, and the loaded task holds the fixture's models,
groups, prompts, splits, scores and costs; RouterArena also on the real files in
../shared/data/routerarena; bad input is one line naming the file (and row or field),
a non-zero exit, and no output folder."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from routeharness.cli._app import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "importers"
sys.path.insert(0, str(FIXTURES))
from outcomes import MODELS, PRICES  # noqa: E402

FORMATS = ("routerarena", "routerbench-full", "llmrouterbench", "embedllm", "sprout",
           "routereval", "vl-routerbench")


def _make(fmt: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"make_{fmt.replace('-', '_')}",
                                                  FIXTURES / fmt / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _prices(path: Path) -> Path:
    path.write_text(json.dumps({m: {"input_token_price_per_million": p[0],
                                    "output_token_price_per_million": p[1]}
                                for m, p in PRICES.items()}), encoding="utf-8")
    return path


def _cells(task: Any) -> dict[str, dict[str, Any]]:
    """id -> its split, group, prompt, image, and each model's score and cost."""
    out = {}
    for split, data in task.splits.items():
        names = [m.name for m in data.models]
        for i, identifier in enumerate(data.ids):
            out[str(identifier)] = {
                "split": split, "group": str(data.groups[i]), "prompt": data.prompts[i],
                "image": data.images[i] if data.images is not None else None,
                "scores": dict(zip(names, data.scores[i].tolist())),
                "costs": dict(zip(names, data.costs[i].tolist()))}
    return out


# --- the round trip of every format ----------------------------------------------------------
CASES = [(fmt, {}) for fmt in FORMATS] + [("sprout", {"prices": True}),
                                          ("routereval", {"kind": "npz"})]


@pytest.mark.parametrize(("fmt", "options"), CASES,
                         ids=[f"{f}{'-' + '-'.join(o) if o else ''}" for f, o in CASES])
def test_import_validates_and_loads_what_the_source_holds(fmt, options, tmp_path, capsys):
    from routeharness.data.tasks import load_task

    source, out = tmp_path / "source", tmp_path / "out"
    maker = _make(fmt)
    expected = (maker.write(source, options["kind"]) if "kind" in options
                else maker.write(source))
    args = ["data", "import", fmt, source, out]
    if options.get("prices"):
        args += ["--prices", _prices(tmp_path / "prices.json")]
    code, stdout, import_err = _run(args, capsys)
    assert code == 0, import_err
    assert stdout.startswith(f"imported {fmt} from ")
    code, stdout, stderr = _run(["data", "validate", out], capsys)
    assert code == 0, stderr
    assert stdout.startswith("ok:")

    task = load_task(str(out))
    assert [m.name for m in task.models] == expected.models
    cells = _cells(task)
    assert set(cells) == set(expected.rows)
    assert sorted(task.groups) == sorted({g for g, _ in expected.rows.values()})
    # SPROUT records tokens only: without --prices its costs are the placeholder
    placeholder = not expected.costs or (getattr(maker, "COSTS_NEED_PRICES", False)
                                         and not options.get("prices"))
    for identifier, (group, prompt) in expected.rows.items():
        cell = cells[identifier]
        assert (cell["group"], cell["prompt"]) == (group, prompt), identifier
        if expected.splits:
            assert cell["split"] == expected.splits[identifier], identifier
        for model in expected.models:
            score = expected.scores.get((identifier, model))
            if score is None:
                assert math.isnan(cell["scores"][model]), (identifier, model)
                continue
            assert cell["scores"][model] == pytest.approx(score), (identifier, model)
            cost = 1.0 if placeholder else expected.costs[(identifier, model)]
            assert cell["costs"][model] == pytest.approx(cost, rel=1e-9), (identifier, model)

    sidecar = json.loads((out / "routing.json").read_text("utf-8"))
    notes = sidecar["notes"]
    assert any(n.startswith("cost: ") or n.startswith("no cost: ") for n in notes)
    assert any(n.startswith("splits: ") for n in notes)
    if placeholder:
        assert "warning: no cost" in import_err  # said on the command line too
    assert sidecar["counts"] == {s: task.splits[s].n for s in task.splits}


def test_routerarena_prices_are_in_the_sidecar_and_the_clipped_score_in_the_notes(tmp_path):
    from routeharness.data.importers import import_source

    _make("routerarena").write(tmp_path / "source")
    import_source("routerarena", tmp_path / "source", tmp_path / "out")
    sidecar = json.loads((tmp_path / "out" / "routing.json").read_text("utf-8"))
    prices = {m["name"]: (m["price_input_per_mtok"], m["price_output_per_mtok"])
              for m in sidecar["models"]}
    assert prices == {m: PRICES[m] for m in MODELS}
    assert any("clipped" in n and "Alpha_part1_3" in n for n in sidecar["notes"])


def test_the_seeded_split_depends_on_the_seed_only_and_keeps_a_prompt_in_one_split(tmp_path):
    from routeharness.data.importers.common import seeded_splits

    keys = [f"p{i % 30}" for i in range(60)]  # every prompt text twice
    groups = ["a" if i % 30 < 15 else "b" for i in range(60)]
    first = seeded_splits(keys, groups, 7)
    assert first == seeded_splits(list(keys), list(groups), 7)
    assert first != seeded_splits(keys, groups, 8)
    for key in set(keys):
        assert len({s for k, s in zip(keys, first) if k == key}) == 1
    assert {s for s in first} == {"train", "validation", "test"}


def test_seed_changes_the_split_and_is_refused_for_a_source_with_its_own(tmp_path, capsys):
    _make("routerarena").write(tmp_path / "ra")
    for seed, out in ((1, "a"), (2, "b")):
        assert _run(["data", "import", "routerarena", tmp_path / "ra", tmp_path / out,
                     "--seed", seed], capsys)[0] == 0
    assert (json.loads((tmp_path / "a" / "routing.json").read_text())["counts"]
            == json.loads((tmp_path / "b" / "routing.json").read_text())["counts"])
    assert "seed 1" in (tmp_path / "a" / "routing.json").read_text()
    _make("embedllm").write(tmp_path / "em")
    code, _, err = _run(["data", "import", "embedllm", tmp_path / "em", tmp_path / "c",
                         "--seed", 3], capsys)
    assert code == 1 and "--seed applies to sources without their own splits" in err
    assert not (tmp_path / "c").exists()


def test_vl_routerbench_images_come_from_files_and_from_the_tsv(tmp_path):
    from routeharness.data.importers import import_source
    from routeharness.data.tasks import load_task

    _make("vl-routerbench").write(tmp_path / "source")
    import_source("vl-routerbench", tmp_path / "source", tmp_path / "out")
    cells = _cells(load_task(str(tmp_path / "out")))
    maker = _make("vl-routerbench")

    def image_bytes(identifier: str) -> bytes:
        image = cells[identifier]["image"]
        return image["bytes"] if isinstance(image, dict) else image

    assert image_bytes("Alpha/3") == (tmp_path / "source" / "images" / "3.png").read_bytes()
    assert image_bytes("Beta/12") == maker._png(12)
    assert image_bytes("Beta/13") == maker._png(11)  # a reference to another row's image


def test_embedllm_notes_the_repeated_rows_and_never_opens_the_pth(tmp_path, monkeypatch):
    from routeharness.data.importers import import_source

    _make("embedllm").write(tmp_path / "source")
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    import_source("embedllm", tmp_path / "source", tmp_path / "out")
    notes = json.loads((tmp_path / "out" / "routing.json").read_text("utf-8"))["notes"]
    assert any("3 prompt x model cells have several rows" in n and "1 disagree" in n
               for n in notes)
    assert any("question_embeddings.pth" in n and "never unpickles" in n for n in notes)


# --- the real RouterArena files ---------------------------------------------------------------
def test_routerarena_real_files_import_and_validate(shared_data, tmp_path, capsys):
    from routeharness.data.tasks import load_task

    routerarena = shared_data / "routerarena"
    out = tmp_path / "routerarena"
    code, stdout, stderr = _run(["data", "import", "routerarena", routerarena, out], capsys)
    assert code == 0, stderr
    assert "809" not in stderr and "2 models, 36 groups" in stdout
    assert _run(["data", "validate", out], capsys)[0] == 0
    task = load_task(str(out))
    assert sum(d.n for d in task.splits.values()) == 809
    assert [m.name for m in task.models] == ["claude-3-haiku-20240307", "gemini-2.0-flash-001"]
    records = {}
    for model in ("claude-3-haiku-20240307", "gemini-2.0-flash-001"):
        with open(routerarena / f"{model}.jsonl", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                records[(record["global_index"], model)] = record["evaluation_result"]
    for identifier, cell in _cells(task).items():
        for model in cell["scores"]:
            result = records[(identifier, model)]
            assert cell["costs"][model] == pytest.approx(result["inference_cost"], rel=1e-12)
            assert cell["scores"][model] == pytest.approx(min(1, max(0, result["score"])))
    notes = json.loads((out / "routing.json").read_text("utf-8"))["notes"]
    assert any("1 score outside [0, 1] clipped: NarrativeQA_4102" in n for n in notes)


def test_routerbench_full_reads_the_real_wide_layout(shared_data, tmp_path, capsys):
    """The RouterDC re-export mirrored in ../shared/data/routerbench has the release's wide
    columns; one file converted to parquet imports with its prompts, cells and costs."""
    import numpy as np
    import pandas as pd

    from routeharness.data.tasks import load_task

    frame = pd.read_csv(shared_data / "routerbench" / "arc_challenge_test.csv", index_col=0)
    frame.to_parquet(tmp_path / "arc.parquet")
    code, _, stderr = _run(["data", "import", "routerbench-full", tmp_path / "arc.parquet",
                                 tmp_path / "out"], capsys)
    assert code == 0, stderr
    task = load_task(str(tmp_path / "out"))
    models = [c[:-len("|total_cost")] for c in frame.columns if c.endswith("|total_cost")]
    assert [m.name for m in task.models] == models and len(models) == 11
    assert sum(d.n for d in task.splits.values()) == len(frame) == 445
    scores = np.concatenate([d.scores for d in task.splits.values()])
    assert int(np.isnan(scores).sum()) == int(frame[models].isna().sum().sum()) > 0
    cells = _cells(task)
    row = frame.iloc[0]
    cell = cells[row["sample_id"]]
    assert cell["prompt"] == "\n".join(ast.literal_eval(row["prompt"]))
    for model in models:
        assert cell["costs"][model] == pytest.approx(row[f"{model}|total_cost"])
    notes = json.loads((tmp_path / "out" / "routing.json").read_text("utf-8"))["notes"]
    assert "2 rows share a sample_id with another row: their id is sample_id#<row>" in notes


@pytest.mark.slow
def test_routerarena_real_files_evaluate(shared_data, cache_dir, tmp_path, capsys):
    out = tmp_path / "routerarena"
    assert _run(["data", "import", "routerarena", shared_data / "routerarena", out],
                capsys)[0] == 0
    code, stdout, stderr = _run(["eval", "-r", "knn", "-r", "linear", "-r", "mlp", "-t", out,
                                 "-o", tmp_path / "result.json", "--cache-dir", cache_dir,
                                 "--quiet"], capsys)
    assert code == 0, stderr
    assert "single-model frontier" in stdout
    result = json.loads((tmp_path / "result.json").read_text("utf-8"))
    assert {r["router"] for r in result["records"]} >= {"knn", "linear", "mlp"}


# --- bad input: one line naming the file, non-zero exit, nothing written ------------------
def _one_line_error(code: int, err: str, out: Path, *needles: str, exit_code: int = 1) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == exit_code, err
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out.exists()
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())


def test_an_unknown_format_is_one_line_with_did_you_mean_and_exit_2(tmp_path, capsys):
    code, _, err = _run(["data", "import", "routerarenna", tmp_path, tmp_path / "out"], capsys)
    _one_line_error(code, err, tmp_path / "out", "unknown import format 'routerarenna'",
                    "Did you mean 'routerarena'", exit_code=2)


def test_a_source_of_another_format_is_named_with_the_format_it_looks_like(tmp_path, capsys):
    _make("routerarena").write(tmp_path / "ra")
    code, _, err = _run(["data", "import", "embedllm", tmp_path / "ra", tmp_path / "out"],
                        capsys)
    _one_line_error(code, err, tmp_path / "out", str(tmp_path / "ra"),
                    "not EmbedLLM's folder", "looks like routerarena data")


def test_a_jsonl_cut_in_the_middle_names_the_file_and_row(tmp_path, capsys):
    _make("routerarena").write(tmp_path / "ra")
    path = tmp_path / "ra" / "mid-70b.jsonl"
    text = path.read_text("utf-8")[:len(path.read_text("utf-8")) // 2]
    path.write_text(text, encoding="utf-8")  # ends inside a record
    code, _, err = _run(["data", "import", "routerarena", tmp_path / "ra", tmp_path / "out"],
                        capsys)
    _one_line_error(code, err, tmp_path / "out", f"{path}, row {text.count(chr(10))}",
                    "invalid JSON", "cut short")


def test_a_csv_cut_in_the_middle_names_the_file_and_row(tmp_path, capsys):
    _make("embedllm").write(tmp_path / "em")
    path = tmp_path / "em" / "train.csv"
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b"\n", len(data) // 2) + 4])  # a row cut after a field
    code, _, err = _run(["data", "import", "embedllm", tmp_path / "em", tmp_path / "out"],
                        capsys)
    _one_line_error(code, err, tmp_path / "out", str(path), "fields where the header has 5",
                    "cut short")


def test_a_parquet_cut_in_the_middle_names_the_file(tmp_path, capsys):
    _make("routerbench-full").write(tmp_path / "rb")
    path = tmp_path / "rb" / "routerbench_0shot.parquet"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    code, _, err = _run(["data", "import", "routerbench-full", path, tmp_path / "out"], capsys)
    _one_line_error(code, err, tmp_path / "out", str(path), "cannot read parquet file")


def test_a_price_table_with_a_negative_price_names_the_model_and_field(tmp_path, capsys):
    _make("routerarena").write(tmp_path / "ra")
    table = json.loads((tmp_path / "ra" / "cost.json").read_text("utf-8"))
    table["mid-70b"]["output_token_price_per_million"] = -0.9
    (tmp_path / "ra" / "cost.json").write_text(json.dumps(table), encoding="utf-8")
    code, _, err = _run(["data", "import", "routerarena", tmp_path / "ra", tmp_path / "out"],
                        capsys)
    _one_line_error(code, err, tmp_path / "out", str(tmp_path / "ra" / "cost.json"),
                    "model 'mid-70b', field 'output_token_price_per_million'",
                    "negative price -0.9")


def test_a_negative_price_given_with_prices_is_refused_too(tmp_path, capsys):
    _make("sprout").write(tmp_path / "sp")
    prices = _prices(tmp_path / "prices.json")
    table = json.loads(prices.read_text())
    table["large-x"]["input_token_price_per_million"] = -5
    prices.write_text(json.dumps(table))
    code, _, err = _run(["data", "import", "sprout", tmp_path / "sp", tmp_path / "out",
                         "--prices", prices], capsys)
    _one_line_error(code, err, tmp_path / "out", str(prices), "model 'large-x'", "negative")


def test_a_pickle_where_json_is_expected_is_refused_unopened(tmp_path, capsys, monkeypatch):
    _make("routereval").write(tmp_path / "re")
    path = tmp_path / "re" / "gsm8k_easy_3_all_strong.json"
    path.write_bytes(pickle.dumps({"model": ["a"]}, protocol=4))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    code, _, err = _run(["data", "import", "routereval", path, tmp_path / "out"], capsys)
    _one_line_error(code, err, tmp_path / "out", str(path),
                    "a pickle where a RouterEval candidate pool as .json or .npz",
                    "never unpickles")


def test_the_routerbench_pickle_is_refused_with_the_conversion_page(tmp_path, capsys):
    path = tmp_path / "routerbench_0shot.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    code, _, err = _run(["data", "import", "routerbench-full", path, tmp_path / "out"], capsys)
    _one_line_error(code, err, tmp_path / "out", str(path), "a pickle where parquet",
                    "docs/formats/routerbench-full.md")


def test_prices_for_a_source_without_tokens_is_one_line(tmp_path, capsys):
    _make("embedllm").write(tmp_path / "em")
    code, _, err = _run(["data", "import", "embedllm", tmp_path / "em", tmp_path / "out",
                         "--prices", _prices(tmp_path / "p.json")], capsys)
    _one_line_error(code, err, tmp_path / "out", "--prices needs token counts")


def test_an_existing_output_or_one_inside_the_source_is_refused(tmp_path, capsys):
    _make("routerarena").write(tmp_path / "ra")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    code, _, err = _run(["data", "import", "routerarena", tmp_path / "ra", tmp_path / "full"],
                        capsys)
    assert code == 1 and "exists and is not an empty directory" in err
    assert (tmp_path / "full" / "x").read_text() == "keep"
    code, _, err = _run(["data", "import", "routerarena", tmp_path / "ra",
                         tmp_path / "ra" / "out"], capsys)
    _one_line_error(code, err, tmp_path / "ra" / "out", "inside the source")


def test_a_failing_validation_writes_nothing(tmp_path, capsys):
    """A problem only the project's one validation sees (a score above 1 in RouterBench's
    parquet) names the upstream file and row, and leaves no output."""
    import pyarrow.parquet as pq

    _make("routerbench-full").write(tmp_path / "rb")
    path = tmp_path / "rb" / "routerbench_0shot.parquet"
    table = pq.read_table(path).to_pydict()
    table["mid-70b"][5] = 7.0
    import pyarrow as pa

    pq.write_table(pa.table(table), path)
    code, _, err = _run(["data", "import", "routerbench-full", path, tmp_path / "out"], capsys)
    _one_line_error(code, err, tmp_path / "out", f"{path}, row 5", "outside [0, 1]")


# --- the pages' pickle conversions (run here on pickles this test makes itself) ---------
def _conversions(page: str) -> list[str]:
    import re

    text = (ROOT / "docs" / "formats" / page).read_text("utf-8")
    return re.findall(r'^python -c "(.*)"$', text, flags=re.M)


def test_the_routerbench_page_conversion_gives_what_the_import_reads(tmp_path, monkeypatch,
                                                                     capsys):
    import pandas as pd

    from routeharness.data.tasks import load_task

    expected = _make("routerbench-full").write(tmp_path / "made")
    frame = pd.read_parquet(tmp_path / "made" / "routerbench_0shot.parquet")
    monkeypatch.chdir(tmp_path)
    frame.to_pickle("routerbench_0shot.pkl")  # what the Hub ships
    [line] = _conversions("routerbench-full.md")
    exec(compile(line, "routerbench-full.md", "exec"), {})  # the page's line, as a user runs it
    code, _, err = _run(["data", "import", "routerbench-full", "routerbench_0shot.parquet",
                         "out"], capsys)
    assert code == 0, err
    assert set(_cells(load_task("out"))) == set(expected.rows)


def test_the_routereval_page_conversions_give_what_the_import_reads(tmp_path, monkeypatch,
                                                                    capsys):
    """A pickle in the layout the page describes (prompts once, pools by difficulty, size
    and kind) through each of the page's lines, then imported."""
    import numpy as np

    from routeharness.data.tasks import load_task

    prompts = {f"{s}_prompt": np.array([f"{s} question {i}" for i in range(n)], dtype=object)
               for s, n in (("train", 12), ("val", 4), ("test", 4))}

    def pool(models: list[str]) -> dict:
        rng = np.random.default_rng(len(models))
        return {"model": models, "data": {
            f"{s}_score": rng.integers(0, 2, (len(prompts[f"{s}_prompt"]), len(models)))
            for s in ("train", "val", "test")}}

    names = [f"org/model-{i}" for i in range(100)]
    data = {"prompt": prompts, "split_index": {}, "embedding": {},
            "easy": {5: {"strong_to_weak": pool(names[:5])}},
            "hard": {100: {"all_strong": pool(names)}}}
    monkeypatch.chdir(tmp_path)
    with open("gsm8k_router_dataset.pkl", "wb") as handle:
        pickle.dump(data, handle)
    lines = _conversions("routereval.md")
    assert len(lines) == 2
    for line, made, models in zip(lines, ("gsm8k_easy5_s2w.json", "gsm8k_hard100.npz"),
                                  (names[:5], names)):
        exec(compile(line, "routereval.md", "exec"), {})  # the page's line, as a user runs it
        out = f"out-{made}"
        code, _, err = _run(["data", "import", "routereval", made, out], capsys)
        assert code == 0, err
        task = load_task(out)
        assert [m.name for m in task.models] == models
        assert {s: d.n for s, d in task.splits.items()} == {"train": 12, "validation": 4,
                                                            "test": 4}
