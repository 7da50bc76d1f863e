"""The export job: a verified TorchScript or ONNX file of a model, recorded as the model's artifact."""

from __future__ import annotations

from typing import Any

from backend.jobs.kinds import ExportConfig
from backend.models.contract import EXPORT_KINDS, EXPORT_SUFFIXES, model_dir
from backend.settings import get_settings
from worker.context import JobContext
from worker.export import EXPORTERS
from worker.jobs.common import record_artifact, warm_model

MEDIA_TYPES = {"torchscript": "application/octet-stream", "onnx": "application/octet-stream"}


def run_export(ctx: JobContext) -> dict[str, Any]:
    """Export, check against PyTorch (max abs diff <= 1e-4, else the job fails naming the difference),
    then record the file; one artifact per model and format, the newest replacing the last."""
    cfg = ExportConfig.model_validate(ctx.config)
    loaded = warm_model(ctx, cfg.model_id)
    target = (
        model_dir(get_settings().data_dir, cfg.model_id) / "exports" / f"model{EXPORT_SUFFIXES[cfg.format]}"
    )
    ctx.progress(0.1, f"exporting to {cfg.format}", force=True)
    with loaded.lock:  # tracing runs the shared warm module
        result = EXPORTERS[cfg.format](loaded.model, loaded.input_size, target)
    artifact_id = record_artifact(
        ctx,
        kind=EXPORT_KINDS[cfg.format],
        name=f"{loaded.architecture}-{cfg.model_id}{EXPORT_SUFFIXES[cfg.format]}",
        path=target,
        media_type=MEDIA_TYPES[cfg.format],
        model_id=cfg.model_id,
        replace_model_kind=True,
    )
    return {
        "model_id": cfg.model_id,
        "format": cfg.format,
        "artifact_id": artifact_id,
        "max_abs_diff": result.max_abs_diff,
        "size_bytes": result.size_bytes,
        "seconds": round(result.seconds, 3),
    }
