"""Built-in encoder plugin: ``lexical``, TF-IDF reduced by truncated SVD (scikit-learn),
fitted on each task's training prompts only: the no-semantics baseline of the encoder
study. ``lexical:N`` sets the number of SVD components (default 256). Also
``precomputed``: no model at all, the dataset's own ``embedding`` column
(``routeharness.embedding.embed.PrecomputedEncoder``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_encoders(register: Callable[..., Any]) -> None:
    register(name="lexical", target="routeharness_lexical.encoder:from_spec",
             description="TF-IDF word 1-2-grams + truncated SVD (256-d), fitted on the "
                         "training prompts only: lexical:N for N components")
    register(name="precomputed", target="routeharness.embedding.embed:precomputed_encoder",
             description="the dataset's own vectors, its 'embedding' column "
                         "(bring your own embeddings; nothing is encoded)")
