"""``GET /api/models/{id}/dashboard``: a model's figures arranged as its metrics page draws them, from the
model row (its kept weights' evaluation), the training job's metric points and the worst-image artifacts."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.datasets.service import image_summaries
from backend.db.tables import Artifact, Dataset, JobMetric, TrainedModel
from backend.models.evaluation import evaluations, views
from backend.models.schemas import CurvePoint, DashboardClass, ModelDashboard, PRCurve, WorstImage
from backend.tasks import TASKS

MAX_CURVE_POINTS = 20_000


def _truth_from_dataset(task: str) -> bool:
    spec = TASKS.get(task)
    return spec is not None and spec.truth_overlay == "dataset"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _best(metrics: dict[str, Any]) -> dict[str, Any]:
    """The evaluation of the kept weights: ``best`` when the run validated, else ``final``, else the
    metrics themselves (an uploaded model's)."""
    for key in ("best", "final"):
        found = metrics.get(key)
        if isinstance(found, dict) and found.get("samples", 1):
            return found
    return metrics


def _summary(task: str, best: dict[str, Any]) -> dict[str, float | None]:
    spec = TASKS.get(task)
    names = spec.summary if spec else tuple(k for k, v in best.items() if _number(v) is not None)
    return {name: _number(best.get(name)) for name in names if name in best}


def _per_class(
    task: str, best: dict[str, Any], class_names: list[str]
) -> tuple[list[str], list[DashboardClass]]:
    table = best.get("per_class")
    if not isinstance(table, dict):
        return [], []
    spec = TASKS.get(task)
    columns = list(spec.columns) if spec else []
    if not columns:
        seen: dict[str, None] = {}
        for row in table.values():
            if isinstance(row, dict):
                seen.update({k: None for k, v in row.items() if _number(v) is not None})
        columns = list(seen)
    names = [n for n in class_names if n in table] + [n for n in table if n not in class_names]
    rows = [
        DashboardClass(name=name, values={c: _number(table[name].get(c)) for c in columns})
        for name in names
        if isinstance(table[name], dict)
    ]
    return columns, rows


def _confusion(best: dict[str, Any]) -> list[list[int]] | None:
    cm = best.get("confusion_matrix")
    if isinstance(cm, list) and all(isinstance(r, list) for r in cm):
        return [[int(v) for v in row] for row in cm]
    return None


def _confusion_labels(best: dict[str, Any], class_names: list[str], size: int) -> list[str]:
    labels = best.get("confusion_labels")
    if isinstance(labels, list) and len(labels) == size and all(isinstance(x, str) for x in labels):
        return labels
    return class_names[:size] + [f"class {i}" for i in range(len(class_names), size)]


def _pr_curves(best: dict[str, Any]) -> dict[str, dict[str, PRCurve]]:
    """Detection: precision over recall at IoU 0.5, per class, for boxes and (instance masks) masks."""
    out: dict[str, dict[str, PRCurve]] = {}
    for kind in ("bbox", "segm"):
        curves = best.get(f"{kind}/pr_curve")
        if not isinstance(curves, dict):
            continue
        out[kind] = {
            name: PRCurve(
                recall=list(c.get("recall", [])),
                precision=list(c.get("precision", [])),
                score=list(c.get("score", [])),
            )
            for name, c in curves.items()
            if isinstance(c, dict)
        }
    return out


def _curves(session: Session, job_id: int | None) -> dict[str, list[CurvePoint]]:
    if job_id is None:
        return {}
    rows = session.execute(
        select(JobMetric.name, JobMetric.step, JobMetric.value)
        .where(JobMetric.job_id == job_id)
        .where(JobMetric.name.startswith("val/") | (JobMetric.name == "train/loss"))
        .order_by(JobMetric.name, JobMetric.step)
        .limit(MAX_CURVE_POINTS)
    )
    curves: dict[str, list[CurvePoint]] = {}
    for name, step, value in rows:
        if math.isfinite(value):
            curves.setdefault(name, []).append(CurvePoint(step=step, value=value))
    return curves


def _worst(session: Session, model: TrainedModel, metrics: dict[str, Any]) -> list[WorstImage]:
    listed = metrics.get("worst_images")
    if not isinstance(listed, list) or not listed:
        return []
    urls: dict[str, str] = {}
    for art in session.scalars(
        select(Artifact).where(Artifact.model_id == model.id, Artifact.name.startswith("worst/"))
    ):
        urls[art.name] = f"/api/artifacts/{art.id}"
    dataset = (
        session.scalars(
            select(Dataset).where(Dataset.id == model.dataset_id, Dataset.owner_id == model.owner_id)
        ).first()
        if model.dataset_id is not None
        else None
    )
    images = (
        {s.id: s for s in image_summaries(dataset)}
        if dataset is not None and dataset.status == "ready"
        else {}
    )
    out: list[WorstImage] = []
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("image_id"), int):
            continue
        image_id = item["image_id"]
        summary = images.get(image_id)
        base = f"worst/{image_id}/"
        counts = {
            k: n
            for k in ("missed", "objects", "detections", "false_detections")
            if (n := _number(item.get(k))) is not None
        }
        out.append(
            WorstImage(
                image_id=image_id,
                counts=counts,
                file_name=summary.file_name if summary else None,
                source=summary.source if summary else None,
                split=summary.split if summary else None,
                score=_number(item.get("iou", item.get("score"))),
                image_url=(
                    f"/api/datasets/{model.dataset_id}/images/{image_id}/render?overlay=false"
                    if summary
                    else None
                ),
                # Detection's ground truth is the dataset's own drawing of its boxes and outlines.
                true_overlay_url=urls.get(base + "true.png")
                or (
                    f"/api/datasets/{model.dataset_id}/images/{image_id}/render?overlay=true"
                    if summary and _truth_from_dataset(model.task)
                    else None
                ),
                predicted_overlay_url=urls.get(base + "pred.png"),
                true_mask_url=urls.get(base + "true_mask.png"),
                predicted_mask_url=urls.get(base + "pred_mask.png"),
            )
        )
    return out


def model_dashboard(session: Session, model: TrainedModel) -> ModelDashboard:
    metrics = model.metrics if isinstance(model.metrics, dict) else {}
    best = _best(metrics)
    columns, rows = _per_class(model.task, best, list(model.class_names or []))
    confusion = _confusion(best)
    return ModelDashboard(
        model_id=model.id,
        task=model.task,
        dataset_id=model.dataset_id,
        summary=_summary(model.task, best),
        columns=columns,
        per_class=rows,
        confusion_matrix=confusion,
        confusion_labels=_confusion_labels(best, list(model.class_names or []), len(confusion))
        if confusion
        else [],
        pr_curves=_pr_curves(best),
        curves=_curves(session, model.job_id),
        worst_images=_worst(session, model, metrics),
        explain_views=views(model.task) if evaluations(session, model) else [],
    )
