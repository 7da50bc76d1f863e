"""The images behind an evaluation's figures: each image's part in them (a classifier's image with its
true and predicted class, confidence and loss; a segmenter's pixels of one class painted as another, and
each class's IoU in each image; a detector's boxes with the objects they found, and its objects with the
score of the box that found them), written once when the evaluation runs (the training run's kept weights
on its val split, or an evaluate job) and read by ``GET /api/models/{id}/evaluation/images``, so that
opening a confusion-matrix cell, a class's errors or the highest-loss images is a query, not a pass over
the split."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from backend.datasets.service import image_summaries
from backend.db.session import session_scope
from backend.db.tables import Dataset, EvaluationItem, TrainedModel
from backend.errors import StudioError
from backend.models.checks import box_text
from backend.models.schemas import EvaluationImage, EvaluationImages
from backend.tasks import TASKS


class View(StrEnum):
    """Which images of an evaluation to list."""

    cell = "cell"  # true class i predicted as j (``true``, ``predicted``): most confident, largest first
    false_positives = "false_positives"  # predicted as ``class_name`` but another class, most confident first
    false_negatives = "false_negatives"  # of ``class_name`` but predicted as another, most confident first
    highest_loss = "highest_loss"  # every image, highest loss first
    lowest_iou = "lowest_iou"  # the images of ``class_name`` (in truth or predicted), its lowest IoU first
    detections = "detections"  # a detector's boxes of ``class_name`` scoring ``min_score`` or more
    missed = "missed"  # a detector's objects of ``class_name`` no box found at its threshold
    false_detections = "false_detections"  # its boxes of ``class_name`` where there is nothing


class Kind(StrEnum):
    """What one stored row counts."""

    image = "image"  # classification: an image with its true and predicted class (score: confidence)
    pixels = "pixels"  # segmentation: an image's pixels of class i painted as j (score: how many)
    klass = "class"  # segmentation: one class in one image (score: its IoU; detail: tp, fp, fn pixels)
    detection = "detection"  # a detector's box (score: its own; true: the object it found, None: nothing)
    missed = "missed"  # an object (score: that of the detection that found it; None: none did)


VIEW_KINDS: dict[View, tuple[Kind, ...]] = {
    View.cell: (Kind.image, Kind.pixels, Kind.detection, Kind.missed),
    View.false_positives: (Kind.image,),
    View.false_negatives: (Kind.image,),
    View.highest_loss: (Kind.image,),
    View.lowest_iou: (Kind.klass,),
    View.detections: (Kind.detection,),
    View.missed: (Kind.missed,),
    View.false_detections: (Kind.detection,),
}
SCORE_IS = {
    Kind.image: "confidence",
    Kind.pixels: "pixels",
    Kind.klass: "IoU",
    Kind.detection: "score",
    Kind.missed: "found at score",
}
BACKGROUND = "background"  # a detector's matrix: the row of false detections, the column of missed objects
DEFAULT_SCORE_THRESHOLD = 0.5


@dataclass
class Item:
    """One image's part in an evaluation, as the worker measured it (class indices in the model's order)."""

    image_id: int
    true_index: int | None
    pred_index: int | None
    score: float | None = None
    kind: str = Kind.image.value
    true_score: float | None = None
    loss: float | None = None
    detail: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def store_items(
    owner_id: int, model_id: int, job_id: int, dataset_id: int, split: str, items: list[Item]
) -> None:
    """Replace the evaluation's items (a re-delivered job writes them again) in one transaction."""
    with session_scope() as session:
        session.execute(delete(EvaluationItem).where(EvaluationItem.job_id == job_id))
        if not items:
            return
        session.execute(
            insert(EvaluationItem),
            [
                {
                    **item.row(),
                    "owner_id": owner_id,
                    "model_id": model_id,
                    "job_id": job_id,
                    "dataset_id": dataset_id,
                    "split": split,
                }
                for item in items
            ],
        )


def evaluations(session: Session, model: TrainedModel) -> list[int]:
    """The evaluations of ``model`` that kept their images, the training run's first, then newest first."""
    jobs = session.scalars(
        select(EvaluationItem.job_id)
        .where(EvaluationItem.model_id == model.id, EvaluationItem.owner_id == model.owner_id)
        .group_by(EvaluationItem.job_id)
        .order_by(EvaluationItem.job_id.desc())
    ).all()
    return sorted(jobs, key=lambda j: j != model.job_id)


def views(task: str) -> list[str]:
    spec = TASKS.get(task)
    return list(spec.explain_views) if spec is not None else []


