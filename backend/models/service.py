"""Models as rows and folders: uploaded checkpoints, their status, exports, deletion, and waiting for a
job the API answers from (an augmentation preview)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from backend.auth.scope import get_owned, owned
from backend.datasets.upload import ReceivedForm
from backend.db.session import session_factory
from backend.db.tables import Artifact, Job, JobStatus, TrainedModel, User
from backend.errors import StudioError
from backend.jobs.service import create_job
from backend.models.contract import EXPORT_KINDS, model_dir
from backend.models.schemas import ArtifactOut, ModelDetail, ModelOut
from backend.settings import Settings
from backend.specs.catalog import get_entry, list_models
from backend.tasks import TASKS

MAX_CLASSES = 10_000
UPLOAD_FIELDS = ("name", "architecture", "task", "class_names", "input_size")


def form_error(field: str, msg: str) -> StudioError:
    """A 422 naming a form field, in the same shape as a JSON body's."""
    return StudioError(
        422,
        f"{field}: {msg}",
        "validation_error",
        extra={"errors": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]},
    )


# --- status -------------------------------------------------------------------------------------------


def effective_status(session: Session, model: TrainedModel) -> tuple[str, str | None]:
    """Status and error; an import whose job ended without the worker recording it counts as failed."""
    if model.status == "importing" and model.job_id is not None:
        job = session.get(Job, model.job_id)
        if job is not None and job.status.finished and job.status != JobStatus.succeeded:
            return "failed", model.error or job.error or f"the import job was {job.status}"
    return model.status, model.error


def model_out(session: Session, model: TrainedModel) -> ModelOut:
    status, error = effective_status(session, model)
    return ModelOut.model_validate(model).model_copy(update={"status": status, "error": error})


def model_artifacts(session: Session, model: TrainedModel) -> Sequence[Artifact]:
    """Its own artifacts (exports, overlays) and those of the job that trained it."""
    cond = Artifact.model_id == model.id
    if model.job_id is not None:
        cond = or_(cond, Artifact.job_id == model.job_id)
    return session.scalars(owned(Artifact, model.owner_id).where(cond).order_by(Artifact.id)).all()


def model_detail(session: Session, model: TrainedModel) -> ModelDetail:
    base = model_out(session, model)
    arts = [ArtifactOut.model_validate(a) for a in model_artifacts(session, model)]
    return ModelDetail(**base.model_dump(), config=model.config, artifacts=arts)


def ready_model(session: Session, user: User, model_id: int) -> TrainedModel:
    """The caller's model, ready to use: 404 for another user's, 409 while importing or after failing."""
    model = get_owned(session, TrainedModel, model_id, user.id, "model")
    status, error = effective_status(session, model)
    if status != "ready":
        why = f": {error}" if error and status == "failed" else ""
        raise StudioError(409, f"model {model_id} is {status}, not ready{why}", "model_not_ready")
    return model


# --- uploads ------------------------------------------------------------------------------------------


