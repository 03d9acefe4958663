"""A saved kNN router keeps its approximate search index (ivf, hnsw) as faiss's bytes in
``index.safetensors``, hashed in the manifest and checked against the sha256 and vectors
its state records: loading reads it back instead of building it, routes exactly as the
fitted router, and refuses a changed or forged index in one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.routers.state import INDEX_FILE, VALUES_FILE


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    from routeharness.cli._app import main

    out = tmp_path_factory.mktemp("saved-index") / "synth"
    try:
        main(["data", "synth", str(out), "--train", "400", "--validation", "80", "--test",
              "80", "--models", "4", "--clusters", "5", "--dim", "12", "--locality", "0.8"])
    except SystemExit as exc:
        assert not exc.code
    return str(out)


def _save(kind: str, synth: str, folder: Path) -> Path:
    from routeharness.deploy import saved

    _save.fitted = saved.fit(f"knn:index={kind}", synth, encoder="precomputed", tune=False)
    saved.save(_save.fitted, folder)
    return folder


def _test_vectors(synth: str) -> np.ndarray:
    from routeharness.data.tasks import load_task

    return load_task(synth).splits["test"].embeddings


def _rewrite(folder: Path, name: str, blob: bytes | None) -> None:
    """``name`` replaced by ``blob`` (None: removed) and the manifest made to agree: its
    hash of the file and its checksum recomputed (what a forger can do)."""
    from routeharness.deploy.saved import manifest_checksum

    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    if blob is None:
        (folder / name).unlink()
        del manifest["state"][name]
    else:
        (folder / name).write_bytes(blob)
        manifest["state"][name] = hashlib.sha256(blob).hexdigest()
    manifest["checksum"] = manifest_checksum(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_saved_approximate_index_is_loaded_not_built(kind, synth, tmp_path, monkeypatch):
    import routeharness_knn.search as search

    from routeharness.deploy import saved

    folder = _save(kind, synth, tmp_path / kind)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["index.safetensors", "manifest.json", "state.json", "state.safetensors",
                     "train_ids.json"]
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["state"][INDEX_FILE] == \
        hashlib.sha256((folder / INDEX_FILE).read_bytes()).hexdigest()
    fitted = _save.fitted.router  # the router fit built, its index in memory
    X = _test_vectors(synth)
    lams = np.array([0.0, 0.3, 1.0, 10.0])
    expected = fitted.route_sweep(X, lams)

    def no_build(*args, **kwargs):
        raise AssertionError("the saved index was built again")

    search.clear_index_cache()
    monkeypatch.setattr(search, "build_index", no_build)
    loaded = saved.load(folder)
    assert type(loaded.router.index_).__name__ == {"ivf": "IndexIVFFlat",
                                                   "hnsw": "IndexHNSWFlat"}[kind]
    assert loaded.router.index_plan_ == fitted.index_plan_  # nprobe / efSearch as saved
    search.clear_index_cache()
    assert np.array_equal(loaded.router.route_sweep(X, lams), expected)


def test_an_exact_index_keeps_nothing_and_a_folder_without_the_index_builds_it(synth,
                                                                               tmp_path):
    from routeharness.deploy import saved

    flat = _save("flat", synth, tmp_path / "flat")
    assert not (flat / INDEX_FILE).exists()
    assert "index_check_" not in json.loads((flat / VALUES_FILE).read_text("utf-8"))
    # an ivf router saved before indexes were kept (no file, no check): built on load
    folder = _save("ivf", synth, tmp_path / "old")
    X = _test_vectors(synth)
    expected = saved.load(folder).router.route_sweep(X, np.array([0.0, 1.0]))
    values = json.loads((folder / VALUES_FILE).read_text("utf-8"))
    del values["index_check_"]
    _rewrite(folder, VALUES_FILE, json.dumps(values).encode("utf-8"))
    _rewrite(folder, INDEX_FILE, None)
    assert np.array_equal(saved.load(folder).router.route_sweep(X, np.array([0.0, 1.0])),
                          expected)


def test_a_changed_index_file_is_one_line(synth, tmp_path):
    from routeharness.deploy import saved

    folder = _save("ivf", synth, tmp_path / "ivf")
    blob = bytearray((folder / INDEX_FILE).read_bytes())
    blob[-5] ^= 0xFF
    (folder / INDEX_FILE).write_bytes(bytes(blob))
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    message = str(info.value)
    assert message == (f"{folder / INDEX_FILE}: its sha256 is not the one the manifest "
                       "records (the file was changed after it was saved)")


def _index_file(blob: np.ndarray) -> bytes:
    from safetensors.numpy import save

    return save({"index_": np.ascontiguousarray(blob, dtype=np.uint8)})


def test_a_forged_index_with_a_recomputed_manifest_is_refused(synth, tmp_path):
    """The manifest rehashed by a forger: the state's own record of the index (its
    sha256, the vectors it indexes) still refuses it, and a state made to agree with
    bytes that are not a faiss index is refused by the reader, each in one line."""
    from routeharness_knn.router import KNNRouter
    from routeharness_knn.search import vectors_digest

    from routeharness.deploy import saved

    folder = _save("ivf", synth, tmp_path / "ivf")
    X = np.random.default_rng(3).standard_normal((400, 12)).astype(np.float32)
    other = KNNRouter(k=10, index="ivf").fit(X, _outcomes(400))  # same shape, other table
    _rewrite(folder, INDEX_FILE, _index_file(other.get_state().indexes["index_"]))
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    assert str(info.value) == (
        f"{folder / INDEX_FILE}: KNNRouter: the saved search index is not the one whose "
        "sha256 the state's 'index_check_' records (changed after it was saved); refit")
    # the check made to agree with the other table's index: built from other vectors
    values = json.loads((folder / VALUES_FILE).read_text("utf-8"))
    values["index_check_"] = other.get_state().values["index_check_"]
    _rewrite(folder, VALUES_FILE, json.dumps(values).encode("utf-8"))
    with pytest.raises(RouteHarnessError, match=r"index\.safetensors: KNNRouter: the saved "
                       r"search index was built from other vectors than the state's X_"):
        saved.load(folder)
    # bytes that are not a faiss index, their sha256 recorded as the state's
    junk = np.frombuffer(b"not an index at all" * 10, dtype=np.uint8)
    values["index_check_"]["sha256"] = hashlib.sha256(junk).hexdigest()
    values["index_check_"]["vectors"] = vectors_digest(_state_vectors(folder))
    _rewrite(folder, VALUES_FILE, json.dumps(values).encode("utf-8"))
    _rewrite(folder, INDEX_FILE, _index_file(junk))
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / INDEX_FILE}: KNNRouter: the saved search index: "
                              "not a faiss index (") and "\n" not in message


def _state_vectors(folder: Path) -> np.ndarray:
    from safetensors.numpy import load

    return load((folder / "state.safetensors").read_bytes())["X_"]


def _outcomes(n: int):
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    return SimpleNamespace(n=n, scores=rng.random((n, 4)), costs=rng.random((n, 4)))


def test_an_index_of_another_kind_or_size_is_refused_by_the_reader():
    from routeharness_knn.router import KNNRouter
    from routeharness_knn.search import deserialise, plan_index

    X = np.random.default_rng(5).standard_normal((300, 8)).astype(np.float32)
    ivf = KNNRouter(k=5, index="ivf").fit(X, _outcomes(300))
    blob = ivf.get_state().indexes["index_"]
    with pytest.raises(ValueError, match="a IndexIVFFlat, not the hnsw index its plan"):
        deserialise(blob, plan_index(300, 5, "hnsw"), 300, 8)
    with pytest.raises(ValueError, match="its rows: 300 where the plan has 301"):
        deserialise(blob, ivf.index_plan_, 301, 8)
    assert deserialise(blob, ivf.index_plan_, 300, 8).nprobe == ivf.index_plan_.nprobe


def test_the_cli_fits_an_hnsw_router_routes_with_its_kept_index_and_refuses_a_changed_one(
        synth, cli, tmp_path):
    """As a user meets it: ``fit`` writes the index, ``route`` (a new process) routes as
    the fitted router, and a changed index file stops ``route`` with one line."""
    from routeharness.data.tasks import load_task

    folder = tmp_path / "hnsw"
    done = cli("fit", "-r", "knn:index=hnsw", "-t", synth, "-e", "precomputed", "--no-tune",
               "-o", str(folder), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (folder / INDEX_FILE).is_file()
    test = load_task(synth).splits["test"]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": test.prompts[i],
                                           "embedding": test.embeddings[i].tolist()}) + "\n"
                               for i in range(20)), encoding="utf-8")
    done = cli("route", str(folder), "--file", str(prompts), "--lam", "0.5", "--format",
               "jsonl")
    assert done.returncode == 0, done.stderr[-2000:]
    from routeharness.deploy import saved

    expected = saved.load(folder).route_vectors(test.embeddings[:20], 0.5).rows()
    assert [json.loads(line)["model"] for line in done.stdout.splitlines()] == \
        [row["model"] for row in expected]
    blob = bytearray((folder / INDEX_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (folder / INDEX_FILE).write_bytes(bytes(blob))
    done = cli("route", str(folder), "--file", str(prompts), "--lam", "0.5")
    assert done.returncode != 0 and done.stdout == ""
    last = done.stderr.strip().splitlines()
    assert len(last) == 1 and str(folder / INDEX_FILE) in last[0]
    assert "its sha256 is not the one the manifest records" in last[0]


def test_an_ivf_recall_target_is_saved_and_a_folder_without_it_loads(synth, tmp_path):
    from routeharness.deploy import saved
    from routeharness.deploy.saved import manifest_checksum

    fitted = saved.fit("knn:index=ivf,recall=0.99", synth, encoder="precomputed", tune=False)
    folder = tmp_path / "ivf-recall"
    saved.save(fitted, folder)
    assert fitted.router.index_plan_.target_recall == 0.99
    loaded = saved.load(folder)
    assert loaded.manifest.params["recall"] == 0.99 and loaded.router.recall == 0.99
    assert loaded.router.index_plan_ == fitted.router.index_plan_
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    for value, error in ((None, None), (1.5, "recall must be a number in (0, 1]")):
        if value is None:  # saved before the parameter existed: the default target
            del manifest["params"]["recall"]
            manifest["fixed_params"].pop("recall", None)
        else:
            manifest["params"]["recall"] = value
        manifest["checksum"] = manifest_checksum(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        if error is None:
            old = saved.load(folder)
            assert old.router.recall is None  # its kept plan still holds the nprobe
            assert old.router.index_plan_.nprobe == fitted.router.index_plan_.nprobe
        else:
            with pytest.raises(RouteHarnessError, match=r"recall must be") as raised:
                saved.load(folder)
            assert "\n" not in str(raised.value)
