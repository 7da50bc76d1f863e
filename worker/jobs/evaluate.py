"""The evaluate job: a trained model on one split of a dataset version with its classes; the metrics go
to the job's result, its metric rows (``eval/...`` at step 0) and a JSON report artifact."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Artifact, TrainedModel
from backend.files import atomic_write_bytes
from backend.jobs.kinds import EvaluateConfig
from backend.models.contract import ArtifactKind
from backend.settings import get_settings
from worker.context import JobContext
from worker.data import ClassificationDataset, eval_transform, make_loader
from worker.engine.checkpoint import load_model_file
from worker.jobs.train import DatasetInfo, json_safe, load_dataset, resolve_device, shutdown_loaders
from worker.metrics.classification import ClassificationMetrics, scalar_metrics
from worker.zoo import build_model

BATCH_SIZE = 64


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    cfg = EvaluateConfig.model_validate(ctx.config)
    started = time.monotonic()
    with session_scope() as session:
        row = session.get(TrainedModel, cfg.model_id)
        if row is None or row.owner_id != ctx.owner_id:
            raise ValueError(f"model_id: model {cfg.model_id} not found")
        if row.status != "ready" or not row.checkpoint_path:
            raise ValueError(f"model_id: model {cfg.model_id} is {row.status}, not ready")
        checkpoint = Path(row.checkpoint_path)
    data = load_model_file(checkpoint)
    class_names: list[str] = list(data["class_names"])
    ds = load_dataset(cfg.dataset_id, ctx.owner_id)
    if data["task"] == "semantic_segmentation":
        return _evaluate_segmentation(ctx, cfg, checkpoint, ds, started)
    if data["task"] in ("object_detection", "instance_segmentation"):
        from worker.jobs.evaluate_detection import evaluate_detection_job

        return evaluate_detection_job(ctx, cfg, checkpoint, ds, started)
    foreign = [c for c in ds.canonical.classes if c not in class_names]
    if foreign:
        raise ValueError(
            f"dataset_id: dataset {ds.id} has classes the model does not know: {', '.join(foreign)}"
        )
    # Labels in the model's class order, whatever the dataset's order.
    remap = [class_names.index(c) for c in ds.canonical.classes]
    device = resolve_device("auto")
    model = build_model(data["architecture"], len(class_names), data["options"])
    model.load_state_dict(data["state_dict"])
    model.to(device).eval()
    size, norm = int(data["input_size"]), data["normalize"]
    dataset = ClassificationDataset(
        ds.root, ds.canonical, [cfg.split], eval_transform(size, norm["mean"], norm["std"])
    )
    if len(dataset) == 0:
        raise ValueError(f"split: dataset {ds.id} has no single-label images in its {cfg.split} split")
    loader = make_loader(dataset, batch_size=BATCH_SIZE, shuffle=False, workers=0, seed=0)
    metrics = ClassificationMetrics(class_names, device)
    to_model = torch.tensor(remap, device=device)
    total_loss, seen, n_batches = 0.0, 0, len(loader)
    try:
        with torch.inference_mode():
            for i, (images, labels) in enumerate(loader):
                ctx.check()
                logits = model(images.to(device))
                target = to_model[labels.to(device)]
                total_loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                seen += len(target)
                metrics.update(logits, target)
                ctx.progress((i + 1) / n_batches * 0.95, f"batch {i + 1}/{n_batches}")
    finally:
        shutdown_loaders(loader)
    results = {**metrics.compute(), "loss": total_loss / max(1, seen)}
    finite = {f"eval/{k}": v for k, v in scalar_metrics(results).items() if math.isfinite(v)}
    ctx.log_metrics(0, finite)
    report: dict[str, Any] = {
        "model_id": cfg.model_id,
        "dataset_id": ds.id,
        "split": cfg.split,
        "skipped_images": dataset.skipped,
        "metrics": json_safe(results),
    }
    artifact_id = _write_report(ctx, cfg.model_id, report)
    return {**report, "report_artifact_id": artifact_id, "seconds": round(time.monotonic() - started, 3)}


def _evaluate_segmentation(
    ctx: JobContext, cfg: EvaluateConfig, checkpoint: Path, ds: DatasetInfo, started: float
) -> dict[str, Any]:
    from worker.jobs.evaluate_segmentation import evaluate_segmentation
    from worker.models import load_model

    loaded = load_model(checkpoint)
    results, images = evaluate_segmentation(ctx, loaded, ds, cfg)
    finite = {f"eval/{k}": v for k, v in scalar_metrics(results).items() if math.isfinite(v)}
    ctx.log_metrics(0, finite)
    report: dict[str, Any] = {
        "model_id": cfg.model_id,
        "dataset_id": ds.id,
        "split": cfg.split,
        "images": images,
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
