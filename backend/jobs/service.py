"""Creating and cancelling jobs: write the row, commit, then enqueue its id."""

from __future__ import annotations

import bisect
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.tables import Job, JobStatus, User, utcnow
from backend.errors import StudioError
from backend.jobs import broker
from backend.jobs.events import append_event, notify, status_event
from backend.jobs.kinds import JOB_KINDS, queue_for
from backend.jobs.lifecycle import Reaped, request_cancel
from backend.jobs.schemas import JobOut, QueuePosition

log = logging.getLogger(__name__)


def _field_path(loc: tuple[Any, ...], data: Any) -> list[Any]:
    """``loc`` without the tags pydantic puts after a list item of a tagged union (``augment.0.pad.p`` is
    the field ``augment.0.p``): a string that is the item's ``name`` and not one of its keys."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("name") == part:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...], data: Any = None) -> StudioError:
    """A 422 in the API's shape whose detail names the first bad field under ``prefix`` (``data``: the
    input validated, so that a tagged union's tag is not taken for a field)."""
    errors = [
        {"loc": [*prefix, *_field_path(e["loc"], data)], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"][1:])
    return StudioError(422, f"{where}: {first['msg']}", "validation_error", extra={"errors": errors})


def create_job(
    session: Session, owner: User, kind_name: str, config: dict[str, Any], *, internal: bool = False
) -> Job:
    """Record a job and enqueue it. ``internal`` allows kinds that only the studio's own endpoints create."""
    kind = JOB_KINDS.get(kind_name)
    if kind is None or not (kind.user_creatable or internal):
        known = ", ".join(sorted(k.name for k in JOB_KINDS.values() if k.user_creatable))
        raise StudioError(
            422,
            f"kind: unknown job kind {kind_name!r} (known: {known})",
            "validation_error",
            extra={"errors": [{"loc": ["body", "kind"], "msg": "unknown job kind", "type": "enum"}]},
        )
    try:
        parsed = kind.parse(config)
    except ValidationError as exc:
        raise validation_error(exc, ("body", "config"), config) from exc
    if kind.check is not None:
        kind.check(session, owner, parsed)
    job = Job(
        owner_id=owner.id,
        kind=kind.name,
        queue=queue_for(kind, parsed),
        config=parsed.model_dump(mode="json"),
        status=JobStatus.queued,
    )
    session.add(job)
    session.flush()
    append_event(session, job.id, "status", status_event(job))
    session.commit()
    try:
        broker.send_job(job.id, job.queue, job.attempt)
    except Exception as exc:
        log.exception("could not enqueue job %s", job.id)
        job.status = JobStatus.failed
        job.error = f"the broker could not be reached: {exc}"
        job.finished_at = utcnow()
        append_event(session, job.id, "status", status_event(job))
        session.commit()
        raise StudioError(
            503, "the job broker is unreachable; the job was not queued", "broker_unavailable"
        ) from exc
    return job


def cancel_job(session: Session, job: Job) -> Job:
    was_queued = request_cancel(session, job)
    session.commit()
    notify(job.id)
    if was_queued:
        try:
            broker.revoke_job(job.id, job.attempt)
        except Exception as exc:  # the worker also skips a cancelled job when the message arrives
            log.warning("could not revoke job %s: %s", job.id, exc)
    session.refresh(job)
    return job


def resend(reaped: Reaped) -> None:
    """Send the re-queued jobs' ids again, and tell their watchers."""
    for job_id, queue, attempt in reaped.requeued:
        log.warning("job %s: worker lost, re-queued on %s (attempt %s so far)", job_id, queue, attempt)
        broker.send_job(job_id, queue, attempt)
        notify(job_id)
    for job_id in reaped.failed:
        log.error("job %s: worker lost too often, marked failed", job_id)
        notify(job_id)


def _position_text(lane: str, queued_before: int, running: int) -> str:
    """E.g. "behind 2 queued and 1 running job on the training lane"; "next on the light lane"."""
    parts = []
    if queued_before:
        parts.append(f"{queued_before} queued")
    if running:
        parts.append(f"{running} running")
    if not parts:
        return f"next on the {lane} lane"
    jobs = "job" if queued_before + running == 1 else "jobs"
    return f"behind {' and '.join(parts)} {jobs} on the {lane} lane"


def with_positions(session: Session, jobs: list[Job]) -> list[JobOut]:
    """Jobs as the API shows them; a queued one says where it stands on its lane (every user's jobs
    count, since they share the lane; only the numbers are shown)."""
    lanes = {j.queue for j in jobs if j.status == JobStatus.queued}
    running: dict[str, int] = {}
    queued_ids: dict[str, list[int]] = {}
    if lanes:
        counts = session.execute(
            select(Job.queue, func.count())
            .where(Job.status == JobStatus.running, Job.queue.in_(lanes))
            .group_by(Job.queue)
        ).all()
        running = {q: int(n) for q, n in counts}
        for queue, job_id in session.execute(
            select(Job.queue, Job.id)
            .where(Job.status == JobStatus.queued, Job.queue.in_(lanes))
            .order_by(Job.id)
        ):
            queued_ids.setdefault(queue, []).append(int(job_id))
    out = []
    for job in jobs:
        view = JobOut.model_validate(job)
        if job.status == JobStatus.queued:
            before = bisect.bisect_left(queued_ids.get(job.queue, []), job.id)
            busy = running.get(job.queue, 0)
            view.queue_position = QueuePosition(
                lane=job.queue,
                ahead=before + busy,
                queued_before=before,
                running=busy,
                text=_position_text(job.queue, before, busy),
            )
        out.append(view)
    return out
