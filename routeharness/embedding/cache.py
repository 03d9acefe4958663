"""The on-disk embedding cache.

The cache is content-addressed per prompt: an input's key is the sha256 of its text (and
its image's bytes, for an encoder that reads images), in one store per (encoder identity,
revision, modalities); only inputs not stored yet are encoded. A store is a folder of
append-only shards: ``shard-<id>.npy`` (float32 vectors), ``shard-<id>.keys.npy`` (uint8
keys), both ``allow_pickle=False``, and ``shard-<id>.json``, the sidecar saying what they
stand for (``routeharness.embedding.shards.ShardSidecar``: encoder identity, revision, modalities, key definition, count,
dim, dtype, the sha256 of both arrays). Every file is written atomically, the sidecar last, so concurrent
writers never meet. A shard its sidecar does not vouch for is reported in one warning line
naming the file, deleted and re-encoded; a cache that cannot be written is read, and new
vectors are used without being stored (one warning); a cache path that is not a directory
is an error. docs/multimodal.md ("The embedding cache") has the details.

A seed is a read-only folder in the cache's own layout (``<seed>/v2/<store>/shard-*``)
that a task plugin ships with its data (``RoutingTask.embedding_seeds``): prompts the
store lacks are looked up there before anything is encoded. It is found by the same store
name (encoder identity, revision, modalities), so another encoder or revision never sees
it, and its sidecars are checked as a store's are (identity, key definition, shape, the
sha256 of both arrays); a seed that fails any check is not used at all (one warning line
naming the file), never deleted, and its prompts are encoded. Seeded vectors are not
copied into the store.
"""


from __future__ import annotations

import hashlib
import os
import re
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line
from routeharness.common.files import atomic_write, read_regular_file

if TYPE_CHECKING:
    from routeharness.embedding.encoders import Encoder, EncoderIdentity


CACHE_FORMAT = 2
#: what a shard key is the sha256 of; recorded in every sidecar
KEY_DEFINITION = "sha256(input-v1: len+utf8 text, image marker, len+image bytes)"
#: shards in a store before they are merged into one (each writing run adds one)
COMPACT_AT = 16
KEY_BYTES = 32


class CacheWarning(UserWarning):
    """A cache file was unusable (and is rebuilt), or the cache cannot be written."""



def default_cache_dir() -> Path:
    env = os.environ.get("ROUTEHARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "routeharness"


def image_bytes(image: Any) -> bytes:
    """The content of one image as the harness passes it (a path to a regular file, raw
    bytes, the ``datasets.Image`` dict ``{"bytes", "path"}``, or a PIL image: mode, size,
    pixels)."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, Path)):
        return read_regular_file(image, "image")
    if isinstance(image, dict):  # datasets' Image feature undecoded
        if image.get("bytes") is not None:
            return bytes(image["bytes"])
        if image.get("path"):
            return read_regular_file(image["path"], "image")
    if hasattr(image, "tobytes") and hasattr(image, "mode"):  # PIL image
        return f"{image.mode}{image.size}".encode() + image.tobytes()
    raise RouteHarnessError(f"cannot read an image from a {type(image).__name__}")


def input_keys(texts: Sequence[str], images: Sequence[Any] | None = None) -> list[bytes]:
    """One 32-byte sha256 per input: its text and (where given) its image's bytes.
    ``images=None`` and an image of None key alike: both mean "no image"."""
    keys = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RouteHarnessError(f"input {i} to embed is a {type(text).__name__}, not a text")
        digest = hashlib.sha256(b"input-v1\x00")
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
        image = None if images is None else images[i]
        if image is None:
            digest.update(b"\x00")
        else:
            raw = image_bytes(image)
            digest.update(b"\x01" + len(raw).to_bytes(8, "little"))
            digest.update(raw)
        keys.append(digest.digest())
    return keys


@dataclass
class CacheResult:
    """``embeddings`` float32 (n, d) in input order; ``n_encoded`` rows computed now,
    ``n_cached`` rows loaded from the store or a seed; ``n_seeded`` those of them that
    came from a seed; ``path`` the store folder."""

    embeddings: np.ndarray
    from_cache: bool
    n_encoded: int
    path: Path
    n_cached: int = 0
    n_seeded: int = 0


@dataclass
class _Seed:
    """A seed's vectors for one store, checked: key -> row of ``vectors``."""

    index: dict[bytes, int]
    vectors: np.ndarray


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "encoder"


class _BadShard(RouteHarnessError):
    """A shard that cannot be used; ``path`` is the file that tells."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


@dataclass
class _Store:
    """One encoder's shards, as loaded into memory: key -> (shard number, row)."""

    path: Path
    encoder: EncoderIdentity
    vectors: list[np.ndarray] = field(default_factory=list)
    index: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)  # shard id -> rows it brought
    dim: int | None = None
    writable: bool = True

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        number = len(self.vectors)
        self.vectors.append(vectors)
        for row, key in enumerate(keys):
            self.index.setdefault(key, (number, row))
        self.dim = int(vectors.shape[1])

    def forget(self) -> None:
        self.vectors, self.index, self.dim = [], {}, None


