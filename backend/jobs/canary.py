"""Canary tasks: health calls a worker live when it recently consumed one from its queue.

Each round sends one canary per worker last seen on the queue (at least one), but only once the previous
round was consumed or ``retry_seconds`` have passed (a minute by default), so a queue without workers
gathers one canary a minute, not one every round."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.tables import WorkerSighting, utcnow
from backend.settings import LANES


@dataclass
class CanaryState:
    last_sent: dict[str, datetime] = field(default_factory=dict)


def canary_round(
    session: Session,
    state: CanaryState,
    live_seconds: float,
    send: Callable[[str, int], None],
    retry_seconds: float = 60.0,
) -> dict[str, int]:
    """Send this round's canaries with ``send(queue, count)``; returns what was sent per queue."""
    now = utcnow()
    since = now - timedelta(seconds=live_seconds)
    rows = session.execute(
        select(WorkerSighting.queue, func.count(), func.max(WorkerSighting.seen_at))
        .where(WorkerSighting.seen_at >= since)
        .group_by(WorkerSighting.queue)
    ).all()
    seen = {queue: (int(count), latest) for queue, count, latest in rows}
    sent: dict[str, int] = {}
    for queue in LANES:
        workers, latest = seen.get(queue, (0, None))
        last = state.last_sent.get(queue)
        consumed = last is None or (latest is not None and latest >= last)
        if consumed or now - last >= timedelta(seconds=retry_seconds):  # type: ignore[operator]
            count = max(1, workers)
            send(queue, count)
            state.last_sent[queue] = now
            sent[queue] = count
    return sent
