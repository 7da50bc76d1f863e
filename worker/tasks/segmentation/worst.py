"""The worst images of an evaluation, drawn for the dashboard: for each, the true and the predicted class
masks (palette PNGs, value = the model's output index) and both painted over the picture.

The masks are predicted again with the weights that are kept, and each image's IoU is taken from that
prediction, so the figure shown beside a pair of masks is the one they give."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from backend.files import atomic_write_bytes
from worker.tasks.segmentation.data import SegmentationDataset
from worker.tasks.segmentation.inference import InferenceSettings, segment_logits
from worker.tasks.segmentation.metrics import IGNORE_INDEX, confusion_matrix, scores
from worker.tasks.segmentation.predict import mask_overlay, palette_mask
from worker.training.worst import WORST_DIR, png_bytes


def render_worst(
    model: torch.nn.Module,
    dataset: SegmentationDataset,
    image_ids: list[int],
    settings: InferenceSettings,
    num_classes: int,
    folder: Path,
    device: torch.device | str = "cpu",
    lookup: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Predict ``image_ids`` of ``dataset`` (its eval transform) and write their four PNGs under
    ``folder/worst/<image id>/``. ``lookup`` maps the dataset's mask values to the model's outputs.

    Answers ``[{"image_id", "iou", "files": {suffix: path}}]`` in the order given."""
    index = {image_id: i for i, image_id in enumerate(dataset.image_ids)}
    out: list[dict[str, Any]] = []
    was_training = model.training
    model.eval()
    try:
        for image_id in image_ids:
            i = index.get(image_id)
            if i is None:
                continue
            image, mask = dataset[i]
            target = lookup[mask] if lookup is not None else mask.to(torch.int64)
            with torch.inference_mode():
                logits = segment_logits(
                    model, image.unsqueeze(0).to(device), settings, (int(mask.shape[-2]), int(mask.shape[-1]))
                )
            pred = logits[0].argmax(0).cpu()
            iou = scores(confusion_matrix(pred, target, num_classes))["iou"]
            value = float(iou.nanmean()) if bool((~iou.isnan()).any()) else math.nan
            picture = Image.open(dataset.samples[i].path).convert("RGB")
            true_np = target.numpy().astype(np.uint8)
            pred_np = pred.numpy().astype(np.uint8)
            shown_true = np.where(true_np == IGNORE_INDEX, 0, true_np)  # ignore is not painted
            if picture.size != (true_np.shape[1], true_np.shape[0]):
                picture = picture.resize((true_np.shape[1], true_np.shape[0]))
            images = {
                "true_mask.png": palette_mask(true_np),
                "pred_mask.png": palette_mask(pred_np),
                "true.png": mask_overlay(picture, shown_true),
                "pred.png": mask_overlay(picture, pred_np),
            }
            files: dict[str, Path] = {}
            for suffix, img in images.items():
                path = folder / WORST_DIR / str(image_id) / suffix
                atomic_write_bytes(path, png_bytes(img))
                files[suffix] = path
            out.append({"image_id": image_id, "iou": value, "files": files})
    finally:
        model.train(was_training)
    out.sort(key=lambda w: -math.inf if math.isnan(w["iou"]) else w["iou"])
    return out
