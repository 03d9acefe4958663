"""``fit --store-encoder``: the text encoder exported to ONNX and kept in the router
folder (hashed in the manifest); ``route`` then runs on onnxruntime without importing
torch, transformers or sentence-transformers, with the routes of the torch encoder on
the task's test prompts (or the measured difference recorded and said once)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HAS_EXPORT = all(importlib.util.find_spec(m) is not None
                 for m in ("onnxruntime", "onnx", "tokenizers"))
pytestmark = pytest.mark.skipif(not HAS_EXPORT, reason="the export needs onnxruntime and "
                                "onnx (pip install 'routeharness[onnx]')")
HEAVY = ("torch", "transformers", "sentence_transformers")
PROMPT = "Write a python function to reverse a list."


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """kNN fitted on RouterBench's MBPP group by the real CLI, its MiniLM stored."""
    from conftest import run_cli

    folder = tmp_path_factory.mktemp("stored") / "knn"
    done = run_cli("fit", "-r", "knn", "-t", "routerbench:mbpp", "--store-encoder", "-o",
                   str(folder), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stored the encoder as ONNX: on 128 test prompts" in done.stderr
    return folder


def test_the_manifest_hashes_the_stored_encoder_and_records_its_check(stored):
    import hashlib

    manifest = json.loads((stored / "manifest.json").read_text("utf-8"))
    for name in ("encoder.onnx", "encoder_tokenizer.json"):
        assert manifest["state"][name] == hashlib.sha256((stored / name).read_bytes()).hexdigest()
    about = manifest["stored_encoder"]
    assert about["format"] == "onnx" and about["lower_case"] is False
    check = about["check"]
    from routeharness.evaluation.protocol import Protocol

    assert check["prompts"] == 128 and check["routes"] == 128 * len(Protocol().lambdas)
    assert check["max_abs_diff"] < 1e-4 and check["min_cosine"] > 0.9999
    assert check["routes_differing"] == 0, check


def test_stored_encoder_routes_as_the_torch_encoder(stored, minilm):
    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.embedding.onnx import OnnxEncoder

    router = saved.load(stored)
    encoder = router.encoder()
    assert isinstance(encoder, OnnxEncoder)
    assert (encoder.identity, encoder.revision) == (minilm.identity, minilm.revision)
    texts = load_task("routerbench:mbpp").splits["test"].texts_to_embed()
    ours, theirs = encoder.encode(texts), minilm.encode(texts)
    assert ours.shape == theirs.shape == (128, 384)
    assert float(np.max(np.abs(ours - theirs))) < 1e-4
    for lam in (0.0, 0.5, 2.0, 100.0):
        np.testing.assert_array_equal(router.route_vectors(ours, lam).choices,
                                      router.route_vectors(theirs, lam).choices)


#: runs ``routeharness route`` in this process, then writes the names of every module it
#: loaded to the file named by argv[1]
ROUTE_AND_LIST = """
import json, runpy, sys
out = sys.argv.pop(1)
sys.argv = ["routeharness", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("routeharness", run_name="__main__")
except SystemExit as exc:
    code = exc.code
with open(out, "w") as handle:
    json.dump(sorted(sys.modules), handle)
sys.exit(code)
"""


def test_route_with_a_stored_encoder_never_imports_torch(stored, tmp_path):
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", ROUTE_AND_LIST, str(listing), "route",
                           str(stored), PROMPT, "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (route,) = json.loads(done.stdout)
    assert route["model"] and route["prompt"] == PROMPT
    modules = set(json.loads(listing.read_text()))
    assert "onnxruntime" in modules and "tokenizers" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], loaded[:10]


def test_a_tampered_encoder_file_is_refused_in_one_line(stored, tmp_path, cli):
    copy = tmp_path / "copy"
    shutil.copytree(stored, copy)
    blob = bytearray((copy / "encoder.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (copy / "encoder.onnx").write_bytes(bytes(blob))
    done = cli("route", str(copy), PROMPT)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"Error: {copy / 'encoder.onnx'}: its sha256 is not the one the manifest records "
        "(the file was changed after it was saved)"]
    shutil.copy(stored / "encoder.onnx", copy / "encoder.onnx")
    (copy / "encoder_tokenizer.json").unlink()
    done = cli("route", str(copy), PROMPT)
    assert done.stderr.strip().splitlines() == [
        f"Error: {copy / 'encoder_tokenizer.json'}: missing (the manifest records its sha256)"]


def test_a_garbled_encoder_is_refused_by_its_hash_before_its_session_fails(stored, tmp_path,
                                                                          cli):
    """A file that onnxruntime cannot even parse is refused by its sha256 (checked on
    load), before any session is built."""
    copy = tmp_path / "copy"
    shutil.copytree(stored, copy)
    (copy / "encoder.onnx").write_bytes(b"not an onnx graph")
    done = cli("route", str(copy), PROMPT)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"Error: {copy / 'encoder.onnx'}: its sha256 is not the one the manifest records "
        "(the file was changed after it was saved)"]