def parse_class_names(text: str) -> list[str]:
    """A JSON list of names, or one name per line (blank lines skipped)."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value: Any = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise form_error("class_names", f"not a JSON list: {exc.msg}") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise form_error("class_names", "give a JSON list of strings")
        names = [v.strip() for v in value]
    else:
        names = [line.strip() for line in stripped.splitlines() if line.strip()]
    if not names or any(not n for n in names):
        raise form_error("class_names", "give at least one class name, none of them empty")
    if len(names) > MAX_CLASSES:
        raise form_error("class_names", f"{len(names)} classes; the limit is {MAX_CLASSES}")
    too_long = next((n for n in names if len(n) > 200), None)
    if too_long is not None:
        raise form_error("class_names", f"class name {too_long[:40]!r}... is longer than 200 characters")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise form_error("class_names", f"class {n!r} is given twice")
        seen.add(n)
    return names


@dataclass(frozen=True)
class UploadFacts:
    name: str
    task: str
    architecture: str
    class_names: list[str]
    input_size: int


def upload_facts(form: ReceivedForm) -> UploadFacts:
    """The form fields of a checkpoint upload, checked against the catalog."""
    f = form.fields
    task = (f.get("task") or "classification").strip()
    if task not in TASKS:
        raise form_error("task", f"{task!r} is not one of {', '.join(TASKS)}")
    arch = (f.get("architecture") or "").strip()
    known = ", ".join(e.name for e in list_models(task))
    try:
        entry = get_entry(arch)
    except KeyError:
        raise form_error(
            "architecture", f"unknown architecture {arch!r}; known for {task}: {known}"
        ) from None
    if entry.task != task:
        raise form_error("architecture", f"{arch} is a {entry.task} architecture, not {task}")
    classes = parse_class_names(f.get("class_names") or "")
    size_text = (f.get("input_size") or str(entry.default_input_size)).strip()
    if not size_text.isdigit():
        raise form_error("input_size", f"{size_text!r} is not a whole number")
    size = int(size_text)
    if size < entry.min_input_size or size > 4096 or size % entry.input_multiple:
        raise form_error(
            "input_size",
            f"{arch} takes sizes from {entry.min_input_size} to 4096 in steps of {entry.input_multiple}, "
            f"not {size}",
        )
    name = (f.get("name") or Path(form.filename).stem or arch).strip()[:200]
    return UploadFacts(name, task, arch, classes, size)


def start_model_import(
    session: Session, settings: Settings, user: User, form: ReceivedForm, suffix: str
) -> tuple[TrainedModel, Job]:
    """Record the model as importing, move its file into the model's folder and queue the check of it."""
    facts = upload_facts(form)
    model = TrainedModel(
        owner_id=user.id,
        name=facts.name,
        task=facts.task,
        architecture=facts.architecture,
        class_names=facts.class_names,
        input_size=facts.input_size,
        status="importing",
        config={"source": "upload", "filename": form.filename},
    )
    session.add(model)
    session.flush()
    model_id = model.id
    folder = model_dir(settings.data_dir, model_id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"checkpoint{suffix}"
        os.replace(form.path, target)
        model.checkpoint_path = str(target)
        job = create_job(session, user, "import_model", {"model_id": model_id}, internal=True)
    except BaseException:
        session.rollback()
        leftover = session.get(TrainedModel, model_id)  # committed by create_job before the broker failed
        if leftover is not None:
            session.delete(leftover)
            session.commit()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    model.job_id = job.id
    session.commit()
    return model, job


# --- deletion -----------------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def delete_model(session: Session, settings: Settings, model: TrainedModel) -> None:
    status, _ = effective_status(session, model)
    if status == "importing":
        raise StudioError(409, f"model {model.id} is still importing", "model_busy")
    files = [Path(a.path) for a in session.scalars(select(Artifact).where(Artifact.model_id == model.id))]
    if model.checkpoint_path:
        files.append(Path(model.checkpoint_path))
    folder = model_dir(settings.data_dir, model.id)
    session.execute(delete(Artifact).where(Artifact.model_id == model.id))
    session.delete(model)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)
    for path in files:
        if _inside(path, settings.data_dir):  # never follow a stored path out of the data dir
            path.unlink(missing_ok=True)


# --- exports ------------------------------------------------------------------------------------------


def find_export(session: Session, settings: Settings, model: TrainedModel, fmt: str) -> Artifact | None:
    """The newest verified export of ``model`` in ``fmt`` whose file is still there."""
    rows = session.scalars(
        owned(Artifact, model.owner_id)
        .where(Artifact.model_id == model.id, Artifact.kind == EXPORT_KINDS[fmt].value)
        .order_by(Artifact.id.desc())
    )
    for row in rows:
        path = Path(row.path)
        if path.is_file() and _inside(path, settings.data_dir):
            return row
    return None


def start_export(session: Session, user: User, model: TrainedModel, fmt: str) -> Job:
    """The export job under way for this model and format, or a new one."""
    pending = session.scalars(
        owned(Job, user.id)
        .where(Job.kind == "export", Job.status.in_([JobStatus.queued, JobStatus.running]))
        .order_by(Job.id.desc())
    )
    for job in pending:
        if job.config.get("model_id") == model.id and job.config.get("format") == fmt:
            return job
    return create_job(session, user, "export", {"model_id": model.id, "format": fmt}, internal=True)


# --- waiting for a job --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    id: int
    status: JobStatus
    result: dict[str, Any] | None
    error: str | None


def _snapshot(job_id: int) -> JobSnapshot:
    with session_factory()() as session:
        job = session.get(Job, job_id)
        if job is None:  # deleted with its owner meanwhile
            raise StudioError(404, f"job {job_id} not found", "not_found")
        return JobSnapshot(job.id, job.status, job.result, job.error)


async def wait_for_job(job_id: int, timeout: float) -> JobSnapshot:
    """Poll the job row (a short session each time, none held while asleep) until it ends or time is up."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        snap = await to_thread.run_sync(_snapshot, job_id)
        left = deadline - time.monotonic()
        if snap.status.finished or left <= 0:
            return snap
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 1.5, 0.5)


def job_outcome(snap: JobSnapshot, what: str) -> dict[str, Any]:
    """The result of a finished job, or the error that says why there is none."""
    if snap.status == JobStatus.succeeded:
        return snap.result or {}
    if snap.status == JobStatus.cancelled:
        raise StudioError(
            409, f"{what} job {snap.id} was cancelled", "job_cancelled", extra={"job_id": snap.id}
        )
    raise StudioError(
        500, f"{what} failed: {snap.error or 'no reason given'}", "job_failed", extra={"job_id": snap.id}
    )
