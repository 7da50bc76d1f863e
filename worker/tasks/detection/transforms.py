"""Joint transforms of an image and its objects (transforms v2 on ``tv_tensors``): multi-scale resize, a
random crop that keeps boxes valid, zoom-out, flips and photometric distortion for training; none for
evaluation (the detector resizes by itself). Boxes that leave the picture or shrink below a minimum are
dropped with their labels and masks by ``SanitizeBoundingBoxes``; the caller counts them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import get_bounding_boxes, query_size

from backend.tasks.detection import DetAugmentStep

Target = dict[str, Any]


class RandomCropKeepingBoxes(v2.Transform):
    """Crop a random window (each side ``min_scale``..1 of the image's) that keeps at least one object
    whole enough; boxes are clipped to the window, and a box left with less than ``min_visible`` of its
    area is made empty so that sanitising drops it (with its label and mask). Up to ten windows are
    tried; an image whose objects no window keeps is left as it is."""

    def __init__(self, min_scale: float = 0.5, min_visible: float = 0.3, p: float = 1.0) -> None:
        super().__init__()
        self.min_scale, self.min_visible, self.p = min_scale, min_visible, p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = query_size(flat_inputs)
        if float(torch.rand(())) >= self.p:
            return {}
        boxes = get_bounding_boxes(flat_inputs)
        xyxy = torch.as_tensor(boxes).reshape(-1, 4).float()
        areas = (xyxy[:, 2] - xyxy[:, 0]).clamp(min=0) * (xyxy[:, 3] - xyxy[:, 1]).clamp(min=0)
        for _ in range(10):
            scale = self.min_scale + (1 - self.min_scale) * torch.rand(2)
            h, w = max(1, int(height * float(scale[0]))), max(1, int(width * float(scale[1])))
            top = int(torch.randint(0, height - h + 1, ()))
            left = int(torch.randint(0, width - w + 1, ()))
            visible = _visible_share(xyxy, areas, left, top, w, h)
            keep = visible >= self.min_visible
            if len(xyxy) == 0 or bool(keep.any()):
                return {"top": top, "left": left, "height": h, "width": w, "keep": keep}
        return {}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params:
            return inpt
        box = (params["top"], params["left"], params["height"], params["width"])
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            out = F.clamp_bounding_boxes(F.crop(inpt, *box))
            lost = ~params["keep"]
            if lost.any():
                out = out.clone()
                out[lost, 2] = out[lost, 0]  # zero width: SanitizeBoundingBoxes drops it
            return out
        if isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return F.crop(inpt, *box)
        return inpt


def _visible_share(
    xyxy: torch.Tensor, areas: torch.Tensor, left: int, top: int, w: int, h: int
) -> torch.Tensor:
    x1 = xyxy[:, 0].clamp(left, left + w)
    y1 = xyxy[:, 1].clamp(top, top + h)
    x2 = xyxy[:, 2].clamp(left, left + w)
    y2 = xyxy[:, 3].clamp(top, top + h)
    inside = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    return inside / areas.clamp(min=1e-6)


def _step(step: DetAugmentStep) -> v2.Transform:
    if step.name == "horizontal_flip":
        return v2.RandomHorizontalFlip(step.p)
    if step.name == "vertical_flip":
        return v2.RandomVerticalFlip(step.p)
    if step.name == "random_crop":
        return RandomCropKeepingBoxes(step.min_scale, step.min_visible, step.p)
    if step.name == "zoom_out":
        return v2.RandomZoomOut(
            fill={tv_tensors.Image: 114, "others": 0}, side_range=(1.0, step.max_zoom_out), p=step.p
        )
    if step.name == "photometric_distortion":
        return v2.RandomPhotometricDistort(
            brightness=(1 - step.brightness, 1 + step.brightness),
            contrast=(1 - step.contrast, 1 + step.contrast),
            saturation=(1 - step.saturation, 1 + step.saturation),
            hue=(-step.hue, step.hue),
            p=step.p,
        )
    raise ValueError(f"data.augment: unknown step {step.name!r}")


# Geometry first (zoom-out and crop at the source resolution, then the resize to a training scale), flips
# and colour last: the photometric step then works on the small, final image.
_ORDER = {
    "zoom_out": 0,
    "random_crop": 1,
    "horizontal_flip": 3,
    "vertical_flip": 3,
    "photometric_distortion": 4,
}


class DetTrainTransform:
    """``(image uint8 (3, H, W), target)`` to ``(image float [0, 1], target)`` with the training steps,
    a resize of the short side to one of ``scales`` (long side at most ``max_size``), and sanitising."""

    def __init__(
        self, steps: Sequence[DetAugmentStep], scales: Sequence[int], max_size: int, min_box_size: float
    ) -> None:
        ordered = sorted(steps, key=lambda s: _ORDER[s.name])
        geometry = [_step(s) for s in ordered if _ORDER[s.name] < 2]
        rest = [_step(s) for s in ordered if _ORDER[s.name] >= 2]
        self.pipeline = v2.Compose(
            [
                v2.ToImage(),
                *geometry,
                v2.RandomShortestSize(min_size=list(scales), max_size=max_size),
                *rest,
                v2.ClampBoundingBoxes(),
                v2.SanitizeBoundingBoxes(min_size=max(min_box_size, 1e-3)),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        out_image, out_target = self.pipeline(image, target)
        return out_image.as_subclass(torch.Tensor), out_target


class DetEvalTransform:
    """The image as float [0, 1] at its own size; the detector resizes it and maps its boxes back."""

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        return F.to_dtype(image, torch.float32, scale=True), target
