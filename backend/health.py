"""``GET /api/health``: database, broker, and each lane: its workers (live, busy with which job, restarts),
how many jobs wait on it and how many run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from anyio import to_thread
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.db.session import session_factory
from backend.db.tables import Job, JobStatus, LaneWorker, WorkerSighting, utcnow
from backend.jobs.broker import check_broker, queue_length
from backend.settings import LANES, Settings, get_settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["health"])


class Check(BaseModel):
    ok: bool
    detail: str


class BrokerCheck(Check):
    transport: str


class WorkerOut(BaseModel):
    name: str
    live: bool = Field(description="Consumed a canary or renewed a job's lease lately")
    last_seen: datetime | None
    busy: bool
    job_id: int | None = Field(default=None, description="The job it runs now")
    job_kind: str | None = None
    state: str | None = Field(
        default=None, description="As its supervisor saw it: running, restarting, stopped"
    )
    pid: int | None = None
    restarts: int = 0
    last_exit: str | None = Field(default=None, description="How its last process ended")
    resources: str | None = Field(
        default=None, description="What its supervisor gave it: its GPU or none, and its CPU threads"
    )


class LaneOut(BaseModel):
    workers: list[WorkerOut]
    queued: int | None = Field(description="Jobs waiting (inference: requests in the broker's queue)")
    running: int = 0


class Health(BaseModel):
    status: str
    database: Check
    broker: BrokerCheck
    lanes: dict[str, LaneOut]


def _workers(session: Session, settings: Settings) -> dict[str, dict[str, WorkerOut]]:
    out: dict[str, dict[str, WorkerOut]] = {lane: {} for lane in LANES}
    since = utcnow() - timedelta(seconds=settings.worker_live_seconds)
    for s in session.scalars(select(WorkerSighting).where(WorkerSighting.seen_at >= since)):
        if s.queue in out:
            out[s.queue][s.worker] = WorkerOut(name=s.worker, live=True, last_seen=s.seen_at, busy=False)
    # A worker deep in a long job consumes no canary, but its job's heartbeat proves it alive.
    fresh = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds)
    busy = session.execute(
        select(Job.id, Job.kind, Job.queue, Job.worker, Job.heartbeat_at).where(
            Job.status == JobStatus.running
        )
    ).all()
    for job_id, kind, queue, name, beat in busy:
        if name and queue in out:
            live = beat is not None and beat >= fresh
            out[queue][name] = WorkerOut(
                name=name, live=live, last_seen=beat, busy=True, job_id=job_id, job_kind=kind
            )
    recent = utcnow() - timedelta(days=1)
    for row in session.scalars(select(LaneWorker).where(LaneWorker.updated_at >= recent)):
        if row.lane not in out or (row.state == "stopped" and row.name not in out[row.lane]):
            continue
        seen = out[row.lane].get(row.name) or WorkerOut(name=row.name, live=False, last_seen=None, busy=False)
        out[row.lane][row.name] = seen.model_copy(
            update={
                "state": row.state,
                "pid": row.pid,
                "restarts": row.restarts,
                "last_exit": row.last_exit,
                "resources": row.resources,
            }
        )
    return out


def _counts(session: Session) -> dict[tuple[str, JobStatus], int]:
    rows = session.execute(
        select(Job.queue, Job.status, func.count())
        .where(Job.status.in_([JobStatus.queued, JobStatus.running]))
        .group_by(Job.queue, Job.status)
    ).all()
    return {(queue, status): int(n) for queue, status, n in rows}


def _database_and_lanes() -> tuple[Check, dict[str, LaneOut]]:
    settings = get_settings()
    lanes = {lane: LaneOut(workers=[], queued=None) for lane in LANES}
    try:
        with session_factory()() as session:
            session.execute(text("SELECT 1"))
            workers = _workers(session, settings)
            counts = _counts(session)
    except Exception as exc:
        log.warning("health: database check failed: %s", exc)
        return Check(ok=False, detail=f"unreachable: {type(exc).__name__}"), lanes
    for lane in LANES:
        queued: int | None = counts.get((lane, JobStatus.queued), 0)
        if lane == "inference":  # requests, not jobs: the broker holds them
            queued = queue_length(lane)
        lanes[lane] = LaneOut(
            workers=[workers[lane][name] for name in sorted(workers[lane])],
            queued=queued,
            running=counts.get((lane, JobStatus.running), 0),
        )
    return Check(ok=True, detail=settings.database_url.split(":", 1)[0]), lanes


def _broker() -> BrokerCheck:
    scheme = get_settings().broker_url.split(":", 1)[0]
    try:
        check_broker()
    except Exception as exc:
        return BrokerCheck(ok=False, detail=f"unreachable: {exc}", transport=scheme)
    return BrokerCheck(ok=True, detail="reachable", transport=scheme)


@router.get("/health")
async def health(response: Response) -> Health:
    """Public: the state of the database, the broker and the workers of each lane."""
    database, lanes = await to_thread.run_sync(_database_and_lanes)
    broker = await to_thread.run_sync(_broker)
    live = all(any(w.live for w in lane.workers) for lane in lanes.values())
    status = "ok" if database.ok and broker.ok and live else "degraded"
    if not database.ok:
        response.status_code = 503
    return Health(status=status, database=database, broker=broker, lanes=lanes)