def _not_vouching(sidecar: Any, encoder: EncoderIdentity, shard: str) -> str | None:
    """Why ``sidecar`` (a ``ShardSidecar``) does not vouch for ``shard`` of ``encoder``'s
    store (None when it does): the first of format, shard, identity, revision, modalities,
    key, dtype that differs. The encoder's name is a display name: not compared."""
    expected = {"format": CACHE_FORMAT, "shard": shard, "identity": encoder.identity,
                "revision": encoder.revision, "modalities": list(encoder.modalities),
                "key": KEY_DEFINITION, "dtype": "float32"}
    for key, value in expected.items():
        found = getattr(sidecar, key)
        if found != value:
            return (f"its sidecar records {key} {found!r}, not this store's {value!r} "
                    "(copied from elsewhere?)")
    return None


def encoder_dimension(encoder: Encoder) -> int | None:
    """The encoder's declared output dimension (``Encoder.dimension``), None if unknown."""
    dim = getattr(encoder, "dimension", None)
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def pack_vectors(vectors: np.ndarray) -> bytes:
    """float32 (n, d) -> the ``float32-shuffled-zlib`` bytes (``shards.VECTOR_FILES``):
    byte 0 of every number, then byte 1, ... (the exponent bytes repeat), zlib level 9."""
    import zlib

    raw = np.ascontiguousarray(vectors, dtype="<f4").view(np.uint8).reshape(-1, 4)
    return zlib.compress(np.ascontiguousarray(raw.T).tobytes(), 9)


def unpack_vectors(blob: bytes, count: int, dim: int) -> np.ndarray:
    """``pack_vectors``'s inverse for a (count, dim) array; ``_BadShard`` when the bytes
    are not that (never decompressing more than the array's size)."""
    import zlib

    size = count * dim * 4
    if size == 0:  # zlib reads a limit of 0 as none
        raise _BadShard("the sidecar records no vectors")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, size)
        complete = inflater.eof and not inflater.unconsumed_tail and len(raw) == size
    except zlib.error as exc:
        raise _BadShard(f"not packed vectors ({exc})") from None
    if not complete:
        raise _BadShard(f"the packed vectors are not the {count} x {dim} float32 its "
                        "sidecar records")
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(4, -1)
    return np.ascontiguousarray(planes.T).view("<f4").reshape(count, dim).astype(np.float32)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=4)


