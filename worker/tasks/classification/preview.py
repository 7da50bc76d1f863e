"""A classification run's training transforms on a few of its images, labelled with their class."""

from __future__ import annotations

import random
from typing import Any

import torch

from backend.jobs.kinds import AugmentPreviewConfig
from backend.tasks.classification import ClassificationConfig
from worker.context import JobContext
from worker.data import classification_samples, read_image, train_transform
from worker.jobs.common import owned_dataset
from worker.previews import save_preview, to_pil


def classification_preview(
    ctx: JobContext, job: AugmentPreviewConfig, config: ClassificationConfig
) -> dict[str, Any]:
    root, canonical = owned_dataset(ctx, config.data.dataset_id)
    samples, _ = classification_samples(root, canonical, ["train"])
    if not samples:
        raise ValueError(f"config.data.dataset_id: dataset {config.data.dataset_id} has no train images")
    rng = random.Random(job.seed)  # noqa: S311 - which images to show, not a secret
    chosen = rng.sample(samples, min(job.count, len(samples)))
    torch.manual_seed(job.seed)
    mean, std = config.data.normalize_mean, config.data.normalize_std
    transform = train_transform(config.data.augment, config.data.input_size, mean, std)
    images = []
    for index, sample in enumerate(chosen):
        ctx.check()
        artifact_id = save_preview(ctx, index, to_pil(transform(read_image(sample.path)), mean, std))
        label = canonical.classes[sample.label]
        images.append({"artifact_id": artifact_id, "label": label, "source": sample.path.name})
        ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
    return {"images": images}
