"""Typed records: result files own their JSON (NaN and infinity, atomic writes, shapes
named by JSON path), load the files the current version wrote, and every table and plot
of them shows names as plain text. Fast: no model, no evaluation run."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeharness.cli._app import main
from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation import metrics
from routeharness.results.records import (
    RESULT_SCHEMA,
    RecordFormatError,
    ResultSet,
    RunRecord,
)
from routeharness.results.sets import (
    merge_results,
    plot_frontiers,
    ranked,
    report_tables,
    summarise,
)
from routeharness.results.tables import to_markdown

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "benchmarks" / "results" / "text_matrix.json"
MARKUP_NAMES = ("[bold red]x[/]", r"$\frac{a}{0}$", "$x^$", "_hidden", "a\\b", "<script>")


def make_record(router: str, seed: int, task: str = "t", shift: float = 0.0,
                **extra: Any) -> dict[str, Any]:
    """A record whose numbers follow from its curve (as evaluate writes them)."""
    cost = np.array([1.0, 0.5, 0.2, 0.05])
    quality = np.clip(np.array([0.8, 0.7, 0.5, 0.3]) + shift + 0.01 * seed, 0, 1)
    hull_c, hull_q = metrics.frontier(cost, quality)
    auc = metrics.auc(cost, quality)
    return {"router": router, "router_class": "x.Router", "router_kind": "utility",
            "plugin": "p", "distribution": "d", "version": "1", "upper_bound": False,
            "chosen_model": None, "task": task, "seed": seed, "params": {"k": 3},
            "tuning": [{"params": {"k": 3}, "validation_auc": 50.0}], "n_test": 90,
            "n_test_excluded": 10, "timings": {"tune_s": 0.1, "fit_s": 0.2, "route_s": 0.1},
            "metrics": {"auc": auc, "quality_at_0": float(quality[0]) * 100,
                        "cost_at_0": 1.0, "cost_at_0_usd": 0.002,
                        "auc_ci95": [auc - 1, auc + 1]},
            "per_group": {}, "curve": {"lambda": [0.0, 0.1, 1.0, "inf"],
                                       "cost": cost.tolist(), "quality": quality.tolist()},
            "frontier": {"cost": hull_c.tolist(), "quality": hull_q.tolist()}, **extra}


def make_result(routers=("a", "b"), seeds=(0, 1), task="t", models=("m1", "m2"),
                oracle: bool = True) -> dict[str, Any]:
    reference: dict[str, Any] = {
        "version": 1, "revision": None, "source": "test", "fingerprint": "f" * 64,
        "sizes": {"train": 10, "validation": 10, "test": 100}, "models": list(models),
        "groups": [], "cost_scale_usd": 0.002,
        "single_models": [{"model": m, "quality": 50.0 + i, "cost": 0.5 + 0.1 * i,
                           "cost_usd": 0.001} for i, m in enumerate(models)],
        "single_model_frontier_auc": 60.0}
    if oracle:
        best = make_record("oracle", 0, task, shift=0.15)
        reference["oracle"] = {**{k: best["metrics"][k] for k in ("auc", "quality_at_0",
                                                                    "cost_at_0_usd",
                                                                    "auc_ci95")},
                               "curve": {k: best["curve"][k] for k in ("cost", "quality")},
                               "frontier": best["frontier"]}
    return {"schema": RESULT_SCHEMA, "routeharness_version": "0.1.0", "git_commit": None,
            "created": "2026-11-30T00:00:00+00:00", "command": ["routeharness"],
            "platform": {}, "encoder": {"name": "minilm", "identity": "mini", "revision": "1",
                                        "modalities": ["text"]},
            "protocol": {"seeds": list(seeds), "n_bootstrap": 20, "version": 2},
            "tasks": {task: reference},
            "records": [make_record(r, s, task, shift=0.05 * i)
                        for s in seeds for i, r in enumerate(routers)]}


def typed(data: dict[str, Any]) -> ResultSet:
    """A result set's data (``make_result``) as the typed result set."""
    return ResultSet.from_dict(data)


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def run_ok(capsys, *args: str) -> tuple[str, str]:
    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    return capsys.readouterr()


