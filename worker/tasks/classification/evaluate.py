"""A classifier on one split: top-1 / top-5 accuracy, per-class precision, recall and F1, the confusion
matrix and the mean cross-entropy, with the dataset's labels mapped to the model's class order; and per
image its true and predicted class, confidence and loss (``backend.models.evaluation.Item``), the images
behind each cell of the figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from backend.models.evaluation import Item
from worker.context import JobContext
from worker.data import ClassificationDataset, eval_transform, make_loader
from worker.models import LoadedModel
from worker.tasks.classification.metrics import ClassificationMetrics
from worker.training.recipe import DatasetInfo, resolve_device, shutdown_loaders

BATCH_SIZE = 64


def classify_split(
    model: nn.Module,
    dataset: ClassificationDataset,
    class_names: list[str],
    device: torch.device,
    remap: list[int] | None = None,
    batch_size: int = BATCH_SIZE,
    check: Callable[[], None] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, Any], list[Item]]:
    """Every image of ``dataset`` (its eval transform, in order) through ``model``: the metrics, with
    ``loss`` the mean cross-entropy, and one item per image. ``remap`` maps the dataset's class indices
    to the model's."""
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=0, seed=0)
    metrics = ClassificationMetrics(class_names, device)
    to_model = torch.tensor(remap if remap is not None else range(len(dataset.classes)), device=device)
    items: list[Item] = []
    total_loss, n_batches = 0.0, len(loader)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i, (images, labels) in enumerate(loader):
                if check is not None:
                    check()
                logits = model(images.to(device)).float()
                target = to_model[labels.to(device)]
                losses = nn.functional.cross_entropy(logits, target, reduction="none")
                total_loss += float(losses.sum())
                metrics.update(logits, target)
                probs = logits.softmax(1)
                score, pred = probs.max(1)
                true_score = probs.gather(1, target[:, None])[:, 0]
                start = i * batch_size
                for k in range(len(target)):
                    items.append(
                        Item(
                            image_id=dataset.samples[start + k].image_id,
                            true_index=int(target[k]),
                            pred_index=int(pred[k]),
                            score=float(score[k]),
                            true_score=float(true_score[k]),
                            loss=float(losses[k]),
                        )
                    )
                if progress is not None:
                    progress((i + 1) / n_batches, f"batch {i + 1}/{n_batches}")
    finally:
        shutdown_loaders(loader)
        model.train(was_training)
    return {**metrics.compute(), "loss": total_loss / max(1, len(items))}, items


def evaluate_classification(
    ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
) -> tuple[dict[str, Any], dict[str, Any], list[Item]]:
    """The metrics, what the report adds (the images skipped: not single-label), and the items."""
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
    results, items = classify_split(
        model,
        dataset,
        class_names,
        device,
        remap,
        check=ctx.check,
        progress=lambda f, m: ctx.progress(f * 0.95, m),
    )
    return results, {"skipped_images": dataset.skipped}, items
