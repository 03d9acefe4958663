"""Built-in encoder plugin: image-aware encoders.

- ``effnet-minilm[:W]``: the offline default for image tasks: all-MiniLM-L6-v2 text +
  ImageNet EfficientNet-Lite0 image features, each L2-normalised, concatenated with image
  weight W (default 0.5; cosine = (1 - W) cos_text + W cos_image);
- ``effnet``: the image half alone (EfficientNet-Lite0, 1280-d);
- ``clip[:HUB_ID_OR_PATH]``: any CLIP or SigLIP checkpoint through transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routeharness import hookimpl


@hookimpl
def register_encoders(register: Callable[..., Any]) -> None:
    register(name="effnet-minilm", target="routeharness_vision.encoders:effnet_minilm",
             description="offline image+text: MiniLM text + EfficientNet-Lite0 image, "
                         "normalised and concatenated (effnet-minilm:W sets the image weight)")
    register(name="effnet", target="routeharness_vision.encoders:effnet",
             description="EfficientNet-Lite0 ImageNet image features only (1280-d)")
    register(name="clip", target="routeharness_vision.encoders:clip",
             description="any CLIP or SigLIP checkpoint: clip:<hub id or local path>")
