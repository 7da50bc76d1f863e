"""Datasets as rows and folders: starting imports, reading the canonical form, making new versions."""

from __future__ import annotations

import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from backend.auth.scope import owned
from backend.datasets.canonical import (
    CANONICAL_FILE,
    IMAGES_DIR,
    CanonicalDataset,
    ImportFailed,
    ImportReport,
)
from backend.datasets.importer import Landed, Progress, import_archive, import_folder
from backend.datasets.schemas import ImageSummary
from backend.datasets.splits import SplitRatios
from backend.datasets.stats import dataset_stats
from backend.datasets.upload import ReceivedForm, check_archive, limits_from
from backend.db.session import session_scope
from backend.db.tables import Dataset, Job, JobStatus, User
from backend.errors import StudioError
from backend.jobs.service import create_job
from backend.settings import Settings

FORMAT_CHOICES = ("auto", "labelme", "folder", "filelist", "coco", "voc", "icdar")


def dataset_dir(settings: Settings, dataset_id: int) -> Path:
    return settings.datasets_dir / str(dataset_id)


def new_upload_path(settings: Settings) -> Path:
    return settings.uploads_dir / f"{uuid.uuid4().hex}.zip"


def start_import(
    session: Session,
    settings: Settings,
    user: User,
    form: ReceivedForm,
    name: str,
    fmt: str,
    seed: int = 0,
    skip_bad_shapes: bool = False,
) -> tuple[Dataset, Job]:
    """Check the archive's directory now (a quick 4xx), then record the dataset and queue its import."""
    check_archive(
        form.path, form.filename, limits_from(settings.max_archive_entries, settings.max_archive_bytes)
    )
    dataset = Dataset(owner_id=user.id, name=name, status="importing", source_format=fmt)
    session.add(dataset)
    session.flush()
    config = {
        "dataset_id": dataset.id,
        "upload": form.path.name,
        "filename": form.filename,
        "format": fmt,
        "seed": seed,
        "skip_bad_shapes": skip_bad_shapes,
    }
    job = create_job(session, user, "import_dataset", config, internal=True)
    return dataset, job


def dataset_jobs(session: Session, owner_id: int, kind: str, dataset_id: int, limit: int) -> Iterator[Job]:
    """The owner's jobs of ``kind`` on dataset ``dataset_id``, newest first, among their last ``limit``."""
    jobs = session.scalars(owned(Job, owner_id).where(Job.kind == kind).order_by(Job.id.desc()).limit(limit))
    return (j for j in jobs if j.config.get("dataset_id") == dataset_id)


def last_import(session: Session, dataset: Dataset) -> Job | None:
    """The newest import job of this dataset (its config names the upload it reads)."""
    return next(dataset_jobs(session, dataset.owner_id, "import_dataset", dataset.id, 500), None)


def kept_upload(settings: Settings, job: Job | None) -> Path | None:
    """The upload a failed import keeps for a retry, if it is still there."""
    name = str((job.config if job else {}).get("upload") or "")
    path = settings.uploads_dir / name
    return path if name and path.is_file() else None


def retry_import(
    session: Session, settings: Settings, user: User, dataset: Dataset, *, skip_bad_shapes: bool
) -> Job:
    """Queue the import of a failed dataset's kept upload again, as it was asked first but for
    ``skip_bad_shapes``; the dataset is importing again and its old report is dropped."""
    if dataset.status != "failed":
        raise StudioError(
            409,
            f"dataset {dataset.id} is {dataset.status}; only a failed import can be retried",
            "not_failed",
        )
    previous = last_import(session, dataset)
    if previous is None or kept_upload(settings, previous) is None:
        raise StudioError(
            409,
            f"the upload of dataset {dataset.id} is no longer kept; upload the project again",
            "upload_gone",
        )
    dataset.status, dataset.report = "importing", {}
    config = {**previous.config, "skip_bad_shapes": skip_bad_shapes}
    return create_job(session, user, "import_dataset", config, internal=True)


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> CanonicalDataset:
    return CanonicalDataset.load(Path(path))


