"""The ONNX Runtime backend of ``minilm`` (``minilm:backend=onnx[,quantize=int8]``).

The sentence-transformers model (transformer, pooling, normalisation) is exported once,
offline, from the local folder with ``torch.onnx.export`` and, for ``quantize=int8``,
quantised with ONNX Runtime's dynamic int8 quantisation. The export lives under
``<cache dir>/onnx/<model>-<key>/`` (``model.onnx`` + ``export.json``), keyed by the sha256
of the source folder's files and the export settings; ``export.json`` records the
sha256 of ``model.onnx``, checked on every load (a mismatch is one warning and a new
export). Nothing is pickled: an ONNX file is a protobuf graph. Encoding needs only
``onnxruntime`` and ``tokenizers`` (no torch): the tokenizer is the folder's
``tokenizer.json`` with the truncation sentence-transformers applies.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import RouteHarnessError, one_line

#: bumped when the export procedure changes (a new key: old exports are not reused)
EXPORT_FORMAT = 2
OPSET = 17
INSTALL_HINT = "pip install 'routeharness[onnx]' (or: pip install onnxruntime onnx)"
#: the fp32 export must agree with torch at least this well on the probe texts
EXPORT_MIN_COSINE = 0.999
PROBE_TEXTS = ("How many legs does a spider have?", "  leading and trailing spaces  ",
               "def add(a, b):\n    return a + b  # a short function " * 12)


@dataclass(frozen=True)
class OnnxSettings:
    """What an export depends on besides the source model (part of its cache key)."""

    quantize: str = "none"
    opset: int = OPSET
    export_format: int = EXPORT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tag(self) -> str:
        return "onnx-int8" if self.quantize == "int8" else "onnx-fp32"


def require_onnxruntime(spec: str) -> str:
    """The installed onnxruntime version, or one line saying how to install it."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise RouteHarnessError(f"encoder {spec!r} needs onnxruntime: {INSTALL_HINT}")
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return "?"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _folder_digest(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256(b"onnx-source-v1\x00")
    for name, size, _ in stamp:
        digest.update(f"{name}\x00{size}\x00".encode())
        digest.update(_sha256_file(Path(folder) / name).encode())
    return digest.hexdigest()


def source_digest(folder: Path) -> str:
    """sha256 of every file in the model folder (names and contents); computed once per
    process while no file's size or mtime changes."""
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        stamp = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in files)
        return _folder_digest(str(folder), stamp)
    except OSError as exc:
        raise RouteHarnessError(f"cannot read model folder {exc.filename or folder}: "
                                f"{exc.strerror or exc}") from None


