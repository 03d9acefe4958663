"""The neighbour search behind the kNN routers: index plans, builds and what is kept
between fits and searches (tuning fits one router per configuration on the same data).

``flat`` searches the normalised training vectors exactly with faiss's blocked inner
product (``faiss.knn``: the same search as ``IndexFlatIP``, without copying the vectors
into an index); ``ivf`` scans ``nprobe`` of ``nlist`` inverted lists, ``nprobe`` chosen at
the build by measured recall unless given; ``hnsw`` walks a graph. ``plan_index`` gives the
build settings, ``prepare`` the (kept) index and its resolved plan, ``search`` the
neighbours (kept for the next search of the same queries), ``recall_at_k`` measures an
approximate index against the exact search. ``serialise`` and ``deserialise`` keep an
approximate index as bytes (faiss's own format, never pickle), so a saved router loads
its ivf or hnsw index instead of building it again; ``flat`` has nothing to keep (its
index is the normalised vectors).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

INDEXES = ("flat", "ivf", "hnsw", "auto")
#: ``index="auto"`` searches exactly below this many training prompts, with hnsw above
AUTO_HNSW_FROM = 50_000
#: hnsw graph degree and build-time beam width (fixed: speed/recall, not routing quality)
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80
#: hnsw's search beam without an explicit ``ef_search``: max(HNSW_EF_PER_K x k, 64). 4, not
#: 2: on the 10^6 synthetic task of benchmarks/scale.md (data seed 0, "Exact against
#: approximate at 10^6"), ef 200 (2k at k = 100) found 0.855 of the exact neighbours and
#: test AUC 0.29 from exact search; ef 400 found 0.937 and came within 0.2 (+0.10)
HNSW_EF_PER_K = 4
#: the k-means seed of ivf (and of its recall sample): fixed, not ``random_state``, so the
#: index (and every route) is a function of the data alone, as ``deterministic`` promises
IVF_SEED = 20250518
#: ivf's k-means trains on at most this many points a list (a seeded sample above it), in
#: ``IVF_NITER`` rounds: 4x and 2.5x faster than faiss's 256 and 25 at 10^5-10^6 prompts
IVF_TRAIN_PER_LIST, IVF_NITER = 64, 10
#: without an explicit ``nprobe``, ivf scans the fewest lists (1, 2, 4, ... nlist) whose
#: recall@k, measured on ``RECALL_SAMPLE`` training prompts as queries (each one's own
#: row left out), reaches ``TARGET_RECALL`` (or the router's ``recall``, when given).
#: 0.999, not 0.95: on the 10^6 synthetic task of benchmarks/scale.md (data seed 0,
#: "Exact against approximate at 10^6"), targets 0.95, 0.99 and 0.995 all chose nprobe 16
#: (sample recall 0.9971) and tuning then picked k = 50 where exact search picked 100:
#: test AUC 0.35 below flat; 0.999 (nprobe 32) picked k = 100 and came within 0.2 (+0.03)
TARGET_RECALL, RECALL_SAMPLE = 0.999, 256
#: flat and ivf search this many more neighbours than asked, so that ties at the k-th
#: are resolved by the lowest row (see ``search``)
TIE_MARGIN = 8
#: rows normalised per block: the same numbers as one pass, a bounded temporary
_BLOCK = 1 << 16


@dataclass(frozen=True)
class IndexPlan:
    """The search one fit uses: ``kind`` is flat, ivf or hnsw (``auto`` resolved);
    ``nlist``/``nprobe`` for ivf (``target_recall``: the recall@k ``nprobe`` is chosen
    to reach, ``recall``: the sample recall@k that chose it, both None when ``nprobe``
    was given), ``m``/``ef_construction``/``ef_search`` for hnsw."""

    kind: str
    n: int
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    recall: float | None = None
    target_recall: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def _target(recall: Any) -> float | None:
    if recall is None:
        return None
    if isinstance(recall, bool) or not isinstance(recall, (int, float, np.integer,
                                                           np.floating)) \
            or not 0 < recall <= 1:
        raise ValueError(f"recall must be a number in (0, 1] or None, got {recall!r}")
    return float(recall)


def plan_index(n: int, k: int, index: str = "flat", nprobe: int | None = None,
               ef_search: int | None = None, recall: float | None = None) -> IndexPlan:
    """The settings for ``n`` training prompts and ``k`` neighbours. ivf: ``nlist`` about
    sqrt(n), at most n/39 (faiss's k-means wants 39 points a centroid), ``nprobe`` as
    given (at most nlist) or None: chosen when the index is built (``prepare``) as the
    fewest lists whose measured recall@k reaches ``recall`` (default ``TARGET_RECALL``;
    given with ``nprobe``, an error: one sets the other); hnsw: M 32, efConstruction 80,
    ``ef_search`` default max(``HNSW_EF_PER_K`` k, 64) and never below k (``recall`` acts
    only on ivf). An unknown ``index`` or a value out of range is a one-line ``ValueError``."""
    if index not in INDEXES:
        raise ValueError(f"index must be one of {INDEXES}, got {index!r}")
    nprobe, ef_search = _positive("nprobe", nprobe), _positive("ef_search", ef_search)
    recall = _target(recall)
    if recall is not None and nprobe is not None:
        raise ValueError(f"give nprobe or recall, not both: recall chooses ivf's nprobe "
                         f"(got nprobe={nprobe}, recall={recall})")
    kind = ("hnsw" if n >= AUTO_HNSW_FROM else "flat") if index == "auto" else index
    if kind == "ivf":
        # sqrt(n), not faiss's 4 sqrt(n): the build (k-means, then every prompt assigned)
        # costs n x nlist, 4x less here, for as many candidates scanned per query
        nlist = int(min(max(1, round(np.sqrt(n))), max(1, n // 39)))
        if nprobe is not None:
            return IndexPlan("ivf", n, nlist=nlist, nprobe=min(nprobe, nlist))
        return IndexPlan("ivf", n, nlist=nlist,
                         target_recall=TARGET_RECALL if recall is None else recall)
    if kind == "hnsw":
        ef = max(HNSW_EF_PER_K * k, 64) if ef_search is None else ef_search
        return IndexPlan("hnsw", n, m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION,
                         ef_search=max(ef, k))
    return IndexPlan("flat", n)


def normalise(X: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of ``X`` with unit rows (a zero row stays zero), block
    by block: the same numbers as ``X / norm(X)`` in one pass, a bounded temporary."""
    X = np.asarray(X)
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, X.shape[0], _BLOCK):
        block = np.asarray(X[start:start + _BLOCK], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, np.maximum(norms, 1e-12), out=out[start:start + _BLOCK])
    return out


