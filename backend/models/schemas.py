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
