"""The lease, heartbeat and reaper rules on both databases, raced the way real workers race."""

from __future__ import annotations

from datetime import timedelta
from threading import Barrier, Thread

import pytest
from sqlalchemy import update

from backend.auth.service import create_user
from backend.db.session import session_scope
from backend.db.tables import Job, JobStatus, utcnow
from backend.jobs.lifecycle import finish, reap, renew_lease, request_cancel, take_lease
from tests.conftest import Stack

pytestmark = pytest.mark.usefixtures("db_stack")


def _job() -> int:
    with session_scope() as s:
        user = create_user(s, "owner@example.com", "password1")
        job = Job(owner_id=user.id, kind="probe", queue="light", config={})
        s.add(job)
        s.flush()
        return job.id


def _age_heartbeat(job_id: int, seconds: float) -> None:
    with session_scope() as s:
        s.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def _get(job_id: int) -> Job:
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def test_only_one_of_many_concurrent_deliveries_takes_the_lease(db_stack: Stack) -> None:
    job_id = _job()
    n = 6
    barrier = Barrier(n)
    winners: list[str] = []

    def deliver(name: str) -> None:
        barrier.wait()
        with session_scope() as s:
            if take_lease(s, job_id, name, 30) is not None:
                winners.append(name)

    threads = [Thread(target=deliver, args=(f"w{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    job = _get(job_id)
    assert job.worker == winners[0] and job.attempt == 1 and job.status == JobStatus.running


def test_reaper_requeues_a_silent_job_then_fails_it_after_max_attempts(db_stack: Stack) -> None:
    job_id = _job()
    for attempt in (1, 2, 3):
        with session_scope() as s:
            assert take_lease(s, job_id, f"w{attempt}", 30) is not None
        with session_scope() as s:
            assert reap(s, 90, 3).requeued == []  # fresh heartbeat: left alone
        _age_heartbeat(job_id, 120)
        with session_scope() as s:
            reaped = reap(s, 90, 3)
        if attempt < 3:
            assert reaped.requeued == [(job_id, "light", attempt)]
            assert _get(job_id).status == JobStatus.queued
            with session_scope() as s:  # the reaped worker wakes up: its lease is gone
                assert not renew_lease(s, job_id, f"w{attempt}", 30).held
                assert not finish(s, job_id, f"w{attempt}", JobStatus.succeeded)
        else:
            assert reaped.failed == [job_id]
    job = _get(job_id)
    assert job.status == JobStatus.failed and "gave up after 3 attempts" in (job.error or "")


def test_two_reapers_requeue_once(db_stack: Stack) -> None:
    job_id = _job()
    with session_scope() as s:
        take_lease(s, job_id, "w", 30)
    _age_heartbeat(job_id, 120)
    with session_scope() as s1, session_scope() as s2:
        first = reap(s1, 90, 3)
        s1.commit()
        second = reap(s2, 90, 3)
    assert len(first.requeued) + len(second.requeued) == 1


def test_cancel_of_a_running_job_raises_its_flag(db_stack: Stack) -> None:
    job_id = _job()
    with session_scope() as s:
        take_lease(s, job_id, "w", 30)
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert request_cancel(s, job) is False  # running: not revoked, flagged
    with session_scope() as s:
        renewal = renew_lease(s, job_id, "w", 30)
    assert renewal.held and renewal.cancel_requested
    with session_scope() as s:
        assert finish(s, job_id, "w", JobStatus.cancelled)
    assert _get(job_id).status == JobStatus.cancelled


def test_a_finished_job_drops_its_last_progress_line_and_a_failed_one_keeps_it() -> None:
    """ "drawing the worst validation images" is what a job was doing, not what it is once it succeeded;
    a failed job keeps the line that says where it stopped."""
    from backend.jobs.lifecycle import report_progress

    first = _job()
    for status, kept in ((JobStatus.succeeded, None), (JobStatus.failed, "drawing the worst images")):
        with session_scope() as s:
            owner = _get(first).owner_id
            job = Job(owner_id=owner, kind="probe", queue="light", config={})
            s.add(job)
            s.flush()
            job_id = job.id
        with session_scope() as s:
            assert take_lease(s, job_id, "w1", 60) is not None
            assert report_progress(s, job_id, "w1", 0.9, "drawing the worst images")
        with session_scope() as s:
            assert finish(s, job_id, "w1", status, error="boom" if status == JobStatus.failed else None)
        job = _get(job_id)
        assert job.message == kept, status
        assert job.progress == (1.0 if status == JobStatus.succeeded else 0.9)
