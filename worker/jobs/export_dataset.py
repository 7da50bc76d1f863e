"""Dataset export jobs: a version written in one of ``backend.tasks.EXPORTS`` into its export cache, on
the light lane, so a large conversion never runs inside a request."""

from __future__ import annotations

from typing import Any

from backend.datasets.export import build_export_zip, export_cache_dir
from backend.jobs.kinds import ExportDatasetConfig
from backend.tasks import get_export_format
from worker.context import JobContext, JobFailed
from worker.jobs.common import owned_dataset


def run_export_dataset(ctx: JobContext) -> dict[str, Any]:
    cfg = ExportDatasetConfig.model_validate(ctx.config)
    folder, ds = owned_dataset(ctx, cfg.dataset_id)
    fmt = get_export_format(cfg.format)
    ctx.progress(0.0, f"writing {fmt.title} of {len(ds.images)} images", force=True)
    try:
        path = build_export_zip(fmt, ds, folder, export_cache_dir(folder))
    except ValueError as exc:  # a format this dataset cannot take: the exporter says why
        raise JobFailed(f"format: {exc}") from exc
    return {"dataset_id": cfg.dataset_id, "format": cfg.format, "size_bytes": path.stat().st_size}