# --- JSON: NaN, infinity, atomic writes --------------------------------------------------------
def test_nan_and_infinity_round_trip(tmp_path):
    """Before: NaN was written as null (read back as "missing") and only the lambda's
    infinity survived; now every non-finite number round-trips, never as a bare token."""
    data = make_result()
    data["records"][0]["metrics"]["apgr"] = float("nan")
    data["records"][0]["metrics"]["cpt50"] = float("inf")
    data["records"][0]["timings"]["fit_s"] = float("-inf")
    path = ResultSet.from_dict(data).save(tmp_path / "r.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the file"))
    back = ResultSet.from_json(path).records[0]
    assert math.isnan(back.metrics.apgr) and back.metrics.cpt50 == math.inf
    assert back.timings["fit_s"] == -math.inf and back.curve.lambdas[-1] == math.inf


def test_the_current_versions_files_load_unchanged():
    """The benchmark results and every seeded submission's result set read back to the
    very same JSON (ints stay ints, "inf" stays "inf", unknown keys are kept, keys in
    their order) and write back byte for byte."""
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        if json.loads(path.read_text()).get("schema") != RESULT_SCHEMA:
            continue  # another benchmark's report
        assert ResultSet.from_json(path).to_json() == path.read_text(), path
    for path in sorted((ROOT / "leaderboards").glob("*/submissions/*.json")):
        result = json.loads(path.read_text())["result"]
        back = ResultSet.from_dict(result).to_dict()
        assert back == result and list(back) == list(result), path
        assert [list(r) for r in back["records"]] == [list(r) for r in result["records"]]


def test_the_record_format_checks_the_protocols_seed_bound():
    from routeharness.evaluation.protocol import SEED_LIMIT
    from routeharness.results.records import SEED_LIMIT as RECORDED

    assert SEED_LIMIT == RECORDED


def test_old_matrix_renders_the_same_numbers():
    """Each router's AUC cell is the mean over its seeds of the file's own numbers."""
    raw = json.loads(MATRIX.read_text())
    rows = {row[0]: row for row in report_tables(ResultSet.from_json(MATRIX))[0].rows}
    task = next(iter(raw["tasks"]))
    for router in ("knn", "mlp", "random"):
        values = [r["metrics"]["auc"] for r in raw["records"]
                  if r["task"] == task and r["router"] == router]
        shown = rows[router][1].split(" ± ")
        assert shown[0] == f"{np.mean(values):.2f}"
    assert "oracle (upper bound)" in rows  # an old file's oracle record, as before


@pytest.mark.parametrize("where", ["dir", "parent-file"])
def test_save_refuses_a_bad_path_in_one_line(tmp_path, where):
    (tmp_path / "taken").write_text("x")
    target = tmp_path / "out" if where == "dir" else tmp_path / "taken" / "r.json"
    (tmp_path / "out").mkdir()
    with pytest.raises(RouteHarnessError, match="directory") as info:
        ResultSet.from_dict(make_result()).save(target)
    assert "\n" not in str(info.value)


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = ResultSet.from_dict(make_result()).save(tmp_path / "r.json")
    before = path.read_text()
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space")))
    with pytest.raises(RouteHarnessError, match="No space"):
        ResultSet.from_dict(make_result(routers=("c",))).save(path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --- JSON of the wrong shape ---------------------------------------------------------------------
def _set(data, path, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    (("records", 1, "metrics", "auc"), "x", 'records[1].metrics.auc: expected a number, got "x"'),
    (("records", 0, "seed"), "0", 'records[0].seed: expected an integer, got "0"'),
    (("records", 0, "curve", "cost"), [1, 2], "records[0].curve: cost, quality"),
    (("records", 0, "router"), None, "records[0].router: expected a string, got null"),
    (("tasks", "t", "models"), "m1", "tasks.t.models: expected a list"),
    (("tasks", "t", "single_models", 0, "quality"), [1], "single_models[0].quality"),
    (("records", 0, "metrics", "auc_ci95"), [1], "records[0].metrics.auc_ci95: expected two"),
    (("records", 0, "metrics", "apgr"), True, "records[0].metrics.apgr: expected a number"),
    (("records", 0, "metrics", "new"), "x", 'records[0].metrics.new: expected a number'),
    (("records", 0, "n_test"), -1, "records[0].n_test: must be >= 0, got -1"),
    (("records", 0, "tuning", 0, "params"), [], "records[0].tuning[0].params: expected an"),
    (("tasks", "t", "oracle", "frontier"), None, "tasks.t.oracle.frontier: expected an object"),
    (("encoder", "identity"), 3, "encoder.identity: expected a string, got 3"),
    (("records",), {}, "records: expected a list"),
    (("records", 0, "task"), "other", "records[0].task: 'other' is not one of"),
])
def test_wrong_shapes_are_one_line_naming_the_json_path(tmp_path, capsys, path, value, message):
    """Before: a KeyError or TypeError traceback from `results show`."""
    file = write(tmp_path / "bad.json", _set(make_result(), path, value))
    with pytest.raises(RecordFormatError, match=None) as info:
        ResultSet.from_json(file)
    assert str(info.value).startswith(f"{file}: ") and message in str(info.value)
    code, _, err = run(capsys, "results", "show", str(file))
    assert code == 1 and err.count("\n") == 1 and err.startswith("Error: ") and message in err