def load_canonical(dataset: Dataset) -> CanonicalDataset:
    """The dataset's canonical form, cached while its file is unchanged (versions are immutable)."""
    if dataset.status != "ready" or not dataset.path:
        raise StudioError(409, f"dataset {dataset.id} is {dataset.status}, not ready", "dataset_not_ready")
    folder = Path(dataset.path)
    return _load(str(folder), (folder / CANONICAL_FILE).stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _summaries(path: str, mtime_ns: int) -> list[ImageSummary]:
    ds = _load(path, mtime_ns)
    per_image: dict[int, list[int]] = defaultdict(list)
    for ann in ds.annotations:
        per_image[ann.image_id].append(ann.category_id)
    out = []
    for image in ds.images:
        cats = per_image.get(image.id, [])
        names = sorted({ds.classes[c - 1] for c in cats if 0 < c <= len(ds.classes)} | set(image.tags))
        out.append(ImageSummary(**image.model_dump(), annotations=len(cats), classes=names))
    return out


def image_summaries(dataset: Dataset) -> list[ImageSummary]:
    """One summary per image (its split, classes and problems), cached like the canonical form: paging
    through 10,000 images filters a ready list instead of re-reading the dataset."""
    load_canonical(dataset)  # the same readiness check and error
    folder = Path(str(dataset.path))
    return _summaries(str(folder), (folder / CANONICAL_FILE).stat().st_mtime_ns)


def new_version(
    session: Session, settings: Settings, dataset: Dataset, change: Callable[[CanonicalDataset], None]
) -> Dataset:
    """A new version with ``change`` applied; images are hard links to the old version's, never copies."""
    from backend.datasets.formats import infer_tasks

    ds = load_canonical(dataset).model_copy(deep=True)
    change(ds)
    ds.tasks = infer_tasks(ds)
    row = Dataset(
        owner_id=dataset.owner_id,
        name=dataset.name,
        version=dataset.version + 1,
        parent_id=dataset.id,
        status="importing",
        source_format=dataset.source_format,
        classes=list(ds.classes),
        tasks=[str(t) for t in ds.tasks],
        report=dataset.report,
        stats=dataset_stats(ds),
    )
    session.add(row)
    session.flush()
    target = dataset_dir(settings, row.id)
    staging = settings.staging_dir / f"version-{row.id}-{uuid.uuid4().hex[:8]}"
    try:
        _link_tree(Path(str(dataset.path)) / IMAGES_DIR, staging / IMAGES_DIR)
        ds.save(staging)
        os.replace(staging, target)
        row.path = str(target)
        row.status = "ready"
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return row


def _link_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> Any:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem: fall back to a copy
        shutil.copy2(src, dst)
    return dst


def delete_dataset(session: Session, settings: Settings, dataset: Dataset) -> None:
    """The row, its folder, and the upload a failed import kept for a retry."""
    folder = Path(dataset.path) if dataset.path else None
    upload = kept_upload(settings, last_import(session, dataset)) if dataset.status == "failed" else None
    session.delete(dataset)
    session.commit()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    if upload is not None:
        upload.unlink(missing_ok=True)


def _record_failure(dataset_id: int, report: ImportReport) -> None:
    with session_scope() as session:
        row = session.get(Dataset, dataset_id)
        if row is not None:
            row.status = "failed"
            row.report = report.model_dump(mode="json")


def land_import(
    settings: Settings,
    dataset_id: int,
    source: Path,
    display: str,
    fmt: str,
    *,
    seed: int = 0,
    ratios: SplitRatios | None = None,
    skip_bad_shapes: bool = False,
    staging_name: str,
    progress: Progress | None = None,
) -> Landed:
    """Import ``source`` (a zip, or a folder from the shell) into dataset ``dataset_id`` and record the
    outcome on its row: ready with classes, tasks, stats and report, or failed with the report."""
    final = dataset_dir(settings, dataset_id)
    staging = settings.staging_dir / staging_name
    shutil.rmtree(staging, ignore_errors=True)  # left by a worker that died mid-import
    shutil.rmtree(final, ignore_errors=True)  # moved into place once, but its row was never committed
    kwargs: dict[str, Any] = {"ratios": ratios, "seed": seed, "skip_bad_shapes": skip_bad_shapes}
    if progress is not None:
        kwargs["progress"] = progress
    try:
        if source.is_dir():
            try:
                landed = import_folder(source, fmt, staging, final, **kwargs)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            limits = limits_from(settings.max_archive_entries, settings.max_archive_bytes)
            landed = import_archive(source, display, fmt, staging, final, limits=limits, **kwargs)
    except ImportFailed as exc:
        _record_failure(dataset_id, exc.report)
        raise
    try:
        with session_scope() as session:
            row = session.get(Dataset, dataset_id)
            if row is None:
                raise ImportFailed(_single_error("dataset_deleted", f"dataset {dataset_id} was deleted"))
            row.status = "ready"
            row.path = str(final)
            row.source_format = landed.format
            row.classes = list(landed.dataset.classes)
            row.tasks = [str(t) for t in landed.dataset.tasks]
            row.stats = landed.stats
            row.report = landed.report.model_dump(mode="json")
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return landed


def _single_error(code: str, message: str) -> ImportReport:
    report = ImportReport()
    report.error(code, message)
    return report


def start_export(session: Session, user: User, dataset_id: int, fmt: str) -> Job:
    """The export job of this version and format under way, or the last one if it failed on the format
    (the same data fails the same way), or a new one."""
    for job in dataset_jobs(session, user.id, "export_dataset", dataset_id, 200):
        if job.config.get("format") != fmt:
            continue
        if job.status in (JobStatus.queued, JobStatus.running):
            return job
        if job.status == JobStatus.failed and (job.error or "").startswith("format:"):
            return job
        break
    return create_job(
        session, user, "export_dataset", {"dataset_id": dataset_id, "format": fmt}, internal=True
    )
