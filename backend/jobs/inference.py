"""The API's side of the inference lane: send one ``studio.infer`` task, await its answer.

A single-image predict or CAM is not a job: no row, no lease. It is a Celery task on the ``inference``
queue whose return value comes back through Celery's result backend. The API does not wait with
``AsyncResult.get()``: that call is not safe from several threads at once on the Redis backend (celery
#4480, #3761, #6335), and a server answers many requests at a time. It waits on its event loop instead:
on Redis one subscription per process listens on the channels Celery's Redis backend publishes results on
(each result's own key) and hands each answer to its request; with the file backend it polls the result
file.
"""

from __future__ import annotations

import asyncio
import contextlib
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
INFER_PREFIX = "infer-"  # task ids of inference requests: the listener subscribes to their channels
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


class _RedisReplies:
    """One subscription per API process (per event loop) to the channels Celery's Redis backend publishes
    inference results on, handing each answer to the request that waits for it.

    A request registers its task id before the task is sent, so no answer can slip by; the connection,
    the SUBSCRIBE and the UNSUBSCRIBE round trips are paid once, not per picture. Should the listener's
    connection drop, every waiting request falls back to reading its result key once a second."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.loop = asyncio.get_running_loop()
        self.client = aioredis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self.ready = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.listener is None or self.listener.done():
            self.ready.clear()
            self.listener = asyncio.get_running_loop().create_task(self._listen())
        await asyncio.wait_for(self.ready.wait(), timeout=5)

    async def _listen(self) -> None:
        prefix = get_celery().backend.get_key_for_task(f"{INFER_PREFIX}*")
        try:
            await self.pubsub.psubscribe(prefix)
            self.ready.set()
            while True:
                message = await self.pubsub.get_message(timeout=None)
                if message is None or message.get("type") != "pmessage":
                    continue
                future = self.waiting.get(message["channel"])
                if future is not None and not future.done():
                    future.set_result(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning(
                "the inference reply listener stopped; waiting requests read their keys", exc_info=True
            )
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await self.pubsub.reset()
            self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)

    async def wait(self, request: InferRequest, task_id: str, timeout: float) -> dict[str, Any] | None:
        backend = get_celery().backend
        key = backend.get_key_for_task(task_id)
        await self.start()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        try:
            _send(request, task_id, timeout)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    raw: bytes | str | None = await asyncio.wait_for(asyncio.shield(future), min(left, 1.0))
                except TimeoutError:
                    raw = await self.client.get(key)  # a message missed (listener reconnecting): read it
                if raw:
                    meta = backend.decode_result(raw)
                    if meta.get("status") in states.READY_STATES:
                        await self.client.delete(key)
                        return dict(meta)
                    future = self.waiting[key] = asyncio.get_running_loop().create_future()
            return None
        finally:
            self.waiting.pop(key, None)


_replies: _RedisReplies | None = None


def _replies_for(url: str) -> _RedisReplies:
    """The listener of the running event loop (a test client may start several loops in turn)."""
    global _replies
    loop = asyncio.get_running_loop()
    if _replies is None or _replies.loop is not loop or _replies.url != url:
        _replies = _RedisReplies(url)
    return _replies


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
    task_id = f"{INFER_PREFIX}{uuid.uuid4().hex}"
    try:
        if settings.redis_url:
            meta = await _replies_for(settings.redis_url).wait(request, task_id, wait)
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
