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
