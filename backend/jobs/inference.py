"""The API's side of the inference lane: send one ``studio.infer`` task, await its answer.

A single-image predict or CAM is not a job: no row, no lease. It is a Celery task on the ``inference``
queue whose return value comes back through Celery's result backend. The API does not wait with
``AsyncResult.get()``: that call is not safe from several threads at once on the Redis backend (celery
#4480, #3761, #6335), and a server answers many requests at a time. It waits on its event loop instead:
on Redis it subscribes to the channel Celery's Redis backend publishes each result on (the result's own
key) before sending, so no answer can slip by; with the file backend it polls the result file.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from celery import states

from backend.errors import StudioError
from backend.jobs.broker import INFER_TASK, get_celery
from backend.models.contract import InferReply, InferRequest
from backend.settings import get_settings

log = logging.getLogger(__name__)
LANE = "inference"
_FILE_POLL_SECONDS = (0.002, 0.05)  # first and longest wait between reads of the result file


def _send(request: InferRequest, task_id: str, expires: float) -> None:
    get_celery().send_task(
        INFER_TASK,
        args=[request.model_dump(mode="json")],
        queue=LANE,
        routing_key=LANE,
        task_id=task_id,
        expires=expires,
    )


def _reply_of(meta: dict[str, Any], task_id: str) -> InferReply:
    status = meta.get("status")
    if status == states.SUCCESS:
        return InferReply.model_validate(meta.get("result") or {})
    # The task returns its own errors; an exception here is a bug or a worker lost mid-request.
    raise StudioError(
        500, f"the inference lane failed on request {task_id}: {meta.get('result')!r}", "inference_failed"
    )


async def _wait_redis(request: InferRequest, task_id: str, timeout: float) -> dict[str, Any] | None:
    import redis.asyncio as aioredis

    backend = get_celery().backend
    key = backend.get_key_for_task(task_id)
    client = aioredis.Redis.from_url(get_settings().redis_url)
    try:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(key)
            _send(request, task_id, timeout)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 1.0))
                raw = message["data"] if message else await client.get(key)  # a missed message: read it
                if raw:
                    meta = backend.decode_result(raw)
                    if meta.get("status") in states.READY_STATES:
                        await client.delete(key)
                        return dict(meta)
            return None
    finally:
        await client.aclose()


async def _wait_file(request: InferRequest, task_id: str, timeout: float) -> dict[str, Any] | None:
    backend = get_celery().backend
    _send(request, task_id, timeout)
    deadline = time.monotonic() + timeout
    delay, longest = _FILE_POLL_SECONDS
    while time.monotonic() < deadline:
        meta = backend.get_task_meta(task_id)
        if meta.get("status") in states.READY_STATES:
            backend.forget(task_id)
            return dict(meta)
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, longest)
    return None


async def infer(request: InferRequest, timeout: float | None = None) -> InferReply:
    """The lane's answer to ``request``; a 503 when no inference worker answers in time."""
    settings = get_settings()
    wait = settings.inference_timeout_seconds if timeout is None else timeout
    task_id = f"infer-{uuid.uuid4().hex}"
    try:
        if settings.redis_url:
            meta = await _wait_redis(request, task_id, wait)
        else:
            meta = await _wait_file(request, task_id, wait)
    except StudioError:
        raise
    except Exception as exc:
        log.exception("inference request %s could not be sent or read", task_id)
        raise StudioError(
            503, f"the inference lane could not be reached: {exc}", "inference_unavailable"
        ) from exc
    if meta is None:
        raise StudioError(
            503,
            f"no worker on the inference lane answered within {wait:.0f} s; the health page shows the "
            "lane's workers",
            "inference_timeout",
        )
    return _reply_of(meta, task_id)


def raise_for(reply: InferReply) -> list[dict[str, Any]]:
    """The answers, or the lane's error as the API's error (naming the image by index in a batch)."""
    if reply.error is not None:
        err = reply.error
        extra = {"index": err.index} if err.index is not None else {}
        raise StudioError(err.status, err.detail, err.code, extra=extra)
    return reply.answers
