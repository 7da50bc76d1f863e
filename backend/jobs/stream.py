"""Server-Sent Events for one job, read from the event log so a reconnect loses and repeats nothing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio import to_thread
from fastapi.sse import ServerSentEvent

from backend.db.session import session_factory
from backend.db.tables import Job, JobStatus
from backend.jobs.events import channel, events_after
from backend.settings import get_settings


def _read(job_id: int, after: int) -> tuple[list[tuple[int, str, dict[str, Any]]], bool]:
    with session_factory()() as session:
        # The status first: a job's final status and its event are committed together, so once the status
        # reads finished, the events read next include the last one. The other order can miss it.
        job = session.get(Job, job_id)
        finished = job is None or JobStatus(job.status).finished
        session.commit()  # end the snapshot so the events query sees everything committed since
        rows = [(e.id, e.type, e.data) for e in events_after(session, job_id, after)]
        return rows, finished


@contextlib.asynccontextmanager
async def _wakeups(job_id: int) -> AsyncIterator[Any]:
    """A Redis subscription to the job's channel when Redis is configured, else ``None`` (poll)."""
    url = get_settings().redis_url
    if not url:
        yield None
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel(job_id))
    except Exception:
        await client.aclose()
        yield None
        return
    try:
        yield pubsub
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
            await client.aclose()


async def job_events(job_id: int, after: int) -> AsyncIterator[ServerSentEvent]:
    """Events with id > ``after``, then live ones, until the job has finished and all is sent."""
    poll = get_settings().events_poll_seconds
    async with _wakeups(job_id) as pubsub:
        while True:
            rows, finished = await to_thread.run_sync(_read, job_id, after)
            for event_id, type_, data in rows:
                after = event_id
                yield ServerSentEvent(id=str(event_id), event=type_, data=data)
            if rows:
                continue  # there may be more than one page
            if finished:
                yield ServerSentEvent(event="end", data={"last_event_id": after})
                return
            if pubsub is None:
                await anyio.sleep(poll)
            else:
                # A wake-up arrives right after each commit; the timeout covers one lost in transit.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=max(poll * 4, 2.0))
