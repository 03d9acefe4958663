"""The embedding cache: content-addressed per prompt, every damaged entry rebuilt with a
one-line warning, OS trouble as one line. The cache is pure logic around an encoder, so an
encoder that counts its calls stands in for a model here (the real one: test_encoders)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.embedding.cache import COMPACT_AT, CacheWarning, EmbeddingCache
from routeharness.embedding.embed import embed_task, identical_embeddings

PROMPTS = [f"prompt number {i}: {'why ' * (i % 7)}is the sky blue?" for i in range(40)]


class CountingEncoder:
    """Deterministic vectors from the text (and image bytes); records every input encoded."""

    name = "counting"
    revision = "1"

    def __init__(self, identity: str = "test/counting", dim: int = 8,
                 modalities: frozenset[str] = frozenset({"text"})):
        self.identity, self.dim, self.modalities = identity, dim, modalities
        self.encoded: list[str] = []

    def encode(self, texts, images=None, *, progress=None):
        self.encoded.extend(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            digest = hashlib.sha256(f"{self.identity}\x00{text}".encode())
            if images is not None and images[row] is not None:
                image = images[row]
                digest.update(Path(image).read_bytes() if isinstance(image, str) else image)
            seed = int.from_bytes(digest.digest()[:8], "little")
            out[row] = np.random.default_rng(seed).standard_normal(self.dim)
        if progress is not None:
            progress(len(texts))
        return out


def shard_files(result) -> list[Path]:
    return sorted(result.path.glob("shard-*.npy"))


def sidecars(result) -> list[Path]:
    return sorted(result.path.glob("shard-*.json"))


def embed_warning(cache, encoder, texts, images=None):
    """(result, the CacheWarning messages it raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cache.embed(encoder, texts, images)
    return result, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


# --- content-addressed per prompt ----------------------------------------------------------
def test_resplit_subset_and_reorder_encode_nothing(tmp_path):
    encoder = CountingEncoder()
    whole = EmbeddingCache(tmp_path).embed(encoder, PROMPTS)
    assert whole.n_encoded == 40 and not whole.from_cache
    cache = EmbeddingCache(tmp_path)  # a new process: everything from disk
    by_row = {text: whole.embeddings[i] for i, text in enumerate(PROMPTS)}
    for chunk in (PROMPTS[::3], PROMPTS[1::3], PROMPTS[::-1], PROMPTS[5:9]):
        result = cache.embed(encoder, chunk)
        assert result.from_cache and result.n_encoded == 0 and result.n_cached == len(chunk)
        assert np.array_equal(result.embeddings, np.stack([by_row[t] for t in chunk]))
    assert len(encoder.encoded) == 40


def test_added_rows_encode_only_the_new_prompts(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    cache.embed(encoder, PROMPTS[:30])
    result = EmbeddingCache(tmp_path).embed(encoder, PROMPTS)
    assert encoder.encoded == PROMPTS[:30] + PROMPTS[30:]
    assert (result.n_encoded, result.n_cached) == (10, 30) and not result.from_cache
    assert np.array_equal(result.embeddings[:30], cache.embed(encoder, PROMPTS[:30]).embeddings)


def test_repeated_inputs_are_encoded_once_and_progress_counts_every_row(tmp_path):
    encoder = CountingEncoder()
    done = []
    result = EmbeddingCache(tmp_path).embed(encoder, ["a", "b", "a", "a"], progress=done.append)
    assert encoder.encoded == ["a", "b"] and sum(done) == 4
    assert np.array_equal(result.embeddings[0], result.embeddings[3])


def test_another_encoder_or_revision_never_shares_entries(tmp_path):
    first, other = CountingEncoder("test/a"), CountingEncoder("test/b")
    cache = EmbeddingCache(tmp_path)
    cache.embed(first, PROMPTS[:5])
    assert cache.embed(other, PROMPTS[:5]).n_encoded == 5
    newer = CountingEncoder("test/a")
    newer.revision = "2"
    assert cache.embed(newer, PROMPTS[:5]).n_encoded == 5


def test_images_are_keyed_by_content(tmp_path):
    encoder = CountingEncoder(modalities=frozenset({"text", "image"}))
    picture = tmp_path / "a.png"
    picture.write_bytes(b"\x89PNG fake pixels")
    cache = EmbeddingCache(tmp_path / "cache")
    cache.embed(encoder, ["q", "q", "q"], [str(picture), b"other pixels", None])
    assert len(encoder.encoded) == 3  # one text, three different images: three inputs
    # the same bytes by another route (a copy elsewhere, raw bytes, a datasets dict)
    copy = tmp_path / "copy.png"
    shutil.copy(picture, copy)
    again = cache.embed(encoder, ["q", "q", "q"],
                        [str(copy), {"bytes": b"other pixels", "path": None}, None])
    assert again.from_cache and len(encoder.encoded) == 3
    # a text-only encoder keys the text alone: images make no difference to it
    text_only = CountingEncoder()
    cache.embed(text_only, ["q"], [str(picture)])
    assert cache.embed(text_only, ["q"]).from_cache


def test_unreadable_image_is_one_line(tmp_path):
    encoder = CountingEncoder(modalities=frozenset({"text", "image"}))
    with pytest.raises(RouteHarnessError, match=r"cannot read image .*missing\.png"):
        EmbeddingCache(tmp_path).embed(encoder, ["q"], [str(tmp_path / "missing.png")])


def test_embed_task_counts_prompts_and_a_resplit_task_is_all_cached(tmp_path,
                                                                     routerbench_embedded):
    from routeharness.data.dataset import RoutingTask

    task = routerbench_embedded
    encoder = CountingEncoder()
    first = embed_task(task, encoder, EmbeddingCache(tmp_path), Reporter())
    n = sum(data.n for data in task.splits.values())
    assert (first.encoded, first.cached) == (n, 0)  # rows computed, counted per row
    assert len(encoder.encoded) == len(set(encoder.encoded))  # each distinct prompt once
    old = task.splits
    resplit = RoutingTask(task.name, task.version, {
        "train": old["test"], "validation": old["train"].subset(np.arange(50)),
        "test": old["validation"]}, task.source)
    calls = len(encoder.encoded)
    again = embed_task(resplit, encoder, EmbeddingCache(tmp_path), Reporter())
    assert (again.encoded, len(encoder.encoded) - calls) == (0, 0)
    assert again.cached == sum(data.n for data in resplit.splits.values())
    assert np.array_equal(again.X["train"], first.X["test"])


# --- damaged entries: detected, warned in one line naming the file, rebuilt ---------------
def two_shards(tmp_path, encoder=None):
    encoder = encoder or CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    a = cache.embed(encoder, PROMPTS[:10])
    b = cache.embed(encoder, PROMPTS[10:20])
    return encoder, a, b


def assert_rebuilt(tmp_path, encoder, reference, texts=PROMPTS[:20], damaged=None):
    before = len(encoder.encoded)
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, texts)
    assert len(messages) >= 1 and all("\n" not in m for m in messages), messages
    if damaged is not None:
        assert any(str(damaged) in m for m in messages), messages
    assert len(encoder.encoded) > before  # re-encoded, not used
    assert np.array_equal(result.embeddings, reference)
    # rebuilt for good: the next process loads everything without a warning
    again, messages = embed_warning(EmbeddingCache(tmp_path), encoder, texts)
    assert again.from_cache and not messages


def test_swapped_vector_files_are_detected(tmp_path):
    encoder, a, _ = two_shards(tmp_path)
    reference = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:20]).embeddings
    first, second = [p for p in shard_files(a) if ".keys" not in p.name]
    held = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(held)
    assert_rebuilt(tmp_path, encoder, reference)


