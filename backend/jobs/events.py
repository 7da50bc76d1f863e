"""The job event log (status, progress, metrics): written with the change it reports, in one transaction,
announced on Redis pub/sub when Redis is configured, and read back by the SSE stream."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.db.tables import Job, JobEvent, JobMetric, utcnow
from backend.settings import get_settings

log = logging.getLogger(__name__)


def channel(job_id: int) -> str:
    return f"studio:job:{job_id}"


def append_event(session: Session, job_id: int, type_: str, data: dict[str, Any]) -> None:
    session.execute(insert(JobEvent).values(job_id=job_id, type=type_, data=data, created_at=utcnow()))


def status_event(job: Job) -> dict[str, Any]:
    return {
        "status": str(job.status),
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "attempt": job.attempt,
    }


def write_metrics(session: Session, job_id: int, rows: Iterable[tuple[int, str, float]]) -> int:
    """Insert metric rows, skipping any (job, step, name) already there; log an event for the new ones."""
    values = [
        {"job_id": job_id, "step": s, "name": n, "value": float(v), "created_at": utcnow()}
        for s, n, v in rows
    ]
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    ins: Any = postgresql.insert(JobMetric) if dialect == "postgresql" else sqlite.insert(JobMetric)
    stmt = (
        ins.values(values)
        .on_conflict_do_nothing(index_elements=["job_id", "step", "name"])
        .returning(JobMetric.step, JobMetric.name, JobMetric.value)
    )
    inserted: Sequence[Any] = session.execute(stmt).all()
    if inserted:
        points = [{"step": r.step, "name": r.name, "value": r.value} for r in inserted]
        append_event(session, job_id, "metrics", {"points": points})
    return len(inserted)


def events_after(session: Session, job_id: int, after_id: int, limit: int = 500) -> list[JobEvent]:
    stmt = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id).order_by(JobEvent.id)
    return list(session.scalars(stmt.limit(limit)))


@lru_cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def notify(job_id: int) -> None:
    """Wake the SSE streams of a job after its events were committed. Best effort: streams also poll."""
    url = get_settings().redis_url
    if not url:
        return
    try:
        _redis(url).publish(channel(job_id), b"1")
    except Exception as exc:  # a lost wake-up costs one poll interval, never an event
        log.warning("could not publish job %s event: %s", job_id, exc)
