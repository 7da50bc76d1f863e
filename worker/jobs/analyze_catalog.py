"""The catalog analysis job: parameters and FLOPs of catalog entries into ``DATA_DIR/catalog_stats.json``."""

from __future__ import annotations

from typing import Any

from backend.jobs.kinds import AnalyzeCatalogConfig
from backend.settings import get_settings
from backend.specs.stats import read_catalog_stats, write_catalog_stats
from worker.analysis import analyze_catalog
from worker.context import JobContext


def run_analyze_catalog(ctx: JobContext) -> dict[str, Any]:
    """Count the asked entries (default: all), keep the file's other entries, write it atomically."""
    cfg = AnalyzeCatalogConfig.model_validate(ctx.config)
    data_dir = get_settings().data_dir

    def on_entry(done: int, total: int, name: str) -> None:
        ctx.check()
        ctx.progress(done / total, f"{name} counted ({done}/{total})")

    done = analyze_catalog(cfg.architectures, previous=read_catalog_stats(data_dir), on_entry=on_entry)
    write_catalog_stats(data_dir, done.stats)
    return {"counted": done.counted, "errors": done.errors}
