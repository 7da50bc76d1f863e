"""Thin task functions: they carry a job id to the runner, or record a canary."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.signals import after_setup_logger, worker_ready, worker_shutdown, worker_shutting_down
from sqlalchemy.dialects import postgresql, sqlite

from backend.db.session import session_scope
from backend.db.tables import WorkerSighting, utcnow
from backend.jobs.broker import CANARY_TASK, INFER_TASK, RUN_JOB_TASK
from worker.celery_app import app
from worker.context import STOPPING
from worker.reaper import Reaper
from worker.runner import run_job as run

log = logging.getLogger(__name__)
_reaper: Reaper | None = None


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job(self: Task, job_id: int) -> str:
    return run(int(job_id), self.request.hostname or "worker")


@app.task(name=INFER_TASK, acks_late=False, ignore_result=False)
def infer(request: dict[str, Any]) -> dict[str, Any]:
    """One inference request (pictures for one model); the answer goes back by the result backend. Acked
    on receipt: a request whose worker died is not worth answering a week later, its caller has gone."""
    from worker.serving.lane import handle

    return handle(request)


@app.task(name=CANARY_TASK, bind=True, acks_late=False)
def canary(self: Task) -> None:
    """Proves this worker consumes its queue: health reports it live while canaries keep arriving."""
    queue = (self.request.delivery_info or {}).get("routing_key") or "light"
    worker = self.request.hostname or "worker"
    with session_scope() as session:
        dialect = session.get_bind().dialect.name
        ins: Any = (
            postgresql.insert(WorkerSighting) if dialect == "postgresql" else sqlite.insert(WorkerSighting)
        )
        now = utcnow()
        session.execute(
            ins.values(worker=worker, queue=queue, seen_at=now).on_conflict_do_update(
                index_elements=["worker", "queue"], set_={"seen_at": now}
            )
        )


class QuietCanaries(logging.Filter):
    """Celery's "Task studio.canary[...] received" and "... succeeded" lines, every few seconds on every
    queue, at DEBUG instead of INFO: shown with ``--loglevel debug``, out of the way otherwise (jobs'
    own lines stay at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.levelno == logging.INFO and isinstance(args, dict) and args.get("name") == CANARY_TASK:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger("celery").isEnabledFor(logging.DEBUG)
        return True


# The two loggers that write a line for each task received and finished.
TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


@after_setup_logger.connect
def _quiet_canaries(**_: Any) -> None:
    for name in TASK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietCanaries) for f in logger.filters):
            logger.addFilter(QuietCanaries())


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    global _reaper
    _reaper = Reaper()
    _reaper.start()
    log.info("reaper started")


@worker_shutting_down.connect
def _stopping(**_: Any) -> None:
    """Celery's warm shutdown began (SIGTERM, or a first Ctrl-C): the running job gives itself back to its
    queue at its next check, rather than running to its end (hours, for training) or being cut off."""
    STOPPING.set()


@worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    if _reaper is not None:
        _reaper.stop()
