"""Bodies of the catalog and config endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.specs.catalog import CatalogEntry


class CatalogItem(CatalogEntry):
    params: int | None = Field(default=None, description="Parameters; null until the worker has counted")
    flops: int | None = Field(
        default=None, description="FLOPs at default_input_size, batch 1; null until counted"
    )


class CatalogOut(BaseModel):
    entries: list[CatalogItem]
    stats_pending: bool = Field(description="Some counts are not known yet; ask again in a while")
    stats_job_id: int | None = Field(default=None, description="The caller's job counting them, if any")


class ValidatedConfig(BaseModel):
    config: dict[str, Any] = Field(description="The config with every default filled in")
    yaml: str = Field(description="The same config as YAML")


class TaskOut(BaseModel):
    """A task the studio trains, as the browser draws its forms and its models' pages."""

    name: str = Field(description="The config's and the model's ``task``")
    title: str = Field(description="In words, e.g. 'Object detection'")
    description: str = Field(description="What its models answer and how their figures read")
    metrics: list[str] = Field(description="What runtime.best_metric may name (higher is better)")
    headline: str = Field(description="The figure its models are judged by first")
    summary: list[str] = Field(description="The model page's headline figures, in order")
    columns: list[str] = Field(description="The model page's per-class table, in order")
    explain: str | None = Field(description="Null: Grad-CAM explains its models; else why it cannot")
    background: bool = Field(description="Its models' classes start with _background_")
    model_outputs: str = Field(description="'tensor', or 'detections' (boxes after NMS)")
    drawn: str = Field(description="What a picture with a model's answer painted on shows")