def test_swapped_key_lists_are_detected(tmp_path):
    encoder, a, _ = two_shards(tmp_path)
    reference = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:20]).embeddings
    keys = sorted(a.path.glob("shard-*.keys.npy"))
    held = keys[0].read_bytes()
    keys[0].write_bytes(keys[1].read_bytes())
    keys[1].write_bytes(held)
    assert_rebuilt(tmp_path, encoder, reference)


def test_shard_copied_from_another_encoder_is_not_used(tmp_path):
    """Same dimension, consistent checksums: only the sidecar's identity tells."""
    other = CountingEncoder("test/other")
    foreign = EmbeddingCache(tmp_path).embed(other, PROMPTS[:10])
    encoder = CountingEncoder()
    mine = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[10:12])
    reference = np.asarray(encoder.encode(PROMPTS[:10]))
    for file in foreign.path.glob("shard-*"):
        shutil.copy(file, mine.path / file.name)
    assert_rebuilt(tmp_path, encoder, reference, PROMPTS[:10], damaged=mine.path)


def test_shard_renamed_under_another_name_is_detected(tmp_path):
    encoder = CountingEncoder()
    a = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    reference = a.embeddings
    sidecar = sidecars(a)[0]
    stem = sidecar.name[:-len(".json")]
    for file in list(a.path.glob(f"{stem}*")):
        file.rename(a.path / file.name.replace(stem, "shard-renamed"))
    assert_rebuilt(tmp_path, encoder, reference, PROMPTS[:10], damaged="shard-renamed.json")


