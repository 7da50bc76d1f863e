"""Runs one delivered job: take the lease, keep it alive, call the handler, record the outcome."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Job, JobStatus
from backend.jobs.events import notify
from backend.jobs.lifecycle import count_delivery, finish, give_back, renew_lease, take_lease
from backend.settings import Settings, get_settings
from worker.context import JobCancelled, JobContext, JobFailed, LeaseLost, WorkerStopping
from worker.jobs import get_handler

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Renews the job's lease every ``heartbeat_seconds`` and watches the cancel flag every second.

    If the lease is taken away, or cannot be renewed before it would expire, the job is told to stop."""

    def __init__(self, ctx: JobContext, settings: Settings) -> None:
        super().__init__(name=f"heartbeat-{ctx.job_id}", daemon=True)
        self.ctx = ctx
        self.settings = settings
        self._done = threading.Event()

    def run(self) -> None:
        tick = min(1.0, self.settings.heartbeat_seconds)
        last_ok = time.monotonic()
        while not self._done.wait(tick):
            try:
                with session_scope() as session:
                    renewal = renew_lease(
                        session, self.ctx.job_id, self.ctx.worker, self.settings.heartbeat_timeout_seconds
                    )
            except Exception as exc:
                log.warning("job %s: heartbeat failed: %s", self.ctx.job_id, exc)
                if time.monotonic() - last_ok > self.settings.heartbeat_timeout_seconds:
                    log.error("job %s: lease could not be renewed in time, stopping", self.ctx.job_id)
                    self.ctx.lease_lost.set()
                    return
                continue
            last_ok = time.monotonic()
            if not renewal.held:
                self.ctx.lease_lost.set()
                return
            if renewal.cancel_requested:
                self.ctx.stop_event.set()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def _finish(job_id: int, worker: str, status: JobStatus, **kwargs: Any) -> None:
    with session_scope() as session:
        if not finish(session, job_id, worker, status, **kwargs):
            log.warning("job %s: not recorded as %s, this worker no longer holds it", job_id, status)
    notify(job_id)


def _give_back(job_id: int, worker: str) -> None:
    """Queue the job again (and send its id) for the next worker: this one is stopping."""
    from backend.jobs.service import resend

    try:
        with session_scope() as session:
            back = give_back(session, job_id, worker, "its worker was stopped")
        resend(back)
        log.warning("job %s: worker stopping, job given back to its queue", job_id)
    except Exception:  # the supervisor (or the reaper, later) takes it back instead
        log.exception("job %s: could not give the job back", job_id)


def run_job(job_id: int, worker: str) -> str:
    """Run a job if it is ours to run; returns what happened (for logs and tests)."""
    settings = get_settings()
    with session_scope() as session:
        kind = session.scalar(select(Job.kind).where(Job.id == job_id))
    # Import the handler (torch, for most kinds: seconds) before the lease is taken: between taking the
    # lease and starting the heartbeat there must be no slow step, or the reaper takes the job back.
    handler = get_handler(kind) if kind is not None else None
    with session_scope() as session:
        count_delivery(session, job_id)
        job = take_lease(session, job_id, worker, settings.heartbeat_timeout_seconds)
        if job is None:
            log.info("job %s: not queued or already leased, skipping this delivery", job_id)
            return "skipped"
        config, attempt, owner_id = dict(job.config), job.attempt, job.owner_id
    notify(job_id)
    if handler is None:
        _finish(job_id, worker, JobStatus.failed, error=f"this worker has no handler for job kind {kind!r}")
        return "failed"
    ctx = JobContext(
        job_id=job_id,
        owner_id=owner_id,
        kind=kind,
        config=config,
        attempt=attempt,
        worker=worker,
        work_dir=settings.data_dir / "jobs" / str(job_id),
        stop_event=threading.Event(),
        lease_lost=threading.Event(),
    )
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    heartbeat = Heartbeat(ctx, settings)
    heartbeat.start()
    try:
        result = handler(ctx)
        ctx.flush()
        _finish(job_id, worker, JobStatus.succeeded, result=result or {})
        return "succeeded"
    except JobCancelled:
        ctx.flush()
        _finish(job_id, worker, JobStatus.cancelled, error="cancelled by the user")
        return "cancelled"
    except LeaseLost:
        log.warning("job %s: lease lost, leaving the job to its new holder", job_id)
        return "lease_lost"
    except WorkerStopping:
        try:
            ctx.flush()
        except Exception:
            log.exception("job %s: could not write its last metrics", job_id)
        _give_back(job_id, worker)
        return "given_back"
    except Exception as exc:
        if isinstance(exc, JobFailed):  # the user's input or settings, said in words: one line
            log.warning("job %s failed: %s", job_id, exc)
        else:
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        try:
            ctx.flush()
        except Exception:
            log.exception("job %s: could not write its last metrics", job_id)
        error = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
        _finish(job_id, worker, JobStatus.failed, error=error)
        return "failed"
    finally:
        heartbeat.stop()
