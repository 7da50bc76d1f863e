"""Bodies of the model and artifact endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from backend.db.tables import JobStatus


class ArtifactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="See backend.models.contract.ArtifactKind")
    name: str
    media_type: str
    size_bytes: int
    job_id: int | None
    model_id: int | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        return f"/api/artifacts/{self.id}"


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: int
    name: str
    task: str
    architecture: str
    status: str = Field(description="importing, ready or failed")
    error: str | None
    job_id: int | None = Field(description="The job that trained it (or verified its upload)")
    dataset_id: int | None = Field(description="The dataset version it was trained on")
    class_names: list[str]
    input_size: int | None
    params: int | None
    flops: int | None = Field(description="At input_size, batch 1")
    metrics: dict[str, Any]
    created_at: datetime


class ModelDetail(ModelOut):
    config: dict[str, Any] = Field(description="The run config it was trained with (or the upload's facts)")
    artifacts: list[ArtifactOut]


class ModelImportStarted(BaseModel):
    model: ModelOut
    job_id: int

    model_config = ConfigDict(protected_namespaces=())


class JobStarted(BaseModel):
    """Work that did not finish in time, or was only just queued: poll GET /api/jobs/{job_id}."""

    job_id: int
    status: JobStatus


class CurvePoint(BaseModel):
    step: int = Field(description="Training iteration")
    value: float


class DashboardClass(BaseModel):
    name: str
    values: dict[str, float | None] = Field(description="The task's per-class figures, by column")


class WorstImage(BaseModel):
    """A validation image the model did worst on, with its true and predicted labels drawn."""

    image_id: int
    counts: dict[str, float] = Field(
        default_factory=dict, description="Detection: missed, objects, detections, false_detections"
    )
    file_name: str | None = Field(description="Where the studio keeps it; None once the version is deleted")
    source: str | None = Field(
        default=None, description="The file as it was uploaded (e.g. 'batch0/img_023.jpg'), for people"
    )
    split: str | None
    score: float | None = Field(description="The image's own score (segmentation: its mIoU)")
    image_url: str | None = Field(description="The picture alone")
    true_overlay_url: str | None
    predicted_overlay_url: str | None
    true_mask_url: str | None = Field(description="Palette PNG, pixel value = index in class_names")
    predicted_mask_url: str | None


class PRCurve(BaseModel):
    recall: list[float]
    precision: list[float]
    score: list[float] = Field(
        default_factory=list, description="At each point: the lowest score a box needs to be counted"
    )


class ModelDashboard(BaseModel):
    """Everything a model's metrics page draws, for its task."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: int
    task: str
    dataset_id: int | None
    summary: dict[str, float | None] = Field(description="Headline figures of the kept weights")
    columns: list[str] = Field(description="The per-class columns, in order")
    per_class: list[DashboardClass]
    confusion_matrix: list[list[int]] | None = Field(description="Rows: true class; columns: predicted")
    confusion_labels: list[str] = Field(
        default_factory=list, description="The matrix's classes in order (detection adds 'background')"
    )
    pr_curves: dict[str, dict[str, PRCurve]] = Field(
        default_factory=dict, description="Detection: 'bbox' / 'segm', class, precision over recall at IoU .5"
    )
    curves: dict[str, list[CurvePoint]] = Field(description="Validation metrics and training loss by step")
    worst_images: list[WorstImage]
    explain_views: list[str] = Field(
        default_factory=list,
        description="What GET /api/models/{id}/evaluation/images lists for this model's evaluation (empty: "
        "none kept): cell, false_positives, false_negatives, highest_loss",
    )


class EvaluationImage(BaseModel):
    """One image behind a figure (for a detector: one box or object on it), with what the model made of it."""

    item_id: int = Field(description="This row of the evaluation (an image may have several: its objects)")
    image_id: int
    width: int | None = Field(default=None, description="The picture's size, for the boxes in detail")
    height: int | None = None
    source: str | None = Field(description="The file as it was uploaded, for people")
    file_name: str | None = Field(description="Where the studio keeps it; None once the version is deleted")
    true_class: str | None = Field(description="None: nothing there (a detector's false detection)")
    predicted_class: str | None
    score: float | None = Field(
        description="What the list's score_is says: the model's confidence in what it predicted (a "
        "classifier), the pixels of the true class painted as the predicted one, or the class's IoU"
    )
    true_score: float | None = Field(description="A classifier's confidence in the true class")
    loss: float | None
    detail: dict[str, Any] | None = Field(
        default=None,
        description="Segmentation: tp, fp, fn pixels; detection: box and true_box (x1, y1, x2, y2 in the "
        "picture's pixels) and their iou",
    )
    image_url: str | None = Field(description="The picture alone")
    page_url: str | None = Field(description="The image's page in the browser, with its labels")
    cam_true_url: str | None = Field(description="Grad-CAM for the true class (drawn on first request)")
    cam_predicted_url: str | None = Field(description="Grad-CAM for the predicted class (a detector's box)")
    cam_method: str | None = Field(
        default=None, description="gradcam, or eigencam (a detector's map of a picture where it missed)"
    )
    errors_url: str | None = Field(
        default=None,
        description="Segmentation: the picture with the wrong pixels painted (false negatives orange, false "
        "positives blue; a cell's pixels purple)",
    )


class EvaluationImages(BaseModel):
    """``GET /api/models/{id}/evaluation/images``: one page of the images behind a figure."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: int
    evaluation: int = Field(description="The job that measured them (the training run or an evaluate job)")
    evaluations: list[int] = Field(description="Every evaluation of this model that kept its images")
    dataset_id: int | None
    split: str | None
    view: str
    score_is: str = Field(
        description="What each image's score is: confidence, pixels, IoU, score (a detection's) or "
        "'found at score' (an object's: the score of the detection that found it)"
    )
    score_threshold: float | None = Field(
        default=None, description="A detector's: the score a box needs to count as predicted in this list"
    )
    total: int = Field(description="Images in the view, over every page")
    offset: int
    limit: int
    images: list[EvaluationImage]


class ImageChange(BaseModel):
    """One image whose figure moved between two models."""

    image_id: int
    source: str | None = Field(description="The file as it was uploaded")
    before: str = Field(description="The first model's figure on it, in words")
    after: str = Field(description="The second model's")
    change: float = Field(description="The second's figure minus the first's (higher is better)")
    image_url: str | None = Field(description="The picture with its labels")
    page_url: str | None


class ModelChanges(BaseModel):
    """``GET /api/models/{id}/evaluation/changes?other=``: what the other model fixed or broke."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: int
    other: int
    dataset_id: int
    split: str
    change: str = Field(description="fixed or broken")
    total: int = Field(description="Images in this list, over every page")
    fixed: int
    broken: int
    offset: int
    limit: int
    images: list[ImageChange]


class BatchPrediction(BaseModel):
    """``POST /api/models/{id}/predict/batch``: one answer per image, in the order sent (each shaped as
    ``POST /api/models/{id}/predict`` answers one image)."""

    model_id: int
    answers: list[dict[str, Any]]
