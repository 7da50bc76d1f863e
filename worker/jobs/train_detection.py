"""The train job for object detection and instance segmentation: the same Trainer, callbacks,
checkpoints, resume and model record as the other tasks. What differs: the data (images with boxes,
masks, negatives), the loss (the detector's own, summed by ``DetectionStep``), the metrics (COCO mAP per
class, PR curves, confusion, worst images) and the options resolved from the dataset (image sizes and
anchors) before the model is built."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from backend.specs.catalog import CatalogEntry, get_entry
from backend.specs.checks import detection_metrics
from backend.specs.config import DetectionConfig
from worker.context import JobContext
from worker.detection.data import (
    DetectionData,
    DetectionDataset,
    DetSample,
    detection_samples,
    eval_loader,
    train_loader,
)
from worker.detection.transforms import DetEvalTransform, DetTrainTransform
from worker.detection.worst import render_detection_worst
from worker.engine.callbacks import (
    Callback,
    CancelCheck,
    Checkpointer,
    Evaluator,
    MetricsLogger,
    ProgressReporter,
)
from worker.engine.checkpoint import load_file
from worker.jobs.train import (
    TRAIN_SPAN,
    DatasetInfo,
    count_flops,
    existing_model,
    fit,
    load_dataset,
    record_model,
    resolve_device,
    run_result,
    run_summary,
    seed_everything,
    start_weights,
)
from worker.metrics.detection import DetectionMetrics
from worker.optim import build_optimizer, build_scheduler
from worker.segmentation.worst import attach_kept, attach_worst, keep_rendered
from worker.zoo import build_model, count_params
from worker.zoo.detection import Detector, resolved_sizes


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


class LossPartsLogger(Callback):
    """Every ``interval`` iterations: the mean of each loss the detector reports (``train/loss_mask``...)."""

    order = 11

    def __init__(self, ctx: JobContext, step: DetectionStep, interval: int) -> None:
        self.ctx, self.step, self.interval = ctx, step, max(1, interval)

    def on_batch_end(self, trainer: Any, loss: torch.Tensor) -> None:
        if trainer.state.iteration % self.interval == 0:
            self._write(trainer)

    def on_epoch_end(self, trainer: Any) -> None:
        self._write(trainer)

    def _write(self, trainer: Any) -> None:
        means = {f"train/{k}": v for k, v in self.step.take_means().items() if math.isfinite(v)}
        if means:
            self.ctx.log_metrics(trainer.state.iteration, means)


def _no_loss(outputs: Any, targets: Any) -> None:
    """A detector in eval mode returns detections only: there is no validation loss."""
    return None


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


def train_detection(ctx: JobContext, config: DetectionConfig) -> dict[str, Any]:
    """Train a detector, then record the model (``model.pt`` carries its score and mask thresholds)."""
    started = time.monotonic()
    done = existing_model(ctx.job_id)
    if done is not None and done.status == "ready":
        attach_kept(ctx, done.id)  # stopped between recording the model and attaching its worst images
        return {"model_id": done.id, "resumed": "model already recorded", "metrics": done.metrics}
    rt, sched = config.runtime, config.schedule
    metric_names = detection_metrics(config.task)
    if rt.best_metric not in metric_names:
        raise ValueError(
            f"runtime.best_metric: choose one of {', '.join(metric_names)}, not {rt.best_metric!r}"
        )
    ds = load_dataset(config.data.dataset_id, ctx.owner_id)
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

    device = resolve_device(rt.device)
    seed_everything(rt.seed, rt.deterministic)
    data = build_detection_data(ds, config, scales, train_max, rt.seed, device.type == "cuda")
    model = build_model(
        config.model.architecture, len(class_names), options, pretrained=config.model.pretrained
    )
    assert isinstance(model, Detector)  # noqa: S101 - the zoo builds a Detector for these tasks
    model.set_normalize(config.data.normalize_mean, config.data.normalize_std)
    notes: dict[str, Any] = {}
    if config.model.load_from is not None:
        notes = start_weights(model, config.model.load_from.model_id, ctx.owner_id, config.model.architecture)
        model.set_normalize(config.data.normalize_mean, config.data.normalize_std)
    model.to(device)
    optimizer = build_optimizer(model, sched)
    steps_per_epoch = max(1, -(-len(data.train_loader) // sched.accumulate))
    if sched.iterations is not None:
        total_steps = -(-sched.iterations // sched.accumulate)
    else:
        total_steps = (sched.epochs or 1) * steps_per_epoch
    scheduler = build_scheduler(optimizer, sched, total_steps, steps_per_epoch)
    step = DetectionStep()
    last = ctx.work_dir / "last.pt"
    if last.exists():  # a resumed run keeps counting the boxes its first worker dropped
        step.dropped = int((load_file(last).get("extra") or {}).get("dropped_boxes", 0))
    ev = config.evaluation
    callbacks: list[Any] = [
        CancelCheck(ctx),
        MetricsLogger(ctx, rt.log_interval),
        LossPartsLogger(ctx, step, rt.log_interval),
        Checkpointer(
            ctx,
            ctx.work_dir,
            rt.checkpoint_interval,
            rt.best_metric,
            extra=lambda: {"dropped_boxes": step.dropped},
        ),
        ProgressReporter(ctx, span=TRAIN_SPAN),
    ]
    if data.val_loader is not None:
        metrics = DetectionMetrics(
            class_names,
            masks=config.task == "instance_segmentation",
            score_threshold=ev.score_threshold,
            mask_threshold=ev.mask_threshold,
        )
        callbacks.append(Evaluator(ctx, data.val_loader, metrics, rt.eval_interval))
    fitted = fit(
        ctx, model, optimizer, _no_loss, scheduler, device, data, callbacks, sched, rt, train_step=step
    )
    weights, best_metrics = fitted.weights, fitted.best_metrics
    drawn: list[dict[str, Any]] = []
    if data.val is not None and best_metrics.get("worst_images"):
        ctx.progress(TRAIN_SPAN[1], "drawing the worst validation images", force=True)
        model.load_state_dict(weights)
        drawn = render_detection_worst(
            model,
            data.val,
            [w["image_id"] for w in best_metrics["worst_images"]],
            class_names,
            ev.score_threshold,
            ctx.work_dir,
            device,
            ev.mask_threshold,
        )
        keep_rendered(ctx, drawn)
    summary = run_summary(
        fitted,
        rt,
        data,
        worst_images=best_metrics.get("worst_images", []),
        negative_images={
            "train": data.train.negatives,
            "val": data.val.negatives if data.val is not None else 0,
        },
        dropped_boxes=step.dropped,
        options=options,
    )
    inference = {"score_threshold": ev.score_threshold, "mask_threshold": ev.mask_threshold}
    model_id = record_model(
        ctx,
        config,
        ds,
        class_names,
        weights,
        summary,
        params=count_params(model),
        flops=count_flops(model, min_size, device),
        best_checkpoint=fitted.checkpoint,
        inference=inference,
    )
    attach_worst(ctx.owner_id, ctx.job_id, model_id, drawn)
    return run_result(
        fitted,
        rt,
        model_id,
        started,
        device,
        notes,
        worst_images=summary["worst_images"],
        negative_images=summary["negative_images"],
        dropped_boxes=step.dropped,
        options=options,
    )
