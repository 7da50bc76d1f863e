"""The Celery app as the API sees it: a producer that sends tasks by name. The worker adds the tasks."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

from backend.jobs import fs_transport
from backend.settings import LANES, Settings, get_settings

fs_transport.install()

RUN_JOB_TASK = "studio.run_job"
CANARY_TASK = "studio.canary"
INFER_TASK = "studio.infer"  # the inference lane: answered through the result backend, no job row


def make_celery(settings: Settings) -> Celery:
    app = Celery("studio", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # Jobs in detail: ack after the work, re-queue if the worker dies, take one message at a time,
        # and let the broker wait longer than any job before it re-delivers on its own.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=settings.broker_transport_options(),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_queues=[Queue(q, routing_key=q) for q in LANES],  # type: ignore[no-untyped-call]
        task_default_queue="light",
        # Only the inference lane's answers go through a result backend (jobs answer through their row).
        result_backend=result_backend_url(settings),
        result_expires=3600,
        result_serializer="json",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def result_backend_url(settings: Settings) -> str:
    """Redis when there is one (answers arrive by pub/sub), else files in the data dir."""
    if settings.redis_url:
        return settings.redis_url
    return f"file://{settings.results_dir}"


@lru_cache(maxsize=8)
def _celery_for(url: str, data_dir: str) -> Celery:
    return make_celery(get_settings())


def get_celery() -> Celery:
    """The producer for the current settings (the filesystem broker's folders live in the data dir)."""
    settings = get_settings()
    return _celery_for(settings.broker_url, str(settings.data_dir))


def task_id(job_id: int, attempt: int) -> str:
    return f"job-{job_id}-{attempt}"


def send_job(job_id: int, queue: str, attempt: int = 0) -> None:
    """Put a job's id on its queue. The task id names the attempt, so a queued message can be revoked."""
    get_celery().send_task(
        RUN_JOB_TASK, args=[job_id], queue=queue, routing_key=queue, task_id=task_id(job_id, attempt)
    )


def revoke_job(job_id: int, attempt: int) -> None:
    get_celery().control.revoke(task_id(job_id, attempt))


def send_canaries(queue: str, count: int, expires: float) -> None:
    """Canaries on a queue; a worker that consumes one is what health reports as live."""
    app = get_celery()
    for _ in range(count):
        app.send_task(CANARY_TASK, queue=queue, routing_key=queue, expires=expires)


def check_broker() -> str:
    """Open a connection to the broker; raises when it cannot be reached."""
    with get_celery().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        return str(conn.transport_cls)


def queue_length(queue: str) -> int | None:
    """Messages waiting on a queue, as the broker counts them (None when it cannot say)."""
    try:
        with get_celery().connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            ok = conn.default_channel.queue_declare(queue=queue, passive=True)
            return int(ok.message_count)
    except Exception:
        return None
