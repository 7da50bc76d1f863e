"""Classification's runtime: images and their class, a classifier from the zoo, a cross-entropy (focal,
L1) loss, accuracy / precision / recall / F1 per class and the confusion matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch import nn

from backend.jobs.kinds import AugmentPreviewConfig, PredictConfig
from backend.specs.catalog import CatalogEntry
from backend.tasks.classification import ClassificationConfig
from worker.context import JobContext
from worker.data import build_classification_data
from worker.losses import build_loss
from worker.models import LoadedModel
from worker.tasks.classification.metrics import ClassificationMetrics
from worker.tasks.protocol import Finished, Plan
from worker.training.recipe import TRAIN_SPAN, DatasetInfo, Fitted
from worker.zoo import build_model

if TYPE_CHECKING:
    from worker.cam import CamOutput
    from worker.serving.answer import Picture


def _check_best_metric(config: ClassificationConfig, num_classes: int) -> None:
    available = ["accuracy/top1", "precision/macro", "recall/macro", "f1/macro"]
    if num_classes >= 5:
        available.append("accuracy/top5")
    if config.runtime.best_metric not in available:
        raise ValueError(
            f"runtime.best_metric: {config.runtime.best_metric!r} is not measured for this dataset; "
            f"choose one of {', '.join(available)}"
        )


class ClassificationRuntime:
    def build_model(
        self, entry: CatalogEntry, num_classes: int, options: dict[str, Any], pretrained: bool
    ) -> nn.Module:
        from worker.zoo import build_classifier

        return build_classifier(entry, num_classes, options, pretrained)

    def plan(
        self, ctx: JobContext, config: ClassificationConfig, ds: DatasetInfo, device: torch.device
    ) -> Plan:
        class_names = list(ds.canonical.classes)
        num_classes = len(class_names)
        if num_classes < 2:
            raise ValueError(
                f"data.dataset_id: dataset {ds.id} has {num_classes} class; classification needs 2+"
            )
        _check_best_metric(config, num_classes)
        data = build_classification_data(
            ds.root, ds.canonical, config.data, seed=config.runtime.seed, pin_memory=device.type == "cuda"
        )
        model = build_model(
            config.model.architecture, num_classes, config.model.options, pretrained=config.model.pretrained
        )
        metrics = ClassificationMetrics(class_names, device) if data.val_loader is not None else None
        return Plan(
            config=config,
            class_names=class_names,
            data=data,
            model=model,
            flops_size=config.data.input_size,
            loss=build_loss(config.loss, num_classes),
            metrics=metrics,
        )

    def finish(self, ctx: JobContext, plan: Plan, fitted: Fitted, device: torch.device) -> Finished:
        from worker.tasks.classification.evaluate import classify_split

        data = plan.data
        skipped: Any = data.train.skipped + (data.val.skipped if data.val is not None else 0)
        items = []
        if data.val is not None:
            ctx.progress(TRAIN_SPAN[1], "listing the validation images behind each figure", force=True)
            plan.model.load_state_dict(fitted.weights)
            # The val loader's batch size, so that each prediction is the one the kept metrics counted.
            _, items = classify_split(
                plan.model,
                data.val,
                plan.class_names,
                device,
                batch_size=data.val_loader.batch_size,
                check=ctx.check,
            )
        return Finished(summary={"skipped_images": skipped}, items=items)

    def evaluate(
        self, ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from worker.tasks.classification.evaluate import evaluate_classification

        results, report, items = evaluate_classification(ctx, loaded, ds, split)
        return results, {**report, "items": items}

    def predict_split(self, ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
        from worker.tasks.classification.predict import predict_classification_split

        return predict_classification_split(ctx, cfg, loaded)

    def answer(self, loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
        from worker.tasks.classification.serve import answer_pictures

        return answer_pictures(loaded, pictures)

    def explain(
        self,
        loaded: LoadedModel,
        image: Image.Image,
        target_class: str | None,
        target_layer: str | None,
        **detector: Any,
    ) -> CamOutput:
        from worker.cam import grad_cam

        return grad_cam(loaded, image, target_class, target_layer)

    def preview(
        self, ctx: JobContext, job: AugmentPreviewConfig, config: ClassificationConfig
    ) -> dict[str, Any]:
        from worker.tasks.classification.preview import classification_preview

        return classification_preview(ctx, job, config)


RUNTIME = ClassificationRuntime()