@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar-json", "sidecar-type",
                                    "pickle", "missing-keys", "nan"])
def test_damaged_shard_is_detected_and_rebuilt(tmp_path, damage):
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    sidecar = sidecars(original)[0]
    vectors = sidecar.with_suffix(".npy")
    meta = json.loads(sidecar.read_text())
    if damage == "truncate":
        vectors.write_bytes(vectors.read_bytes()[:100])
    elif damage == "flip":
        raw = bytearray(vectors.read_bytes())
        raw[-5] ^= 0xFF
        vectors.write_bytes(bytes(raw))
    elif damage == "sidecar-json":
        sidecar.write_text("{not json")
    elif damage == "sidecar-type":
        sidecar.write_text(json.dumps({**meta, "count": "10"}))
    elif damage == "pickle":  # an object array loads only through pickle: never
        np.save(vectors, np.array([{"x": 1}] * 10, dtype=object), allow_pickle=True)
    elif damage == "missing-keys":
        sidecar.with_name(sidecar.name.replace(".json", ".keys.npy")).unlink()
    else:
        bad = np.load(vectors)
        bad[0, 0] = np.nan
        np.save(vectors, bad)
        meta["vectors_sha256"] = hashlib.sha256(bad.tobytes()).hexdigest()
        sidecar.write_text(json.dumps(meta))
    named = {"sidecar-json": sidecar, "sidecar-type": sidecar,
             "missing-keys": sidecar.with_name(sidecar.name.replace(".json", ".keys.npy"))}
    assert_rebuilt(tmp_path, encoder, original.embeddings, PROMPTS[:10],
                   damaged=named.get(damage, vectors))


@pytest.mark.parametrize("change, says", [
    ({"colour": "red"}, "its sidecar: unknown key(s) ['colour']"),
    ({"dim": True}, "its sidecar: dim: expected an integer, got true"),
    ({"modalities": "text"}, "its sidecar: modalities: expected a list"),
    ({"identity": None}, "its sidecar: identity: expected a string, got null"),
    ({"keys_sha256": ""}, "its sidecar: keys_sha256: must not be empty"),
])
def test_a_sidecar_its_contract_refuses_is_named_and_the_shard_rebuilt(tmp_path, change,
                                                                      says):
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    sidecar = sidecars(original)[0]
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **change}))
    _, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert len(messages) == 1 and str(sidecar) in messages[0] and says in messages[0], messages
    # rebuilt: the next process reads it without a warning
    again, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert again.from_cache and not messages
    assert np.array_equal(again.embeddings, original.embeddings)


