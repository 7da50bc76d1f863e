"""``GET /api/health``: database, broker, and the workers live on each queue."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from anyio import to_thread
from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import select, text

from backend.db.session import session_factory
from backend.db.tables import Job, JobStatus, WorkerSighting, utcnow
from backend.jobs.broker import check_broker
from backend.settings import QUEUES, get_settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["health"])


class Check(BaseModel):
    ok: bool
    detail: str


class BrokerCheck(Check):
    transport: str


class WorkerOut(BaseModel):
    name: str
    last_seen: datetime
    busy: bool


class QueueOut(BaseModel):
    workers: list[WorkerOut]


class Health(BaseModel):
    status: str
    database: Check
    broker: BrokerCheck
    queues: dict[str, QueueOut]


def _database_and_workers() -> tuple[Check, dict[str, QueueOut]]:
    settings = get_settings()
    queues = {q: QueueOut(workers=[]) for q in QUEUES}
    try:
        with session_factory()() as session:
            session.execute(text("SELECT 1"))
            since = utcnow() - timedelta(seconds=settings.worker_live_seconds)
            seen: dict[tuple[str, str], WorkerOut] = {}
            for s in session.scalars(select(WorkerSighting).where(WorkerSighting.seen_at >= since)):
                seen[(s.queue, s.worker)] = WorkerOut(name=s.worker, last_seen=s.seen_at, busy=False)
            # A worker deep in a long job consumes no canary, but its job's heartbeat proves it alive.
            fresh = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds)
            busy = session.execute(
                select(Job.queue, Job.worker, Job.heartbeat_at).where(
                    Job.status == JobStatus.running, Job.heartbeat_at >= fresh
                )
            ).all()
            for queue, name, beat in busy:
                if name and beat:
                    seen[(queue, name)] = WorkerOut(name=name, last_seen=beat, busy=True)
    except Exception as exc:
        log.warning("health: database check failed: %s", exc)
        return Check(ok=False, detail=f"unreachable: {type(exc).__name__}"), queues
    for (queue, _), found in sorted(seen.items()):
        if queue in queues:
            queues[queue].workers.append(found)
    return Check(ok=True, detail=settings.database_url.split(":", 1)[0]), queues


def _broker() -> BrokerCheck:
    scheme = get_settings().broker_url.split(":", 1)[0]
    try:
        check_broker()
    except Exception as exc:
        return BrokerCheck(ok=False, detail=f"unreachable: {exc}", transport=scheme)
    return BrokerCheck(ok=True, detail="reachable", transport=scheme)


@router.get("/health")
async def health(response: Response) -> Health:
    """Public: the state of the database, the broker and the workers of each queue."""
    database, queues = await to_thread.run_sync(_database_and_workers)
    broker = await to_thread.run_sync(_broker)
    live = all(q.workers for q in queues.values())
    status = "ok" if database.ok and broker.ok and live else "degraded"
    if not database.ok:
        response.status_code = 503
    return Health(status=status, database=database, broker=broker, queues=queues)
