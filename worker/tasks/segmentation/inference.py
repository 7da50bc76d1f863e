"""Whole-image and sliding-window inference (mmseg's ``whole`` / ``slide``), with optional flip TTA.

Both return logits at a requested output size (the label's), resized bilinearly from the model's input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class InferenceSettings:
    mode: str = "whole"  # whole | slide
    crop_size: int = 512
    stride: int | None = None  # default: two thirds of the crop
    flip: bool = False
    multiple: int = 32  # the architecture's input_multiple: whole images are padded up to it


def _pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 0) -> torch.Tensor:
    h, w = x.shape[-2:]
    th = max(min_size, -(-h // multiple) * multiple)
    tw = max(min_size, -(-w // multiple) * multiple)
    return F.pad(x, [0, tw - w, 0, th - h]) if (th, tw) != (h, w) else x


def whole_logits(model: nn.Module, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """One pass over the image padded (right, bottom) to a multiple of ``multiple``; padding cut off."""
    h, w = x.shape[-2:]
    out: torch.Tensor = model(_pad_to_multiple(x, multiple))
    return out[..., :h, :w]


def window_starts(length: int, crop: int, stride: int) -> list[int]:
    """Window starts covering ``length``: every ``stride``, the last one flush with the end."""
    n = max(length - crop + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride, length - crop), 0) for i in range(n)})


def slide_logits(model: nn.Module, x: torch.Tensor, crop: int, stride: int, multiple: int) -> torch.Tensor:
    """Logits averaged over overlapping ``crop`` windows ``stride`` apart (each window padded to ``crop``
    where the image is smaller)."""
    n, _, h, w = x.shape
    total: torch.Tensor | None = None
    count = torch.zeros(1, 1, h, w, device=x.device)
    for top in window_starts(h, crop, stride):
        for left in window_starts(w, crop, stride):
            window = x[..., top : top + crop, left : left + crop]
            wh, ww = window.shape[-2:]
            logits = model(_pad_to_multiple(window, multiple, crop))[..., :wh, :ww]
            if total is None:
                total = x.new_zeros(n, logits.shape[1], h, w)
            total[..., top : top + wh, left : left + ww] += logits
            count[..., top : top + wh, left : left + ww] += 1
    assert total is not None  # noqa: S101 - there is always at least one window
    return total / count


def segment_logits(
    model: nn.Module, x: torch.Tensor, settings: InferenceSettings, out_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Logits ``(N, C, *out_size)`` for images ``x`` ``(N, 3, H, W)`` (``out_size`` default: ``(H, W)``)."""

    def run(images: torch.Tensor) -> torch.Tensor:
        if settings.mode == "slide":
            stride = settings.stride or max(1, settings.crop_size * 2 // 3)
            return slide_logits(model, images, settings.crop_size, stride, settings.multiple)
        return whole_logits(model, images, settings.multiple)

    logits = run(x)
    if settings.flip:
        logits = (logits + run(x.flip(-1)).flip(-1)) / 2
    size = out_size or (int(x.shape[-2]), int(x.shape[-1]))
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits
