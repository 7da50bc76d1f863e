"""What the worker writes for the model endpoints and what they read back: where files live, the kinds of
artifact, and the result of the single-image jobs. The worker imports this module; it imports no torch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

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
    """Images sent to the single-image endpoints; a job's ``image`` is relative to this folder."""
    return data_dir / "requests"


class ClassScore(BaseModel):
    index: int = Field(ge=0, description="Index in the model's class_names")
    name: str
    score: float = Field(description="Softmax probability")


class PredictResult(BaseModel):
    """The result of a ``predict_image`` job, answered by ``POST /api/models/{id}/predict``."""

    model_config = ConfigDict(extra="allow")

    model_id: int
    top_k: list[ClassScore] = Field(description="Best first")
    overlay_artifact_id: int | None = Field(default=None, description="With overlay: the PNG artifact")


class CamResult(BaseModel):
    """The result of a ``cam_image`` job; ``POST /api/models/{id}/cam`` answers its PNG."""

    model_config = ConfigDict(extra="allow")

    model_id: int
    target_class: str = Field(description="The class the map explains")
    target_layer: str = Field(description="The module the map was taken at")
    score: float | None = None
    overlay_artifact_id: int = Field(description="The PNG artifact (kind 'cam')")