def test_a_cache_written_before_the_contract_loads_unchanged(tmp_path):
    """The sidecar's keys, types and values are the ones cache format 2 always wrote."""
    from routeharness.embedding.cache import CACHE_FORMAT, KEY_DEFINITION

    assert CACHE_FORMAT == 2
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    sidecar = sidecars(original)[0]
    meta = json.loads(sidecar.read_text())
    assert list(meta) == ["encoder", "identity", "revision", "modalities", "format", "shard",
                          "key", "count", "dim", "dtype", "vectors_sha256", "keys_sha256"]
    assert (meta["format"], meta["key"], meta["dtype"]) == (2, KEY_DEFINITION, "float32")
    # as the code before the contract wrote it: json.dumps, indent 1, no final newline
    sidecar.write_text(json.dumps(meta, indent=1))
    again, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert again.from_cache and not messages


def test_importing_the_cache_loads_no_pydantic():
    """``--help`` imports the cache (its warning class): the sidecar's contract waits until
    a shard is read or written."""
    import subprocess
    import sys

    code = ("import sys, routeharness.embedding.cache\n"
            "print('pydantic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_wrong_shape_shard_is_rebuilt_not_handed_to_faiss(tmp_path):
    """A shard of another dimension with a consistent sidecar: the store's other entries
    decide, and the odd one is rebuilt (the old cache returned it and faiss asserted)."""
    encoder, a, _ = two_shards(tmp_path)
    reference = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:25]).embeddings
    newest, = set(sidecars(a)) - {p for p in sidecars(a) if json.loads(p.read_text())["count"]
                                  == 10}
    wide = np.hstack([np.load(newest.with_suffix(".npy")), np.ones((5, 3), np.float32)])
    np.save(newest.with_suffix(".npy"), wide)
    meta = json.loads(newest.read_text())
    newest.write_text(json.dumps({**meta, "dim": 11,
                                  "vectors_sha256": hashlib.sha256(wide.tobytes()).hexdigest()}))
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:25])
    assert np.array_equal(result.embeddings, reference)  # (25, 8): the odd shard re-encoded
    assert result.n_encoded == 5
    assert len(messages) == 1 and "dimension 11" in messages[0]
    assert str(newest.with_suffix(".npy")) in messages[0]


def test_store_of_another_dimension_than_the_encoder_is_rebuilt(tmp_path):
    EmbeddingCache(tmp_path).embed(CountingEncoder(dim=8), PROMPTS[:5])
    wider = CountingEncoder(dim=12)  # same identity and revision, another output
    result, messages = embed_warning(EmbeddingCache(tmp_path), wider, PROMPTS[:6])
    assert result.embeddings.shape == (6, 12) and any("dimension" in m for m in messages)
    assert EmbeddingCache(tmp_path).embed(wider, PROMPTS[:6]).from_cache


@pytest.mark.parametrize("which", [".json", ".npy", ".keys.npy"])
def test_shard_file_that_is_a_directory(tmp_path, which):
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    target = original.path / f"{sidecars(original)[0].name[:-len('.json')]}{which}"
    target.unlink()
    target.mkdir()
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert not result.from_cache and np.array_equal(result.embeddings, original.embeddings)
    assert len(messages) == 1 and target.name in messages[0]


def test_temporary_files_of_a_writer_are_ignored(tmp_path):
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    (original.path / ".tmp-abc.json").write_text("{half written")
    (original.path / ".tmp-def.npy").write_bytes(b"\x93NUMPY")
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert result.from_cache and not messages


def test_many_writes_are_compacted_into_one_shard(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    for i in range(COMPACT_AT + 2):
        result = cache.embed(encoder, PROMPTS[i:i + 1])
    assert len(sidecars(result)) < 4
    again, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:COMPACT_AT + 2])
    assert again.from_cache and not messages


