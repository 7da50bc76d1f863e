"""The augmentation preview: a run config's training transforms applied to a few of its images."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from PIL import Image

from backend.datasets.canonical import IGNORE_INDEX
from backend.jobs.kinds import AugmentPreviewConfig
from backend.models.contract import ArtifactKind
from backend.specs.config import ClassificationConfig, SegmentationConfig, parse_train_config
from worker.context import JobContext
from worker.data import classification_samples, read_image, train_transform
from worker.jobs.common import owned_dataset, record_artifact
from worker.segmentation.data import SegmentationDataset
from worker.segmentation.predict import mask_overlay
from worker.segmentation.transforms import SegTrainTransform


def _to_pil(tensor: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Image.Image:
    """Undo the normalisation so the picture shows what the model will see."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    pixels = (tensor * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())


def run_augment_preview(ctx: JobContext) -> dict[str, Any]:
    job = AugmentPreviewConfig.model_validate(ctx.config)
    config = parse_train_config(job.config)
    if isinstance(config, SegmentationConfig):
        return _segmentation_preview(ctx, job, config)
    if not isinstance(config, ClassificationConfig):
        raise ValueError(f"config.task: the preview does not draw {config.task!r} pipelines yet")
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
        picture = _to_pil(transform(read_image(sample.path)), mean, std)
        path = ctx.work_dir / f"preview_{index}.png"
        picture.save(path, format="PNG")
        artifact_id = record_artifact(
            ctx, kind=ArtifactKind.preview, name=path.name, path=path, media_type="image/png"
        )
        label = canonical.classes[sample.label]
        images.append({"artifact_id": artifact_id, "label": label, "source": sample.path.name})
        ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
    return {"images": images}


def _segmentation_preview(
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
        picture = mask_overlay(_to_pil(image, mean, std), shown)
        path = ctx.work_dir / f"preview_{index}.png"
        picture.save(path, format="PNG")
        artifact_id = record_artifact(
            ctx, kind=ArtifactKind.preview, name=path.name, path=path, media_type="image/png"
        )
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
