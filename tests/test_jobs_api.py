"""The job endpoints without a worker: validation, scoping, cancel of queued work, metrics, SSE resume."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from backend.db.session import session_scope
from backend.db.tables import JobStatus
from backend.jobs.events import write_metrics
from backend.jobs.lifecycle import finish, report_progress, take_lease
from tests.helpers import sign_up

pytestmark = pytest.mark.usefixtures("db_stack")


def _probe(client: TestClient, **config: object) -> dict[str, object]:
    r = client.post("/api/jobs", json={"kind": "probe", "config": config})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_create_records_a_queued_job(client: TestClient) -> None:
    sign_up(client)
    job = _probe(client, steps=3)
    assert job["status"] == "queued" and job["queue"] == "light" and job["attempt"] == 0
    assert job["config"]["steps"] == 3 and job["config"]["step_seconds"] == 0.1  # defaults filled in
    assert client.get(f"/api/jobs/{job['id']}").json()["id"] == job["id"]
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]
    gpu = _probe(client, queue="training")
    assert gpu["queue"] == "training"


@pytest.mark.parametrize(
    ("payload", "detail_prefix", "loc"),
    [
        ({"kind": "probe", "config": {"steps": 0}}, "config.steps:", ["body", "config", "steps"]),
        ({"kind": "probe", "config": {"steps": "many"}}, "config.steps:", ["body", "config", "steps"]),
        ({"kind": "probe", "config": {"stepz": 3}}, "config.stepz:", ["body", "config", "stepz"]),
        ({"kind": "probe", "config": {"queue": "tpu"}}, "config.queue:", ["body", "config", "queue"]),
        ({"kind": "teleport", "config": {}}, "kind:", ["body", "kind"]),
        ({"config": {}}, "kind:", ["body", "kind"]),
    ],
)
def test_bad_job_is_422_naming_the_field(
    client: TestClient, payload: dict[str, object], detail_prefix: str, loc: list[str]
) -> None:
    sign_up(client)
    r = client.post("/api/jobs", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(detail_prefix)
    assert r.json()["errors"][0]["loc"] == loc
    assert client.get("/api/jobs").json() == []  # nothing half-written


def test_kinds_are_listed_with_their_schema(client: TestClient) -> None:
    kinds = {k["name"]: k for k in client.get("/api/jobs/kinds").json()}
    assert kinds["probe"]["config_schema"]["properties"]["steps"]["minimum"] == 1


def test_other_users_job_is_404_like_a_missing_one(client: TestClient) -> None:
    sign_up(client)
    job = _probe(client)
    other = TestClient(client.app)
    sign_up(other)
    for path in (f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/metrics", f"/api/jobs/{job['id']}/events"):
        foreign, missing = other.get(path), other.get(path.replace(str(job["id"]), "424242"))
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["detail"] == f"job {job['id']} not found"
    assert other.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    assert other.get("/api/jobs").json() == []
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"


def test_cancel_of_a_queued_job_is_immediate(client: TestClient) -> None:
    sign_up(client)
    job = _probe(client)
    r = client.post(f"/api/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # A worker that later receives the message finds nothing to run.
    with session_scope() as s:
        assert take_lease(s, int(job["id"]), "late-worker", 30) is None
    assert [j["id"] for j in client.get("/api/jobs", params={"status": "cancelled"}).json()] == [job["id"]]


def _run_by_hand(job_id: int, points: int) -> None:
    """Play a worker's part through the same lifecycle functions the worker uses."""
    with session_scope() as s:
        assert take_lease(s, job_id, "hand", 30) is not None
    for step in range(points):
        with session_scope() as s:
            write_metrics(s, job_id, [(step, "loss", 1.0 / (step + 1))])
            report_progress(s, job_id, "hand", (step + 1) / points, f"step {step + 1}")
    with session_scope() as s:
        assert finish(s, job_id, "hand", JobStatus.succeeded, result={"ok": True})


def _parse_sse(text: str) -> list[dict[str, object]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, object] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if key == "data" else value
        if fields:
            events.append(fields)
    return events


def test_events_stream_resumes_after_last_event_id(client: TestClient) -> None:
    sign_up(client)
    job = _probe(client)
    _run_by_hand(int(job["id"]), 5)

    full = _parse_sse(client.get(f"/api/jobs/{job['id']}/events").text)
    assert full[-1]["event"] == "end"
    body = [e for e in full if e["event"] != "end"]
    types = [e["event"] for e in body]
    assert types[0] == "status" and body[0]["data"]["status"] == "queued"  # type: ignore[index]
    assert body[-1]["data"]["status"] == "succeeded"  # type: ignore[index]
    assert types.count("metrics") == 5 and types.count("progress") == 5
    ids = [int(str(e["id"])) for e in body]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # Reconnect after the 4th event: exactly the rest, nothing lost, nothing repeated.
    cut = ids[3]
    rest = _parse_sse(client.get(f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": str(cut)}).text)
    assert [int(str(e["id"])) for e in rest if e["event"] != "end"] == ids[4:]
    also = _parse_sse(client.get(f"/api/jobs/{job['id']}/events", params={"after": cut}).text)
    assert [e.get("id") for e in also] == [e.get("id") for e in rest]


def test_metrics_are_written_once_per_step_and_name(client: TestClient) -> None:
    sign_up(client)
    job = _probe(client)
    job_id = int(job["id"])
    with session_scope() as s:
        take_lease(s, job_id, "hand", 30)
        assert write_metrics(s, job_id, [(0, "loss", 2.0), (1, "loss", 1.0)]) == 2
    with session_scope() as s:  # a resumed job replays step 1 and goes on
        assert write_metrics(s, job_id, [(1, "loss", 9.0), (2, "loss", 0.5)]) == 1
    points = client.get(f"/api/jobs/{job_id}/metrics", params={"name": "loss"}).json()
    assert [(p["step"], p["value"]) for p in points] == [(0, 2.0), (1, 1.0), (2, 0.5)]
    later = client.get(f"/api/jobs/{job_id}/metrics", params={"after_step": 0}).json()
    assert [p["step"] for p in later] == [1, 2]
