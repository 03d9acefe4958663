"""The fast paths behind 10^6-prompt tasks give exactly the answers of the plain ones:
the kNN search kept between tuning fits, block-wise normalising and drawing, the one-pass
fingerprint, and the embedding checks that build no matrix."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import routeharness_knn.search as knn_search
from routeharness_knn.router import KNNRouter, KNNVoteRouter, clear_index_cache
from routeharness_knn.search import TIE_MARGIN

import routeharness.data.synth as synth
from routeharness.data.columns import embedding_problems, group_problem, read_embeddings
from routeharness.evaluation.protocol import DEFAULT_LAMBDAS


def _problem(n: int = 600, d: int = 16, m: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[10:20] = X[0]  # duplicates: tied similarities, the prefix must not be trusted there
    scores = (rng.random((n, m)) < 0.5).astype(float)
    scores[rng.random((n, m)) < 0.05] = np.nan  # missing cells
    costs = np.tile(np.linspace(0.1, 1.0, m), (n, 1))
    outcomes = SimpleNamespace(n=n, m=m, scores=scores, costs=costs)
    return X, outcomes, rng.normal(size=(150, d)).astype(np.float32)


@pytest.mark.parametrize("index", ["flat", "ivf"])
@pytest.mark.parametrize("duplicates", [False, True])
def test_tuning_order_routes_as_fresh_searches(index, duplicates):
    """A grid's configurations in order (kept searches, prefixes of one wide search) route
    exactly as each configuration fitted and searched alone; without ties, two searches."""
    X, outcomes, Q = _problem()
    if not duplicates:
        X[10:20] += np.float32(0.01) * np.arange(1, 11, dtype=np.float32)[:, None]
    extra = {"nprobe": 4} if index == "ivf" else {}
    grid = [(k, w) for k in (1, 3, 10, 50, 100) for w in ("uniform", "distance")]
    clear_index_cache()
    kept = [KNNRouter(k=k, weighting=w, index=index, **extra).fit(X, outcomes).predict(Q)
            for k, w in grid]
    searched = sorted(knn_search._LAST_SEARCH["last"][2])  # the k of each search run
    assert searched == [1 + TIE_MARGIN, 100 + TIE_MARGIN] if not duplicates else len(searched) <= 4
    for (k, w), (scores_hat, costs_hat) in zip(grid, kept):
        clear_index_cache()
        alone = KNNRouter(k=k, weighting=w, index=index, **extra).fit(X, outcomes)
        expected = alone.predict(Q)
        assert np.array_equal(scores_hat, expected[0]) and np.array_equal(costs_hat,
                                                                          expected[1])
    clear_index_cache()


def test_duplicate_queries_fall_back_to_a_full_search():
    X, outcomes, _ = _problem()
    Q = np.repeat(X[:1], 5, axis=0)  # every query ties ten training rows
    clear_index_cache()
    routes = [KNNVoteRouter(k=k).fit(X, outcomes).route_sweep(Q, DEFAULT_LAMBDAS)
              for k in (3, 5, 12)]
    for k, got in zip((3, 5, 12), routes):
        clear_index_cache()
        alone = KNNVoteRouter(k=k).fit(X, outcomes).route_sweep(Q, DEFAULT_LAMBDAS)
        assert np.array_equal(got, alone)
    clear_index_cache()


def test_normalise_by_blocks_is_one_pass(monkeypatch):
    X = np.random.default_rng(1).normal(size=(101, 7)).astype(np.float32)
    X[5] = 0.0
    monkeypatch.setattr(knn_search, "_BLOCK", 8)
    expected = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    got = knn_search.normalise(X)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got, expected) and not got[5].any()


def test_fingerprint_is_the_per_text_hash():
    task, X = synth.synthetic_task(30, 5, 5, n_models=3, dim=4, seed=2)
    data = task.splits["train"]
    data.embeddings = X["train"]
    data.prompts[0] = "caf\u00e9 \ud800 zero\u200bwidth"  # a lone surrogate, passed
    data.ids[1] = ""
    digest = hashlib.sha256()
    for text in (*data.ids, "\x00", *data.prompts, "\x00", *map(str, data.groups), "\x00",
                 *data.model_names):
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x1f")
    for values in (data.scores, data.costs):
        digest.update(np.ascontiguousarray(np.nan_to_num(values, nan=-1.0), "<f8").tobytes())
    digest.update(b"embedding\x1f" + np.ascontiguousarray(data.embeddings, "<f4").tobytes())
    assert data.fingerprint() == digest.hexdigest()


def test_synthetic_arrays_are_the_tasks_numbers_in_any_block_size(monkeypatch):
    task, X = synth.synthetic_task(50, 7, 9, n_models=3, dim=6, seed=5, locality=0.5)
    monkeypatch.setattr(synth, "_BLOCK", 4)
    splits, prices = synth.synthetic_arrays(50, 7, 9, n_models=3, dim=6, seed=5,
                                            locality=0.5)
    assert prices.shape == (3,) and splits["train"].to_dict() == {"n": 50, "dim": 6,
                                                                  "models": 3}
    for name, part in splits.items():
        data = task.splits[name]
        assert np.array_equal(part.X, X[name])
        assert np.array_equal(part.scores, data.scores)
        assert np.allclose(part.costs, data.costs, rtol=0, atol=0)
        assert [f"g{c}" for c in part.cluster] == list(data.groups)


def _chunked(rows: list, chunk: int = 3) -> pa.Table:
    kind = pa.list_(pa.float32())
    parts = [pa.array(rows[i:i + chunk], type=kind) for i in range(0, len(rows), chunk)]
    return pa.table({"embedding": pa.chunked_array(parts, type=kind)})


@pytest.mark.parametrize("bad", [None, (4, [1.0, None]), (2, [np.inf, 0.0]),
                                 (7, [np.nan, 1.0]), (5, [1.0]), (8, None), (1, [])])
def test_embedding_checks_without_a_matrix_agree_with_reading(bad):
    rows = [[float(i), -float(i)] for i in range(10)]
    if bad is not None:
        rows[bad[0]] = bad[1]
    table = _chunked(rows)
    matrix, problems = read_embeddings(table)
    assert embedding_problems(table) == problems
    assert (matrix is None) == bool(problems) == (bad is not None)
    if matrix is not None:  # several chunks joined once, writable for the routers
        assert matrix.flags.writeable and np.array_equal(matrix, np.array(rows, np.float32))


def test_group_problems_are_the_same_per_name():
    assert group_problem("g1") is None and group_problem(None) == "missing group"
    assert group_problem("\u200b ") == "missing group"
    assert "leading or trailing whitespace" in group_problem(" g1")
    assert "U+200B" in group_problem("g\u200b1")


@pytest.mark.parametrize("shape", [(40, 1, 1), (40, 10, 20), (30, 100, 20), (20, 100, 1)])
def test_complete_outcomes_average_to_the_same_bits(shape):
    """Without NaN cells the neighbour means skip the NaN masks: the same numbers."""
    from routeharness_knn.router import _KNNBase

    rng = np.random.default_rng(sum(shape))
    n, k, m = shape
    for values in ((rng.random(shape) < 0.5).astype(float), rng.random(shape)):
        for weights in (np.full((n, k), 1.0 / k), rng.dirichlet(np.ones(k), size=n)):
            plain = _KNNBase._weighted_nanmean(values.copy(), weights, np.zeros(m))
            fast = _KNNBase._weighted_nanmean(values.copy(), weights, np.zeros(m), True)
            assert np.array_equal(plain, fast)


def test_a_tie_wider_than_the_search_is_bounded():
    """Hundreds of identical prompts: the search widens at most 8-fold, then keeps
    the search's pick among the tied ones (no search of the whole training set)."""
    X, outcomes, _ = _problem(n=3000)
    X[:2000] = X[0]
    clear_index_cache()
    router = KNNRouter(k=5).fit(X, outcomes)
    scores_hat, _ = router.predict(X[:3])
    assert np.isfinite(scores_hat).all()
    assert max(knn_search._LAST_SEARCH["last"][2]) == 8 * (5 + TIE_MARGIN)
    clear_index_cache()
