"""What the worker writes for the model endpoints and what they read back: where files live, the kinds of
artifact, and the result of the single-image jobs. The worker imports this module; it imports no torch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


class ArtifactKind(StrEnum):
    """``Artifact.kind`` values. Files live under the data dir; rows are written once a file is whole."""

    checkpoint = "checkpoint"  # a model's weights (also TrainedModel.checkpoint_path)
    export_torchscript = "export_torchscript"  # a verified TorchScript file of a model
    export_onnx = "export_onnx"  # a verified ONNX file of a model
    predictions = "predictions"  # CSV of a batch predict job
    overlay = "overlay"  # PNG: an image with its predicted class drawn on
    cam = "cam"  # PNG: a Grad-CAM heat map over an image
    report = "report"  # JSON or HTML: an evaluation report
    config = "config"  # YAML: the run config a model was trained with
    preview = "preview"  # PNG: a training image after the configured augmentations
    mask = "mask"  # PNG: a class mask in the VOC palette, pixel value = the model's class index


EXPORT_KINDS = {"torchscript": ArtifactKind.export_torchscript, "onnx": ArtifactKind.export_onnx}
EXPORT_SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def model_dir(data_dir: Path, model_id: int) -> Path:
    """A model's own folder: its checkpoint and exports. Removed with the model."""
    return models_dir(data_dir) / str(model_id)


def requests_dir(data_dir: Path) -> Path:
    """Images sent to the single-image endpoints and the images answered; names in an ``InferRequest``
    and its answers are relative to this folder."""
    return data_dir / "requests"


REQUEST_IMAGE = r"^images/[0-9a-f]{32}\.(jpg|png)$"
MODULE_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"


class InferRequest(BaseModel):
    """What the API sends the inference lane (task ``studio.infer``): one model, one or more pictures.

    The API has checked the caller owns the model and that it is ready; the worker reads the file named
    here (and reloads it when ``checkpoint_mtime`` changes)."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["predict", "cam"]
    model_id: int
    checkpoint: str
    checkpoint_mtime: float
    images: list[Annotated[str, Field(pattern=REQUEST_IMAGE)]] = Field(
        min_length=1, description="Under DATA_DIR/requests"
    )
    top_k: int = Field(default=5, ge=1, le=100)
    overlay: bool = False
    target_class: str | None = Field(default=None, max_length=200)
    target_layer: str | None = Field(default=None, max_length=200, pattern=MODULE_PATH)
    target_box: list[float] | None = Field(
        default=None, min_length=4, max_length=4, description="A detector's box to explain: x1, y1, x2, y2"
    )
    method: Literal["gradcam", "eigencam"] | None = None


class InferError(BaseModel):
    """Why the lane could not answer; the API answers it with ``status``."""

    status: int
    code: str
    detail: str
    index: int | None = Field(default=None, description="The image at fault, by its place in the request")


class InferReply(BaseModel):
    """The task's return value: one answer per image, in order, or the error."""

    answers: list[dict[str, Any]] = Field(default_factory=list)
    error: InferError | None = None


class ClassScore(BaseModel):
    index: int = Field(ge=0, description="Index in the model's class_names")
    name: str
    score: float = Field(description="Softmax probability")


class PredictResult(BaseModel):
    """One picture's answer from ``POST /api/models/{id}/predict``: the classes (a classifier's scores, a
    segmenter's classes by share of the picture, a detector's best score per class), and the task's own
    fields: ``detections`` (class, score, box, COCO RLE mask) or ``classes`` and ``mask_png`` (base64)."""

    model_config = ConfigDict(extra="allow")

    model_id: int
    top_k: list[ClassScore] = Field(description="Best first")


class CamResult(BaseModel):
    """What a single-image Grad-CAM explained; ``POST /api/models/{id}/cam`` answers the PNG and these
    in ``X-Cam-*`` headers."""

    model_config = ConfigDict(extra="allow")

    model_id: int
    target_class: str = Field(description="The class the map explains")
    target_layer: str = Field(description="The module the map was taken at")
    score: float | None = None
    predicted_class: str | None = None
