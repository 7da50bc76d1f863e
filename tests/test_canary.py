"""Canary rounds: one per live worker, and no pile-up on a queue nobody consumes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db.session import session_scope
from backend.db.tables import WorkerSighting, utcnow
from backend.jobs.canary import CanaryState, canary_round


@pytest.mark.usefixtures("db_stack")
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


def test_canary_lines_are_debug_and_job_lines_stay_info() -> None:
    """Celery writes a line when a canary arrives and one when it ends, every few seconds: they go out at
    DEBUG (dropped at the default INFO); a job's lines are untouched."""
    import logging

    from backend.jobs.broker import CANARY_TASK, RUN_JOB_TASK
    from worker.celery_tasks import QuietCanaries

    quiet, celery = QuietCanaries(), logging.getLogger("celery")

    def record(name: str) -> logging.LogRecord:
        args = ({"name": name, "id": "x"},)  # one mapping: LogRecord keeps it as the args, as Celery's are
        return logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1, "Task %(name)s", args, None)

    before = celery.level
    try:
        celery.setLevel(logging.INFO)
        canary, job = record(CANARY_TASK), record(RUN_JOB_TASK)
        assert canary.args == {"name": CANARY_TASK, "id": "x"}  # as Celery passes them
        assert quiet.filter(canary) is False and canary.levelname == "DEBUG"
        assert quiet.filter(job) is True and job.levelname == "INFO"
        celery.setLevel(logging.DEBUG)
        assert quiet.filter(record(CANARY_TASK)) is True
    finally:
        celery.setLevel(before)
