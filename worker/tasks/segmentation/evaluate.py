"""Evaluation of a segmentation model on one split: the same inference and metrics as training's
validation (mIoU, mDice, mAcc, aAcc, per class, confusion matrix, worst images), and the images behind
each cell and class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from backend.models.evaluation import Item
from worker.context import JobContext
from worker.data import make_loader
from worker.models import LoadedModel
from worker.tasks.segmentation.data import SegmentationDataset
from worker.tasks.segmentation.inference import InferenceSettings, segment_logits
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


def measure_split(
    model: torch.nn.Module,
    dataset: SegmentationDataset,
    class_names: list[str],
    settings: InferenceSettings,
    lookup: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    check: Callable[[], None] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, Any], list[Item]]:
    """Every image of ``dataset`` through ``model`` as validation infers it: the metrics (with ``loss``,
    the mean cross-entropy) and each image's part in each cell and class. ``lookup`` maps the dataset's
    mask values to the model's outputs."""
    metrics = SegmentationMetrics(class_names, device, image_ids=dataset.image_ids, keep_items=True)
    loader = make_loader(dataset, batch_size=1, shuffle=False, workers=0, seed=0)
    total_loss, n = 0.0, len(loader)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i, (image, mask) in enumerate(loader):
                if check is not None:
                    check()
                target = (lookup[mask] if lookup is not None else mask.to(torch.int64)).to(device)
                logits = segment_logits(
                    model, image.to(device), settings, (int(mask.shape[-2]), int(mask.shape[-1]))
                )
                if (target != IGNORE_INDEX).any():
                    total_loss += float(
                        torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
                    )
                metrics.update(logits, target)
                if progress is not None:
                    progress((i + 1) / n, f"image {i + 1}/{n}")
    finally:
        shutdown_loaders(loader)
        model.train(was_training)
    return {**metrics.compute(), "loss": total_loss / max(1, n)}, metrics.items


def evaluate_segmentation(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], int, list[Item]]:
    """Metrics of ``loaded`` on ``split``; returns them, the number of images and the items."""
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
    settings = settings_of(loaded)
    out, items = measure_split(
        loaded.model,
        dataset,
        loaded.class_names,
        settings,
        lookup,
        check=ctx.check,
        progress=lambda f, m: ctx.progress(f * 0.95, m),
    )
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
    return out, len(dataset), items