def test_a_recorded_difference_is_said_once(stored, tmp_path, cli):
    from routeharness.deploy.saved import manifest_checksum

    copy = tmp_path / "differs"
    shutil.copytree(stored, copy)
    data = json.loads((copy / "manifest.json").read_text("utf-8"))
    data["stored_encoder"]["check"]["routes_differing"] = 3
    data["checksum"] = manifest_checksum(data)
    (copy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    lines = [json.dumps({"prompt": p}) for p in (PROMPT, "What is 2 + 2?", "Hello")]
    done = subprocess.run([sys.executable, "-m", "routeharness", "route", str(copy),
                           "--format", "jsonl"], input="\n".join(lines), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.splitlines()) == 3
    notes = [line for line in done.stderr.splitlines() if "stored encoder" in line]
    assert len(notes) == 1 and "routes 3 of" in notes[0] and "stored_encoder.check" in notes[0]


def test_a_manifest_whose_stored_encoder_lost_its_hashes_is_refused(stored, tmp_path):
    from routeharness.common.errors import RouteHarnessError
    from routeharness.deploy import saved

    copy = tmp_path / "nohash"
    shutil.copytree(stored, copy)
    data = json.loads((copy / "manifest.json").read_text("utf-8"))
    del data["state"]["encoder.onnx"]
    data["checksum"] = saved.manifest_checksum(data)
    (copy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RouteHarnessError, match="a stored encoder needs the hashes of"):
        saved.load(copy)


def test_store_encoder_refuses_an_encoder_it_cannot_store(cli, tmp_path):
    out = tmp_path / "x"
    done = cli("fit", "-r", "knn", "-t", "routerbench:mbpp", "-e", "precomputed",
               "--store-encoder", "-o", str(out), "-q")
    assert done.returncode != 0 and not out.exists()
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: --store-encoder: encoder 'precomputed' cannot be stored")


def test_update_keeps_the_stored_encoder_and_never_imports_torch(stored, tmp_path):
    import csv

    copy = tmp_path / "updated"
    shutil.copytree(stored, copy)
    before = json.loads((copy / "manifest.json").read_text("utf-8"))
    models = [m["name"] for m in before["models"]]
    outcomes = tmp_path / "new.csv"
    with open(outcomes, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "group", *[f"score:{m}" for m in models],
                         *[f"cost:{m}" for m in models]])
        for i, text in enumerate(["Reverse a string in Python.", "Sum a list of numbers."]):
            writer.writerow([f"new-{i}", text, "mbpp", *[1.0] * len(models),
                             *[0.001] * len(models)])
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", ROUTE_AND_LIST, str(listing), "update",
                           str(copy), str(outcomes)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 new prompt(s)" in done.stderr
    modules = set(json.loads(listing.read_text()))
    assert "onnxruntime" in modules and not [m for m in modules if m.split(".")[0] in HEAVY]
    after = json.loads((copy / "manifest.json").read_text("utf-8"))
    assert after["training"]["n_train"] == before["training"]["n_train"] + 2
    assert after["stored_encoder"] == before["stored_encoder"]
    for name in ("encoder.onnx", "encoder_tokenizer.json"):
        assert after["state"][name] == before["state"][name]
        assert (copy / name).read_bytes() == (stored / name).read_bytes()


def test_serve_batches_the_stored_encoder_with_the_one_by_one_routes(stored):
    """The real MiniLM export under concurrent /route requests (batches padded to their
    longest prompt) routes every test prompt as one request at a time does."""
    pytest.importorskip("fastapi")
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from routeharness.data.tasks import load_task
    from routeharness.deploy.batching import BatchSettings
    from routeharness.deploy.serve import create_app

    texts = load_task("routerbench:mbpp").splits["test"].prompts[:48]
    apps = {name: create_app(stored, batching=BatchSettings(0.02, size))
            for name, size in (("batched", 16), ("alone", 1))}
    with TestClient(apps["alone"]) as client:
        alone = [client.post("/route", json={"prompts": [t]}).json()["routes"][0]["model"]
                 for t in texts]
    service = apps["batched"].state.service
    with TestClient(apps["batched"]) as client, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda t: client.post("/route", json={"prompts": [t]}),
                                texts))
    assert [a.json()["routes"][0]["model"] for a in answers] == alone
    assert service.batcher.items == len(texts) and service.batcher.calls < len(texts)


def test_calls_hold_similar_lengths_within_the_token_budget(stored):
    """Prompts are tokenized once and run longest first in calls of at most
    ``TOKENS_PER_CALL`` tokens (prompts x the call's longest), cut to the call's longest:
    each vector is its one-by-one vector up to float rounding."""
    from routeharness.deploy import saved
    from routeharness.embedding.onnx import TOKENS_PER_CALL

    encoder = saved.load(stored).encoder(1)
    texts = ["hi", "Write a python function to reverse a list. " * 20,
             "What is the capital of France?", "Sort these numbers: 3 1 2.", "x " * 300]
    alone = np.vstack([encoder.encode([t]) for t in texts])
    shapes = []
    run = encoder._session.run
    encoder._session = type("Spy", (), {"run": lambda self, names, feed: (
        shapes.append(feed["input_ids"].shape), run(names, feed))[1]})()
    together = encoder.encode(texts)
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    assert sum(rows for rows, _ in shapes) == len(texts)
    assert all(rows == 1 or rows * width <= TOKENS_PER_CALL for rows, width in shapes)
    assert [width for _, width in shapes] == sorted((w for _, w in shapes), reverse=True)
    assert shapes[0][1] == 256 and shapes[-1][1] < 16, shapes  # truncated, then cut short


def test_serve_s_encoder_threads_sleep_instead_of_spinning(stored):
    """``serve``'s event loop shares the cores with onnxruntime's intra-op threads, so its
    stored encoder is built with spinning off (benchmarks/route_latency.md)."""
    from routeharness.deploy.serve import Service

    service = Service(stored, None, 0.0)
    options = service.encoder._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_route_without_onnxruntime_says_what_to_install(stored):
    script = ("import sys; sys.modules['onnxruntime'] = None; sys.argv = ['routeharness', "
              f"'route', {str(stored)!r}, 'hello']; from routeharness.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: the stored encoder (encoder.onnx) needs onnxruntime: "
        "pip install 'routeharness[route]'"]