class ExactIndex:
    """``flat``: the normalised training vectors, searched exactly by faiss's inner
    product (``faiss.knn``, the search ``IndexFlatIP`` runs) without a copy into faiss."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.ntotal = vectors.shape[0]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        return faiss.knn(queries, self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def build_index(X: np.ndarray, plan: IndexPlan) -> Any:
    """An inner-product index over the rows of ``X`` (already L2-normalised), built by
    ``plan``; deterministic: ivf's k-means is seeded, hnsw is built on one thread (its
    parallel insertion order, and so its graph, would vary run to run)."""
    if plan.kind == "flat":
        return ExactIndex(X)
    import faiss

    d = X.shape[1]
    if plan.kind == "ivf":
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, plan.nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = IVF_SEED
        index.cp.niter = IVF_NITER
        index.cp.min_points_per_centroid = 1  # the plan already keeps 39 per list
        index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
        index.train(X)
        index.add(X)
        index.nprobe = plan.nprobe or 1
        return index
    index = faiss.IndexHNSWFlat(d, plan.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = plan.ef_construction
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.add(X)
    finally:
        faiss.omp_set_num_threads(before)
    index.hnsw.efSearch = plan.ef_search
    return index


def _digest(X: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(X)), digest_size=16).hexdigest()


def _recall(exact: np.ndarray, found: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(b[b >= 0].tolist())) for a, b in zip(exact, found))
    return hits / float(max(exact.size, 1))


def choose_nprobe(index: Any, vectors: np.ndarray, plan: IndexPlan, k: int,
                  kept: dict[str, Any] | None = None) -> IndexPlan:
    """``plan`` with ``nprobe`` the fewest lists (1, 2, 4, ... nlist) reaching
    ``plan.target_recall`` (``TARGET_RECALL`` when None) recall@k on a seeded sample of
    training rows used as queries (their own row left out of both searches), and that
    recall. ``kept``: where the sample's
    exact neighbours are kept for the next k (one exact search serves a whole grid)."""
    n = vectors.shape[0]
    rows = np.sort(np.random.default_rng(IVF_SEED).choice(n, min(RECALL_SAMPLE, n),
                                                           replace=False))
    queries, width = vectors[rows], min(k + 1, n)
    kept = {} if kept is None else kept
    if kept.get("width", 0) < width:  # at least the usual grid's largest k, 100
        kept["width"] = min(max(width, 101), n)
        kept["exact"] = ExactIndex(vectors).search(queries, kept["width"])[1]

    def others(ids: np.ndarray) -> np.ndarray:  # each query's own row dropped, k kept
        return np.array([[i for i in found if i != row][:k] for row, found in zip(rows, ids)])

    exact = others(kept["exact"])
    target = TARGET_RECALL if plan.target_recall is None else plan.target_recall
    nprobe, recall = 1, 0.0
    while True:
        index.nprobe = nprobe
        recall = _recall(exact, others(index.search(queries, width)[1]))
        if recall >= target or nprobe >= plan.nlist:
            return replace(plan, nprobe=nprobe, recall=round(recall, 4))
        nprobe = min(2 * nprobe, plan.nlist)


#: the last index built (and its normalised vectors), keyed by the raw data's digest and
#: the build settings: tuning fits one router per configuration on the same training set,
#: and a build (a copy, or minutes of k-means or graph) would otherwise be repeated for
#: each; one entry, so at most one index is held beyond its routers. ``nprobes``: the
#: calibrated ``nprobe`` for each (k, target recall).
_LAST_BUILD: dict[tuple[Any, ...], dict[str, Any]] = {}
#: the last queries' searches: (index, search settings and queries' digest, k -> found)
_LAST_SEARCH: dict[str, tuple[Any, ...]] = {}


def prepare(X: np.ndarray, plan: IndexPlan, k: int, built: Any = None,
            digest: str | None = None) -> tuple[Any, IndexPlan]:
    """The index for raw training vectors ``X`` by ``plan`` (the kept one for identical
    data and build settings) and the plan resolved (ivf's ``nprobe`` chosen for ``k``).
    ``built``: that index already made (``deserialise``d from a saved router), kept
    instead of a build; ``digest``: ``vectors_digest(X)`` when the caller has it."""
    key = (digest or vectors_digest(X), X.shape, str(X.dtype), plan.kind, plan.nlist,
           plan.m, plan.ef_construction)
    if built is not None or key not in _LAST_BUILD:
        clear_index_cache()
        vectors = normalise(X) if built is None or plan.kind == "flat" else None
        _LAST_BUILD[key] = {"index": build_index(vectors, plan) if built is None else built,
                            "nprobes": {}, "vectors": vectors if plan.kind == "ivf" else None}
    kept = _LAST_BUILD[key]
    if plan.kind == "ivf" and plan.nprobe is None:
        calibrated = (k, plan.target_recall)
        if calibrated not in kept["nprobes"]:
            if kept["vectors"] is None:
                kept["vectors"] = normalise(X)
            kept["nprobes"][calibrated] = choose_nprobe(kept["index"], kept["vectors"],
                                                        plan, k,
                                                        kept.setdefault("sample", {}))
        plan = kept["nprobes"][calibrated]
    return kept["index"], plan


def vectors_digest(X: np.ndarray) -> str:
    """What identifies a table's vectors (the kept build's key; a saved index records it)."""
    return _digest(X)


def serialise(index: Any, plan: IndexPlan) -> np.ndarray | None:
    """An approximate index as bytes (``faiss.serialize_index``: a 1-d uint8 array in
    faiss's own format); None for ``flat``, which keeps nothing a build would not give
    at once."""
    if plan.kind == "flat":
        return None
    import faiss

    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)


def deserialise(blob: np.ndarray, plan: IndexPlan, n: int, d: int) -> Any:
    """The index ``serialise`` kept (``faiss.deserialize_index``: faiss's binary reader,
    no code run), checked against the plan it must be: the kind and class, inner product,
    ``n`` rows of dimension ``d``, ivf's ``nlist``, hnsw's ``M`` and efConstruction; its
    search settings (``nprobe``, efSearch) are set from the plan. Anything else is a
    one-line ``ValueError``."""
    import faiss

    try:
        index = faiss.deserialize_index(np.ascontiguousarray(blob, dtype=np.uint8))
    except Exception as exc:  # faiss raises RuntimeError with a C++ trace
        raise ValueError(f"not a faiss index ({str(exc).splitlines()[0][:120]})") from None
    expected = {"ivf": faiss.IndexIVFFlat, "hnsw": faiss.IndexHNSWFlat}.get(plan.kind)
    if expected is None or not isinstance(index, expected):
        raise ValueError(f"a {type(index).__name__}, not the {plan.kind} index its plan "
                         "records")
    found = {"rows": index.ntotal, "dimension": index.d,
             "inner product": index.metric_type == faiss.METRIC_INNER_PRODUCT}
    wanted: dict[str, Any] = {"rows": n, "dimension": d, "inner product": True}
    if plan.kind == "ivf":
        found["nlist"], wanted["nlist"] = index.nlist, plan.nlist
    else:
        found["M"], wanted["M"] = index.hnsw.nb_neighbors(1), plan.m
        found["efConstruction"] = index.hnsw.efConstruction
        wanted["efConstruction"] = plan.ef_construction
    wrong = [name for name in wanted if found[name] != wanted[name]]
    if wrong:
        raise ValueError(f"its {wrong[0]}: {found[wrong[0]]} where the plan has "
                         f"{wanted[wrong[0]]}")
    if plan.kind == "ivf":
        index.nprobe = plan.nprobe or 1
    else:
        index.hnsw.efSearch = plan.ef_search
    return index


def clear_index_cache() -> None:
    """Drop the kept index and search (frees their memory once no router holds them)."""
    _LAST_BUILD.clear()
    _LAST_SEARCH.clear()


def search(index: Any, plan: IndexPlan, queries: np.ndarray, k: int,
           prefetch: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids), both (n, k), of normalised ``queries``: the k most similar
    training rows, equal similarities by lowest row (float32 similarities of close
    prompts tie often; which of them is the k-th is then fixed, not the search's).
    flat and ivf (whose candidates do not depend on k) search a few more than k
    (``TIE_MARGIN``, doubled while a row's k-th similarity ties its last, up to 8x: a
    wider tie, thousands of identical prompts, keeps the search's pick) and keep the
    first k in that order. The searches of the last queries are kept: the same queries
    again (tuning routes validation once per configuration) reuse them, a smaller k as
    the first columns of a wider search; a second search of the same queries for a
    larger k searches for ``prefetch`` (the grid's largest k) at once."""
    if plan.kind == "ivf":
        index.nprobe = plan.nprobe
    elif plan.kind == "hnsw":
        index.hnsw.efSearch = plan.ef_search
    key = (plan.kind, plan.nprobe, plan.ef_search, queries.shape, _digest(queries))
    kept = _LAST_SEARCH.get("last")
    if kept is None or kept[0] is not index or kept[1] != key:
        kept = _LAST_SEARCH["last"] = (index, key, {})
    found: dict[int, tuple[np.ndarray, np.ndarray]] = kept[2]
    if plan.kind == "hnsw":  # a graph walk: another k is another search
        if k not in found:
            found[k] = _in_order(*index.search(queries, k))
        return found[k]
    for width in sorted(w for w in found if w >= k):
        if _holds(found[width], k, index.ntotal):
            return found[width][0][:, :k].copy(), found[width][1][:, :k].copy()
    want = max(k, prefetch) if found else k  # tuning: one search for every k to come
    width = min(want + TIE_MARGIN, index.ntotal)
    widest = min(8 * width, index.ntotal)  # a tie wider than this keeps the search's pick
    while True:
        found[width] = _in_order(*index.search(queries, width))
        if width >= widest or _holds(found[width], k, index.ntotal):
            return found[width][0][:, :k].copy(), found[width][1][:, :k].copy()
        width = min(2 * width, widest)


def _holds(result: tuple[np.ndarray, np.ndarray], k: int, ntotal: int) -> bool:
    """Whether a search's first k columns are the k neighbours: every row's k-th
    similarity is above its last (the ties at the k-th all inside), or the search
    returned every candidate (all training rows, or a slot left empty)."""
    similarity, ids = result
    width = ids.shape[1]
    return width >= ntotal or (width > k and bool(
        ((similarity[:, k - 1] > similarity[:, -1]) | (ids[:, -1] < 0)).all()))


def _in_order(similarity: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row by decreasing similarity, equal similarities by increasing row (slots
    the search left empty, id -1 at the lowest similarity, stay last)."""
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -similarity),
                       axis=1)
    return (np.take_along_axis(similarity, order, axis=1),
            np.take_along_axis(ids, order, axis=1))


def recall_at_k(X_train: np.ndarray, X_query: np.ndarray, k: int, index: str = "hnsw",
                nprobe: int | None = None, ef_search: int | None = None,
                recall: float | None = None) -> float:
    """Mean share of each query's exact k nearest training rows (cosine) that ``index``
    also returns: measured against the exact search, not assumed. ``recall``: ivf's
    target when it chooses ``nprobe`` (``plan_index``)."""
    train, query = normalise(X_train), normalise(X_query)
    k = min(int(k), train.shape[0])
    _, exact = ExactIndex(train).search(query, k)
    plan = plan_index(train.shape[0], k, index, nprobe, ef_search, recall)
    built = build_index(train, plan)
    if plan.kind == "ivf" and plan.nprobe is None:
        plan = choose_nprobe(built, train, plan, k)
    if plan.kind == "ivf":
        built.nprobe = plan.nprobe
    _, found = built.search(query, k)
    return _recall(exact, found)