def class_index(model: TrainedModel, field: str, name: str | None) -> int:
    """The model's index of class ``name``; a 422 naming ``field`` when it has none."""
    found = cell_class(model, field, name)
    assert found is not None  # noqa: S101 - None only where the background is asked for
    return found


def cell_class(model: TrainedModel, field: str, name: str | None, background: bool = False) -> int | None:
    """:func:`class_index`, and with ``background`` the matrix's ``background`` row and column (no
    object) as ``None``."""
    names = list(model.class_names or [])
    if name is None:
        raise StudioError(
            422, f"{field}: this view needs a class name", "invalid_field", extra={"field": field}
        )
    if name in names:
        return names.index(name)
    if background and name == BACKGROUND:
        return None
    choices = ", ".join([*names, BACKGROUND] if background else names)
    raise StudioError(
        422,
        f"{field}: {name!r} is not a class of model {model.id}; its classes: {choices}",
        "invalid_field",
        extra={"field": field},
    )


def score_threshold(model: TrainedModel) -> float:
    """The score a detector's box needs to count as predicted: the one its run kept (a text detector
    chooses it on validation), else its run's evaluation setting."""
    kept = (model.metrics or {}).get("score_threshold")
    if isinstance(kept, int | float) and not isinstance(kept, bool):
        return float(kept)
    found = (model.config or {}).get("evaluation", {})
    value = found.get("score_threshold") if isinstance(found, dict) else None
    return float(value) if isinstance(value, int | float) else DEFAULT_SCORE_THRESHOLD


def list_images(
    session: Session,
    model: TrainedModel,
    view: View,
    *,
    true: str | None = None,
    predicted: str | None = None,
    class_name: str | None = None,
    evaluation: int | None = None,
    min_score: float | None = None,
    offset: int = 0,
    limit: int = 24,
) -> EvaluationImages:
    """One page of the images behind a figure of ``model``'s evaluation (default: its training run's)."""
    allowed = views(model.task)
    if view.value not in allowed:
        raise StudioError(
            422,
            f"view: {view.value!r} is not offered for {model.task} models"
            + (f"; choose one of {', '.join(allowed)}" if allowed else ""),
            "invalid_field",
            extra={"field": "view"},
        )
    kept = evaluations(session, model)
    if evaluation is None:
        if not kept:
            raise StudioError(
                404,
                f"model {model.id} has no evaluation that kept its images: evaluate it again",
                "not_found",
            )
        evaluation = kept[0]
    elif evaluation not in kept:
        raise StudioError(
            404, f"evaluation: job {evaluation} kept no images of model {model.id}", "not_found"
        )
    here = set(
        session.scalars(
            select(EvaluationItem.kind).where(EvaluationItem.job_id == evaluation).distinct()
        ).all()
    )
    objects = Kind.detection.value in here or Kind.missed.value in here
    threshold = score_threshold(model) if min_score is None else min_score
    item = EvaluationItem
    q = select(item).where(item.job_id == evaluation, item.model_id == model.id)
    kinds = [k.value for k in VIEW_KINDS[view]]
    order: list[Any] = [item.score.desc()]
    if view is View.cell:
        i = cell_class(model, "true", true, background=objects)
        j = cell_class(model, "predicted", predicted, background=objects)
        if objects and j is None:  # objects no detection at the threshold found: none found first
            if i is None:
                raise StudioError(
                    422,
                    "predicted: the background cell holds nothing",
                    "invalid_field",
                    extra={"field": "true"},
                )
            kinds = [Kind.missed.value]
            q = q.where(item.true_index == i, item.score.is_(None) | (item.score < threshold))
            order = [item.score.is_(None).desc(), item.score]
        else:
            if objects:
                kinds = [Kind.detection.value]
                q = q.where(item.score >= threshold)
            q = q.where(
                item.true_index.is_(None) if i is None else item.true_index == i, item.pred_index == j
            )
    elif view is View.false_positives:
        c = class_index(model, "class_name", class_name)
        q = q.where(item.pred_index == c, item.true_index != c)
    elif view in (View.false_negatives, View.lowest_iou):
        c = class_index(model, "class_name", class_name)
        q = q.where(item.true_index == c)
        if view is View.false_negatives:
            q = q.where(item.pred_index != c)
        else:
            order = [item.score.is_(None), item.score]
    elif view is View.detections:
        c = class_index(model, "class_name", class_name)
        q = q.where(item.pred_index == c, item.score >= threshold)
    elif view is View.missed:
        c = class_index(model, "class_name", class_name)
        q = q.where(item.true_index == c, item.score.is_(None) | (item.score < threshold))
        order = [item.score.is_(None).desc(), item.score]
    elif view is View.false_detections:
        c = class_index(model, "class_name", class_name)
        q = q.where(item.true_index.is_(None), item.pred_index == c, item.score >= threshold)
    elif view is View.highest_loss:
        order = [item.loss.desc()]
    q = q.where(item.kind.in_(kinds))
    total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = session.scalars(q.order_by(*order, item.image_id, item.id).offset(offset).limit(limit)).all()
    first = session.scalars(select(item).where(item.job_id == evaluation).limit(1)).first()
    dataset_id = first.dataset_id if first is not None else None
    kind = next((Kind(k) for k in kinds if k in here), Kind(kinds[0]))
    return EvaluationImages(
        model_id=model.id,
        evaluation=evaluation,
        evaluations=kept,
        dataset_id=dataset_id,
        split=first.split if first is not None else None,
        view=view.value,
        score_is=SCORE_IS[kind],
        score_threshold=threshold if objects else None,
        total=total,
        offset=offset,
        limit=limit,
        images=_described(session, model, dataset_id, rows),
    )


