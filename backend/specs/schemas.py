"""Bodies of the catalog and config endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.specs.catalog import CatalogEntry


class CatalogItem(CatalogEntry):
    params: int | None = Field(default=None, description="Parameters; null until the worker has counted")
    flops: int | None = Field(
        default=None, description="FLOPs at default_input_size, batch 1; null until counted"
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted config path -> the value a run of this entry gets on this machine unless its "
        "config gives one (input size, batch size, epochs...)",
    )


class MachineOut(BaseModel):
    device: Literal["cpu", "cuda"] = Field(description="What the training lane trains on")
    gpus: int = Field(ge=0)
    description: str = Field(description="In words, e.g. 'CPU only (2 cores), no GPU'")


class CatalogOut(BaseModel):
    entries: list[CatalogItem]
    stats_pending: bool = Field(description="Some counts are not known yet; ask again in a while")
    stats_job_id: int | None = Field(default=None, description="The caller's job counting them, if any")
    machine: MachineOut
    recommended: str | None = Field(default=None, description="The entry the form preselects (of task)")
    recommended_reason: str = ""


class Preset(BaseModel):
    name: Literal["quick", "balanced", "best"]
    title: str = Field(description="In words, e.g. 'Quick look'")
    description: str
    changes: dict[str, Any] = Field(description="Dotted config path -> the value the preset sets")


class PresetsOut(BaseModel):
    presets: list[Preset]


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
    cam_methods: list[str] = Field(
        default_factory=list,
        description="A detector's maps (gradcam of one box, eigencam of the picture); empty: plain Grad-CAM",
    )
    explain_views: list[str] = Field(
        default_factory=list,
        description="The lists of images its figures open (GET /api/models/{id}/evaluation/images?view=)",
    )
    background: bool = Field(description="Its models' classes start with _background_")
    model_outputs: str = Field(description="'tensor', or 'detections' (boxes after NMS)")
    drawn: str = Field(description="What a picture with a model's answer painted on shows")
    simple_fields: list[str] = Field(
        description="Dotted config paths the run form shows first, beside the dataset, task and model"
    )
