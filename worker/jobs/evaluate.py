"""The evaluate job: a trained model on one split of a dataset version with its classes, measured by its
task's runtime; the metrics go to the job's result, its metric rows (``eval/...`` at step 0) and a JSON
report artifact, and the images behind its figures (where the task keeps them) to ``evaluation_items``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Artifact, TrainedModel
from backend.files import atomic_write_bytes
from backend.jobs.kinds import EvaluateConfig
from backend.models.contract import ArtifactKind
from backend.models.evaluation import store_items
from backend.settings import get_settings
from worker.context import JobContext
from worker.engine.callbacks import scalar_metrics
from worker.models import load_model
from worker.tasks import get_runtime
from worker.training.recipe import json_safe, load_dataset


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    """The model's task measures it on the split; the metrics go to ``eval/...`` rows and the report."""
    cfg = EvaluateConfig.model_validate(ctx.config)
    started = time.monotonic()
    with session_scope() as session:
        row = session.get(TrainedModel, cfg.model_id)
        if row is None or row.owner_id != ctx.owner_id:
            raise ValueError(f"model_id: model {cfg.model_id} not found")
        if row.status != "ready" or not row.checkpoint_path:
            raise ValueError(f"model_id: model {cfg.model_id} is {row.status}, not ready")
        checkpoint = Path(row.checkpoint_path)
    loaded = load_model(checkpoint)
    ds = load_dataset(cfg.dataset_id, ctx.owner_id)
    results, extra = get_runtime(loaded.task).evaluate(ctx, loaded, ds, cfg.split)
    items = extra.pop("items", None)
    if items is not None:
        ctx.check()
        store_items(ctx.owner_id, cfg.model_id, ctx.job_id, ds.id, cfg.split, items)
    finite = {f"eval/{k}": v for k, v in scalar_metrics(results).items() if math.isfinite(v)}
    ctx.log_metrics(0, finite)
    report: dict[str, Any] = {
        "model_id": cfg.model_id,
        "dataset_id": ds.id,
        "split": cfg.split,
        **extra,
        "metrics": json_safe(results),
    }
    artifact_id = _write_report(ctx, cfg.model_id, report)
    return {**report, "report_artifact_id": artifact_id, "seconds": round(time.monotonic() - started, 3)}


def _write_report(ctx: JobContext, model_id: int, report: dict[str, Any]) -> int:
    """The report as a JSON artifact of this job (and its model); one per job, also on a re-delivery."""
    path = get_settings().data_dir / "jobs" / str(ctx.job_id) / "evaluation.json"
    ctx.check()
    atomic_write_bytes(path, json.dumps(report, indent=1).encode())
    with session_scope() as session:
        found = session.scalars(
            select(Artifact).where(Artifact.job_id == ctx.job_id, Artifact.kind == ArtifactKind.report.value)
        ).first()
        if found is None:
            found = Artifact(
                owner_id=ctx.owner_id,
                job_id=ctx.job_id,
                model_id=model_id,
                kind=ArtifactKind.report.value,
                name="evaluation.json",
                path=str(path),
                media_type="application/json",
            )
            session.add(found)
        found.size_bytes = path.stat().st_size
        session.flush()
        return int(found.id)