WRITER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from test_cache import CountingEncoder, PROMPTS
    from routeharness.embedding.cache import EmbeddingCache
    start = int(sys.argv[1])
    for round in range(6):
        EmbeddingCache(sys.argv[2]).embed(CountingEncoder(), PROMPTS[start + round:start + round + 20])
""")


def test_concurrent_writers_never_corrupt_the_store(tmp_path):
    script = WRITER.format(tests=str(Path(__file__).parent))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(start), str(tmp_path)],
                                stderr=subprocess.PIPE, text=True) for start in (0, 5, 10)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
        assert "Warning" not in writer.stderr.read()  # no writer saw another's half shard
    encoder = CountingEncoder()
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:35])
    assert result.from_cache and not messages and not encoder.encoded
    assert np.array_equal(result.embeddings, CountingEncoder().encode(PROMPTS[:35]))


# --- OS errors: one line naming the path -------------------------------------------------
def test_cache_path_that_is_a_file_is_one_line(tmp_path):
    file = tmp_path / "results.json"
    file.write_text("{}")
    for root in (file, file / "sub"):
        with pytest.raises(RouteHarnessError, match=f"{file} is not a directory"):
            EmbeddingCache(root)


def test_cache_path_under_a_file_in_the_cli(tmp_path, capsys):
    """--cache-dir FILE/sub (click checks only the last component)."""
    from routeharness.cli._app import main

    file = tmp_path / "cache"
    file.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--router", "knn", "--task", "routerbench", "-q",
              "--cache-dir", str(file / "sub")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert err.startswith("Error: ") and f"{file} is not a directory" in err
    assert len(err.strip().splitlines()) == 1


@contextmanager
def read_only(folder: Path):
    """A folder nobody can write to, root included (chmod does not stop root; the
    immutable attribute does)."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("running as root without chattr: no way to make a folder read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def test_read_only_store_computes_without_storing(tmp_path):
    encoder = CountingEncoder()
    stored = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    with read_only(stored.path):
        cache = EmbeddingCache(tmp_path)
        result, messages = embed_warning(cache, encoder, PROMPTS[:12])
        assert (result.n_cached, result.n_encoded, len(encoder.encoded)) == (10, 2, 12)
        assert len(messages) == 1 and "cannot be written" in messages[0]
        assert str(stored.path) in messages[0]
        # warned once; what was computed is kept for this process
        again, messages = embed_warning(cache, encoder, PROMPTS[:13])
        assert again.n_cached == 12 and not messages
    assert len(sidecars(stored)) == 1 and not list(stored.path.glob(".tmp-*"))


def test_read_only_cache_root_computes_without_storing(tmp_path):
    encoder = CountingEncoder()
    with read_only(tmp_path):
        result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:3])
    assert result.embeddings.shape == (3, 8) and not list(tmp_path.iterdir())
    assert len(messages) == 1 and f"{tmp_path / 'v2'}" in messages[0]


# --- identical embeddings ----------------------------------------------------------------
def test_identical_embeddings_within_and_across_splits():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 16)).astype(np.float32)
    noise = 1e-7 * rng.standard_normal(16).astype(np.float32)  # another batch's float noise
    X = {
        "train": np.stack([base[0], base[1], base[0], base[2], base[0] + noise]),
        "validation": np.stack([base[3], base[3], base[1]]),
        "test": np.stack([base[0], base[4], base[5], base[3]]),
    }
    counts = identical_embeddings(X)
    assert counts["within"] == {"train": 2, "validation": 1, "test": 0}
    assert counts["across"] == {"test-train": 1, "test-validation": 1, "validation-train": 1}
    near = {"train": np.stack([base[0], base[0] * 1.001]), "test": base[1:2]}
    assert identical_embeddings(near) == {"within": {"train": 0, "test": 0},
                                          "across": {"test-train": 0}}


