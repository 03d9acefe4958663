"""The ``lexical`` encoder (TF-IDF + truncated SVD): fitted on training prompts only,
deterministic, an identity per fit (so the cache never mixes fits), one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_protocol import write_dataset

from routeharness.common.errors import RouteHarnessError
from routeharness.embedding.encoders import get_encoder

TRAIN = ["the cat sat on the mat", "a dog ran in the park", "the cat chased the dog",
         "stocks fell on monday", "markets rallied on friday", "bond yields rose again"]


def test_fit_sees_only_the_training_texts_and_is_deterministic():
    encoder = get_encoder("lexical:4")
    fitted = encoder.fit(TRAIN)
    assert "cat" in fitted.vocabulary and "zebra" not in fitted.vocabulary
    X = fitted.encode(["the zebra sat", "markets fell"])
    assert X.shape == (2, 4) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    again = get_encoder("lexical:4").fit(TRAIN)
    assert again.identity == fitted.identity
    assert np.array_equal(again.encode(["markets fell"]), fitted.encode(["markets fell"]))
    other = get_encoder("lexical:4").fit(TRAIN[:-1])
    assert other.identity != fitted.identity
    # close in meaning by shared words: the two cat prompts are nearer than cat and bonds
    a, b, c = fitted.encode(["the cat sat", "the cat chased", "bond yields rose"])
    assert a @ b > a @ c


def test_unfitted_or_misconfigured_lexical_is_one_line():
    with pytest.raises(RouteHarnessError, match="not fitted"):
        get_encoder("lexical").encode(["x"])
    for bad in ("lexical:1", "lexical:abc", "lexical:-3"):
        with pytest.raises(RouteHarnessError, match="integer >= 2"):
            get_encoder(bad)
    with pytest.raises(RouteHarnessError, match="cannot fit"):
        get_encoder("lexical").fit(["", "   "])


def test_embed_task_fits_on_train_only_and_caches_per_fit(tmp_path):
    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task

    path = write_dataset(tmp_path / "d.csv", n=120)
    # row 15 is a test row (write_dataset's split rule): its word is in no training prompt
    path.write_text(path.read_text().replace("g0 prompt number 15,", "g0 zyzzyva number 15,"))
    task = load_task(str(path))
    assert any("zyzzyva" in p for p in task.splits["test"].prompts)
    assert not any("zyzzyva" in p for p in task.splits["train"].prompts)
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_task(task, get_encoder("lexical:8"), cache, Reporter())
    assert first.encoded == sum(d.n for d in task.splits.values())
    assert all(X.shape[1] == 8 for X in first.X.values())
    second = embed_task(task, get_encoder("lexical:8"), cache, Reporter())
    assert second.encoded == 0 and second.cached == first.encoded
    for split in first.X:
        assert np.array_equal(first.X[split], second.X[split])
    fitted = get_encoder("lexical:8").fit(task.splits["train"].texts_to_embed())
    assert "zyzzyva" not in fitted.vocabulary and "number" in fitted.vocabulary
