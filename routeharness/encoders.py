"""Encoders (prompt -> vector) and the on-disk embedding cache.

An encoder is any object with the attributes and method of ``Encoder`` below. The cache
stores one ``.npy`` file (``allow_pickle=False``) and one JSON sidecar per
(encoder identity, revision, inputs) key; the sidecar holds the array's sha256, so a
truncated or altered file is detected and rebuilt instead of being trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from routeharness.errors import RouteHarnessError

CACHE_FORMAT = 1
DEFAULT_ENCODER = "minilm"


@runtime_checkable
class Encoder(Protocol):
    """What the harness needs of an encoder.

    ``modalities`` is ``{"text"}`` or ``{"text", "image"}``. ``encode`` returns float32
    ``(n, d)``; ``images`` (one PIL image, path or None per text) is passed only when the
    encoder takes images and the task has them. ``progress(k)`` is called as k more inputs
    are done. Optional: ``trainable_path``, a local Hugging Face transformer directory
    holding this encoder's weights, for routers that fine-tune the encoder (RouterDC).
    """

    name: str
    identity: str
    revision: str
    modalities: frozenset[str]

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray: ...


def get_encoder(spec: str) -> Encoder:
    """``--encoder NAME`` or ``NAME:ARG`` (e.g. ``st:/path/to/model``) -> an encoder."""
    from routeharness.registry import get_registry

    name, _, arg = spec.partition(":")
    factory = get_registry("encoder").get(name).load()
    encoder = factory(arg or None)
    for attribute in ("name", "identity", "revision", "modalities", "encode"):
        if not hasattr(encoder, attribute):
            raise RouteHarnessError(f"encoder {spec!r} lacks {attribute!r}: not an Encoder")
    return encoder


def default_cache_dir() -> Path:
    env = os.environ.get("ROUTEHARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "routeharness"


def content_hash(texts: Sequence[str], images: Sequence[Any] | None = None) -> str:
    """sha256 over the inputs in order (texts, and image bytes where given)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    if images is not None:
        digest.update(b"images")
        for image in images:
            digest.update(_image_bytes(image))
    return digest.hexdigest()


def _image_bytes(image: Any) -> bytes:
    if image is None:
        return b"\x00none"
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    if isinstance(image, dict):  # datasets' Image feature undecoded: {"bytes", "path"}
        if image.get("bytes") is not None:
            return bytes(image["bytes"])
        return Path(image["path"]).read_bytes()
    if hasattr(image, "tobytes"):  # PIL image
        return f"{image.mode}{image.size}".encode() + image.tobytes()
    raise RouteHarnessError(f"cannot hash image of type {type(image).__name__}")


@dataclass
class CacheResult:
    embeddings: np.ndarray
    from_cache: bool
    n_encoded: int
    path: Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "encoder"


class EmbeddingCache:
    """Embeddings on disk under ``<root>/<encoder slug>/<key>.npy`` (+ ``.json``)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def key(self, encoder: Encoder, texts: Sequence[str], images: Sequence[Any] | None) -> str:
        digest = hashlib.sha256()
        for part in (str(CACHE_FORMAT), encoder.identity, encoder.revision,
                     ",".join(sorted(encoder.modalities)), content_hash(texts, images)):
            digest.update(part.encode())
            digest.update(b"\x1f")
        return digest.hexdigest()[:40]

    def paths(self, encoder: Encoder, key: str) -> tuple[Path, Path]:
        folder = self.root / _slug(f"{encoder.identity}@{encoder.revision}")
        return folder / f"{key}.npy", folder / f"{key}.json"

    def load(self, array_path: Path, meta_path: Path, n: int) -> np.ndarray | None:
        """The cached array, or None if absent; a corrupted entry warns and returns None."""
        if not array_path.exists() and not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            array = np.load(array_path, allow_pickle=False)
            digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
            if meta.get("sha256") != digest or list(array.shape) != meta.get("shape") \
                    or array.shape[0] != n:
                raise ValueError("content does not match its recorded sha256 and shape")
            return array
        except Exception as exc:
            warnings.warn(f"embedding cache file {array_path} is corrupted ({exc}); rebuilding it",
                          stacklevel=3)
            return None

    def store(self, array_path: Path, meta_path: Path, array: np.ndarray, meta: dict[str, Any]) -> None:
        """Write atomically: a temporary file, then rename, array first, sidecar last."""
        array_path.parent.mkdir(parents=True, exist_ok=True)
        array = np.ascontiguousarray(array, dtype=np.float32)
        meta = {**meta, "shape": list(array.shape), "dtype": "float32",
                "sha256": hashlib.sha256(array.tobytes()).hexdigest(), "format": CACHE_FORMAT}
        for path, writer in ((array_path, lambda h: np.save(h, array, allow_pickle=False)),
                             (meta_path, lambda h: h.write(json.dumps(meta, indent=1).encode()))):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
            try:
                with os.fdopen(fd, "wb") as handle:
                    writer(handle)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def embed(self, encoder: Encoder, texts: Sequence[str], images: Sequence[Any] | None = None,
              *, progress: Callable[[int], None] | None = None) -> CacheResult:
        """Embeddings of ``texts`` (and ``images`` if the encoder takes them), cached."""
        if images is not None and "image" not in encoder.modalities:
            images = None
        key = self.key(encoder, texts, images)
        array_path, meta_path = self.paths(encoder, key)
        cached = self.load(array_path, meta_path, len(texts))
        if cached is not None:
            return CacheResult(cached, True, 0, array_path)
        if len(texts) == 0:
            raise RouteHarnessError("nothing to encode: empty input")
        array = np.asarray(encoder.encode(list(texts), images, progress=progress),
                           dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise RouteHarnessError(f"encoder {encoder.name!r} returned shape {array.shape} "
                                    f"for {len(texts)} inputs")
        if not np.isfinite(array).all():
            raise RouteHarnessError(f"encoder {encoder.name!r} returned NaN or infinite values")
        self.store(array_path, meta_path, array,
                   {"encoder": encoder.name, "identity": encoder.identity,
                    "revision": encoder.revision, "n": len(texts),
                    "modalities": sorted(encoder.modalities)})
        return CacheResult(array, False, len(texts), array_path)
