"""Embedding a task: every split's prompts (and images) through an encoder and the cache,
or the dataset's own vectors (the ``precomputed`` encoder); and which rows of a task end
up with the same embedding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError
from routeharness.common.progress import Reporter
from routeharness.data.columns import EMBEDDING
from routeharness.data.dataset import RoutingTask

#: two embeddings are identical when ||a - b|| <= this x the larger norm: far above the
#: float noise of encoding one text in different batches (~1e-6), far below the distance
#: of two different texts (~1e-2 and more)
IDENTICAL_RTOL = 1e-4
#: the split pairs compared, later split first (as in data.find_leaks)
SPLIT_PAIRS = (("test", "train"), ("test", "validation"), ("validation", "train"))


@dataclass
class EmbeddedTask:
    """A task's embeddings: ``X[split]`` float32 (n_split, d) in row order. ``encoded``:
    rows computed by the encoder in this call; ``cached``: rows loaded from the cache
    (the two add up to the task's rows; both 0 for the dataset's own vectors)."""

    task: RoutingTask
    X: dict[str, np.ndarray]
    encoded: int
    cached: int
    notes: list[str] = field(default_factory=list)
    encode_text: Callable[[list[str]], np.ndarray] | None = None
    encoder_path: str | None = None


def embed_task(task: RoutingTask, encoder: Any, cache: Any, reporter: Reporter) -> EmbeddedTask:
    """Embeddings of every split (images too, when both the task and encoder have them).

    An encoder with a ``fit`` method (``lexical``) is first fitted on the training split's
    texts; the fitted copy embeds every split. All splits go through the cache in one
    call: a prompt is keyed by its content, so one already embedded under any split,
    subset or group is loaded, not encoded again; so is one in a seed the task ships
    (``RoutingTask.embedding_seeds``, for the same encoder). The ``precomputed`` encoder takes each
    split's ``embedding`` column instead (no encoding, no cache)."""
    if isinstance(encoder, PrecomputedEncoder):
        return _precomputed(task, encoder)
    if callable(getattr(encoder, "fit", None)):  # fitted on the training prompts only
        encoder = encoder.fit(task.splits["train"].texts_to_embed())
    notes = []
    has_images = any(data.has_images for data in task.splits.values())
    use_images = has_images and "image" in encoder.modalities
    if has_images and not use_images:
        notes.append(f"encoder {encoder.name!r} is text-only: images are ignored on {task.name}")
    texts: list[str] = []
    images: list[Any] | None = [] if use_images else None
    bounds = {}
    for split, data in task.splits.items():
        start = len(texts)
        texts.extend(data.texts_to_embed())
        if images is not None:
            images.extend(data.images if data.images is not None else [None] * data.n)
        bounds[split] = (start, len(texts))
    with reporter.progress(f"encoding {task.name} with {encoder.name}", len(texts)) as advance:
        result = cache.embed(encoder, texts, images, progress=advance,
                             seeds=task.embedding_seeds)
    X = {split: result.embeddings[a:b] for split, (a, b) in bounds.items()}
    if result.n_seeded:
        notes.append(f"{result.n_seeded} of {task.name}'s {encoder.name} embeddings read from "
                     "the copy shipped with the task (same encoder and revision, checked by "
                     "sha256)")

    def encode_text(texts: list[str]) -> np.ndarray:
        return cache.embed(encoder, list(texts), seeds=task.embedding_seeds).embeddings

    return EmbeddedTask(task, X, result.n_encoded, result.n_cached, notes, encode_text,
                        getattr(encoder, "trainable_path", None))


