"""The catalog's parameter counts and FLOPs, cached in ``DATA_DIR/catalog_stats.json``.

Counting needs torch, so the worker computes them (job kind ``analyze_catalog``) and writes this file
with :func:`write_catalog_stats`; the API only reads it. An entry counts as known only when it was
measured at the architecture's current default input size."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from backend.files import atomic_write_bytes

STATS_FILE = "catalog_stats.json"
log = logging.getLogger(__name__)


class EntryStats(BaseModel):
    input_size: int = Field(description="Square side the counts were measured at")
    params: int = Field(ge=0, description="Parameter count")
    flops: int = Field(ge=0, description="FLOPs of one forward pass at input_size, batch 1")
    num_classes: int = Field(default=1000, ge=1, description="Head size the counts were measured with")


class CatalogStats(BaseModel):
    version: int = 1
    entries: dict[str, EntryStats] = Field(default_factory=dict, description="By architecture name")


def stats_path(data_dir: Path) -> Path:
    return data_dir / STATS_FILE


def read_catalog_stats(data_dir: Path) -> CatalogStats | None:
    """The cached counts, or None when the file is missing or unreadable (then it is computed again)."""
    path = stats_path(data_dir)
    try:
        return CatalogStats.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def write_catalog_stats(data_dir: Path, stats: CatalogStats) -> None:
    """Write the whole file atomically (the worker calls this; readers never see half a file)."""
    atomic_write_bytes(stats_path(data_dir), stats.model_dump_json(indent=1).encode(), durable=False)