class EmbeddingCache:
    """Embeddings on disk under ``<root>/v2/<encoder slug>-<hash>/`` (see the module doc)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._stores: dict[str, _Store] = {}
        self._seeds: dict[tuple[str, str], _Seed | None] = {}
        # a file where the cache folder (or one of its parents) should be: refuse up front
        probe = self.root
        while True:
            if probe.exists() or probe.is_symlink():
                if not probe.is_dir():
                    raise RouteHarnessError(f"embedding cache {self.root}: {probe} is not a "
                                            "directory (set --cache-dir or ROUTEHARNESS_CACHE "
                                            "to a folder)")
                break
            if probe.parent == probe:
                break
            probe = probe.parent

    def store_path(self, encoder: Encoder) -> Path:
        modalities = ",".join(sorted(encoder.modalities))
        tag = hashlib.sha256(f"{encoder.identity}\x1f{encoder.revision}\x1f{modalities}"
                             .encode()).hexdigest()[:12]
        return self.root / "v2" / f"{_slug(f'{encoder.identity}@{encoder.revision}')}-{tag}"

    def embed(self, encoder: Encoder, texts: Sequence[str], images: Sequence[Any] | None = None,
              *, progress: Callable[[int], None] | None = None,
              seeds: Sequence[str | Path] = ()) -> CacheResult:
        """Embeddings of ``texts`` (and ``images`` if the encoder takes them): float32
        ``(n, d)`` in input order. Inputs in neither the store nor one of ``seeds``
        (read-only folders in the cache's layout, see the module doc) are encoded (each
        distinct input once) and then stored. ``progress(k)``: k more of the n rows are
        done."""
        texts = list(texts)
        if images is not None and "image" not in encoder.modalities:
            images = None
        if images is not None and len(images) != len(texts):
            raise RouteHarnessError(f"{len(texts)} texts but {len(images)} images")
        if not texts:
            raise RouteHarnessError("nothing to encode: empty input")
        keys = input_keys(texts, images)
        store = self._refresh(encoder)
        seeded: dict[bytes, np.ndarray] = {}
        for root in seeds:
            if all(key in store.index or key in seeded for key in keys):
                break
            seed = self._seed(root, encoder, store)
            if seed is not None:
                for key in keys:
                    row = seed.index.get(key)
                    if row is not None and key not in store.index:
                        seeded.setdefault(key, seed.vectors[row])
        missing = {key: row for row, key in reversed(list(enumerate(keys)))
                   if key not in store.index and key not in seeded}  # first row of each
        n_encoded = sum(1 for key in keys if key in missing)
        n_seeded = sum(1 for key in keys if key in seeded)
        if progress is not None and len(texts) > n_encoded:
            progress(len(texts) - n_encoded)
        if missing:
            rows = sorted(missing.values())
            vectors = self._encode(encoder, [texts[r] for r in rows],
                                   None if images is None else [images[r] for r in rows],
                                   progress)
            if store.dim is not None and vectors.shape[1] != store.dim:
                _warn(f"embedding cache {store.path}: stored vectors have dimension "
                      f"{store.dim} but {encoder.name!r} gives {vectors.shape[1]}; "
                      "the store is discarded and rebuilt")
                self._discard(store)
                return self.embed(encoder, texts, images, progress=None, seeds=seeds)
            new_keys = [keys[r] for r in rows]
            store.add(new_keys, vectors)
            self._write_shard(store, new_keys, vectors)
            if progress is not None and n_encoded > len(rows):
                progress(n_encoded - len(rows))  # repeated inputs, encoded once
        out = np.stack([seeded[key] if key in seeded else
                        store.vectors[store.index[key][0]][store.index[key][1]]
                        for key in keys])
        return CacheResult(out.astype(np.float32, copy=False), n_encoded == 0, n_encoded,
                           store.path, len(texts) - n_encoded, n_seeded)

    def _seed(self, root: str | Path, encoder: Encoder, store: _Store) -> _Seed | None:
        """The seed under ``root`` for the encoder's store, read and checked once per
        cache object; None when it has none for this encoder (silently) or fails a check
        (one warning naming the file: the seed is not used, and never deleted)."""
        path = Path(root) / store.path.relative_to(self.root)
        memo = (str(path), store.encoder.identity)
        if memo in self._seeds:
            return self._seeds[memo]
        self._seeds[memo] = None
        if not path.is_dir():
            return None  # no seed for this encoder, revision and modalities
        try:
            shards = sorted(file.name[:-len(".json")] for file in path.glob("shard-*.json"))
            parts = []
            for shard in shards:
                keys, vectors = self._read_shard(path, shard, store.encoder)
                expected = encoder_dimension(encoder) or store.dim
                if expected is not None and vectors.shape[1] != expected:
                    raise _BadShard(f"dimension {vectors.shape[1]} differs from the "
                                    f"encoder's {expected}", path / f"{shard}.npy")
                parts.append((keys, vectors))
        except FileNotFoundError as exc:
            _warn(f"embedding seed {exc.filename or path}: missing; the seed is not used "
                  "and its prompts are encoded")
            return None
        except _BadShard as exc:
            _warn(f"embedding seed file {exc.path or path}: {exc}; the seed is not used "
                  "and its prompts are encoded")
            return None
        except OSError as exc:  # the folder cannot be listed
            _warn(f"embedding seed {exc.filename or path}: cannot be read "
                  f"({exc.strerror or exc}); the seed is not used and its prompts are encoded")
            return None
        if len({v.shape[1] for _, v in parts}) > 1:
            _warn(f"embedding seed {path}: its shards have different dimensions; the seed "
                  "is not used and its prompts are encoded")
            return None
        if not parts:
            return None
        index: dict[bytes, int] = {}
        raw = b"".join(keys.tobytes() for keys, _ in parts)
        for row in range(len(raw) // KEY_BYTES):
            index.setdefault(raw[row * KEY_BYTES:(row + 1) * KEY_BYTES], row)
        seed = _Seed(index, np.concatenate([vectors for _, vectors in parts]))
        self._seeds[memo] = seed
        return seed

    @staticmethod
    def _encode(encoder: Encoder, texts: list[str], images: list[Any] | None,
                progress: Callable[[int], None] | None) -> np.ndarray:
        array = np.asarray(encoder.encode(texts, images, progress=progress), dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(texts) or array.shape[1] == 0:
            raise RouteHarnessError(f"encoder {encoder.name!r} returned shape {array.shape} "
                                    f"for {len(texts)} inputs")
        if not np.isfinite(array).all():
            raise RouteHarnessError(f"encoder {encoder.name!r} returned NaN or infinite values")
        declared = encoder_dimension(encoder)
        if declared is not None and array.shape[1] != declared:
            raise RouteHarnessError(f"encoder {encoder.name!r} returned vectors of dimension "
                                    f"{array.shape[1]} but declares dimension {declared}")
        return np.ascontiguousarray(array)

    # --- reading ---------------------------------------------------------------------------
    def _refresh(self, encoder: Encoder) -> _Store:
        """The encoder's store, with any shard written since the last call (by this or
        another process) loaded and checked."""
        from routeharness.embedding.encoders import EncoderIdentity

        path = self.store_path(encoder)
        store = self._stores.setdefault(str(path), _Store(path, EncoderIdentity.of(encoder)))
        expected = encoder_dimension(encoder)
        if expected is not None and store.dim not in (None, expected):
            _warn(f"embedding cache {path}: stored vectors have dimension {store.dim} but "
                  f"{encoder.name!r} gives {expected}; the store is discarded and rebuilt")
            self._discard(store)
        if not path.exists():
            return store
        if not path.is_dir():
            if store.writable:
                _warn(f"embedding cache {path} is not a directory: embeddings are computed "
                      "but not stored")
                store.writable = False
            return store
        try:
            sidecars = sorted(path.glob("shard-*.json"))  # temporary files start with .tmp-
        except OSError as exc:
            return self._unwritable(store, exc)
        loaded: list[tuple[str, np.ndarray, np.ndarray]] = []
        for sidecar in sidecars:
            shard = sidecar.name[:-len(".json")]
            if shard in store.shards:
                continue
            try:
                keys, vectors = self._read_shard(path, shard, store.encoder)
            except FileNotFoundError:
                continue  # merged away by a concurrent compaction after the listing
            except _BadShard as exc:
                _warn(f"embedding cache file {exc.path}: {exc}; the shard is discarded and "
                      "its prompts encoded again")
                self._delete_shard(path, shard)
                store.shards[shard] = 0
                continue
            loaded.append((shard, keys, vectors))
        if store.dim is None and expected is not None:
            store.dim = expected  # the encoder's own: never outvoted by the shards
        elif store.dim is None and loaded:  # unknown: the dimension most rows agree on
            rows_by_dim: dict[int, int] = {}
            for _, _, vectors in loaded:
                rows_by_dim[vectors.shape[1]] = rows_by_dim.get(vectors.shape[1], 0) + len(vectors)
            store.dim = max(rows_by_dim, key=lambda d: rows_by_dim[d])
        for shard, keys, vectors in loaded:
            if vectors.shape[1] != store.dim:
                whose = (f"the encoder's dimension {expected}" if expected is not None else
                         f"the store's other entries ({store.dim})")
                _warn(f"embedding cache file {path / shard}.npy: dimension "
                      f"{vectors.shape[1]} differs from {whose}; the shard is discarded "
                      "and its prompts encoded again")
                self._delete_shard(path, shard)
                store.shards[shard] = 0
                continue
            raw = keys.tobytes()
            store.add([raw[i:i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)], vectors)
            store.shards[shard] = len(vectors)
        return store

    @staticmethod
    def _read_shard(path: Path, shard: str,
                    encoder: EncoderIdentity) -> tuple[np.ndarray, np.ndarray]:
        """(keys uint8 (count, 32), vectors float32 (count, dim)), or _BadShard saying why."""
        from routeharness.common.contract import check, parse_json
        from routeharness.embedding.shards import VECTOR_FILES, ShardSidecar

        sidecar, keys_file, vectors_file = (path / f"{shard}{suffix}"
                                            for suffix in (".json", ".keys.npy", ".npy"))
        current = sidecar
        try:
            data = check(ShardSidecar, parse_json(sidecar.read_bytes(), "its sidecar",
                                                  _BadShard), "its sidecar", _BadShard)
            wrong = _not_vouching(data, encoder, shard)
            if wrong:
                raise _BadShard(wrong)
            count, dim = data.count, data.dim
            vectors_file = path / f"{shard}{VECTOR_FILES[data.vectors_file]}"
            current = keys_file
            keys = np.load(keys_file, allow_pickle=False)
            if keys.dtype != np.uint8 or keys.shape != (count, KEY_BYTES) or \
                    _sha256(keys) != data.keys_sha256:
                raise _BadShard("the key list does not match the sha256 and shape recorded "
                                "in its sidecar", keys_file)
            current = vectors_file
            vectors = (np.load(vectors_file, allow_pickle=False) if data.vectors_file is None
                       else unpack_vectors(vectors_file.read_bytes(), count, dim))
            if vectors.dtype != np.float32 or vectors.shape != (count, dim):
                raise _BadShard(f"the vectors are {vectors.dtype} {vectors.shape}, not the "
                                f"float32 ({count}, {dim}) its sidecar records", vectors_file)
            if _sha256(vectors) != data.vectors_sha256:
                raise _BadShard("the vectors do not match the sha256 recorded in its "
                                "sidecar (changed since written?)", vectors_file)
            if count == 0 or dim == 0 or not np.isfinite(vectors).all():
                raise _BadShard("the vectors are empty or not finite", vectors_file)
        except _BadShard as exc:
            exc.path = exc.path or current  # the sidecar's own checks
            raise
        except FileNotFoundError:
            if sidecar.exists():  # the sidecar is there, one of its arrays is not
                raise _BadShard("the file is missing", current) from None
            raise
        except (OSError, ValueError, EOFError) as exc:  # unreadable, a directory, truncated
            detail = (exc.strerror if isinstance(exc, OSError) and exc.strerror else
                      one_line(exc))
            raise _BadShard(f"cannot be read ({detail})", current) from None
        return keys, vectors

    @staticmethod
    def _delete_shard(path: Path, shard: str) -> None:
        for suffix in (".json", ".npy", ".keys.npy"):  # the sidecar first: no half shard
            try:
                (path / f"{shard}{suffix}").unlink(missing_ok=True)
            except OSError:
                pass  # a directory, a read-only folder: it stays discarded in memory

    def _discard(self, store: _Store) -> None:
        for shard in list(store.shards):
            self._delete_shard(store.path, shard)
            store.shards[shard] = 0  # never loaded again in this process
        store.forget()

    # --- writing ---------------------------------------------------------------------------
    def _unwritable(self, store: _Store, exc: OSError) -> _Store:
        if store.writable:
            where = exc.filename or store.path
            _warn(f"embedding cache {where} cannot be written ({exc.strerror or exc}): "
                  "embeddings are computed but not stored")
            store.writable = False
        return store

    def _write_shard(self, store: _Store, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if not store.writable:
            return
        shard = f"shard-{uuid.uuid4().hex}"
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        from routeharness.common.contract import dump_json
        from routeharness.embedding.shards import ShardSidecar

        encoder = store.encoder
        sidecar = dump_json(ShardSidecar(
            encoder=encoder.name, identity=encoder.identity, revision=encoder.revision,
            modalities=list(encoder.modalities), format=CACHE_FORMAT, shard=shard,
            key=KEY_DEFINITION, count=int(vectors.shape[0]), dim=int(vectors.shape[1]),
            dtype="float32", vectors_sha256=_sha256(vectors), keys_sha256=_sha256(key_array)),
            exclude_none=True)
        files = ((f"{shard}.npy", lambda h: np.save(h, vectors, allow_pickle=False)),
                 (f"{shard}.keys.npy", lambda h: np.save(h, key_array, allow_pickle=False)),
                 (f"{shard}.json", lambda h: h.write(sidecar.encode("utf-8"))))
        try:
            store.path.mkdir(parents=True, exist_ok=True)
            for name, writer in files:
                atomic_write(store.path / name, writer)
        except OSError as exc:
            self._delete_shard(store.path, shard)
            self._unwritable(store, exc)
            return
        store.shards[shard] = len(vectors)
        if sum(1 for rows in store.shards.values() if rows) >= COMPACT_AT:
            self._compact(store)

    def _compact(self, store: _Store) -> None:
        """Merge the store's shards into one, so that loading stays a few large reads.
        A concurrent reader that listed a merged shard skips it (it re-encodes those
        prompts at worst); nothing is lost."""
        old = [shard for shard, rows in store.shards.items() if rows]
        keys = list(store.index)
        vectors = np.stack([store.vectors[s][r] for s, r in store.index.values()])
        store.forget()
        store.shards = {}
        store.add(keys, vectors)
        self._write_shard(store, keys, vectors)
        if store.writable:
            for shard in old:
                self._delete_shard(store.path, shard)
