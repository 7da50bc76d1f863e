"""The train job for semantic segmentation: the same Trainer, callbacks, checkpoints, resume and model
record as classification; what differs is the data (image + mask), the loss, the metrics (mIoU, mDice,
aAcc, per class, worst images) and how validation runs the model (whole image or sliding windows)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from backend.specs.catalog import get_entry
from backend.specs.config import SegmentationConfig
from worker.context import JobContext
from worker.engine.callbacks import CancelCheck, Checkpointer, Evaluator, MetricsLogger, ProgressReporter
from worker.jobs.train import (
    TRAIN_SPAN,
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
from worker.metrics.segmentation import SegmentationMetrics
from worker.optim import build_optimizer, build_scheduler
from worker.segmentation.data import build_segmentation_data, output_classes
from worker.segmentation.inference import InferenceSettings, segment_logits
from worker.segmentation.losses import SegmentationLoss
from worker.segmentation.worst import attach_kept, attach_worst, keep_rendered, render_worst
from worker.zoo import build_model, count_params

METRICS = ("mIoU", "mDice", "mAcc", "aAcc")


def inference_settings(config: SegmentationConfig) -> InferenceSettings:
    spec = config.inference
    return InferenceSettings(
        mode=spec.mode,
        crop_size=spec.crop_size or config.data.input_size,
        stride=spec.stride,
        flip=spec.flip,
        multiple=get_entry(config.model.architecture).input_multiple,
    )


class SegmentInfer:
    """``Trainer.evaluate``'s forward pass: logits at the label's size by the configured inference."""

    def __init__(self, settings: InferenceSettings) -> None:
        self.settings = settings

    def __call__(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        size = (int(targets.shape[-2]), int(targets.shape[-1]))
        return segment_logits(model, images, self.settings, size)


def train_segmentation(ctx: JobContext, config: SegmentationConfig) -> dict[str, Any]:
    """Train, then record the model (``model.pt`` carries its inference settings)."""
    started = time.monotonic()
    done = existing_model(ctx.job_id)
    if done is not None and done.status == "ready":
        attach_kept(ctx, done.id)  # stopped between recording the model and attaching its worst images
        return {"model_id": done.id, "resumed": "model already recorded", "metrics": done.metrics}
    rt, sched = config.runtime, config.schedule
    if rt.best_metric not in METRICS:
        raise ValueError(f"runtime.best_metric: choose one of {', '.join(METRICS)}, not {rt.best_metric!r}")
    ds = load_dataset(config.data.dataset_id, ctx.owner_id)
    class_names = output_classes(ds.canonical)
    if len(class_names) < 2:
        raise ValueError(f"data.dataset_id: dataset {ds.id} has no classes to segment")
    device = resolve_device(rt.device)
    seed_everything(rt.seed, rt.deterministic)
    data = build_segmentation_data(
        ds.root, ds.canonical, config.data, seed=rt.seed, pin_memory=device.type == "cuda"
    )
    model = build_model(config.model.architecture, len(class_names), config.model.options)
    notes: dict[str, Any] = {}
    if config.model.load_from is not None:
        notes = start_weights(model, config.model.load_from.model_id, ctx.owner_id, config.model.architecture)
    model.to(device)
    loss_fn = SegmentationLoss(config.loss, len(class_names)).to(device)
    optimizer = build_optimizer(model, sched)
    steps_per_epoch = max(1, -(-len(data.train_loader) // sched.accumulate))
    if sched.iterations is not None:
        total_steps = -(-sched.iterations // sched.accumulate)
    else:
        total_steps = (sched.epochs or 1) * steps_per_epoch
    scheduler = build_scheduler(optimizer, sched, total_steps, steps_per_epoch)
    settings = inference_settings(config)

    callbacks: list[Any] = [
        CancelCheck(ctx),
        MetricsLogger(ctx, rt.log_interval),
        Checkpointer(ctx, ctx.work_dir, rt.checkpoint_interval, rt.best_metric),
        ProgressReporter(ctx, span=TRAIN_SPAN),
    ]
    if data.val_loader is not None and data.val is not None:
        metrics = SegmentationMetrics(class_names, device, image_ids=data.val.image_ids)
        callbacks.append(
            Evaluator(ctx, data.val_loader, metrics, rt.eval_interval, infer=SegmentInfer(settings))
        )
    fitted = fit(ctx, model, optimizer, loss_fn, scheduler, device, data, callbacks, sched, rt)
    weights, best_metrics = fitted.weights, fitted.best_metrics
    worst: list[dict[str, Any]] = []
    if data.val is not None and best_metrics.get("worst_images"):
        ctx.progress(TRAIN_SPAN[1], "drawing the worst validation images", force=True)
        model.load_state_dict(weights)
        worst = render_worst(
            model,
            data.val,
            [w["image_id"] for w in best_metrics["worst_images"]],
            settings,
            len(class_names),
            ctx.work_dir,
            device,
        )
        keep_rendered(ctx, worst)
    summary = run_summary(
        fitted, rt, data, worst_images=[{"image_id": w["image_id"], "iou": w["iou"]} for w in worst]
    )
    inference = {
        "mode": settings.mode,
        "crop_size": settings.crop_size,
        "stride": settings.stride,
        "flip": settings.flip,
        "scale": config.data.scale,
    }
    model_id = record_model(
        ctx,
        config,
        ds,
        class_names,
        weights,
        summary,
        params=count_params(model),
        flops=count_flops(model, config.data.input_size, device),
        best_checkpoint=fitted.checkpoint,
        inference=inference,
    )
    attach_worst(ctx.owner_id, ctx.job_id, model_id, worst)
    return run_result(fitted, rt, model_id, started, device, notes, worst_images=summary["worst_images"])
