"""Object detection's and instance segmentation's runtime: images with boxes (and masks, and negatives),
the detectors of the zoo with their own losses (summed by ``DetectionStep``), COCO mAP per class, PR curves,
confusion and the worst images; the options a detector takes from the dataset (image sizes, anchors) are
decided before it is built, and recorded in the run's config."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from backend.jobs.kinds import AugmentPreviewConfig, PredictConfig
from backend.specs.catalog import CatalogEntry, get_entry
from backend.tasks.detection import DetectionConfig, detection_metrics
from worker.context import JobContext
from worker.engine.callbacks import LossPartsLogger
from worker.engine.checkpoint import load_file
from worker.models import LoadedModel
from worker.tasks.detection.data import (
    DetectionData,
    DetectionDataset,
    DetSample,
    detection_samples,
    eval_loader,
    train_loader,
)
from worker.tasks.detection.metrics import DetectionMetrics
from worker.tasks.detection.transforms import DetEvalTransform, DetTrainTransform
from worker.tasks.detection.worst import render_detection_worst
from worker.tasks.protocol import Finished, Plan
from worker.training.recipe import TRAIN_SPAN, DatasetInfo, Fitted
from worker.zoo import build_model
from worker.zoo.detection import Detector, resolved_sizes

if TYPE_CHECKING:
    from worker.cam import CamOutput
    from worker.serving.answer import Picture


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def resolve_options(
    entry: CatalogEntry, options: Mapping[str, Any], samples: Sequence[DetSample]
) -> dict[str, Any]:
    """The run's options with every "0: from the dataset" value decided from the training images:
    ``min_size`` the median short side (a multiple of 32, at most the entry's default size), ``max_size``
    1333/800 of it, ``anchor_size`` the largest power of two at most the 10th percentile of object sides
    after that resize (8 to 128): the smallest anchors then still fit inside the small objects."""
    known = {o.name: o.default for o in entry.options}
    out = {**known, **options}
    if "min_size" in out and not out["min_size"]:
        shorts = [min(s.width, s.height) for s in samples] or [entry.default_input_size]
        out["min_size"] = min(entry.default_input_size, _round_to(float(np.median(shorts)), 32))
    if "max_size" in out and not out["max_size"]:
        out["max_size"] = resolved_sizes(entry, out)[1]
    if "anchor_size" in out and not out["anchor_size"]:
        sides = [
            math.sqrt(max(o.box[2] - o.box[0], 0.0) * max(o.box[3] - o.box[1], 0.0))
            * out["min_size"]
            / min(s.width, s.height)
            for s in samples
            for o in s.objects
            if not o.crowd
        ]
        small = float(np.percentile(sides, 10)) if sides else 32.0
        out["anchor_size"] = int(min(128, max(8, 2 ** math.floor(math.log2(max(small, 1.0))))))
    return out


class DetectionStep:
    """``Trainer``'s train step for detectors: the sum of the detector's losses. Keeps the parts (for
    logging) and counts the boxes the augmentation dropped."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.dropped = 0

    def __call__(
        self, model: nn.Module, images: list[torch.Tensor], targets: list[dict[str, Any]]
    ) -> torch.Tensor:
        for target in targets:
            self.dropped += int(target.pop("dropped", 0))
        losses: dict[str, torch.Tensor] = model(images, targets)
        for name, value in losses.items():
            self.parts.setdefault(name, []).append(value.detach())
        return sum(losses.values(), torch.zeros((), device=images[0].device))

    def take_means(self) -> dict[str, float]:
        means = {k: float(torch.stack(v).float().mean()) for k, v in self.parts.items() if v}
        self.parts.clear()
        return means


def build_detection_data(
    ds: DatasetInfo,
    config: DetectionConfig,
    scales: Sequence[int],
    max_size: int,
    seed: int,
    pin_memory: bool,
) -> DetectionData:
    spec = config.data
    masks = config.task == "instance_segmentation"
    transform = DetTrainTransform(spec.augment, scales, max_size, spec.min_box_size)
    train = DetectionDataset(ds.root, ds.canonical, ["train"], transform, masks=masks, training=True)
    if len(train) == 0:
        raise ValueError(f"data.dataset_id: dataset {ds.id} has no images in its train split")
    val = DetectionDataset(ds.root, ds.canonical, ["val"], DetEvalTransform(), masks=masks, training=False)
    loader = train_loader(train, spec.batch_size, spec.workers, seed, spec.group_aspect_ratio, pin_memory)
    if len(val) == 0:
        return DetectionData(train, None, loader, None)
    return DetectionData(train, val, loader, eval_loader(val, spec.batch_size))


class DetectionRuntime:
    def build_model(
        self, entry: CatalogEntry, num_classes: int, options: dict[str, Any], pretrained: bool
    ) -> nn.Module:
        from worker.zoo import pretrained_state
        from worker.zoo.detection import build_detection, load_backbone_weights

        detector = build_detection(entry, num_classes, options)
        if pretrained:
            if not entry.pretrained_weights:
                raise ValueError(f"{entry.name} has no pretrained backbone weights the studio can load")
            load_backbone_weights(detector, entry, pretrained_state(entry.pretrained_weights))
        return detector

    def plan(self, ctx: JobContext, config: DetectionConfig, ds: DatasetInfo, device: torch.device) -> Plan:
        rt = config.runtime
        metric_names = detection_metrics(config.task)
        if rt.best_metric not in metric_names:
            raise ValueError(
                f"runtime.best_metric: choose one of {', '.join(metric_names)}, not {rt.best_metric!r}"
            )
        class_names = list(ds.canonical.classes)
        if not class_names:
            raise ValueError(f"data.dataset_id: dataset {ds.id} has no classes to detect")
        entry = get_entry(config.model.architecture)
        if entry.task != config.task:
            raise ValueError(f"model.architecture: {entry.name} is a {entry.task} model, not {config.task}")
        samples = detection_samples(ds.root, ds.canonical, ["train"])
        options = resolve_options(entry, config.model.options, samples)
        min_size, max_size = resolved_sizes(entry, options)
        scales = list(config.data.scales or [min_size])
        train_max = config.data.max_size or max(max_size, max(scales))
        # The recorded config holds what was decided from the dataset, so the model rebuilds the same way.
        config = config.model_copy(
            update={
                "model": config.model.model_copy(update={"options": options}),
                "data": config.data.model_copy(update={"scales": scales, "max_size": train_max}),
            }
        )
        data = build_detection_data(ds, config, scales, train_max, rt.seed, device.type == "cuda")
        model = build_model(
            config.model.architecture, len(class_names), options, pretrained=config.model.pretrained
        )
        assert isinstance(model, Detector)  # noqa: S101 - the zoo builds a Detector for these tasks
        mean, std = config.data.normalize_mean, config.data.normalize_std
        model.set_normalize(mean, std)
        step = DetectionStep()
        last = ctx.work_dir / "last.pt"
        if last.exists():  # a resumed run keeps counting the boxes its first worker dropped
            step.dropped = int((load_file(last).get("extra") or {}).get("dropped_boxes", 0))
        ev = config.evaluation
        metrics = None
        if data.val_loader is not None:
            metrics = DetectionMetrics(
                class_names,
                masks=config.task == "instance_segmentation",
                score_threshold=ev.score_threshold,
                mask_threshold=ev.mask_threshold,
            )
        return Plan(
            config=config,
            class_names=class_names,
            data=data,
            model=model,
            flops_size=min_size,
            train_step=step,
            metrics=metrics,
            callbacks=[LossPartsLogger(ctx, step, rt.log_interval)],
            checkpoint_extra=lambda: {"dropped_boxes": step.dropped},
            inference={"score_threshold": ev.score_threshold, "mask_threshold": ev.mask_threshold},
            # load_from's weights carry their own normalisation buffers: this run's comes back on top
            after_load_from=lambda: model.set_normalize(mean, std),
        )

    def finish(self, ctx: JobContext, plan: Plan, fitted: Fitted, device: torch.device) -> Finished:
        config, data, best_metrics = plan.config, plan.data, fitted.best_metrics
        ev = config.evaluation
        drawn: list[dict[str, Any]] = []
        if data.val is not None and best_metrics.get("worst_images"):
            ctx.progress(TRAIN_SPAN[1], "drawing the worst validation images", force=True)
            plan.model.load_state_dict(fitted.weights)
            drawn = render_detection_worst(
                plan.model,
                data.val,
                [w["image_id"] for w in best_metrics["worst_images"]],
                plan.class_names,
                ev.score_threshold,
                ctx.work_dir,
                device,
                ev.mask_threshold,
            )
        assert isinstance(plan.train_step, DetectionStep)  # noqa: S101 - set by plan()
        dropped = plan.train_step.dropped
        negatives = {"train": data.train.negatives, "val": data.val.negatives if data.val is not None else 0}
        options = config.model.options
        recorded = {
            "worst_images": best_metrics.get("worst_images", []),
            "negative_images": negatives,
            "dropped_boxes": dropped,
            "options": options,
        }
        items = []
        if data.val is not None and plan.metrics is not None:
            from worker.tasks.detection.evaluate import measure_split

            ctx.progress(TRAIN_SPAN[1], "listing the validation objects behind each figure", force=True)
            plan.model.load_state_dict(fitted.weights)
            plan.metrics.reset()
            _, items = measure_split(plan.model, data.val, plan.metrics, device=device, check=ctx.check)
        return Finished(summary=recorded, result=dict(recorded), drawn=drawn, items=items)

    def evaluate(
        self, ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from worker.tasks.detection.evaluate import evaluate_detection

        results, images, items = evaluate_detection(ctx, loaded, ds, split)
        return results, {"images": images, "items": items}

    def predict_split(self, ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
        from worker.tasks.detection.predict import predict_detection_split

        return predict_detection_split(ctx, cfg, loaded)

    def answer(self, loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
        from worker.tasks.detection.serve import answer_pictures

        return answer_pictures(loaded, pictures)

    def explain(
        self,
        loaded: LoadedModel,
        image: Image.Image,
        target_class: str | None,
        target_layer: str | None,
        **detector: Any,
    ) -> CamOutput:
        """Grad-CAM of one detection's score (``box``, default: the top one), or EigenCAM of the whole
        picture (``method="eigencam"``, and where the model finds nothing)."""
        from worker.tasks.detection.cam import detection_cam

        return detection_cam(
            loaded, image, target_class, target_layer, box=detector.get("box"), method=detector.get("method")
        )

    def preview(self, ctx: JobContext, job: AugmentPreviewConfig, config: DetectionConfig) -> dict[str, Any]:
        from worker.tasks.detection.preview import detection_preview

        return detection_preview(ctx, job, config)


RUNTIME = DetectionRuntime()
