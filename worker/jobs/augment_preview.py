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
from backend.specs.config import (
    ClassificationConfig,
    DetectionConfig,
    SegmentationConfig,
    parse_train_config,
)
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
    if isinstance(config, DetectionConfig):
        return _detection_preview(ctx, job, config)
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


def _draw_objects(image: torch.Tensor, target: dict[str, Any], class_names: list[str]) -> Image.Image:
    """A float [0, 1] image with its objects: masks tinted, boxes outlined, class names above."""
    from PIL import ImageDraw

    from backend.datasets.export import voc_colormap

    colours = voc_colormap()
    rgb = image.clamp(0, 1).mul(255).permute(1, 2, 0).numpy().astype(np.float32)
    labels = [int(v) for v in target["labels"]]
    masks = target.get("masks")
    if masks is not None:
        for mask, label in zip(masks.bool().numpy(), labels, strict=True):
            rgb[mask] = 0.5 * rgb[mask] + 0.5 * colours[label].astype(np.float32)
    out = Image.fromarray(rgb.round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for box, label in zip(target["boxes"].tolist(), labels, strict=True):
        colour = tuple(int(c) for c in colours[label])
        draw.rectangle(box, outline=colour, width=max(1, round(min(out.size) / 200)))
        draw.text((box[0] + 2, box[1] + 1), class_names[label - 1], fill=colour)
    return out


def _detection_preview(ctx: JobContext, job: AugmentPreviewConfig, config: DetectionConfig) -> dict[str, Any]:
    """Image, boxes and masks through the training transform at the run's scales, drawn together; the
    label counts the objects kept and those the transform dropped."""
    from backend.specs.catalog import get_entry
    from worker.detection.data import DetectionDataset, detection_samples
    from worker.detection.transforms import DetTrainTransform
    from worker.jobs.train_detection import resolve_options
    from worker.zoo.detection import resolved_sizes

    root, canonical = owned_dataset(ctx, config.data.dataset_id)
    entry = get_entry(config.model.architecture)
    samples = detection_samples(root, canonical, ["train"])
    if not samples:
        raise ValueError(f"config.data.dataset_id: dataset {config.data.dataset_id} has no train images")
    min_size, max_size = resolved_sizes(entry, resolve_options(entry, config.model.options, samples))
    scales = list(config.data.scales or [min_size])
    spec = config.data
    transform = DetTrainTransform(
        spec.augment, scales, spec.max_size or max(max_size, *scales), spec.min_box_size
    )
    dataset = DetectionDataset(
        root, canonical, ["train"], transform, masks=config.task == "instance_segmentation", training=True
    )
    rng = random.Random(job.seed)  # noqa: S311 - which images to show, not a secret
    chosen = rng.sample(range(len(dataset)), min(job.count, len(dataset)))
    torch.manual_seed(job.seed)
    images = []
    for index, i in enumerate(chosen):
        ctx.check()
        image, target = dataset[i]
        picture = _draw_objects(image, target, list(canonical.classes))
        path = ctx.work_dir / f"preview_{index}.png"
        picture.save(path, format="PNG")
        artifact_id = record_artifact(
            ctx, kind=ArtifactKind.preview, name=path.name, path=path, media_type="image/png"
        )
        kept, dropped = len(target["labels"]), int(target.get("dropped", 0))
        label = f"{kept} object{'s' if kept != 1 else ''}" + (f", {dropped} dropped" if dropped else "")
        images.append({"artifact_id": artifact_id, "label": label, "source": dataset.samples[i].path.name})
        ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
    return {"images": images}