def test_identical_embeddings_of_empty_and_zero_rows():
    assert identical_embeddings({"train": np.zeros((0, 4))})["within"] == {"train": 0}
    zeros = {"train": np.zeros((3, 4)), "test": np.zeros((2, 4))}
    assert identical_embeddings(zeros) == {"within": {"train": 2, "test": 1},
                                           "across": {"test-train": 2}}


# --- hostile #3: an image path that is not a regular file is refused, never read ----------
@pytest.mark.parametrize("make, kind", [
    (lambda p: os.mkfifo(p / "fifo.png") or p / "fifo.png", "a FIFO"),
    (lambda p: Path("/dev/zero"), "a character device"),
    (lambda p: (p / "folder.png").mkdir() or p / "folder.png", "a directory"),
])
def test_image_that_is_not_a_regular_file_is_one_line_not_a_hang(tmp_path, make, kind):
    from routeharness.embedding.cache import image_bytes

    path = make(tmp_path)
    for image in (str(path), path, {"bytes": None, "path": str(path)}):
        with pytest.raises(RouteHarnessError, match=f"{kind}, not a regular file") as info:
            image_bytes(image)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    encoder = CountingEncoder(modalities=frozenset({"text", "image"}))
    with pytest.raises(RouteHarnessError, match=kind):
        EmbeddingCache(tmp_path / "cache").embed(encoder, ["q"], [str(path)])


# --- hostile #6: the encoder's declared dimension decides, never a vote of the shards -----
class DeclaringEncoder(CountingEncoder):
    """A CountingEncoder that declares its dimension (``Encoder.dimension``)."""

    @property
    def dimension(self):
        return self.dim


def forge_dimension(sidecar: Path, dim: int) -> None:
    """Cut or widen a shard's vectors to ``dim`` and recompute its sidecar: consistent."""
    vectors = np.load(sidecar.with_suffix(".npy"))
    forged = np.ascontiguousarray(np.resize(vectors, (len(vectors), dim)), dtype=np.float32)
    np.save(sidecar.with_suffix(".npy"), forged)
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "dim": dim,
                                   "vectors_sha256": hashlib.sha256(forged.tobytes()).hexdigest()}))


def test_only_shard_of_another_dimension_is_not_served_when_nothing_is_encoded(tmp_path):
    encoder = DeclaringEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:16])
    forge_dimension(sidecars(original)[0], 10)
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:16])
    assert result.embeddings.shape == (16, 8) and result.n_encoded == 16
    assert np.array_equal(result.embeddings, original.embeddings)
    assert len(messages) == 1 and "dimension 10 differs from the encoder's dimension 8" \
        in messages[0]
    assert EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:16]).from_cache


def test_good_shard_is_kept_when_a_forged_one_has_more_rows(tmp_path):
    encoder = DeclaringEncoder()
    cache = EmbeddingCache(tmp_path)
    good = cache.embed(encoder, PROMPTS[:5])
    bad = cache.embed(encoder, PROMPTS[5:25])
    forged, = [p for p in sidecars(bad) if json.loads(p.read_text())["count"] == 20]
    forge_dimension(forged, 10)  # 20 rows of dim 10 outnumber 5 rows of dim 8
    before = len(encoder.encoded)
    result, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:25])
    assert encoder.encoded[before:] == PROMPTS[5:25]  # the good shard's 5 were loaded
    assert np.array_equal(result.embeddings[:5], good.embeddings)
    assert len(messages) == 1 and str(forged.with_suffix(".npy")) in messages[0]


def test_encoder_returning_another_dimension_than_it_declares_is_an_error(tmp_path):
    class Liar(DeclaringEncoder):
        dimension = 5

    with pytest.raises(RouteHarnessError, match="dimension 8 but declares dimension 5"):
        EmbeddingCache(tmp_path).embed(Liar(), PROMPTS[:3])


