"""Canary rounds: one per live worker, and no pile-up on a queue nobody consumes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db.session import session_scope
from backend.db.tables import WorkerSighting, utcnow
from backend.jobs.canary import CanaryState, canary_round

pytestmark = pytest.mark.usefixtures("db_stack")


def test_rounds_wait_for_consumption_and_scale_with_workers() -> None:
    state = CanaryState()
    sent: list[tuple[str, int]] = []

    def send(queue: str, count: int) -> None:
        sent.append((queue, count))

    with session_scope() as s:
        assert canary_round(s, state, 45, send) == {"training": 1, "light": 1, "inference": 1}
        # Nobody consumed them: the next rounds send nothing until a minute has passed.
        assert canary_round(s, state, 45, send) == {}
        state.last_sent["training"] -= timedelta(seconds=61)
        assert canary_round(s, state, 45, send) == {"training": 1}
        # Two workers consumed light canaries: next round sends one for each.
        now = utcnow()
        s.add_all([WorkerSighting(worker=f"w{i}", queue="light", seen_at=now) for i in range(2)])
        s.flush()
        assert canary_round(s, state, 45, send)["light"] == 2
