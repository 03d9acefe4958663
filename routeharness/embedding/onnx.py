"""A text encoder stored in a saved router, run on ONNX Runtime (``fit --store-encoder``).

The encoder's plugin exports it (the optional ``export_onnx`` of the ``Encoder`` protocol:
``model``, the ONNX graph from token ids to the pooled, L2-normalised embedding;
``tokenizer``, a ``tokenizers`` JSON with the truncation and padding its model uses;
``lower_case``). The router folder keeps the two as ``encoder.onnx`` and
``encoder_tokenizer.json``, their sha256 in the manifest like every other file.
``OnnxEncoder`` runs them from the bytes ``saved.load`` checked, so what runs is what was
hashed. It needs ``onnxruntime``, ``tokenizers`` and numpy only: no torch, transformers or
sentence-transformers (``pip install 'routeharness[route]'``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError, one_line

#: the files a stored encoder adds to a saved router's folder
MODEL_FILE = "encoder.onnx"
TOKENIZER_FILE = "encoder_tokenizer.json"
STORED_FILES = (MODEL_FILE, TOKENIZER_FILE)
#: what a lean install adds (pyproject's ``route`` extra; README, docs/serve.md)
ROUTE_INSTALL = "pip install 'routeharness[route]'"
#: the graph's inputs, in the order the export declares them
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
#: an encoder call holds at most this many tokens (prompts x the longest's tokens, at
#: least one prompt): on a quiet 2-core CPU, 32 RouterBench prompts of ~256 tokens a call
#: cost 1.23x the time per prompt of one a call (8 a call 1.06x: attention outgrows the
#: caches), while ~50-token prompts ran 1.18-1.26x faster 4 to 64 a call
#: (benchmarks/encoder_calls.py, benchmarks/route_latency.md)
TOKENS_PER_CALL = 256


def require_runtime(what: str) -> None:
    """One line naming what to install when onnxruntime or tokenizers is missing."""
    for module in ("onnxruntime", "tokenizers"):
        if importlib.util.find_spec(module) is None:
            raise RouteHarnessError(f"{what} needs {module}: {ROUTE_INSTALL}")


def runtime_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return "?"


class OnnxEncoder:
    """A text encoder from an ONNX graph and a ``tokenizers`` JSON, as bytes: texts
    stripped (and lower-cased where the model does), tokenized with the stored
    truncation and padding, run in batches longest first; L2-normalised float32 (n, d).
    ``name``, ``identity`` and ``revision`` are those of the encoder it was exported from:
    its vectors agree with that encoder's within what the manifest records.

    ``spin`` False: onnxruntime's idle intra-op threads sleep instead of spinning, leaving
    the cores to the threads beside it (``serve``'s event loop and HTTP parsing)."""

    modalities = frozenset({"text"})

    def __init__(self, model: bytes, tokenizer: bytes, *, name: str, identity: str,
                 revision: str, lower_case: bool, dimension: int | None = None,
                 batch_size: int = 64, threads: int | None = None,
                 where: str = MODEL_FILE, spin: bool = True) -> None:
        require_runtime(f"the stored encoder ({where})")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name, self.identity, self.revision = name, identity, revision
        self.lower_case, self.dimension, self.batch_size = lower_case, dimension, batch_size
        try:
            self._tokenizer = Tokenizer.from_str(tokenizer.decode("utf-8"))
        except Exception as exc:
            raise RouteHarnessError(f"{where}: the stored tokenizer does not load: "
                                    f"{one_line(exc)}") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        if not spin:  # idle intra-op threads sleep instead of spinning (see the doc)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(model, options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RouteHarnessError(f"{where}: the stored ONNX model does not load: "
                                    f"{one_line(exc)}") from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        padding = self._tokenizer.padding or {}
        self._pads_left = padding.get("direction") == "left"

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """int64 (b, tokens) arrays of the graph's inputs, padded to the longest."""
        lower = self.lower_case
        encoded = self._tokenizer.encode_batch([t.strip().lower() if lower else t.strip()
                                                for t in texts])
        arrays = {"input_ids": [e.ids for e in encoded],
                  "attention_mask": [e.attention_mask for e in encoded],
                  "token_type_ids": [e.type_ids for e in encoded]}
        return {name: np.asarray(arrays[name], dtype=np.int64) for name in self._inputs}

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Tokenized once; calls of similar lengths, longest first, each of at most
        ``batch_size`` prompts and ``TOKENS_PER_CALL`` tokens, cut to its longest prompt
        (padding is masked: a prompt's vector does not depend on its company beyond
        float rounding)."""
        out = np.zeros((len(texts), self.dimension or 0), dtype=np.float32)
        if not texts:
            return out
        inputs = self.tokenize(texts)
        lengths = inputs["attention_mask"].sum(axis=1)
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            width = max(int(lengths[order[start]]), 1)  # the call's longest
            size = max(1, min(self.batch_size, TOKENS_PER_CALL // width))
            rows = order[start:start + size]
            cut = slice(-width, None) if self._pads_left else slice(0, width)
            call = {name: array[rows, cut] for name, array in inputs.items()}
            vectors = self._session.run(None, call)[0]
            if out.shape[1] != vectors.shape[1]:
                if start:
                    raise RouteHarnessError(f"{self.name}: batches of different dimension")
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[rows] = vectors / np.where(norms > 0, norms, 1.0)
            start += len(rows)
            if progress is not None:
                progress(len(rows))
        return out
