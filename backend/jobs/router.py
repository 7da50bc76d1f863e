"""``/api/jobs``: create, list, read, metrics, live events, cancel. Handlers enqueue; they never work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import select

from backend.auth.scope import get_owned, owned
from backend.db.tables import Job, JobMetric, JobStatus
from backend.deps import MAX_ID, CurrentUser, Id, SessionDep
from backend.jobs import service
from backend.jobs.kinds import BACKGROUND_KINDS, JOB_KINDS
from backend.jobs.schemas import JobCreate, JobKindOut, JobOut, MetricPoint
from backend.jobs.stream import job_events

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("/kinds")
def list_kinds() -> list[JobKindOut]:
    """The kinds of job the studio runs, with the JSON Schema of each one's config."""
    return [
        JobKindOut(
            name=k.name,
            queue=k.default_queue,
            description=k.description,
            config_schema=k.json_schema(),
        )
        for k in JOB_KINDS.values()
        if k.user_creatable
    ]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_job(body: JobCreate, user: CurrentUser, session: SessionDep) -> JobOut:
    """Record a job and put it on its queue; a worker picks it up."""
    job = service.create_job(session, user, body.kind, body.config)
    return service.with_positions(session, [job])[0]


@router.get("")
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    job_status: Annotated[JobStatus | None, Query(alias="status")] = None,
    kind: str | None = None,
    background: Annotated[
        bool,
        Query(
            description="Also the studio's own work for its pages (catalog counts, augmentation previews, "
            "estimates); a kind asked for by name is always listed"
        ),
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[JobOut]:
    """The caller's jobs, newest first: by default their runs, imports, exports, evaluations and
    predictions, without the studio's background work."""
    stmt = owned(Job, user.id)
    if job_status is not None:
        stmt = stmt.where(Job.status == job_status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    elif not background:
        stmt = stmt.where(Job.kind.not_in(BACKGROUND_KINDS))
    rows = session.scalars(stmt.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
    return service.with_positions(session, list(rows))


@router.get("/{job_id}")
def get_job(job_id: Id, user: CurrentUser, session: SessionDep) -> JobOut:
    return service.with_positions(session, [get_owned(session, Job, job_id, user.id, "job")])[0]


@router.get("/{job_id}/metrics")
def get_metrics(
    job_id: Id,
    user: CurrentUser,
    session: SessionDep,
    name: str | None = None,
    after_step: Annotated[int, Query(ge=-1, le=MAX_ID)] = -1,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[MetricPoint]:
    """Metric points by step, optionally one metric and only after a step."""
    get_owned(session, Job, job_id, user.id, "job")
    stmt = select(JobMetric).where(JobMetric.job_id == job_id, JobMetric.step > after_step)
    if name is not None:
        stmt = stmt.where(JobMetric.name == name)
    rows = session.scalars(stmt.order_by(JobMetric.step, JobMetric.name).limit(limit))
    return [MetricPoint.model_validate(r) for r in rows]


def _owned_job_id(job_id: Id, user: CurrentUser, session: SessionDep) -> int:
    """Checked before a stream starts: once it has, its status code can no longer change."""
    owned_id = get_owned(session, Job, job_id, user.id, "job").id
    session.close()  # give the connection back to the pool: the stream may last for hours
    return owned_id


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def stream_events(
    job_id: Annotated[int, Depends(_owned_job_id)],
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="Same as the Last-Event-ID header")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Status, progress and metric events as Server-Sent Events; resumes after ``Last-Event-ID``.

    The stream reads with short sessions of its own, so it holds no connection while it waits."""
    if after is not None:
        start = after
    else:
        given = last_event_id if last_event_id is not None and last_event_id.isdigit() else "0"
        start = min(int(given[:20]), MAX_ID)  # an id past the last one there can be resumes after all
    async for event in job_events(job_id, start):
        yield event


@router.post("/{job_id}/cancel")
def cancel_job(job_id: Id, user: CurrentUser, session: SessionDep) -> JobOut:
    """Cancel: a queued job at once, a running one at its next check (within a second or so)."""
    job = get_owned(session, Job, job_id, user.id, "job")
    return JobOut.model_validate(service.cancel_job(session, job))