def test_vector_warning_says_what_differs(tmp_path):
    encoder = CountingEncoder()
    original = EmbeddingCache(tmp_path).embed(encoder, PROMPTS[:10])
    vectors = sidecars(original)[0].with_suffix(".npy")
    np.save(vectors, np.load(vectors) + 1)  # same shape and dtype, other content
    _, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert len(messages) == 1 and "do not match the sha256" in messages[0]
    assert "float32 (10, 8)" not in messages[0]
    vectors = sidecars(original)[0].with_suffix(".npy")  # the rebuilt shard
    np.save(vectors, np.load(vectors)[:, :4])
    _, messages = embed_warning(EmbeddingCache(tmp_path), encoder, PROMPTS[:10])
    assert len(messages) == 1 and "are float32 (10, 4), not the float32 (10, 8)" in messages[0]


# --- seeds: read-only stores a task ships ----------------------------------------------------
def make_seed(root: Path, encoder, prompts) -> Path:
    """A seed in the cache's layout, written by the cache itself; the folder of its store."""
    return EmbeddingCache(root).embed(encoder, prompts).path


def seeded_embed(cache, encoder, texts, seed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cache.embed(encoder, texts, seeds=[seed])
    return result, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def test_a_seed_serves_its_prompts_and_only_the_rest_is_encoded(tmp_path):
    seed_store = make_seed(tmp_path / "seed", CountingEncoder(), PROMPTS[:30])
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache")
    result, caught = seeded_embed(cache, encoder, PROMPTS, tmp_path / "seed")
    assert caught == []
    assert encoder.encoded == PROMPTS[30:]  # the seed's 30 never reach the encoder
    assert (result.n_encoded, result.n_cached, result.n_seeded) == (10, 30, 30)
    assert np.array_equal(result.embeddings, CountingEncoder().encode(PROMPTS))
    # seeded vectors are not copied into the user's cache: it holds the 10 encoded ones
    stored = [np.load(p) for p in shard_files(result) if ".keys" not in p.name]
    assert sum(len(v) for v in stored) == 10
    # the seed itself is untouched and a second run encodes nothing
    assert len(list(seed_store.glob("shard-*.json"))) == 1
    again = EmbeddingCache(tmp_path / "cache").embed(CountingEncoder(), PROMPTS,
                                                    seeds=[tmp_path / "seed"])
    assert again.n_encoded == 0 and again.n_seeded == 30


def test_a_seed_is_not_used_for_another_encoder_or_revision(tmp_path):
    make_seed(tmp_path / "seed", CountingEncoder("test/a"), PROMPTS)
    other = CountingEncoder("test/b")
    newer = CountingEncoder("test/a")
    newer.revision = "2"
    for encoder in (other, newer):
        result, caught = seeded_embed(EmbeddingCache(tmp_path / f"c-{encoder.identity[-1]}"
                                                     f"{encoder.revision}"),
                                      encoder, PROMPTS, tmp_path / "seed")
        assert caught == [] and result.n_seeded == 0 and encoder.encoded == PROMPTS


@pytest.mark.parametrize("damage", ["vectors", "keys", "sidecar"])
def test_a_tampered_seed_is_refused_in_one_line_and_its_prompts_encoded(tmp_path, damage):
    seed_store = make_seed(tmp_path / "seed", CountingEncoder(), PROMPTS)
    vectors = next(p for p in seed_store.glob("shard-*.npy") if ".keys" not in p.name)
    target = {"vectors": vectors, "keys": next(seed_store.glob("shard-*.keys.npy")),
              "sidecar": next(seed_store.glob("shard-*.json"))}[damage]
    if damage == "sidecar":  # claims another revision: not this store's
        data = json.loads(target.read_text())
        data["revision"] = "forged"
        target.write_text(json.dumps(data))
    else:
        array = np.load(target)
        array.flat[0] = array.flat[0] + 1
        np.save(target, array, allow_pickle=False)
    before = {p.name: p.read_bytes() for p in seed_store.iterdir()}
    encoder = CountingEncoder()
    result, caught = seeded_embed(EmbeddingCache(tmp_path / "cache"), encoder, PROMPTS,
                                  tmp_path / "seed")
    assert len(caught) == 1 and "\n" not in caught[0], caught
    assert caught[0].startswith(f"embedding seed file {target}:")
    assert "the seed is not used and its prompts are encoded" in caught[0]
    assert encoder.encoded == PROMPTS and result.n_seeded == 0
    assert np.array_equal(result.embeddings, CountingEncoder().encode(PROMPTS))
    # a seed is read-only: refused, never deleted or rewritten
    assert {p.name: p.read_bytes() for p in seed_store.iterdir()} == before


def pack_seed(store: Path) -> Path:
    """The seed's vectors rewritten in the packed form a shipped seed uses; its file."""
    from routeharness.embedding.cache import pack_vectors

    sidecar = next(store.glob("shard-*.json"))
    npy = sidecar.with_suffix(".npy")
    packed = sidecar.with_suffix(".vectors.zlib")
    packed.write_bytes(pack_vectors(np.load(npy)))
    npy.unlink()
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "vectors_file": "float32-shuffled-zlib"}))
    return packed


