"""A classifier on one split: top-1 / top-5 accuracy, per-class precision, recall and F1, the confusion
matrix and the mean cross-entropy, with the dataset's labels mapped to the model's class order."""

from __future__ import annotations

from typing import Any

import torch

from worker.context import JobContext
from worker.data import ClassificationDataset, eval_transform, make_loader
from worker.models import LoadedModel
from worker.tasks.classification.metrics import ClassificationMetrics
from worker.training.recipe import DatasetInfo, resolve_device, shutdown_loaders

BATCH_SIZE = 64


def evaluate_classification(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metrics, and what the report adds (the images skipped: not single-label)."""
    class_names = loaded.class_names
    foreign = [c for c in ds.canonical.classes if c not in class_names]
    if foreign:
        raise ValueError(
            f"dataset_id: dataset {ds.id} has classes the model does not know: {', '.join(foreign)}"
        )
    # Labels in the model's class order, whatever the dataset's order.
    remap = [class_names.index(c) for c in ds.canonical.classes]
    device = resolve_device("auto")
    model = loaded.model.to(device).eval()
    norm = loaded.normalize
    dataset = ClassificationDataset(
        ds.root, ds.canonical, [split], eval_transform(loaded.input_size, norm["mean"], norm["std"])
    )
    if len(dataset) == 0:
        raise ValueError(f"split: dataset {ds.id} has no single-label images in its {split} split")
    loader = make_loader(dataset, batch_size=BATCH_SIZE, shuffle=False, workers=0, seed=0)
    metrics = ClassificationMetrics(class_names, device)
    to_model = torch.tensor(remap, device=device)
    total_loss, seen, n_batches = 0.0, 0, len(loader)
    try:
        with torch.inference_mode():
            for i, (images, labels) in enumerate(loader):
                ctx.check()
                logits = model(images.to(device))
                target = to_model[labels.to(device)]
                total_loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                seen += len(target)
                metrics.update(logits, target)
                ctx.progress((i + 1) / n_batches * 0.95, f"batch {i + 1}/{n_batches}")
    finally:
        shutdown_loaders(loader)
    return {**metrics.compute(), "loss": total_loss / max(1, seen)}, {"skipped_images": dataset.skipped}