def export_key(source: str, settings: OnnxSettings) -> str:
    text = json.dumps({"source_sha256": source, **settings.to_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _valid_export(folder: Path, source: str, settings: OnnxSettings) -> str | None:
    """None when ``folder`` holds the export of (source, settings) whose file hashes as
    recorded; else why not."""
    record = _read_record(folder)
    if record is None:
        return "export.json is missing or unreadable"
    if record.get("source_sha256") != source or record.get("settings") != settings.to_dict():
        return "export.json describes another model or other settings"
    model = folder / "model.onnx"
    if not model.is_file() or model.is_symlink():
        return "model.onnx is missing"
    if _sha256_file(model) != record.get("onnx_sha256"):
        return "model.onnx does not match the sha256 in export.json"
    return None


def exported_model(model_dir: Path, settings: OnnxSettings, cache_root: Path) -> Path:
    """The checked ``model.onnx`` exported from ``model_dir`` with ``settings``, exporting
    it first when the cache has none (or one that fails its check: one warning)."""
    from routeharness import CacheWarning

    source = source_digest(model_dir)
    folder = cache_root / "onnx" / f"{model_dir.name}-{settings.tag}-{export_key(source, settings)}"
    if folder.exists():
        problem = _valid_export(folder, source, settings)
        if problem is None:
            return folder / "model.onnx"
        warnings.warn(f"ONNX export {folder}: {problem}; exported again", CacheWarning,
                      stacklevel=3)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    except OSError as exc:
        raise RouteHarnessError(f"cannot write the ONNX export under {folder.parent}: "
                                f"{exc.strerror or exc}") from None
    try:
        try:
            _export(model_dir, work, settings)
        except RouteHarnessError:
            raise
        except Exception as exc:
            detail = one_line(exc)
            raise RouteHarnessError(f"cannot export {model_dir} to ONNX: {detail}") from None
        record = {"source": str(model_dir), "source_sha256": source,
                  "settings": settings.to_dict(),
                  "onnx_sha256": _sha256_file(work / "model.onnx")}
        (work / "export.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(work, folder)
        except OSError:  # another process finished the same export first: use it if sound
            if _valid_export(folder, source, settings) is not None:
                raise RouteHarnessError(f"cannot write the ONNX export {folder}") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder / "model.onnx"


def export_bytes(model_dir: Path, spec: str) -> dict[str, Any]:
    """The fp32 export of ``model_dir`` and its tokenizer as bytes, for a saved router
    (``fit --store-encoder``; the ``export_onnx`` of the Encoder protocol): ``model`` (the
    graph, checked against torch by ``_export``), ``tokenizer`` (``tokenizer.json`` with the
    truncation and padding sentence-transformers applies), ``lower_case``, ``opset``."""
    require_onnxruntime(spec)
    if importlib.util.find_spec("onnx") is None:  # torch.onnx.export writes through it
        raise RouteHarnessError(f"exporting {spec!r} to ONNX needs the onnx package: "
                                f"{INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="routeharness-export-") as tmp:
        try:
            _export(model_dir, Path(tmp), OnnxSettings())
        except RouteHarnessError:
            raise
        except Exception as exc:
            raise RouteHarnessError(f"cannot export {model_dir} to ONNX: "
                                    f"{one_line(exc)}") from None
        model = (Path(tmp) / "model.onnx").read_bytes()
    tokenizer = load_tokenizer(model_dir)
    return {"model": model, "tokenizer": tokenizer.backend.to_str().encode("utf-8"),
            "lower_case": tokenizer.lower_case, "opset": OPSET}


def _export(model_dir: Path, work: Path, settings: OnnxSettings) -> None:
    """Write ``work/model.onnx``: the whole sentence-transformers pipeline as one graph
    (inputs input_ids, attention_mask, token_type_ids; output the normalised embedding)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=False).eval()

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask,
                        "token_type_ids": token_type_ids}
            return self.model(features)["sentence_embedding"]

    tokenizer = load_tokenizer(model_dir)
    probe = tokenize(tokenizer, list(PROBE_TEXTS))
    inputs = tuple(torch.from_numpy(probe[k]) for k in INPUT_NAMES)
    fp32 = work / ("fp32.onnx" if settings.quantize == "int8" else "model.onnx")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pipeline().eval(), inputs, str(fp32), input_names=list(INPUT_NAMES),
                          output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "batch"}},
                          opset_version=settings.opset, dynamo=False)
        expected = Pipeline()(*inputs).numpy()
    got = _session(fp32, threads=1).run(None, probe)[0]
    agreement = float(np.min(np.sum(got * expected, axis=1)))
    if agreement < EXPORT_MIN_COSINE:
        raise RouteHarnessError(f"the ONNX export of {model_dir} disagrees with torch "
                                f"(cosine {agreement:.4f} < {EXPORT_MIN_COSINE})")
    if settings.quantize == "int8":
        if importlib.util.find_spec("onnx") is None:
            raise RouteHarnessError(f"quantize=int8 needs the onnx package: {INSTALL_HINT}")
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        # per channel: one scale per output column (per tensor: cosine ~0.94 with torch);
        # reduce_range: 7-bit weights, no int16 overflow on CPUs without VNNI
        before = logging.root.manager.disable
        logging.disable(logging.WARNING)  # its advice to pre-process, printed on the root logger
        try:
            quantize_dynamic(str(fp32), str(work / "model.onnx"), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True)
        finally:
            logging.disable(before)
        fp32.unlink()


INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def load_tokenizer(model_dir: Path) -> TextTokenizer:
    """The folder's fast tokenizer (``tokenizer.json``), truncating as sentence-transformers
    does (``max_seq_length`` of ``sentence_bert_config.json``) and padding to the longest."""
    from tokenizers import Tokenizer

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise RouteHarnessError(f"the ONNX backend needs {path} (a fast tokenizer)")
    try:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    max_length = config.get("max_seq_length") if isinstance(config, dict) else None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length if isinstance(max_length, int) else 512)
    pad = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_type_id=pad.get("pad_type_id", 0),
                             pad_token=pad.get("pad_token", "[PAD]"))
    return TextTokenizer(tokenizer, bool(isinstance(config, dict) and config.get("do_lower_case")))


@dataclass(frozen=True)
class TextTokenizer:
    """A ``tokenizers.Tokenizer`` and whether sentence-transformers lower-cases first."""

    backend: Any
    lower_case: bool = False


def tokenize(tokenizer: TextTokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    """int64 arrays (b, tokens) of ids, mask and token types; texts stripped first, as
    sentence-transformers does."""
    lower = tokenizer.lower_case
    encoded = tokenizer.backend.encode_batch([t.strip().lower() if lower else t.strip()
                                              for t in texts])
    return {"input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encoded], dtype=np.int64)}


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        detail = one_line(exc)
        raise RouteHarnessError(f"cannot load ONNX model {path}: {detail}") from None


class OnnxTextEncoder:
    """A sentence-transformers model run by ONNX Runtime: L2-normalised float32 (n, d).

    Its vectors are close to the torch ones but not identical (float order; int8), so its
    ``identity`` names the backend and the cache keeps them apart."""

    modalities = frozenset({"text"})

    def __init__(self, model_dir: str | Path, *, name: str, identity: str, revision: str,
                 settings: OnnxSettings, dimension: int | None, batch_size: int = 64,
                 cache_root: Path | None = None, threads: int | None = None):
        self.model_dir = Path(model_dir)
        self.name, self.settings, self.dimension = name, settings, dimension
        self.identity = f"{identity}+{settings.tag}"
        self.revision = revision
        self.batch_size, self.cache_root, self.threads = batch_size, cache_root, threads
        self.trainable_path = str(self.model_dir)
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            from routeharness import default_cache_dir

            root = self.cache_root if self.cache_root is not None else default_cache_dir()
            path = exported_model(self.model_dir, self.settings, root)
            self._tokenizer = load_tokenizer(self.model_dir)
            self._session = _session(path, self.threads)
        return self._session, self._tokenizer

    def export_onnx(self) -> dict[str, Any]:
        """This encoder's own graph (fp32 or int8) and tokenizer as bytes, for a saved
        router (``fit --store-encoder``): the stored encoder gives its very vectors."""
        from routeharness import default_cache_dir

        root = self.cache_root if self.cache_root is not None else default_cache_dir()
        model = exported_model(self.model_dir, self.settings, root).read_bytes()
        tokenizer = load_tokenizer(self.model_dir)
        return {"model": model, "tokenizer": tokenizer.backend.to_str().encode("utf-8"),
                "lower_case": tokenizer.lower_case, "opset": self.settings.opset}

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dimension or 0), dtype=np.float32)
        # longest first: each batch pads to its own longest text
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            vectors = session.run(None, tokenize(tokenizer, [texts[i] for i in rows]))[0]
            if out.shape[1] != vectors.shape[1]:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                if start:
                    raise RouteHarnessError(f"{self.name}: batches of different dimension")
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[rows] = vectors / np.where(norms > 0, norms, 1.0)
            if progress is not None:
                progress(len(rows))
        return out
