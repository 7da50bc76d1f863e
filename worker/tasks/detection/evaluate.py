"""Evaluation of a detector on one split: the same data, inference and metrics as training's validation
(COCO bbox / segm numbers, per class, PR curves, confusion at IoU 0.5, worst images), and every
detection and object behind those figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from backend.models.evaluation import Item
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


def measure_split(
    model: torch.nn.Module,
    dataset: DetectionDataset,
    metrics: DetectionMetrics,
    lookup: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    check: Callable[[], None] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, Any], list[Item]]:
    """Every image of ``dataset`` through ``model`` (in eval mode) into ``metrics``: its results, and
    each detection and object of the split (:meth:`DetectionMetrics.items`). ``lookup`` maps the
    dataset's labels to the model's."""
    loader = eval_loader(dataset, BATCH_SIZE)
    n = len(loader)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i, (images, targets) in enumerate(loader):
                if check is not None:
                    check()
                if lookup is not None:
                    for target in targets:
                        target["labels"] = lookup[target["labels"]]
                outputs = model([image.to(device) for image in images])
                metrics.update([{k: v.cpu() for k, v in o.items()} for o in outputs], targets)
                if progress is not None:
                    progress((i + 1) / n, f"batch {i + 1}/{n}")
    finally:
        shutdown_loaders(loader)
        model.train(was_training)
    return metrics.compute(), metrics.items()


def evaluate_detection(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], int, list[Item]]:
    """Metrics of ``loaded`` on ``split``; returns them, the number of images and the items."""
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
    with loaded.lock:
        results, items = measure_split(
            loaded.model,
            dataset,
            metrics,
            lookup,
            check=ctx.check,
            progress=lambda f, m: ctx.progress(f * 0.9, m),
        )
    results["negative_images"] = dataset.negatives
    return results, len(dataset), items
