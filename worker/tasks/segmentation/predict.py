"""Segmentation of one picture by a trained model: the class mask as a palette PNG (VOC colours, the
studio's VOC export palette) and the mask blended over the picture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from backend.datasets.export import VOC_PALETTE, voc_colormap
from backend.specs.catalog import get_entry
from worker.models import LoadedModel
from worker.tasks.segmentation.inference import InferenceSettings, segment_logits
from worker.tasks.segmentation.transforms import SegEvalTransform

OVERLAY_ALPHA = 0.5


@dataclass
class MaskPrediction:
    mask: Image.Image  # mode "P", the picture's size, value i = class_names[i]
    overlay: Image.Image  # RGB, the picture with the classes painted on
    classes: list[dict[str, Any]]  # classes present: index, name, pixels, share


def settings_of(loaded: LoadedModel) -> InferenceSettings:
    inf = loaded.inference
    return InferenceSettings(
        mode=str(inf.get("mode", "whole")),
        crop_size=int(inf.get("crop_size") or loaded.input_size),
        stride=inf.get("stride"),
        flip=bool(inf.get("flip", False)),
        multiple=get_entry(loaded.architecture).input_multiple,
    )


def image_tensor(loaded: LoadedModel, image: Image.Image) -> torch.Tensor:
    """The picture as the model's ``(1, 3, H, W)`` input, as evaluation prepares it."""
    scale = loaded.inference.get("scale")
    transform = SegEvalTransform(scale, loaded.normalize["mean"], loaded.normalize["std"])
    return transform.image(pil_to_tensor(image.convert("RGB"))).unsqueeze(0)


def mask_logits(loaded: LoadedModel, image: Image.Image) -> torch.Tensor:
    """Logits ``(1, C, H, W)`` at the picture's size."""
    x = image_tensor(loaded, image)
    with loaded.lock, torch.inference_mode():
        return segment_logits(loaded.model, x, settings_of(loaded), (image.height, image.width)).float()


def palette_mask(classes: np.ndarray) -> Image.Image:
    mask = Image.fromarray(classes.astype(np.uint8), mode="P")
    mask.putpalette(VOC_PALETTE)
    return mask


def mask_overlay(image: Image.Image, classes: np.ndarray, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """Class colours blended over the picture where a class (not background) was found."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = voc_colormap()[classes].astype(np.float32)
    painted = classes[..., None] > 0
    out = np.where(painted, (1 - alpha) * rgb + alpha * colours, rgb)
    return Image.fromarray(out.round().astype(np.uint8))


def predict_mask(loaded: LoadedModel, image: Image.Image) -> MaskPrediction:
    image = image.convert("RGB")
    classes = mask_logits(loaded, image)[0].argmax(0).numpy().astype(np.uint8)
    counts = np.bincount(classes.ravel(), minlength=loaded.num_classes)
    total = max(1, int(classes.size))
    present = [
        {"index": i, "name": loaded.class_names[i], "pixels": int(n), "share": int(n) / total}
        for i, n in enumerate(counts.tolist())
        if n > 0
    ]
    return MaskPrediction(palette_mask(classes), mask_overlay(image, classes), present)
