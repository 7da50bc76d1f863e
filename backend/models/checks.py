"""Checks of the model jobs (evaluate, predict, CAM, export) against the caller's models and datasets."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from backend.auth.scope import owned
from backend.db.tables import TrainedModel, User
from backend.specs.checks import field_error, owned_dataset, owned_model, require_task, split_images
from backend.tasks import TASKS

if TYPE_CHECKING:
    from backend.db.tables import Dataset
    from backend.jobs.kinds import (
        CamConfig,
        EvaluateConfig,
        ExportConfig,
        ImportModelConfig,
        PredictConfig,
    )


def _model_and_split(
    session: Session, owner: User, model_id: int, dataset_id: int, split: str
) -> tuple[TrainedModel, Dataset]:
    model = owned_model(session, owner, model_id, ("model_id",))
    dataset = owned_dataset(session, owner, dataset_id, ("dataset_id",))
    require_task(dataset, model.task, ("dataset_id",))
    if split_images(dataset, split) == 0:
        raise field_error(
            ("split",), f"dataset {dataset.id} has no images in its {split} split", kind="empty"
        )
    return model, dataset


def _target_class(model: TrainedModel, target: str | None) -> None:
    if target is not None and target not in model.class_names:
        raise field_error(
            ("target_class",),
            f"model {model.id} has no class {target!r} (classes: {', '.join(model.class_names)})",
        )


def _explainable(model: TrainedModel) -> None:
    """Grad-CAM explains a classifier's class score or a segmenter's class region; a detector's outputs
    (boxes after non-maximum suppression) have no such score to take gradients of."""
    spec = TASKS.get(model.task)
    if spec is not None and spec.explain is not None:
        raise field_error(
            ("model_id",),
            f"model {model.id} is a {spec.title.lower()} model: {spec.explain}",
            kind="unsupported",
        )


def check_evaluate(session: Session, owner: User, config: EvaluateConfig) -> None:
    """Metrics only mean something on the classes the model was trained on, in the same order."""
    model, dataset = _model_and_split(session, owner, config.model_id, config.dataset_id, config.split)
    trained_on = list(model.class_names)
    spec = TASKS.get(model.task)
    if spec is not None and spec.background and trained_on[:1] == ["_background_"]:
        trained_on = trained_on[1:]  # output 0 is background, which a dataset does not list
    if list(dataset.classes) != trained_on:
        raise field_error(
            ("dataset_id",),
            f"dataset {dataset.id} has classes [{', '.join(dataset.classes)}]; model {model.id} was trained "
            f"on [{', '.join(model.class_names)}]",
        )


def check_predict(session: Session, owner: User, config: PredictConfig) -> None:
    _model_and_split(session, owner, config.model_id, config.dataset_id, config.split)


def check_cam(session: Session, owner: User, config: CamConfig) -> None:
    model, _ = _model_and_split(session, owner, config.model_id, config.dataset_id, config.split)
    _explainable(model)
    _target_class(model, config.target_class)


def check_export(session: Session, owner: User, config: ExportConfig) -> None:
    owned_model(session, owner, config.model_id, ("model_id",))


def check_cam_request(
    model: TrainedModel,
    target_class: str | None,
    target_box: list[float] | None = None,
    method: str | None = None,
) -> None:
    """What a single-image Grad-CAM asks of the model, checked before it goes to the inference lane."""
    _explainable(model)
    _target_class(model, target_class)
    spec = TASKS.get(model.task)
    methods = spec.cam_methods if spec is not None else ()
    for field, given in (("target_box", target_box), ("method", method)):
        if given is not None and not methods:
            raise field_error(
                (field,), f"model {model.id} is a {model.task} model: only a detector's map takes a {field}"
            )
    if method is not None and method not in methods:
        raise field_error(("method",), f"{method!r} is not one of {', '.join(methods)}")


def box_text(box: list[float]) -> str:
    """A box as ``"x1,y1,x2,y2"``, what :func:`parse_box` reads (a URL, a header, a cache key)."""
    return ",".join(f"{v:g}" for v in box)


def parse_box(text: str | None, field: str = "target_box") -> list[float] | None:
    """``"x1,y1,x2,y2"`` (the picture's pixels) as four numbers; a 422 naming ``field`` otherwise."""
    if text is None or not text.strip():
        return None
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
        raise field_error((field,), f"{text!r} is not a box: give x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    return box


def check_import(session: Session, owner: User, config: ImportModelConfig) -> None:
    row = session.scalars(
        owned(TrainedModel, owner.id).where(TrainedModel.id == config.model_id)
    ).one_or_none()
    if row is None:
        raise field_error(("model_id",), f"model {config.model_id} not found", status=404, code="not_found")