def identical_embeddings(X_by_split: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Rows whose embedding is identical (up to float noise, ``IDENTICAL_RTOL``) to
    another row's: prompts an encoder cannot tell apart, e.g. texts it truncates to the
    same window. Counted as ``data.duplicate_prompts`` and ``data.find_leaks`` count texts:

    - ``within[split]``: rows that repeat the embedding of an earlier row of that split;
    - ``across["test-train"]`` (and test-validation, validation-train): rows of the first
      split whose embedding is also a row's of the second.

    ``X_by_split``: split -> float (n_split, d), every split the same d. Pure; sorting along
    a random projection makes it about n log n, not n^2."""
    splits = [s for s, X in X_by_split.items() if len(X)]
    if not splits:
        return {"within": {s: 0 for s in X_by_split}, "across": {}}
    X = np.concatenate([np.asarray(X_by_split[s], dtype=np.float64) for s in splits])
    label = np.concatenate([np.full(len(X_by_split[s]), i) for i, s in enumerate(splits)])
    component = _identical_components(X)
    within = {s: 0 for s in X_by_split}
    for i, s in enumerate(splits):
        within[s] = int((label == i).sum() - len(np.unique(component[label == i])))
    across = {}
    for later, earlier in SPLIT_PAIRS:
        if later in splits and earlier in splits:
            earlier_components = component[label == splits.index(earlier)]
            across[f"{later}-{earlier}"] = int(np.isin(component[label == splits.index(later)],
                                                       earlier_components).sum())
    return {"within": within, "across": across}


def _identical_components(X: np.ndarray) -> np.ndarray:
    """A component id per row: rows joined when their embeddings are identical."""
    n = len(X)
    norms = np.linalg.norm(X, axis=1)
    tolerance = IDENTICAL_RTOL * max(float(norms.max()), 1e-12)
    # identical rows project within the tolerance of each other on any unit direction
    direction = np.random.default_rng(0).standard_normal(X.shape[1])
    projection = X @ (direction / np.linalg.norm(direction))
    order = np.argsort(projection, kind="stable")
    sorted_projection = projection[order]
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    offset = 1
    while offset < n:
        close = np.flatnonzero(sorted_projection[offset:] - sorted_projection[:-offset]
                               <= tolerance)
        if not close.size:
            break
        a, b = order[close], order[close + offset]
        same = np.linalg.norm(X[a] - X[b], axis=1) <= \
            IDENTICAL_RTOL * np.maximum(np.maximum(norms[a], norms[b]), 1e-12)
        for i, j in zip(a[same].tolist(), b[same].tolist()):
            parent[root(i)] = root(j)
        offset += 1
    return np.array([root(i) for i in range(n)])


class PrecomputedEncoder:
    """``--encoder precomputed``: the vectors of the dataset's ``embedding`` column
    (docs/dataset-format.md), for teams with embeddings from their own encoder. It
    encodes nothing: ``embed_task`` reads each split's column. ``for_tasks`` gives the
    copy whose identity names the data (``precomputed:<fingerprint>``, the tasks'
    fingerprints, which cover the vectors), so results say which vectors were used."""

    name = "precomputed"
    revision = "1"
    modalities = frozenset({"text", "image"})  # the vectors stand for the whole row
    dimension = None

    def __init__(self, identity: str = "precomputed"):
        self.identity = identity

    def for_tasks(self, tasks: list[RoutingTask]) -> PrecomputedEncoder:
        """A copy whose identity holds the tasks' fingerprints (order-free)."""
        import hashlib

        digest = hashlib.sha256("\x1f".join(sorted(t.fingerprint() for t in tasks)).encode())
        return PrecomputedEncoder(f"precomputed:{digest.hexdigest()[:16]}")

    def encode(self, texts: Any, images: Any = None, *, progress: Any = None) -> np.ndarray:
        raise RouteHarnessError("the precomputed encoder encodes no text: it reads the "
                                f"dataset's {EMBEDDING!r} column (embed_task does)")


def precomputed_encoder() -> PrecomputedEncoder:
    """The ``precomputed`` encoder's factory (registered by a built-in plugin)."""
    return PrecomputedEncoder()


def _precomputed(task: RoutingTask, encoder: PrecomputedEncoder) -> EmbeddedTask:
    """Each split's own vectors, checked as a dataset's column is (so a task built in code
    is held to the same rules): present in every split, one row each, one dimension."""
    X: dict[str, np.ndarray] = {}
    for split, data in task.splits.items():
        vectors = data.embeddings
        if vectors is None:
            raise RouteHarnessError(
                f"task {task.name!r} has no {EMBEDDING!r} column (split {split!r}): the "
                "precomputed encoder reads each row's vector from it (docs/dataset-format.md);"
                " add the column or choose another --encoder")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != data.n or vectors.shape[1] < 1:
            raise RouteHarnessError(f"task {task.name!r}, split {split!r}: embeddings of "
                                    f"shape {vectors.shape}, expected ({data.n}, d >= 1)")
        if not np.isfinite(vectors).all():
            raise RouteHarnessError(f"task {task.name!r}, split {split!r}: an embedding "
                                    "holds a number that is not finite")
        X[split] = vectors
    dims = {split: x.shape[1] for split, x in X.items()}
    if len(set(dims.values())) > 1:
        raise RouteHarnessError(f"task {task.name!r}: embeddings of different dimensions "
                                f"across splits {dims}")
    bound = encoder.for_tasks([task])
    note = (f"precomputed: {task.name}'s own {next(iter(dims.values()))}-d vectors "
            f"({bound.identity}), nothing encoded")
    return EmbeddedTask(task, X, 0, 0, [note], None, None)


def identical_embedding_info(task: RoutingTask, encoder: str, cache_dir: str | Path | None,
                             reporter: Reporter) -> dict[str, Any]:
    """``data info --encoder``: the encoder's name and the rows whose embedding equals
    another row's, within each split and across splits (``identical_embeddings``)."""
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.encoders import get_encoder

    enc = get_encoder(encoder)
    embedded = embed_task(task, enc, EmbeddingCache(cache_dir), reporter)
    splits = [s for s in ("train", "validation", "test") if s in task.splits]
    return {"encoder": enc.name,
            "identical_embeddings": identical_embeddings({s: embedded.X[s] for s in splits})}
