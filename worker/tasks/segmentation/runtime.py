"""Semantic segmentation's runtime: images and class masks, the segmenters of the zoo, a weighted sum of
loss terms, mIoU / mDice / aAcc per class, validation over the whole image or sliding windows, and the
worst validation images drawn with their true and predicted masks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch import nn

from backend.jobs.kinds import AugmentPreviewConfig, PredictConfig
from backend.specs.catalog import CatalogEntry, get_entry
from backend.tasks.segmentation import SEGMENTATION_METRICS, SegmentationConfig
from worker.context import JobContext
from worker.models import LoadedModel
from worker.tasks.protocol import Finished, Plan
from worker.tasks.segmentation.data import build_segmentation_data, output_classes
from worker.tasks.segmentation.inference import InferenceSettings, segment_logits
from worker.tasks.segmentation.losses import SegmentationLoss
from worker.tasks.segmentation.metrics import SegmentationMetrics
from worker.tasks.segmentation.worst import render_worst
from worker.training.recipe import TRAIN_SPAN, DatasetInfo, Fitted
from worker.zoo import build_model

if TYPE_CHECKING:
    from worker.cam import CamOutput
    from worker.serving.answer import Picture


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


class SegmentationRuntime:
    def build_model(
        self, entry: CatalogEntry, num_classes: int, options: dict[str, Any], pretrained: bool
    ) -> nn.Module:
        from worker.zoo.segmentation import build_segmentation

        if pretrained:
            raise ValueError(
                f"{entry.name}: no pretrained weights are loaded; start from a model (load_from)"
            )
        return build_segmentation(entry, num_classes, options)

    def plan(
        self, ctx: JobContext, config: SegmentationConfig, ds: DatasetInfo, device: torch.device
    ) -> Plan:
        best = config.runtime.best_metric
        if best not in SEGMENTATION_METRICS:
            raise ValueError(
                f"runtime.best_metric: choose one of {', '.join(SEGMENTATION_METRICS)}, not {best!r}"
            )
        class_names = output_classes(ds.canonical)
        if len(class_names) < 2:
            raise ValueError(f"data.dataset_id: dataset {ds.id} has no classes to segment")
        data = build_segmentation_data(
            ds.root, ds.canonical, config.data, seed=config.runtime.seed, pin_memory=device.type == "cuda"
        )
        model = build_model(config.model.architecture, len(class_names), config.model.options)
        settings = inference_settings(config)
        metrics = None
        if data.val_loader is not None and data.val is not None:
            metrics = SegmentationMetrics(class_names, device, image_ids=data.val.image_ids)
        return Plan(
            config=config,
            class_names=class_names,
            data=data,
            model=model,
            flops_size=config.data.input_size,
            loss=SegmentationLoss(config.loss, len(class_names)),
            metrics=metrics,
            infer=SegmentInfer(settings),
            # model.pt carries how to run the model over a whole image
            inference={
                "mode": settings.mode,
                "crop_size": settings.crop_size,
                "stride": settings.stride,
                "flip": settings.flip,
                "scale": config.data.scale,
            },
        )

    def finish(self, ctx: JobContext, plan: Plan, fitted: Fitted, device: torch.device) -> Finished:
        data, best_metrics = plan.data, fitted.best_metrics
        worst: list[dict[str, Any]] = []
        if data.val is not None and best_metrics.get("worst_images"):
            ctx.progress(TRAIN_SPAN[1], "drawing the worst validation images", force=True)
            plan.model.load_state_dict(fitted.weights)
            worst = render_worst(
                plan.model,
                data.val,
                [w["image_id"] for w in best_metrics["worst_images"]],
                inference_settings(plan.config),
                len(plan.class_names),
                ctx.work_dir,
                device,
            )
        kept = [{"image_id": w["image_id"], "iou": w["iou"]} for w in worst]
        items = []
        if data.val is not None:
            from worker.tasks.segmentation.evaluate import measure_split

            ctx.progress(TRAIN_SPAN[1], "listing the validation images behind each figure", force=True)
            plan.model.load_state_dict(fitted.weights)
            _, items = measure_split(
                plan.model,
                data.val,
                plan.class_names,
                inference_settings(plan.config),
                device=device,
                check=ctx.check,
            )
        return Finished(
            summary={"worst_images": kept}, result={"worst_images": kept}, drawn=worst, items=items
        )

    def evaluate(
        self, ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from worker.tasks.segmentation.evaluate import evaluate_segmentation

        results, images, items = evaluate_segmentation(ctx, loaded, ds, split)
        return results, {"images": images, "items": items}

    def predict_split(self, ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
        from worker.jobs.common import owned_dataset
        from worker.tasks.segmentation.predict_split import predict_segmentation_split

        folder, ds = owned_dataset(ctx, cfg.dataset_id)
        return predict_segmentation_split(ctx, cfg, loaded, folder, ds)

    def answer(self, loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
        from worker.tasks.segmentation.serve import answer_pictures

        return answer_pictures(loaded, pictures)

    def explain(
        self,
        loaded: LoadedModel,
        image: Image.Image,
        target_class: str | None,
        target_layer: str | None,
        **detector: Any,
    ) -> CamOutput:
        from worker.cam import segmentation_cam

        return segmentation_cam(loaded, image, target_class, target_layer)

    def preview(
        self, ctx: JobContext, job: AugmentPreviewConfig, config: SegmentationConfig
    ) -> dict[str, Any]:
        from worker.tasks.segmentation.preview import segmentation_preview

        return segmentation_preview(ctx, job, config)


RUNTIME = SegmentationRuntime()
