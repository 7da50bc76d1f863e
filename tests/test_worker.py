"""Real worker processes on real brokers: run, cancel, fail, duplicate delivery, and SIGKILL recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.db.session import session_scope
from backend.db.tables import JobMetric
from backend.jobs.broker import send_job
from tests.conftest import Stack, WorkerProcess
from tests.helpers import sign_up, wait_for

StartWorker = Callable[..., WorkerProcess]


def _job(client: TestClient, job_id: int) -> dict[str, Any]:
    return client.get(f"/api/jobs/{job_id}").json()  # type: ignore[no-any-return]


def _wait_status(client: TestClient, job_id: int, status: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (j := _job(client, job_id))["status"] == status and j, timeout, what=f"job {job_id} {status}"
    )


def _metric_rows(job_id: int) -> tuple[int, int]:
    with session_scope() as s:
        total = s.scalar(select(func.count()).select_from(JobMetric).where(JobMetric.job_id == job_id))
        distinct = s.scalar(
            select(func.count(func.distinct(JobMetric.step))).where(JobMetric.job_id == job_id)
        )
    return int(total or 0), int(distinct or 0)


def test_worker_runs_a_job_and_health_sees_it(
    full_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    start_worker(full_stack)
    sign_up(client)
    health = wait_for(
        lambda: (h := client.get("/api/health").json())["status"] == "ok" and h,
        60,
        what="a live worker on both queues",
    )
    assert health["database"]["ok"] and health["broker"]["ok"]
    assert health["broker"]["transport"] == full_stack.broker

    job = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 5, "step_seconds": 0.05}}
    ).json()
    done = _wait_status(client, job["id"], "succeeded")
    assert done["progress"] == 1.0 and done["attempt"] == 1 and done["result"]["resumed_from"] == 0
    points = client.get(f"/api/jobs/{job['id']}/metrics", params={"name": "probe/step"}).json()
    assert [p["value"] for p in points] == [0, 1, 2, 3, 4]

    gpu = client.post("/api/jobs", json={"kind": "probe", "config": {"steps": 1, "queue": "training"}}).json()
    assert _wait_status(client, gpu["id"], "succeeded")["queue"] == "training"


def test_failure_is_recorded_with_its_reason(
    full_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    start_worker(full_stack)
    sign_up(client)
    job = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 5, "fail_at_step": 2, "step_seconds": 0}}
    ).json()
    failed = _wait_status(client, job["id"], "failed")
    assert failed["error"] == "RuntimeError: probe failed at step 2 as configured (fail_at_step=2)"
    assert _metric_rows(job["id"]) == (4, 2)  # the steps before the failure kept their metrics


def test_cancel_stops_a_running_job(full_stack: Stack, client: TestClient, start_worker: StartWorker) -> None:
    start_worker(full_stack)
    sign_up(client)
    job = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 1000, "step_seconds": 0.05}}
    ).json()
    wait_for(lambda: _job(client, job["id"])["progress"] > 0, 60, what="the job to make progress")
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["cancel_requested"] is True
    cancelled = _wait_status(client, job["id"], "cancelled", timeout=15)
    assert cancelled["progress"] < 0.5
    # The worker is free again for the next job.
    nxt = client.post("/api/jobs", json={"kind": "probe", "config": {"steps": 1}}).json()
    _wait_status(client, nxt["id"], "succeeded")


def test_a_job_delivered_twice_runs_once(
    full_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    sign_up(client)
    job = client.post("/api/jobs", json={"kind": "probe", "config": {"steps": 4, "step_seconds": 0.2}}).json()
    send_job(job["id"], "light", attempt=99)  # a second delivery of the same job id
    start_worker(full_stack)
    done = _wait_status(client, job["id"], "succeeded")
    assert done["attempt"] == 1
    with session_scope() as s:
        from backend.db.tables import Job

        row = s.get(Job, job["id"])
        assert row is not None
        wait_for(lambda: s.refresh(row) or row.deliveries == 2, 30, what="both deliveries consumed")
    assert _metric_rows(job["id"]) == (8, 4)


def test_killed_worker_job_resumes_on_a_live_worker(
    full_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    sign_up(client)
    first = start_worker(full_stack)
    job = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 30, "step_seconds": 0.1}}
    ).json()
    wait_for(lambda: _job(client, job["id"])["progress"] >= 0.3, 60, what="progress before the kill")
    first.kill()
    before = _job(client, job["id"])
    assert before["status"] == "running" and before["worker"] == first.name

    second = start_worker(full_stack)
    done = _wait_status(client, job["id"], "succeeded", timeout=90)
    assert done["worker"] == second.name and done["attempt"] == 2
    assert done["result"]["resumed_from"] >= 9  # continued from its checkpoint, not from scratch
    assert _metric_rows(job["id"]) == (60, 30)  # every step once, none twice


def test_events_stream_live_while_the_job_runs(
    full_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    """Points arrive as the job makes them. On Redis the stream waits on pub/sub, not on polling: with a
    5 s poll the stream would lag by many seconds if the wake-ups did not work."""
    import json
    import time

    from backend.settings import get_settings

    if full_stack.broker == "redis":
        get_settings().events_poll_seconds = 5.0
    start_worker(full_stack)
    sign_up(client)
    wait_for(lambda: client.get("/api/health").json()["status"] == "ok", 60, what="a live worker")
    job = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 12, "step_seconds": 0.25}}
    ).json()
    arrivals: list[tuple[float, str, dict[str, Any]]] = []
    t0 = time.monotonic()
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                arrivals.append((time.monotonic() - t0, event, json.loads(line[6:])))
    statuses = [d["status"] for _, e, d in arrivals if e == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    metric_times = [t for t, e, _ in arrivals if e == "metrics"]
    end_time = arrivals[-1][0]
    assert arrivals[-1][1] == "end"
    timeline = [(round(t, 2), e) for t, e, _ in arrivals]
    assert len(metric_times) >= 6 and metric_times[0] < end_time - 1.5, timeline  # live, not all at the end
    steps = [
        p["value"] for _, e, d in arrivals if e == "metrics" for p in d["points"] if p["name"] == "probe/step"
    ]
    assert steps == list(range(12))  # every point once, in order
    # The job takes 3 s; a stream that waited out even one 20 s pub/sub timeout would end far later.
    assert end_time < 12, timeline


def test_filesystem_broker_publishes_whole_messages(tmp_path: Any, monkeypatch: Any) -> None:
    """A consumer must never find a half-written message: messages appear by rename, never by a write."""
    import json
    import os

    from kombu import Connection

    from backend.jobs import fs_transport

    fs_transport.install()
    folder = tmp_path / "queue"
    folder.mkdir()
    opts = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(tmp_path)}
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        assert not os.path.basename(src).endswith(".msg")  # invisible to consumers until renamed
        real_replace(src, dst)

    monkeypatch.setattr(fs_transport.os, "replace", spy)
    with Connection("filesystem://", transport_options=opts) as conn:
        assert isinstance(conn.transport, fs_transport.Transport)
        conn.default_channel._put("light", {"job": 1})
    messages = sorted(folder.glob("*.light.msg"))
    assert len(renamed) == 1 and renamed[0][0].startswith(".publishing-") and len(messages) == 1
    assert json.loads(messages[0].read_bytes()) == {"job": 1}
    assert [p.name for p in folder.iterdir()] == [messages[0].name]  # no temp file left behind
