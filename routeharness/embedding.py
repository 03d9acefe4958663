"""Embedding a task: every split's prompts (and images) through an encoder and the cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routeharness.data import RoutingTask
from routeharness.progress import Reporter


@dataclass
class EmbeddedTask:
    task: RoutingTask
    X: dict[str, np.ndarray]
    encoded: int
    cached: int
    notes: list[str] = field(default_factory=list)
    encode_text: Callable[[list[str]], np.ndarray] | None = None
    encoder_path: str | None = None


def embed_task(task: RoutingTask, encoder: Any, cache: Any, reporter: Reporter) -> EmbeddedTask:
    """Embeddings of every split (images too, when both the task and encoder have them)."""
    X, encoded, cached, notes = {}, 0, 0, []
    has_images = any(data.has_images for data in task.splits.values())
    if has_images and "image" not in encoder.modalities:
        notes.append(f"encoder {encoder.name!r} is text-only: images are ignored on {task.name}")
    for split, data in task.splits.items():
        images = data.images if has_images and "image" in encoder.modalities else None
        texts = data.texts_to_embed()
        with reporter.progress(f"encoding {task.name} [{split}] with {encoder.name}",
                               len(texts)) as advance:
            result = cache.embed(encoder, texts, images, progress=advance)
        X[split] = result.embeddings
        if result.from_cache:
            cached += data.n
        else:
            encoded += result.n_encoded
    def encode_text(texts: list[str]) -> np.ndarray:
        return cache.embed(encoder, list(texts)).embeddings

    return EmbeddedTask(task, X, encoded, cached, notes, encode_text,
                        getattr(encoder, "trainable_path", None))
