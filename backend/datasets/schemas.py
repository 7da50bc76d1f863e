"""Bodies of the dataset endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.datasets.canonical import Annotation, Finding, ImageRecord
from backend.datasets.splits import SplitRatios


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    version: int
    parent_id: int | None
    status: str
    source_format: str
    classes: list[str]
    tasks: list[str]
    stats: dict[str, Any]
    created_at: datetime
    failure: str | None = Field(
        default=None, description="Why the import failed, in one line (the report has every error)"
    )


class ExportOption(BaseModel):
    """A layout this version downloads in, or why it cannot."""

    format: str = Field(description="The ?format= value, e.g. 'voc'")
    title: str = Field(description="In words, e.g. 'Pascal VOC'")
    layout: str = Field(description="What the zip holds")
    refusal: str | None = Field(description="Why this dataset cannot take the format; null when it can")


class DatasetDetail(DatasetOut):
    report: dict[str, Any] = Field(description="findings: every problem found on import")
    exports: list[ExportOption] = Field(description="Every download layout; why this version cannot take it")


class RetryImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skip_bad_shapes: bool = Field(
        default=False,
        description="Leave out each shape with an error (listed in the report) instead of failing",
    )


class ImportStarted(BaseModel):
    dataset: DatasetOut
    job_id: int


class ImageSummary(ImageRecord):
    annotations: int
    classes: list[str]


class ImagePage(BaseModel):
    total: int
    page: int
    page_size: int
    images: list[ImageSummary]


class ExportReady(BaseModel):
    format: str
    filename: str = Field(description="The name the download is saved under")
    url: str = Field(description="GET it for the zip")
    ready: bool = Field(default=True, description="False: a job is writing it (job_id)")
    size_bytes: int | None = None
    job_id: int | None = Field(default=None, description="The export job, while it runs")


class ImageNeighbours(BaseModel):
    position: int | None = Field(description="1-based place in the filtered order; None if filtered out")
    total: int = Field(description="Images under the filters")
    previous: int | None
    next: int | None


class ImageDetail(BaseModel):
    image: ImageRecord
    annotations: list[Annotation]
    classes: list[str]
    findings: list[Finding]


class ClassChange(BaseModel):
    """Rename (``"old": "new"``), merge (two olds to one new) or drop (``"old": null``) classes."""

    model_config = ConfigDict(extra="forbid")

    classes: dict[str, str | None] = Field(min_length=1, max_length=10_000)


class SplitChange(BaseModel):
    """Either re-split with a seed and ratios, or move given images to given splits."""

    model_config = ConfigDict(extra="forbid")

    ratios: SplitRatios | None = None
    seed: int = 0
    assign: dict[int, Literal["train", "val", "test"]] | None = Field(
        default=None, description="image id → split", max_length=100_000
    )

    @model_validator(mode="after")
    def _one_of(self) -> SplitChange:
        if (self.ratios is None) == (self.assign is None):
            raise ValueError("give either ratios (with seed) or assign")
        return self
