"""Creating and cancelling jobs: write the row, commit, then enqueue its id."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.db.tables import Job, JobStatus, User, utcnow
from backend.errors import StudioError
from backend.jobs import broker
from backend.jobs.events import append_event, notify, status_event
from backend.jobs.kinds import JOB_KINDS, queue_for
from backend.jobs.lifecycle import request_cancel

log = logging.getLogger(__name__)


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...]) -> StudioError:
    """A 422 in the API's shape whose detail names the first bad field under ``prefix``."""
    errors = [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
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
        raise validation_error(exc, ("body", "config")) from exc
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
