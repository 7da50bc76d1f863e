"""``POST /api/configs/estimate``: how long a run will take, before it is queued. The worker times a few
training iterations of the config (job kind ``estimate_run``, on the light lane, so the answer never
waits behind a training run) and one evaluation batch; the answer scales them to the run's epochs.

A measure depends on what the iteration computes (architecture, options, the data section, the device,
precision), not on how many there are: it is keyed on those, and a later ask with the same key reads the
earlier job's result, so changing epochs re-answers at once."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.tables import Job, JobStatus, User, utcnow
from backend.deps import CurrentUser, SessionDep
from backend.jobs.service import create_job, validation_error
from backend.models.service import wait_for_job
from backend.settings import get_settings
from backend.specs.checks import check_train
from backend.specs.config import parse_train_config
from backend.specs.recipes import training_machine
from backend.specs.sections import TaskConfig

router = APIRouter(prefix="/api/configs", tags=["configs"])

KIND = "estimate_run"
KEEP = timedelta(days=7)  # a measure older than this is taken again (the machine may have changed)
RETRY_FAILED_AFTER = timedelta(minutes=10)  # a failed measure is reported, not retried on every ask


class EstimateRequest(BaseModel):
    config: dict[str, Any]


class Estimate(BaseModel):
    status: Literal["ready", "pending", "failed"]
    job_id: int | None = Field(description="The measuring job")
    message: str = Field(description="In words: what the numbers mean, what is under way, or what failed")
    device: str | None = None
    seconds_per_iteration: float | None = Field(default=None, description="Forward, backward and step")
    data_seconds_per_iteration: float | None = Field(default=None, description="Of which, waiting on data")
    memory_mb: float | None = None
    memory_note: str = ""
    iterations_per_epoch: int | None = None
    total_iterations: int | None = None
    eval_seconds: float | None = Field(default=None, description="One evaluation over the val split")
    evaluations: int = 0
    run_seconds: float | None = Field(default=None, description="Training plus evaluations")
    busy: bool = Field(default=False, description="A training run shared the machine while measuring")
    cached: bool = False
    measured_at: str | None = None


def estimate_key(config: TaskConfig) -> str:
    """What an iteration's time depends on, hashed: not epochs, names or the learning rate."""
    dumped = config.model_dump(mode="json")
    settings = get_settings()
    facts = {
        "task": dumped["task"],
        "model": {k: dumped["model"].get(k) for k in ("architecture", "options")},
        "data": dumped["data"],
        "runtime": {k: dumped["runtime"].get(k) for k in ("device", "mixed_precision", "channels_last")},
        "accumulate": dumped["schedule"].get("accumulate"),
        "machine": [training_machine().device, settings.training_threads],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _matching(session: Session, user: User, key: str) -> list[Job]:
    rows = session.scalars(
        select(Job)
        .where(Job.owner_id == user.id, Job.kind == KIND, Job.created_at > utcnow() - KEEP)
        .order_by(Job.id.desc())
        .limit(200)
    ).all()
    return [j for j in rows if j.config.get("key") == key]


def scaled(config: TaskConfig, job: Job, *, cached: bool) -> Estimate:
    """A finished measure scaled to this config's length and evaluation interval."""
    m = job.result or {}
    per_epoch = max(1, int(m.get("iterations_per_epoch") or 1))
    sched, rt = config.schedule, config.runtime
    total = sched.iterations if sched.iterations is not None else (sched.epochs or 1) * per_epoch
    epochs = math.ceil(total / per_epoch)
    evaluations = 0
    if m.get("eval_seconds") is not None:
        evaluations = epochs // rt.eval_interval + (1 if epochs % rt.eval_interval else 0)
    it = float(m["seconds_per_iteration"])
    run = total * it + evaluations * float(m.get("eval_seconds") or 0.0)
    where = "the GPU" if m.get("device") == "cuda" else "the CPU"
    message = f"measured over {m.get('timed_iterations', '?')} iterations on {where}"
    if m.get("busy"):
        message += " while a training run shared the machine: expect it to be faster when it runs alone"
    return Estimate(
        status="ready",
        job_id=job.id,
        message=message,
        device=m.get("device"),
        seconds_per_iteration=it,
        data_seconds_per_iteration=m.get("data_seconds_per_iteration"),
        memory_mb=m.get("memory_mb"),
        memory_note=str(m.get("memory_note") or ""),
        iterations_per_epoch=per_epoch,
        total_iterations=total,
        eval_seconds=m.get("eval_seconds"),
        evaluations=evaluations,
        run_seconds=run,
        busy=bool(m.get("busy")),
        cached=cached,
        measured_at=job.finished_at.isoformat() if job.finished_at else None,
    )


def _from_job(config: TaskConfig, job: Job, *, cached: bool) -> Estimate | None:
    """What a matching job says: ready, pending, a recent failure; None when it is a stale failure."""
    if job.status == JobStatus.succeeded:
        return scaled(config, job, cached=cached)
    if not job.status.finished:
        return Estimate(
            status="pending", job_id=job.id, message=f"measuring on the worker (job {job.id}, {job.status})"
        )
    finished = job.finished_at or job.created_at
    if finished > utcnow() - RETRY_FAILED_AFTER:
        return Estimate(
            status="failed", job_id=job.id, message=f"the measure failed: {job.error or job.status}"
        )
    return None


@router.post("/estimate")
async def estimate_run(
    body: EstimateRequest,
    user: CurrentUser,
    session: SessionDep,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for a new measure")] = 15,
) -> Estimate:
    """Time per iteration, data time and memory, measured on the worker for this config's model, input
    size and batch (a short timed run, kept for a week), and from them the time per epoch and for the
    whole run. ``status`` pending: ask again with the same config; nothing is measured twice."""
    try:
        config = parse_train_config(body.config)
    except ValidationError as exc:
        raise validation_error(exc, ("body", "config"), body.config) from exc
    check_train(session, user, config)
    key = estimate_key(config)
    for job in _matching(session, user, key):
        known = _from_job(config, job, cached=True)
        if known is not None:
            return known
        break  # the newest matching is a stale failure: measure again
    job = create_job(
        session, user, KIND, {"config": config.model_dump(mode="json"), "key": key}, internal=True
    )
    job_id = job.id
    session.close()
    snap = await wait_for_job(job_id, wait)
    row = session.get(Job, snap.id)
    answer = _from_job(config, row, cached=False) if row is not None else None
    if answer is None:
        return Estimate(status="failed", job_id=job_id, message="the measure failed")
    return answer
