"""Evaluation of a segmentation model on one split: the same inference and metrics as training's
validation (mIoU, mDice, mAcc, aAcc, per class, confusion matrix, worst images)."""

from __future__ import annotations

from typing import Any

import torch

from worker.context import JobContext
from worker.data import make_loader
from worker.models import LoadedModel
from worker.tasks.segmentation.data import SegmentationDataset
from worker.tasks.segmentation.inference import segment_logits
from worker.tasks.segmentation.metrics import IGNORE_INDEX, SegmentationMetrics
from worker.tasks.segmentation.predict import settings_of
from worker.tasks.segmentation.transforms import SegEvalTransform
from worker.tasks.segmentation.worst import render_worst
from worker.training.recipe import DatasetInfo, shutdown_loaders
from worker.training.worst import attach_worst


def class_lookup(dataset_classes: list[str], model_classes: list[str]) -> torch.Tensor:
    """Mask value (0 background, i + 1 dataset class i, 255 ignore) to the model's output index."""
    table = torch.full((256,), IGNORE_INDEX, dtype=torch.int64)
    table[0] = 0
    for i, name in enumerate(dataset_classes):
        if name not in model_classes:
            raise ValueError(f"dataset_id: the model does not know the dataset's class {name!r}")
        table[i + 1] = model_classes.index(name)
    return table


def evaluate_segmentation(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], int]:
    """Metrics of ``loaded`` on ``split``; returns them and the number of images."""
    norm = loaded.normalize
    dataset = SegmentationDataset(
        ds.root,
        ds.canonical,
        [split],
        SegEvalTransform(loaded.inference.get("scale"), norm["mean"], norm["std"]),
    )
    if len(dataset) == 0:
        raise ValueError(f"split: dataset {ds.id} has no images in its {split} split")
    lookup = class_lookup(list(ds.canonical.classes), loaded.class_names)
    metrics = SegmentationMetrics(loaded.class_names, image_ids=dataset.image_ids)
    settings = settings_of(loaded)
    loader = make_loader(dataset, batch_size=1, shuffle=False, workers=0, seed=0)
    total_loss, n = 0.0, len(loader)
    try:
        with torch.inference_mode():
            for i, (image, mask) in enumerate(loader):
                ctx.check()
                target = lookup[mask]
                logits = segment_logits(
                    loaded.model, image, settings, (int(mask.shape[-2]), int(mask.shape[-1]))
                )
                if (target != IGNORE_INDEX).any():
                    total_loss += float(
                        torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
                    )
                metrics.update(logits, target)
                ctx.progress((i + 1) / n * 0.95, f"image {i + 1}/{n}")
    finally:
        shutdown_loaders(loader)
    out = {**metrics.compute(), "loss": total_loss / max(1, n)}
    ctx.progress(0.96, "drawing the worst images")
    rendered = render_worst(
        loaded.model,
        dataset,
        [w["image_id"] for w in out.get("worst_images", [])],
        settings,
        loaded.num_classes,
        ctx.work_dir,
        lookup=lookup,
    )
    # The job's own files (the model's dashboard shows its training's): found through the job.
    out["worst_images"] = attach_worst(ctx.owner_id, ctx.job_id, None, rendered)
    return out, len(dataset)
