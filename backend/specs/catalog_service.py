"""The catalog with its cached counts, and the one job that fills the cache when it lacks entries."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.datasets.canonical import Task
from backend.db.tables import Job, JobStatus, User, utcnow
from backend.errors import StudioError
from backend.jobs.service import create_job
from backend.specs.catalog import list_models
from backend.specs.recipes import entry_defaults, recommended, training_machine
from backend.specs.schemas import CatalogItem, CatalogOut, MachineOut
from backend.specs.stats import EntryStats, read_catalog_stats
from backend.tasks import TASKS

ANALYZE_KIND = "analyze_catalog"
# After an analysis ends, wait this long before another: an entry the worker cannot count (a library
# missing on that machine) must not start a job on every page view.
RETRY_AFTER = timedelta(minutes=10)
log = logging.getLogger(__name__)
_enqueue_lock = threading.Lock()  # one API process never queues two analyses at once


def _known(data_dir: Path) -> dict[str, EntryStats]:
    stats = read_catalog_stats(data_dir)
    if stats is None:
        return {}
    sizes = {e.name: e.default_input_size for e in list_models()}
    return {name: s for name, s in stats.entries.items() if sizes.get(name) == s.input_size}


def ensure_analysis(session: Session, user: User, missing: list[str]) -> Job | None:
    """The analysis job under way, or a new one for ``missing``; None while recent ones that covered them
    have just ended (an entry that cannot be counted is not asked for again and again)."""
    with _enqueue_lock:
        recent = session.scalars(
            select(Job)
            .where(Job.kind == ANALYZE_KIND)
            .where(
                Job.status.in_([JobStatus.queued, JobStatus.running])
                | (Job.finished_at > utcnow() - RETRY_AFTER)
            )
            .order_by(Job.id.desc())
        ).all()
        under_way = next((j for j in recent if not j.status.finished), None)
        if under_way is not None:
            return under_way
        everything = [e.name for e in list_models()]
        covered = {name for j in recent for name in (j.config.get("architectures") or everything)}
        if set(missing) <= covered:
            return None
        names = None if len(missing) == len(list_models()) else missing
        return create_job(session, user, ANALYZE_KIND, {"architectures": names}, internal=True)


def catalog(session: Session, user: User, data_dir: Path, task: Task | None) -> CatalogOut:
    known = _known(data_dir)
    # Only the entries asked for are counted now (the form shows one task): the worker is not held up
    # measuring detectors while someone waits for a classifier.
    missing = [e.name for e in list_models(task) if e.name not in known]
    job = None
    if missing:
        try:
            job = ensure_analysis(session, user, missing)
        except StudioError as exc:  # the broker is down: the catalog still answers, without counts
            session.rollback()
            log.warning("could not queue the catalog analysis: %s", exc.detail)
    machine = training_machine()
    items = []
    for entry in list_models(task):
        counted = known.get(entry.name)
        items.append(
            CatalogItem(
                **entry.model_dump(),
                params=counted.params if counted else None,
                flops=counted.flops if counted else None,
                defaults=entry_defaults(TASKS[entry.task.value], entry, machine.device),
            )
        )
    job_id = job.id if job is not None and job.owner_id == user.id else None
    pick, reason = recommended(TASKS[task.value], machine.device) if task is not None else (None, "")
    return CatalogOut(
        entries=items,
        stats_pending=bool(missing),
        stats_job_id=job_id,
        machine=MachineOut(device=machine.device, gpus=machine.gpus, description=machine.description),
        recommended=pick,
        recommended_reason=reason,
    )
