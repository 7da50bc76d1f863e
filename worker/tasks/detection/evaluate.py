"""Evaluation of a detector on one split: the same data, inference and metrics as training's validation
(COCO bbox / segm numbers, per class, PR curves, confusion at IoU 0.5, worst images)."""

from __future__ import annotations

from typing import Any

import torch

from worker.context import JobContext
from worker.models import LoadedModel
from worker.tasks.detection.data import DetectionDataset, eval_loader
from worker.tasks.detection.metrics import DetectionMetrics
from worker.tasks.detection.predict import thresholds
from worker.tasks.detection.transforms import DetEvalTransform
from worker.training.recipe import DatasetInfo, shutdown_loaders

BATCH_SIZE = 4


def label_lookup(dataset_classes: list[str], model_classes: list[str]) -> torch.Tensor:
    """Dataset category id (1-based) to the model's label (1-based); the model must know every class."""
    table = torch.zeros(len(dataset_classes) + 1, dtype=torch.int64)
    for i, name in enumerate(dataset_classes):
        if name not in model_classes:
            raise ValueError(f"dataset_id: the model does not know the dataset's class {name!r}")
        table[i + 1] = model_classes.index(name) + 1
    return table


def evaluate_detection(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], int]:
    """Metrics of ``loaded`` on ``split``; returns them and the number of images."""
    masks = loaded.task == "instance_segmentation"
    dataset = DetectionDataset(
        ds.root, ds.canonical, [split], DetEvalTransform(), masks=masks, training=False
    )
    if len(dataset) == 0:
        raise ValueError(f"split: dataset {ds.id} has no images in its {split} split")
    lookup = label_lookup(list(ds.canonical.classes), loaded.class_names)
    score_min, mask_min = thresholds(loaded)
    metrics = DetectionMetrics(
        loaded.class_names, masks=masks, score_threshold=score_min, mask_threshold=mask_min
    )
    loader = eval_loader(dataset, BATCH_SIZE)
    n = len(loader)
    try:
        with loaded.lock, torch.inference_mode():
            for i, (images, targets) in enumerate(loader):
                ctx.check()
                for target in targets:
                    target["labels"] = lookup[target["labels"]]
                metrics.update(loaded.model(images), targets)
                ctx.progress((i + 1) / n * 0.9, f"batch {i + 1}/{n}")
    finally:
        shutdown_loaders(loader)
    results = metrics.compute()
    results["negative_images"] = dataset.negatives
    return results, len(dataset)
