"""The validation images a detector did worst on (most missed objects), drawn for the dashboard with the
kept weights' detections above the score threshold; their labels are the dataset's own drawing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from backend.files import atomic_write_bytes
from worker.tasks.detection.data import DetectionDataset
from worker.tasks.detection.predict import Detections, detection_overlay
from worker.training.worst import WORST_DIR, png_bytes


def render_detection_worst(
    model: torch.nn.Module,
    dataset: DetectionDataset,
    image_ids: list[int],
    class_names: list[str],
    score_threshold: float,
    folder: Path,
    device: torch.device | str = "cpu",
    mask_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Detect ``image_ids`` of ``dataset`` and write ``folder/worst/<image id>/pred.png`` for each.

    Answers ``[{"image_id", "iou": None, "files": {"pred.png": path}}]`` in the order given."""
    index = {image_id: i for i, image_id in enumerate(dataset.image_ids)}
    was_training = model.training
    model.eval()
    out: list[dict[str, Any]] = []
    try:
        for image_id in image_ids:
            i = index.get(image_id)
            if i is None:
                continue
            image, _ = dataset[i]
            with torch.inference_mode():
                found = model([image.to(device)])[0]
            keep = found["scores"] >= score_threshold
            masks = None
            if "masks" in found:
                masks = (found["masks"][keep, 0] >= mask_threshold).cpu().numpy()
            detections = Detections(
                boxes=found["boxes"][keep].float().cpu().numpy(),
                scores=found["scores"][keep].float().cpu().numpy(),
                labels=found["labels"][keep].cpu().numpy() - 1,
                masks=masks,
            )
            with Image.open(dataset.samples[i].path) as opened:
                picture = opened.convert("RGB")
            path = folder / WORST_DIR / str(image_id) / "pred.png"
            atomic_write_bytes(path, png_bytes(detection_overlay(picture, detections, class_names)))
            out.append({"image_id": image_id, "iou": None, "files": {"pred.png": path}})
    finally:
        model.train(was_training)
    return out
