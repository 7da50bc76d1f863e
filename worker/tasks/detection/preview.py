"""A detection run's training transform at its scales on a few images: boxes and masks drawn together,
labelled with the objects kept and those the transform dropped."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from PIL import Image

from backend.jobs.kinds import AugmentPreviewConfig
from backend.tasks.detection import DetectionConfig
from worker.context import JobContext
from worker.jobs.common import owned_dataset
from worker.previews import save_preview


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


def detection_preview(ctx: JobContext, job: AugmentPreviewConfig, config: DetectionConfig) -> dict[str, Any]:
    """Image, boxes and masks through the training transform at the run's scales, drawn together; the
    label counts the objects kept and those the transform dropped."""
    from backend.specs.catalog import get_entry
    from worker.tasks.detection.data import DetectionDataset, detection_samples
    from worker.tasks.detection.runtime import resolve_options
    from worker.tasks.detection.transforms import DetTrainTransform
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
        artifact_id = save_preview(ctx, index, _draw_objects(image, target, list(canonical.classes)))
        kept, dropped = len(target["labels"]), int(target.get("dropped", 0))
        label = f"{kept} object{'s' if kept != 1 else ''}" + (f", {dropped} dropped" if dropped else "")
        images.append({"artifact_id": artifact_id, "label": label, "source": dataset.samples[i].path.name})
        ctx.progress((index + 1) / len(chosen), f"image {index + 1}/{len(chosen)}")
    return {"images": images}