def _described(
    session: Session, model: TrainedModel, dataset_id: int | None, rows: Any
) -> list[EvaluationImage]:
    dataset = (
        session.scalars(
            select(Dataset).where(Dataset.id == dataset_id, Dataset.owner_id == model.owner_id)
        ).first()
        if dataset_id is not None
        else None
    )
    images = (
        {s.id: s for s in image_summaries(dataset)}
        if dataset is not None and dataset.status == "ready"
        else {}
    )
    names = list(model.class_names or [])
    spec = TASKS.get(model.task)
    explained = spec is not None and spec.explain is None
    methods = spec.cam_methods if spec is not None else ()

    def name(index: int | None) -> str | None:
        return names[index] if index is not None and 0 <= index < len(names) else None

    def cam(image_id: int, target: str | None, **detector: str) -> str | None:
        if not explained or (target is None and not detector) or image_id not in images:
            return None
        fields = {"model_id": model.id, **({"target_class": target} if target else {}), **detector}
        return f"/api/datasets/{dataset_id}/images/{image_id}/cam?{urlencode(fields)}"

    def cams(row: EvaluationItem, true_name: str | None, pred_name: str | None) -> tuple[Any, Any, Any]:
        """Grad-CAM for the true and the predicted class; a detector's box: Grad-CAM of its score; a
        missed object: EigenCAM of the picture (no box of the model's to take a gradient of)."""
        box = (row.detail or {}).get("box")
        if row.kind == Kind.detection.value and box and "gradcam" in methods:
            at = box_text(box)
            return None, cam(row.image_id, pred_name, target_box=at, method="gradcam"), "gradcam"
        if row.kind == Kind.missed.value and "eigencam" in methods:
            return cam(row.image_id, None, method="eigencam"), None, "eigencam"
        if row.kind in (Kind.detection.value, Kind.missed.value):  # a text detector: its one map
            return cam(row.image_id, names[0] if names else None), None, "gradcam"
        return cam(row.image_id, true_name), cam(row.image_id, pred_name), "gradcam"

    def errors(row: EvaluationItem, true_name: str | None, pred_name: str | None) -> str | None:
        if row.image_id not in images or true_name is None:
            return None
        if row.kind == Kind.pixels.value and pred_name is not None:
            query = urlencode({"model_id": model.id, "true": true_name, "predicted": pred_name})
        elif row.kind == Kind.klass.value:
            query = urlencode({"model_id": model.id, "class_name": true_name})
        else:
            return None
        return f"/api/datasets/{dataset_id}/images/{row.image_id}/errors?{query}"

    out: list[EvaluationImage] = []
    for row in rows:
        summary = images.get(row.image_id)
        true_name, pred_name = name(row.true_index), name(row.pred_index)
        cam_true, cam_predicted, method = cams(row, true_name, pred_name)
        out.append(
            EvaluationImage(
                item_id=row.id,
                image_id=row.image_id,
                width=summary.width if summary else None,
                height=summary.height if summary else None,
                source=summary.source if summary else None,
                file_name=summary.file_name if summary else None,
                true_class=true_name,
                predicted_class=pred_name,
                score=row.score,
                true_score=row.true_score,
                loss=row.loss,
                detail=row.detail,
                image_url=(
                    f"/api/datasets/{dataset_id}/images/{row.image_id}/render?overlay=false&max_size=512"
                    if summary
                    else None
                ),
                page_url=f"/datasets/{dataset_id}/images/{row.image_id}" if summary else None,
                cam_true_url=cam_true,
                cam_predicted_url=cam_predicted,
                cam_method=method if cam_true or cam_predicted else None,
                errors_url=errors(row, true_name, pred_name),
            )
        )
    return out