def test_a_packed_seed_serves_the_same_vectors(tmp_path):
    pack_seed(make_seed(tmp_path / "seed", CountingEncoder(), PROMPTS[:30]))
    encoder = CountingEncoder()
    result, caught = seeded_embed(EmbeddingCache(tmp_path / "cache"), encoder, PROMPTS,
                                  tmp_path / "seed")
    assert caught == [] and encoder.encoded == PROMPTS[30:] and result.n_seeded == 30
    assert np.array_equal(result.embeddings, CountingEncoder().encode(PROMPTS))


@pytest.mark.parametrize("damage", ["flipped", "truncated", "longer", "not zlib"])
def test_a_damaged_packed_seed_is_refused_in_one_line(tmp_path, damage):
    import zlib

    packed = pack_seed(make_seed(tmp_path / "seed", CountingEncoder(), PROMPTS))
    blob = packed.read_bytes()
    raw = zlib.decompress(blob)
    packed.write_bytes({"flipped": zlib.compress(bytes([raw[0] ^ 1]) + raw[1:]),
                        "truncated": blob[:len(blob) // 2],
                        "longer": zlib.compress(raw + bytes(10**6)),  # never inflated whole
                        "not zlib": b"plain bytes"}[damage])
    encoder = CountingEncoder()
    result, caught = seeded_embed(EmbeddingCache(tmp_path / "cache"), encoder, PROMPTS,
                                  tmp_path / "seed")
    assert len(caught) == 1 and "\n" not in caught[0], caught
    assert caught[0].startswith(f"embedding seed file {packed}:")
    assert encoder.encoded == PROMPTS and result.n_seeded == 0


def test_embed_task_passes_the_tasks_seeds_and_says_so(tmp_path, routerbench_embedded):
    from dataclasses import replace

    task = routerbench_embedded.restrict_to_group("mbpp")
    texts = [t for data in task.splits.values() for t in data.texts_to_embed()]
    make_seed(tmp_path / "seed", CountingEncoder(), texts)
    task = replace(task, embedding_seeds=(str(tmp_path / "seed"),))
    encoder = CountingEncoder()
    embedded = embed_task(task, encoder, EmbeddingCache(tmp_path / "cache"), Reporter())
    assert encoder.encoded == [] and embedded.encoded == 0
    assert any("read from the copy shipped with the task" in note for note in embedded.notes)
    assert routerbench_embedded.restrict_to_group("mbpp").embedding_seeds == \
        routerbench_embedded.embedding_seeds != ()  # the loader sets it; a group keeps it
