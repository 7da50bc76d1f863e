"""Detection of one picture or a dataset split by a trained detector: boxes (and masks) with scores, an
overlay with class names, and COCO-format results for a split.

One picture answers with the detections at or above the model's score threshold (set by the run's
``evaluation.score_threshold``); a split's COCO results keep every detection, as COCO evaluation wants."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype

from backend.datasets.canonical import CanonicalDataset
from backend.datasets.export import voc_colormap
from backend.files import atomic_write_bytes
from backend.jobs.kinds import PredictConfig
from backend.models.contract import ArtifactKind
from worker.context import JobContext
from worker.data import read_image
from worker.jobs.common import owned_dataset, record_artifact, split_records
from worker.models import LoadedModel
from worker.tasks.detection.metrics import _rles

OVERLAY_ALPHA = 0.45
BATCH_SIZE = 4


def thresholds(loaded: LoadedModel) -> tuple[float, float]:
    inf = loaded.inference
    return float(inf.get("score_threshold", 0.5)), float(inf.get("mask_threshold", 0.5))


@dataclass
class Detections:
    boxes: np.ndarray  # (N, 4) xyxy pixels
    scores: np.ndarray
    labels: np.ndarray  # 0-based index into class_names
    masks: np.ndarray | None  # (N, H, W) bool


def run_detector(loaded: LoadedModel, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The detector's raw outputs for float [0, 1] images (every score)."""
    with loaded.lock, torch.inference_mode():
        return list(loaded.model(images))


def detect(loaded: LoadedModel, image: Image.Image, min_score: float | None = None) -> Detections:
    """Detections in ``image`` at or above ``min_score`` (default: the model's score threshold)."""
    score_min, mask_min = thresholds(loaded)
    score_min = score_min if min_score is None else min_score
    x = to_dtype(pil_to_tensor(image.convert("RGB")), torch.float32, scale=True)
    out = run_detector(loaded, [x])[0]
    keep = out["scores"] >= score_min
    masks = None
    if "masks" in out:
        masks = (out["masks"][keep, 0] >= mask_min).numpy()
    return Detections(
        boxes=out["boxes"][keep].numpy(),
        scores=out["scores"][keep].numpy(),
        labels=out["labels"][keep].numpy() - 1,
        masks=masks,
    )


def detection_overlay(image: Image.Image, found: Detections, class_names: list[str]) -> Image.Image:
    """Masks tinted in their class colour, boxes outlined, ``name score`` above each box."""
    colours = voc_colormap()
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    if found.masks is not None:
        for mask, label in zip(found.masks, found.labels, strict=True):
            colour = colours[int(label) + 1].astype(np.float32)
            rgb[mask] = (1 - OVERLAY_ALPHA) * rgb[mask] + OVERLAY_ALPHA * colour
    out = Image.fromarray(rgb.round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width = max(1, round(min(out.size) / 200))
    for box, label, score in zip(found.boxes, found.labels, found.scores, strict=True):
        colour = tuple(int(c) for c in colours[int(label) + 1])
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        text = f"{class_names[int(label)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        lift = bottom - top + 2
        draw.rectangle([x1, y1 - lift, x1 + right - left + 2, y1], fill=colour)
        draw.text((x1 + 1, y1 - lift), text, fill=(255, 255, 255))
    return out


def detection_rows(found: Detections, class_names: list[str]) -> list[dict[str, Any]]:
    rows = []
    rles = _rles(torch.from_numpy(found.masks)) if found.masks is not None else None
    for j in range(len(found.scores)):
        x1, y1, x2, y2 = (round(float(v), 2) for v in found.boxes[j])
        row: dict[str, Any] = {
            "class": class_names[int(found.labels[j])],
            "index": int(found.labels[j]),
            "score": round(float(found.scores[j]), 4),
            "box": [x1, y1, x2, y2],
        }
        if rles is not None:
            row["mask"] = rles[j]
            row["mask_pixels"] = int(found.masks[j].sum()) if found.masks is not None else 0
        rows.append(row)
    return rows


class _Pictures(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, folder: Path, files: list[str]) -> None:
        self.folder, self.files = folder, files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_dtype(read_image(self.folder / self.files[i]), torch.float32, scale=True), i


def coco_results(
    ctx: JobContext, loaded: LoadedModel, folder: Path, ds: CanonicalDataset, split: str
) -> tuple[list[dict[str, Any]], int]:
    """COCO results (``image_id``, ``category_id`` of the dataset's categories, ``bbox`` xywh, ``score``,
    ``segmentation`` RLE for masks) for every detection in ``split``; and the number of images."""
    records = split_records(ds, split)
    category = {name: i + 1 for i, name in enumerate(ds.classes)}
    unknown = [c for c in loaded.class_names if c not in category]
    _, mask_min = thresholds(loaded)
    loader = DataLoader(
        _Pictures(folder, [r.file_name for r in records]),
        batch_size=BATCH_SIZE,
        num_workers=1,
        collate_fn=lambda b: ([x[0] for x in b], [x[1] for x in b]),
    )
    results: list[dict[str, Any]] = []
    done = 0
    for images, positions in loader:
        ctx.check()
        for out, pos in zip(run_detector(loaded, images), positions, strict=True):
            rles = _rles(out["masks"][:, 0] >= mask_min) if "masks" in out else None
            for j in range(len(out["scores"])):
                name = loaded.class_names[int(out["labels"][j]) - 1]
                x1, y1, x2, y2 = (float(v) for v in out["boxes"][j])
                row: dict[str, Any] = {
                    "image_id": records[pos].id,
                    "category_id": category.get(name, 0),
                    "category_name": name,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(out["scores"][j]), 5),
                }
                if rles is not None:
                    row["segmentation"] = rles[j]
                results.append(row)
        done += len(images)
        ctx.progress(done / max(1, len(records)), f"{done}/{len(records)} images")
    if unknown:
        ctx.progress(
            1.0, f"classes the dataset does not have (category_id 0): {', '.join(unknown)}", force=True
        )
    return results, len(records)


def predict_detection_split(ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
    """The batch predict job for a detector: ``detections.json`` (COCO results format) as an artifact."""
    folder, ds = owned_dataset(ctx, cfg.dataset_id)
    started = time.monotonic()
    results, images = coco_results(ctx, loaded, folder, ds, cfg.split)
    path = ctx.work_dir / "detections.json"
    atomic_write_bytes(path, json.dumps(results).encode())
    artifact = record_artifact(
        ctx,
        kind=ArtifactKind.predictions,
        name=path.name,
        path=path,
        media_type="application/json",
        model_id=cfg.model_id,
    )
    score_min, _ = thresholds(loaded)
    ctx.progress(1.0, f"{images} images, {len(results)} detections", force=True)
    return {
        "model_id": cfg.model_id,
        "split": cfg.split,
        "images": images,
        "detections": len(results),
        "detections_above_threshold": sum(r["score"] >= score_min for r in results),
        "score_threshold": score_min,
        "artifact_ids": [artifact],
        "seconds": round(time.monotonic() - started, 3),
    }
