"""``routeharness data synth``: a seeded synthetic routing dataset with its own vectors,
written by the canonical writer, that ``eval -e precomputed`` routes on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from routeharness.cli._app import main
from routeharness.data.readers import load_path, validate_path

SMALL = ["--train", "120", "--validation", "40", "--test", "40", "--models", "3",
         "--clusters", "4", "--dim", "8"]


def _synth(capsys, *args: str) -> tuple[int, str, str]:
    """The command in process: (exit code, stdout, stderr)."""
    try:
        main(["data", "synth", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_it_writes_a_valid_dataset_with_one_vector_per_prompt(tmp_path, capsys):
    out = tmp_path / "synth"
    code, stdout, _ = _synth(capsys, str(out), *SMALL, "--locality", "0.7", "--seed", "4")
    assert code == 0 and "--encoder precomputed" in stdout
    assert validate_path(out) == []
    task = load_path(out)
    assert {s: d.n for s, d in task.splits.items()} == {"train": 120, "validation": 40,
                                                        "test": 40}
    assert [m.name for m in task.models] == ["m0", "m1", "m2"]
    for data in task.splits.values():
        assert data.embeddings.shape == (data.n, 8) and data.embeddings.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(data.embeddings, axis=1), 1.0, rtol=1e-5)
        assert set(np.unique(data.scores)) <= {0.0, 1.0}
    assert len(set(task.splits["train"].groups)) == 4
    sidecar = json.loads((out / "routing.json").read_text())
    assert sidecar["source"]["locality"] == 0.7 and sidecar["source"]["seed"] == 4


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(tmp_path, capsys):
    paths = {name: tmp_path / name for name in ("a", "b", "c")}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert _synth(capsys, str(paths[name]), *SMALL, "--graded", "--seed", seed)[0] == 0
    a, b, c = (load_path(paths[name]) for name in ("a", "b", "c"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    np.testing.assert_array_equal(a.splits["test"].embeddings, b.splits["test"].embeddings)
    scores = a.splits["train"].scores
    assert ((scores > 0) & (scores < 1)).any()  # graded: not only 0/1


@pytest.mark.parametrize("args, says", [
    (["--train", "0"], "every split needs at least one prompt"),
    (["--test", "-3"], "every split needs at least one prompt"),
    (["--models", "0"], "needs n_models >= 1"),
    (["--dim", "1"], "dim >= 2"),
    (["--clusters", "0"], "n_clusters >= 1"),
    (["--locality", "1.5"], "locality must be in [0, 1]"),
    (["--locality", "nan"], "locality must be in [0, 1]"),
    (["--seed", "-1"], "seed must be in [0, 2**32)"),
    (["--dim", "100000000"], "is over the limit of"),
])
def test_bad_numbers_are_one_line_and_write_nothing(tmp_path, capsys, args, says):
    out = tmp_path / "never"
    code, _, err = _synth(capsys, str(out), *SMALL, *args)
    assert code == 1 and says in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_existing_non_empty_output_is_refused_and_an_empty_folder_is_used(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    code, _, err = _synth(capsys, str(full), *SMALL)
    assert code == 1 and "exists and is not an empty directory" in err
    assert len(err.strip().splitlines()) == 1 and sorted(p.name for p in full.iterdir()) == [
        "keep.txt"]
    afile = tmp_path / "file"
    afile.write_text("x")
    assert _synth(capsys, str(afile), *SMALL)[0] == 1 and afile.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _synth(capsys, str(empty), *SMALL)[0] == 0 and (empty / "routing.json").is_file()


def test_eval_with_precomputed_vectors_routes_well_through_the_real_cli(tmp_path, cli):
    out, results = tmp_path / "synth", tmp_path / "results.json"
    made = cli("data", "synth", str(out), "--train", "200", "--validation", "50", "--test",
               "50", "--models", "4", "--clusters", "6", "--dim", "16", "--locality", "0.8",
               "--seed", "2")
    assert made.returncode == 0, made.stderr
    ran = cli("eval", "-r", "knn", "-t", str(out), "-e", "precomputed", "-q", "-o",
              str(results), "--cache-dir", str(tmp_path / "cache"),
              env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert ran.returncode == 0, ran.stderr
    saved = json.loads(results.read_text())
    auc = {r["router"]: r["metrics"]["auc"] for r in saved["records"]}
    oracle = saved["tasks"]["synthetic"]["oracle"]["auc"]
    print(f"knn {auc['knn']:.2f}, random {auc['random']:.2f}, oracle {oracle:.2f}")
    assert auc["knn"] > auc["random"] + 20 and auc["knn"] > auc["best-single"]
    assert saved["encoder"]["name"] == "precomputed"
    assert saved["tasks"]["synthetic"]["embeddings"]["encoded"] == 0
