"""A segmentation run's joint training transform on a few images, each crop shown with its mask painted
on and labelled with the classes it still holds."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from backend.datasets.canonical import IGNORE_INDEX
from backend.jobs.kinds import AugmentPreviewConfig
from backend.tasks.segmentation import SegmentationConfig
from worker.context import JobContext
from worker.jobs.common import owned_dataset
from worker.previews import save_preview, to_pil
from worker.tasks.segmentation.data import SegmentationDataset
from worker.tasks.segmentation.predict import mask_overlay
from worker.tasks.segmentation.transforms import SegTrainTransform


def segmentation_preview(
    ctx: JobContext, job: AugmentPreviewConfig, config: SegmentationConfig
) -> dict[str, Any]:
    """Image and mask through the joint training transform; the crop shown with its mask painted on
    (padding's ignore pixels left unpainted), labelled with the classes it still holds."""
    root, canonical = owned_dataset(ctx, config.data.dataset_id)
    dataset = SegmentationDataset(root, canonical, ["train"], SegTrainTransform(config.data))
    if len(dataset) == 0:
        raise ValueError(f"config.data.dataset_id: dataset {config.data.dataset_id} has no train images")
    rng = random.Random(job.seed)  # noqa: S311 - which images to show, not a secret
    chosen = rng.sample(range(len(dataset)), min(job.count, len(dataset)))
    torch.manual_seed(job.seed)
    mean, std = config.data.normalize_mean, config.data.normalize_std
    images = []
    for index, i in enumerate(chosen):
        ctx.check()
        image, mask = dataset[i]
        classes = mask.numpy().astype(np.uint8)
        shown = np.where(classes == IGNORE_INDEX, 0, classes)
        artifact_id = save_preview(ctx, index, mask_overlay(to_pil(image, mean, std), shown))
        present = [dataset.classes[v] for v in np.unique(shown).tolist() if 0 < v < len(dataset.classes)]
        images.append(
            {
                "artifact_id": artifact_id,
                "label": ", ".join(present) or "background only",
                "source": dataset.samples[i].path.name,
            }
        )
        ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
    return {"images": images}
