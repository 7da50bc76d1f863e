"""Bodies of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.db.tables import JobStatus


class JobCreate(BaseModel):
    kind: str = Field(description="One of the kinds listed by GET /api/jobs/kinds", max_length=40)
    config: dict[str, Any] = Field(default_factory=dict)


class QueuePosition(BaseModel):
    """Where a queued job stands on its lane."""

    lane: str
    ahead: int = Field(description="Jobs that will start before it: queued earlier, or running now")
    queued_before: int = Field(description="Of those, jobs queued earlier")
    running: int = Field(description="Jobs running on the lane now")
    text: str = Field(description="In words, e.g. 'behind 1 queued and 1 running jobs on the training lane'")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    queue: str
    status: JobStatus
    config: dict[str, Any]
    result: dict[str, Any] | None
    progress: float
    message: str | None
    error: str | None
    attempt: int
    cancel_requested: bool
    worker: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_position: QueuePosition | None = Field(default=None, description="While queued")


class MetricPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    name: str
    value: float


class JobKindOut(BaseModel):
    name: str
    queue: str
    description: str
    config_schema: dict[str, Any]
