"""State changes of a job row, each one atomic and conditional so that two workers, a duplicate delivery,
a cancel and the reaper can race without harm. The worker calls these; so do the tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.db.tables import Job, JobStatus, utcnow
from backend.jobs.events import append_event, status_event


def _status_event(session: Session, job_id: int) -> None:
    job = session.get(Job, job_id, populate_existing=True)
    if job is not None:
        append_event(session, job_id, "status", status_event(job))


def count_delivery(session: Session, job_id: int) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(deliveries=Job.deliveries + 1))


def take_lease(session: Session, job_id: int, worker: str, lease_seconds: float) -> Job | None:
    """Claim a queued job for ``worker`` in one UPDATE; ``None`` when someone else has it or it is done."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued, Job.cancel_requested.is_(False))
        .values(
            status=JobStatus.running,
            worker=worker,
            attempt=Job.attempt + 1,
            heartbeat_at=now,
            lease_until=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    _status_event(session, job_id)
    return session.get(Job, job_id)


@dataclass
class Renewal:
    held: bool
    cancel_requested: bool


def renew_lease(session: Session, job_id: int, worker: str, lease_seconds: float) -> Renewal:
    """Heartbeat: extend the lease if ``worker`` still holds it, and report a cancel request."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.running)
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    held = result.rowcount == 1  # type: ignore[attr-defined]
    cancel = bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))
    return Renewal(held=held, cancel_requested=cancel)


def report_progress(session: Session, job_id: int, worker: str, progress: float, message: str | None) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.running)
        .values(progress=max(0.0, min(1.0, progress)), message=message, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    append_event(session, job_id, "progress", {"progress": progress, "message": message})
    return True


def finish(
    session: Session,
    job_id: int,
    worker: str,
    status: JobStatus,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """End a running job this worker holds. False when the lease was lost (the job is someone else's now)."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": now,
        "updated_at": now,
        "lease_until": None,
    }
    if result is not None:
        values["result"] = result
    if status == JobStatus.succeeded:
        # The last progress line ("drawing the worst validation images") is over: a finished job says
        # what it made in its result, not what it was doing before it ended.
        values["progress"], values["message"] = 1.0, None
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.running)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _status_event(session, job_id)
    return True


def request_cancel(session: Session, job: Job) -> bool:
    """Cancel a job: a queued one at once, a running one by raising the flag its loop checks.

    Returns True when the job was still queued (so its queued message should be revoked)."""
    if JobStatus(job.status).finished:
        return False
    now = utcnow()
    res = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, cancel_requested=True, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        _status_event(session, job.id)
        return True
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.running)
        .values(cancel_requested=True, updated_at=now, message="cancelling")
        .execution_options(synchronize_session=False)
    )
    return False


@dataclass
class Reaped:
    requeued: list[tuple[int, str, int]]  # (job id, queue, attempts so far: names the new message)
    failed: list[int]


def _take_back(session: Session, rows: Any, max_attempts: int, why: str, out: Reaped) -> None:
    """Re-queue (or, out of attempts, fail) each running job row, compare-and-set on its heartbeat so that
    two reapers, or a reaper and a supervisor, never take one job back twice."""
    now = utcnow()
    for row in rows:
        same = (Job.id == row.id, Job.status == JobStatus.running, Job.heartbeat_at == row.heartbeat_at)
        if row.attempt >= max_attempts:
            values: dict[str, Any] = {
                "status": JobStatus.failed,
                "finished_at": now,
                "updated_at": now,
                "lease_until": None,
                "error": f"worker {row.worker} {why}; gave up after {row.attempt} attempts",
            }
        else:
            values = {
                "status": JobStatus.queued,
                "worker": None,
                "lease_until": None,
                "updated_at": now,
                "message": f"re-queued: worker {row.worker} {why} (attempt {row.attempt})",
            }
        res = session.execute(
            update(Job).where(*same).values(**values).execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            continue
        _status_event(session, row.id)
        if row.attempt >= max_attempts:
            out.failed.append(row.id)
        else:
            out.requeued.append((row.id, row.queue, row.attempt))


_ROW = (Job.id, Job.queue, Job.attempt, Job.heartbeat_at, Job.worker)


def reap(session: Session, timeout_seconds: float, max_attempts: int) -> Reaped:
    """Re-queue running jobs whose heartbeat is older than ``timeout_seconds``; fail those out of attempts."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    stale = session.execute(
        select(*_ROW).where(Job.status == JobStatus.running, Job.heartbeat_at < cutoff)
    ).all()
    out = Reaped(requeued=[], failed=[])
    _take_back(session, stale, max_attempts, "stopped answering", out)
    return out


def give_back(session: Session, job_id: int, worker: str, why: str) -> Reaped:
    """A worker being stopped hands its running job back: queued again at once, its attempt not counted
    (nothing failed), to resume from its last checkpoint when a worker takes it."""
    out = Reaped(requeued=[], failed=[])
    row = session.execute(
        select(*_ROW).where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
    ).first()
    if row is None:
        return out
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
        .values(
            status=JobStatus.queued,
            worker=None,
            lease_until=None,
            attempt=Job.attempt - 1,
            updated_at=utcnow(),
            message=f"re-queued: {why}; it resumes from its last checkpoint",
        )
        .execution_options(synchronize_session=False)
    )
    if res.rowcount == 1:  # type: ignore[attr-defined]
        _status_event(session, job_id)
        out.requeued.append((row.id, row.queue, row.attempt - 1))
    return out


def release_dead_worker(session: Session, worker: str, max_attempts: int, how: str) -> Reaped:
    """Take back at once the running jobs of a worker known to be dead (its supervisor saw it exit), rather
    than after the reaper's heartbeat timeout."""
    rows = session.execute(select(*_ROW).where(Job.status == JobStatus.running, Job.worker == worker)).all()
    out = Reaped(requeued=[], failed=[])
    _take_back(session, rows, max_attempts, how, out)
    return out
