"""``routeharness update``: new outcomes added to a saved kNN router without retraining
are the same as fitting kNN on the extended table; a new model's missing cells stay
missing; nothing is overwritten; parametric routers are told to refit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import DataError, RouteHarnessError


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from routeharness.cli._app import main

    out = tmp_path_factory.mktemp("maintain") / "synth"
    try:
        main(["data", "synth", str(out), "--train", "240", "--validation", "80", "--test",
              "80", "--models", "4", "--clusters", "5", "--dim", "12", "--locality", "0.8"])
    except SystemExit as exc:
        assert not exc.code
    return out


def _write(path: Path, data, rows, models, *, vectors: bool = True) -> Path:
    """Rows of a RoutingData as a CSV of new outcomes (only ``models``' columns)."""
    names = data.model_names
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header = ["id", "prompt", "group"] + [f"{k}:{m}" for m in models
                                              for k in ("score", "cost")]
        writer.writerow(header + (["embedding"] if vectors else []))
        for i in rows:
            cells = [data.ids[i], data.prompts[i], data.groups[i]]
            for m in models:
                j = names.index(m)
                s, c = data.scores[i, j], data.costs[i, j]
                cells += ["" if np.isnan(s) else s, "" if np.isnan(c) else c]
            if vectors:
                cells.append(json.dumps(data.embeddings[i].tolist()))
            writer.writerow(cells)
    return path


def _fit_half(synth: Path, tmp_path: Path, keep_models=None,
              router: str = "knn:k=10,weighting=distance") -> tuple[Path, object]:
    """kNN fitted on the first half of train (and, optionally, a subset of the models)."""
    from dataclasses import replace

    from routeharness.data.readers import load_path, write_task
    from routeharness.deploy import saved

    task = load_path(synth)
    train = task.splits["train"]
    splits = dict(task.splits, train=train.subset(np.arange(train.n // 2)))
    if keep_models is not None:
        cols = [train.model_names.index(m) for m in keep_models]
        splits = {s: replace(d, scores=d.scores[:, cols], costs=d.costs[:, cols],
                             models=[d.models[j] for j in cols]) for s, d in splits.items()}
    small = tmp_path / "half"
    write_task(replace(task, splits=splits), small)
    folder = tmp_path / "router"
    saved.save(saved.fit(router, str(small), encoder="precomputed", tune=False), folder)
    return folder, task


def test_an_update_of_an_ivf_router_keeps_the_new_tables_index(synth, tmp_path):
    """The index kept in the folder is the extended table's (not the old one): the
    updated router loads it and routes as ivf fitted on all the prompts."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update
    from routeharness.routers.state import INDEX_FILE

    spec = "knn:k=10,weighting=distance,index=ivf"
    folder, task = _fit_half(synth, tmp_path, router=spec)
    before = (folder / INDEX_FILE).read_bytes()
    train = task.splits["train"]
    update(folder, _write(tmp_path / "new.csv", train, range(train.n // 2, train.n),
                          train.model_names))
    assert (folder / INDEX_FILE).read_bytes() != before
    updated = saved.load(folder)
    assert updated.router.index_.ntotal == train.n
    full = saved.fit(spec, str(synth), encoder="precomputed", tune=False)
    test = task.splits["test"]
    for lam in (0.0, 1.0):
        np.testing.assert_array_equal(
            updated.route_vectors(test.embeddings, lam).scores,
            full.route_vectors(test.embeddings, lam).scores)


def test_new_prompts_give_the_routes_of_a_fit_on_all_of_them(synth, tmp_path):
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    folder, task = _fit_half(synth, tmp_path)
    train = task.splits["train"]
    new = _write(tmp_path / "new.csv", train, range(train.n // 2, train.n), train.model_names)
    report = update(folder, new)
    assert report.new_prompts == train.n - train.n // 2 and report.new_models == []
    updated = saved.load(folder)
    assert updated.manifest.training.n_train == train.n
    assert updated.manifest.updates[0].new_prompts == report.new_prompts
    full = saved.fit("knn:k=10,weighting=distance", str(synth), encoder="precomputed",
                     tune=False)
    test = task.splits["test"]
    # costs stay in the units of the fit (its cost scale): predictions in USD agree
    got, want = updated.route_vectors(test.embeddings, 0.0), full.route_vectors(test.embeddings,
                                                                                 0.0)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_allclose(got.costs_usd, want.costs_usd, rtol=1e-12)
    np.testing.assert_array_equal(got.choices, want.choices)
    ratio = full.cost_scale / updated.cost_scale
    for lam in (0.3, 3.0):  # the same trade-off in USD
        np.testing.assert_array_equal(updated.route_vectors(test.embeddings, lam).choices,
                                      full.route_vectors(test.embeddings, lam * ratio).choices)


def test_a_new_model_on_some_prompts_is_added_with_its_other_cells_missing(synth, tmp_path):
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    names = [f"m{j}" for j in range(4)]
    folder, task = _fit_half(synth, tmp_path, keep_models=names[:3])
    train = task.splits["train"]
    some = range(0, train.n // 2, 4)  # a quarter of the prompts the router knows
    new = _write(tmp_path / "m3.csv", train, some, ["m3"], vectors=False)
    report = update(folder, new)
    assert report.new_models == ["m3"] and report.new_prompts == 0
    assert report.filled_cells == len(some)
    updated = saved.load(folder)
    assert [m.name for m in updated.models] == names
    scores, costs = updated.router.outcome_table()
    assert scores.shape == costs.shape == (train.n // 2, 4)
    assert np.isnan(scores[:, 3]).sum() == train.n // 2 - len(some)  # never filled with 0
    np.testing.assert_allclose(scores[list(some), 3], train.scores[list(some), 3])
    # the router may now choose the new model
    choices = updated.route_vectors(task.splits["test"].embeddings, 0.0).choices
    assert choices.max() <= 3
    # the same cells again: an update never overwrites an outcome
    with pytest.raises(DataError, match="already has an outcome for model 'm3'"):
        update(folder, new)
    assert saved.load(folder).manifest.training.n_train == train.n // 2  # untouched


def test_parametric_routers_are_told_to_refit(synth, tmp_path):
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    folder = tmp_path / "linear"
    saved.save(saved.fit("linear", str(synth), encoder="precomputed", tune=False), folder)
    new = _write(tmp_path / "x.csv", _train(synth), range(3), ["m0"])
    with pytest.raises(RouteHarnessError, match="need a refit"):
        update(folder, new)


def _train(synth: Path):
    from routeharness.data.readers import load_path

    return load_path(synth).splits["train"]


def test_the_cli_updates_and_bad_files_are_one_line(synth, tmp_path, cli):
    folder, task = _fit_half(synth, tmp_path)
    train = task.splits["train"]
    new = _write(tmp_path / "new.csv", train, range(train.n // 2, train.n // 2 + 10),
                 train.model_names)
    done = cli("update", str(folder), str(new))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "10 new prompt(s)" in done.stderr
    bad = tmp_path / "bad.csv"  # a score of 3 on the first row: scores are in [0, 1]
    lines = new.read_text("utf-8").splitlines()
    cells = next(csv.reader([lines[1]]))
    cells[3] = "3"
    with bad.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([next(csv.reader([lines[0]])), cells])
    before = (folder / "manifest.json").read_bytes()
    done = cli("update", str(folder), str(bad))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
    assert str(bad) in done.stderr
    assert (folder / "manifest.json").read_bytes() == before  # nothing half-written


def _half_task(synth: Path, tmp_path: Path, keep_models: list[str]) -> tuple[Path, object]:
    """The first half of synth's train with ``keep_models`` only, as a task folder."""
    from dataclasses import replace

    from routeharness.data.readers import load_path, write_task

    task = load_path(synth)
    train = task.splits["train"]
    cols = [train.model_names.index(m) for m in keep_models]
    splits = dict(task.splits, train=train.subset(np.arange(train.n // 2)))
    splits = {s: replace(d, scores=d.scores[:, cols], costs=d.costs[:, cols],
                         models=[d.models[j] for j in cols]) for s, d in splits.items()}
    small = tmp_path / "half"
    write_task(replace(task, splits=splits), small)
    return small, task


def _cli_fit(cli, small: Path, folder: Path) -> None:
    done = cli("fit", "-r", "knn:k=10", "-t", str(small), "-e", "precomputed", "-o",
               str(folder), "--no-tune", "-q")
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_cli_reports_each_models_coverage_and_warns_on_a_sparse_one(synth, tmp_path,
                                                                          cli):
    """fit, then a new model with outcomes on 5% of the 120 training prompts: the
    summary gives every model's coverage, one warning line names the sparse model;
    more of its outcomes (15%) and the warning goes."""
    from routeharness.deploy import saved

    names = [f"m{j}" for j in range(4)]
    small, task = _half_task(synth, tmp_path, names[:3])
    folder = tmp_path / "router"
    _cli_fit(cli, small, folder)
    train = task.splits["train"]
    done = cli("update", str(folder), str(_write(tmp_path / "m3.csv", train, range(6), ["m3"],
                                                 vectors=False)))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert "coverage (outcomes / training prompts): m0 100.0% (120), m1 100.0% (120), " \
           "m2 100.0% (120), m3 5.0% (6)" in lines
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 1, done.stderr
    assert "too sparse to route on reliably (outcomes on under 10% of the 120 training " \
           "prompts): 'm3' 6 (5.0%)" in warned[0] and str(folder) in warned[0]
    # the router estimates it with the rule (the default prior), recorded in the manifest
    assert saved.load(folder).manifest.params["prior"] == 1.0
    done = cli("update", str(folder), str(_write(tmp_path / "more.csv", train, range(6, 18),
                                                 ["m3"], vectors=False)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "m3 15.0% (18)" in done.stderr and "warning:" not in done.stderr


def test_the_cli_refuses_a_known_id_with_another_text_unless_replace(synth, tmp_path, cli):
    """A known id arriving with another prompt text: one line, non-zero exit, the folder
    as it was; with --replace the row is replaced."""
    from routeharness.deploy import saved
    from routeharness.deploy.saved import text_sha256

    names = [f"m{j}" for j in range(4)]
    small, task = _half_task(synth, tmp_path, names)
    folder = tmp_path / "router"
    _cli_fit(cli, small, folder)
    train = task.splits["train"]
    path = _write(tmp_path / "changed.csv", train, [0], names)
    text = path.read_text("utf-8").replace(train.prompts[0], "an entirely different prompt", 1)
    assert "an entirely different prompt" in text
    path.write_text(text, "utf-8")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    done = cli("update", str(folder), str(path))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"prompt {train.ids[0]!r} is known to this router with another prompt" in \
        done.stderr and "--replace" in done.stderr and str(path) in done.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written
    done = cli("update", str(folder), str(path), "--replace")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 prompt(s) replaced" in done.stderr
    rows = saved.load(folder).rows
    assert rows.prompt_sha256[0] == text_sha256("an entirely different prompt")


def test_a_router_saved_before_prior_existed_loads_with_the_rule_off(synth, tmp_path):
    """``params_added``: a kNN folder whose manifest has no ``prior`` (saved before the
    rule) is restored with prior 0, the behaviour it was saved with."""
    from routeharness.deploy import saved
    from routeharness.deploy.saved import MANIFEST, manifest_checksum

    folder, _ = _fit_half(synth, tmp_path)
    data = json.loads((folder / MANIFEST).read_text("utf-8"))
    assert data["params"].pop("prior") == 1.0
    data["checksum"] = manifest_checksum(data)
    (folder / MANIFEST).write_text(json.dumps(data), "utf-8")
    assert saved.load(folder).router.prior == 0.0