@pytest.mark.parametrize("key", ["tasks", "records"])
def test_a_result_file_with_nothing_in_it_is_an_error(tmp_path, capsys, key):
    """Before: `results show` printed nothing and exited 0."""
    data = make_result()
    data[key] = {} if key == "tasks" else []
    code, _, err = run(capsys, "results", "show", str(write(tmp_path / "empty.json", data)))
    assert code == 1 and f"empty.json: {key}: must not be empty" in err


def test_not_json_or_not_a_regular_file(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{")
    code, _, err = run(capsys, "results", "show", str(tmp_path / "broken.json"))
    assert code == 1 and "not valid JSON" in err and err.count("\n") == 1
    (tmp_path / "folder.json").mkdir()
    code, _, err = run(capsys, "results", "show", str(tmp_path / "folder.json"))
    assert code == 1 and "not a regular file" in err


# --- merging ------------------------------------------------------------------------------------
def test_identical_reference_rows_merge_once(tmp_path, capsys):
    """Two default runs both hold best-single and random (and an old file's oracle):
    before, `results show a.json b.json` refused them as a clash."""
    a = make_result(routers=("knn", "best-single", "random"))
    b = make_result(routers=("mlp", "best-single", "random"))
    for data in (a, b):  # an old file's oracle record
        data["records"].append({**make_record("oracle", 0, shift=0.1), "upper_bound": True})
    merged = merge_results([("a", typed(a)), ("b", typed(b))])
    keys = [r.key for r in merged.records]
    assert len(keys) == len(set(keys))
    assert {r.router for r in merged.records} == {"knn", "mlp", "best-single", "random", "oracle"}
    out, _ = run_ok(capsys, "results", "show", str(write(tmp_path / "a.json", a)),
                    str(write(tmp_path / "b.json", b)), "--format", "markdown")
    assert out.count("| best-single |") == 1 and out.count("| oracle (upper bound) |") == 1


def test_a_reference_row_of_an_older_file_merges_with_a_newer_ones():
    """A newer version adds RouterArena's score to every record; the same best-single
    row without it (an older file) is the same row, not a clash."""
    old = make_result(routers=("best-single",), seeds=(0,))
    new = copy.deepcopy(old)
    new["records"][0]["metrics"]["arena_score"] = 61.5
    merged = merge_results([("old", typed(old)), ("new", typed(new))])
    assert [r.router for r in merged.records] == ["best-single"]
    new["records"][0]["metrics"]["auc"] += 1  # a number both have still has to agree
    with pytest.raises(RouteHarnessError, match="with other numbers"):
        merge_results([("old", typed(old)), ("new", typed(new))])


def test_reference_rows_with_other_numbers_still_clash():
    a = make_result(routers=("best-single",))
    b = copy.deepcopy(a)
    b["records"][0]["metrics"]["auc"] += 1
    with pytest.raises(RouteHarnessError, match="also in a with other numbers"):
        merge_results([("a", typed(a)), ("b", typed(b))])
    with pytest.raises(RouteHarnessError, match="'x' on task 't' seed 0 is also in a;"):
        merge_results([("a", typed(make_result(routers=("x",)))),
                       ("b", typed(make_result(routers=("x",))))])


@pytest.mark.parametrize("clash", ["output-is-input", "plot-is-input", "plot-is-output"])
def test_outputs_over_inputs_are_refused_before_any_work(tmp_path, capsys, clash):
    a = write(tmp_path / "a.json", make_result(routers=("x",)))
    b = write(tmp_path / "b.json", make_result(routers=("y",)))
    before = a.read_bytes()
    args = {"output-is-input": ["-o", str(a)], "plot-is-input": ["--plot", str(b)],
            "plot-is-output": ["-o", str(tmp_path / "m.json"), "--plot",
                               str(tmp_path / "m.json")]}[clash]
    code, out, err = run(capsys, "results", "show", str(a), str(b), *args)
    assert code == 1 and err.count("\n") == 1 and out == ""
    assert a.read_bytes() == before and not (tmp_path / "m.json").exists()


# --- tables ----------------------------------------------------------------------------------------
def test_header_says_scored_and_excluded_rows_and_the_encoder():
    title = report_tables(typed(make_result()))[0].title
    assert "test 90 scored (10 excluded: missing scores)" in title and "encoder minilm" in title


def test_the_oracle_reference_is_the_upper_bound_row():
    table = report_tables(typed(make_result()))[0]
    names = [row[0] for row in table.rows]
    assert names[-2:] == ["oracle (upper bound)", "single-model frontier"]
    assert summarise(typed(make_result(oracle=False)))["t"][-1]["router"] == "b"


def test_one_ranking_for_results_and_boards():
    items = [("a", 1.0, False), ("b", 3.0, False), ("up", 9.0, True), ("none", None, False)]
    order = ranked(items, lambda i: i[1], lambda i: i[2])
    assert [(rank, item[0]) for rank, item in order] == [(1, "b"), (2, "a"), (None, "none"),
                                                         (None, "up")]


@pytest.mark.parametrize("fmt", ["rich", "markdown", "json"])
def test_names_are_plain_text_in_every_format(tmp_path, capsys, fmt):
    """Before: `[bold red]x[/]` was read as markup (or crashed rich) and names reached
    Markdown unescaped."""
    data = make_result(routers=MARKUP_NAMES, models=("$m_1$", "[m2]"))
    out, _ = run_ok(capsys, "results", "show", str(write(tmp_path / "r.json", data)),
                    "--format", fmt)
    if fmt == "json":
        shown = {row["router"] for table in json.loads(out) for row in table["rows"]}
        assert set(MARKUP_NAMES) <= shown
    elif fmt == "markdown":
        assert "&lt;script&gt;" in out and "<script>" not in out
        assert "[bold red]x[/]" in out and r"$\frac{a}{0}$" in out
    else:
        for name in MARKUP_NAMES:
            assert name in out


def test_plot_shows_names_as_written_and_many_routers_apart(tmp_path, monkeypatch):
    """Before: `$x^$` crashed matplotlib's mathtext parser (after eval had finished) and
    the eleventh router reused the first one's colour."""
    import matplotlib.axes

    from routeharness.results.plots import line_styles

    routers = [*MARKUP_NAMES, *(f"r{i}" for i in range(10))]
    labels: list[list[str]] = []
    real = matplotlib.axes.Axes.legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend",
                        lambda self, h, lab, **kw: labels.append(list(lab)) or real(self, h, lab, **kw))
    path = plot_frontiers(typed(make_result(routers=routers)), tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert labels[0][1:1 + len(routers)] == routers  # "_hidden" included, nothing rewritten
    styles = line_styles(len(routers) + 1)
    assert len(set(styles)) == len(styles)
    assert len(set(line_styles(80))) == 80


def test_to_markdown_of_a_record_set_escapes_pipes():
    table = report_tables(typed(make_result(routers=("a|b",))))[0]
    assert "a\\|b" in to_markdown([table])


def test_record_from_dict_accepts_what_evaluate_writes():
    """A run's newer keys (fixed_params, seed_streams, deterministic) are typed, and a
    key this version does not know is kept and written back."""
    data = make_record("knn", 0, fixed_params={"k": 3}, deterministic=True,
                       seed_streams={"grid": 1, "router": 2, "bootstrap": 3}, newer={"x": 1})
    data["metrics"]["auc"] = np.float32(51.5)  # numpy scalars, as metrics may return them
    record = RunRecord.from_dict(data)
    assert record.fixed_params == {"k": 3} and record.key == ("knn", "t", 0)
    assert record.seed_streams.bootstrap == 3 and record.deterministic is True
    assert record.metrics.auc == 51.5 and record.to_dict()["newer"] == {"x": 1}
    assert set(record.to_dict()) == set(data)  # none added, none lost


def test_a_run_without_references_merges_with_one_that_has_them():
    with_oracle = make_result(routers=("a",))
    without = make_result(routers=("b",), oracle=False)
    for pair in ((with_oracle, without), (without, with_oracle)):
        merged = merge_results([("x", typed(pair[0])), ("y", typed(pair[1]))])
        assert merged.tasks["t"].oracle is not None
    other = copy.deepcopy(with_oracle)
    other["records"][0]["router"] = "c"
    other["tasks"]["t"]["oracle"]["auc"] += 1
    with pytest.raises(RouteHarnessError, match="oracle reference row differs"):
        merge_results([("x", typed(with_oracle)), ("y", typed(other))])


def test_a_merge_is_typed_and_records_where_it_came_from():
    """Seeds become the union, the first file's provenance and unknown keys are kept,
    ``merged_from`` names each file."""
    a = make_result(routers=("a",), seeds=(0,))
    a["newer"] = "kept"
    b = make_result(routers=("b",), seeds=(1,))
    merged = merge_results([("x.json", typed(a)), ("y.json", typed(b))])
    assert merged.seeds == [0, 1] and merged.to_dict()["newer"] == "kept"
    assert [m.path for m in merged.merged_from] == ["x.json", "y.json"]
    assert ResultSet.from_dict(merged.to_dict()) == merged


@pytest.mark.parametrize("lambdas, differ", [
    ([0.0, 0.001, 0.0042169650342858224, "inf"], []),  # the last bits of another numpy
    ([0.0, 0.001, 0.00421696503428582, "inf"], []),  # 12 significant digits
    ([0.0, 0.001, 0.0042169651, "inf"], ["lambdas"]),
    ([0.0, 0.001, 0.0042169650342858224], ["lambdas"]),
    ([0.0, 0.001, 0.0042169650342858224, 1e300], ["lambdas"]),
])
def test_recorded_sweeps_compare_within_a_relative_1e9(lambdas, differ):
    """One comparison of recorded lams (merging, --resume and board validation): numpy
    versions differ in the last bits of np.logspace; a real difference still counts."""
    a, b = make_result(), make_result(routers=("c",))
    a["protocol"]["lambdas"] = [0.0, 0.001, 0.004216965034285822, "inf"]
    b["protocol"]["lambdas"] = lambdas
    assert typed(a).incompatibilities(typed(b)) == differ


def test_the_sweep_is_the_same_on_every_numpy():
    """Computed in Python, 12 significant digits: no numpy version in it."""
    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS, lambda_sweep

    assert DEFAULT_LAMBDAS[:3] == (0.0, 0.001, 0.00133352143216)
    assert DEFAULT_LAMBDAS[-2:] == (1000.0, math.inf) and len(DEFAULT_LAMBDAS) == 51
    assert all(float(f"{lam:.12g}") == lam for lam in DEFAULT_LAMBDAS)
    np.testing.assert_allclose(DEFAULT_LAMBDAS[1:-1], np.logspace(-3, 3, 49), rtol=1e-11)
    assert lambda_sweep(1) == (0.0, 0.001, math.inf)


def test_result_and_submission_schemas_describe_the_files():
    """The JSON Schemas docs/schemas/ is generated from."""
    from routeharness.boards.definition import Submission
    from routeharness.common.contract import json_schema

    result = json_schema(ResultSet)
    assert result["properties"]["schema"]["default"] == RESULT_SCHEMA
    assert {"encoder", "protocol", "tasks", "records"} <= set(result["required"])
    assert "metrics" in result["$defs"]["RunRecord"]["properties"]
    assert result["$defs"]["RunRecord"]["description"].startswith("One router x task x seed")
    submission = json_schema(Submission)
    assert set(submission["required"]) == {"schema", "board", "router", "provenance",
                                           "scores", "result", "checksum"}
    assert submission["additionalProperties"] is False
    json.dumps(result), json.dumps(submission)
