"""Joint image + mask transforms for segmentation (mmseg's pipeline on torchvision transforms v2).

The image is a ``tv_tensors.Image`` (uint8), the mask a ``tv_tensors.Mask`` (uint8: 0 background, class
i + 1, 255 ignore); v2's functionals resize masks with nearest neighbour. Padding fills the mask with 255
so padded pixels count in no loss and no metric. Randomness comes from torch's generator (seeded per
loader worker)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from backend.tasks.segmentation import SEGMENTATION_IGNORE_INDEX, SegAugmentStep, SegDataSpec

Pair = tuple[tv_tensors.Image, tv_tensors.Mask]
CAT_MAX_TRIES = 10


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def resize_long_side(image: torch.Tensor, mask: torch.Tensor | None, long_side: float) -> Pair:
    """Scale so the long side is ``long_side`` (aspect kept); the mask follows with nearest neighbour."""
    h, w = image.shape[-2:]
    f = long_side / max(h, w)
    size = [max(1, round(h * f)), max(1, round(w * f))]
    out_image = F.resize(image, size, antialias=True)
    out_mask = F.resize(mask, size) if mask is not None else mask
    return out_image, out_mask  # type: ignore[return-value]


def random_crop(image: torch.Tensor, mask: torch.Tensor, size: int, cat_max_ratio: float = 1.0) -> Pair:
    """A ``size`` square crop (smaller where the image is); with ``cat_max_ratio`` < 1, up to 10 draws
    that keep one class from covering more than that share of the crop's labelled pixels (mmseg's rule)."""
    h, w = image.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top = left = 0
    for _ in range(CAT_MAX_TRIES):
        top = int(torch.randint(0, h - ch + 1, ()))
        left = int(torch.randint(0, w - cw + 1, ()))
        if cat_max_ratio >= 1.0:
            break
        crop = mask[..., top : top + ch, left : left + cw]
        counts = torch.bincount(crop.flatten().long(), minlength=256)[:SEGMENTATION_IGNORE_INDEX]
        counts = counts[counts > 0]
        if len(counts) > 1 and float(counts.max()) / float(counts.sum()) < cat_max_ratio:
            break
    return F.crop(image, top, left, ch, cw), F.crop(mask, top, left, ch, cw)  # type: ignore[return-value]


def pad_to(image: torch.Tensor, mask: torch.Tensor, size: int) -> Pair:
    """Pad right and bottom to at least ``size`` x ``size``: image with 0, mask with 255 (ignore)."""
    h, w = image.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return image, mask  # type: ignore[return-value]
    return (
        F.pad(image, [0, 0, pw, ph], fill=0),  # type: ignore[return-value]
        F.pad(mask, [0, 0, pw, ph], fill=SEGMENTATION_IGNORE_INDEX),
    )


class SegTrainTransform:
    """The config's steps in order, then a crop and pad to ``input_size`` wherever the steps left the
    image another size, then float + normalise. Returns ``(image float (3, S, S), mask int64 (S, S))``."""

    def __init__(self, spec: SegDataSpec) -> None:
        self.spec = spec
        self.size = spec.input_size
        self.steps: Sequence[SegAugmentStep] = list(spec.augment)
        self.normalize = v2.Normalize(list(spec.normalize_mean), list(spec.normalize_std))
        self.jitters = {
            i: v2.ColorJitter(s.brightness, s.contrast, s.saturation, s.hue)
            for i, s in enumerate(self.steps)
            if s.name == "photometric_distortion"
        }

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img, msk = tv_tensors.Image(image), tv_tensors.Mask(mask)
        resized = False
        for i, step in enumerate(self.steps):
            if step.name == "random_resize":
                base = self.spec.scale or max(img.shape[-2:])
                img, msk = resize_long_side(img, msk, base * _uniform(*step.ratio_range))
                resized = True
            elif step.name == "random_crop":
                img, msk = random_crop(img, msk, self.size, step.cat_max_ratio)
            elif step.name == "horizontal_flip":
                if float(torch.rand(())) < step.p:
                    img, msk = F.horizontal_flip(img), F.horizontal_flip(msk)  # type: ignore[assignment]
            elif step.name == "vertical_flip":
                if float(torch.rand(())) < step.p:
                    img, msk = F.vertical_flip(img), F.vertical_flip(msk)  # type: ignore[assignment]
            elif step.name == "photometric_distortion":
                img = self.jitters[i](img)
            elif step.name == "pad":
                img, msk = pad_to(img, msk, self.size)
        if not resized and self.spec.scale is not None:
            img, msk = resize_long_side(img, msk, self.spec.scale)
        if img.shape[-2:] != (self.size, self.size):
            img, msk = random_crop(img, msk, self.size)
            img, msk = pad_to(img, msk, self.size)
        out = self.normalize(F.to_dtype(img, torch.float32, scale=True))
        return out.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor).long()


class SegEvalTransform:
    """Resize to ``scale`` (long side) when set, float, normalise; the mask stays at its own size, so
    metrics are counted on the labelled pixels as drawn."""

    def __init__(self, scale: int | None, mean: Sequence[float], std: Sequence[float]) -> None:
        self.scale = scale
        self.normalize = v2.Normalize(list(mean), list(std))

    def image(self, image: torch.Tensor) -> torch.Tensor:
        img = tv_tensors.Image(image)
        if self.scale is not None:
            img = F.resize(img, _long_side_size(img.shape[-2:], self.scale), antialias=True)
        out = self.normalize(F.to_dtype(img, torch.float32, scale=True))
        return out.as_subclass(torch.Tensor)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image(image), mask.long()


def _long_side_size(hw: Sequence[int], long_side: int) -> list[int]:
    h, w = int(hw[0]), int(hw[1])
    f = long_side / max(h, w)
    return [max(1, round(h * f)), max(1, round(w * f))]
