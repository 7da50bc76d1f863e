"""The import job: land an uploaded archive as a dataset, or record why it cannot land (keeping the upload
for a retry)."""

from __future__ import annotations

from typing import Any

from backend.datasets.canonical import ImportFailed
from backend.datasets.service import land_import
from backend.datasets.splits import SplitRatios
from backend.db.session import session_scope
from backend.db.tables import Dataset
from backend.jobs.kinds import ImportDatasetConfig
from backend.settings import get_settings
from worker.context import JobCancelled, JobContext, JobFailed, LeaseLost, WorkerStopping


def _stopped(dataset_id: int, why: str) -> None:
    """An import that ended without a report (cancelled, or an error of the studio's, not the data's):
    its dataset is failed, saying why, so it can be imported again or deleted instead of importing forever."""
    with session_scope() as session:
        row = session.get(Dataset, dataset_id)
        if row is not None and row.status == "importing":
            row.status, row.report = "failed", {"findings": [], "stopped": why[:500]}


def run_import_dataset(ctx: JobContext) -> dict[str, Any]:
    cfg = ImportDatasetConfig.model_validate(ctx.config)
    settings = get_settings()
    with session_scope() as session:
        row = session.get(Dataset, cfg.dataset_id)
        if row is None or row.owner_id != ctx.owner_id:
            raise PermissionError(f"dataset {cfg.dataset_id} does not belong to this job's owner")
        if row.status == "ready":  # a re-delivery after the dataset landed: nothing left to do
            return {"dataset_id": row.id, "images": int(row.stats.get("images", 0))}
    upload = settings.uploads_dir / cfg.upload
    try:
        landed = land_import(
            settings,
            cfg.dataset_id,
            upload,
            cfg.filename,
            cfg.format,
            seed=cfg.seed,
            ratios=SplitRatios.model_validate(cfg.ratios),
            skip_bad_shapes=cfg.skip_bad_shapes,
            staging_name=f"import-{ctx.job_id}",
            progress=lambda f, m: ctx.progress(f, m, force=True),
        )
    except ImportFailed as exc:  # the user's data: its report says why, on the dataset; one line here
        with session_scope() as session:
            if session.get(Dataset, cfg.dataset_id) is None:  # deleted meanwhile: nothing to retry
                upload.unlink(missing_ok=True)
        raise JobFailed(str(exc)) from exc
    except (LeaseLost, WorkerStopping):  # another worker holds it now, or will: the dataset is its to land
        raise
    except JobCancelled:
        _stopped(cfg.dataset_id, "it was cancelled")
        raise
    except Exception as exc:
        _stopped(cfg.dataset_id, f"{type(exc).__name__}: {exc}")
        raise
    # Landed: the upload is spent. A failed import keeps it, for a retry (POST /api/datasets/{id}/retry),
    # until its dataset is deleted.
    upload.unlink(missing_ok=True)
    return {
        "dataset_id": cfg.dataset_id,
        "images": len(landed.dataset.images),
        "annotations": len(landed.dataset.annotations),
        "warnings": len(landed.report.warnings),
    }
