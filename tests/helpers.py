"""Shared test helpers: signing in through the API, waiting for a condition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

T = TypeVar("T")


def sign_up(client: TestClient, email: str | None = None, password: str = "correct horse") -> dict[str, Any]:
    """Register a user, keep its session cookie on ``client`` and send its CSRF token from now on."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    r = client.post("/api/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


def wait_for(
    fn: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


# --- jobs run in this process, datasets landed without an upload ------------------------------------------

INTERNAL_KINDS = ("export", "export_dataset")  # created by their endpoints, not POST /api/jobs


def make_user(email: str) -> int:
    from backend.auth.service import create_user
    from backend.db.session import session_scope

    with session_scope() as s:
        user = create_user(s, email, "correct horse battery")
        s.flush()
        return int(user.id)


def job_row(job_id: int) -> dict[str, Any]:
    from backend.db.session import session_scope
    from backend.db.tables import Job

    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return {"id": job.id, "status": job.status, "error": job.error, "result": job.result or {}}


def run_to_end(owner_id: int, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Queue a job as its owner would and run it in this process with the real runner; it must succeed."""
    from backend.db.session import session_scope
    from backend.db.tables import User
    from backend.jobs.service import create_job
    from worker.runner import run_job

    with session_scope() as s:
        owner = s.get(User, owner_id)
        assert owner is not None
        job_id = create_job(s, owner, kind, config, internal=kind in INTERNAL_KINDS).id
    outcome = run_job(job_id, "test-worker@local")
    row = job_row(job_id)
    assert outcome == "succeeded", row["error"]
    return row


def land_folder(
    owner_id: int, src: Path, name: str, fmt: str, train: float, val: float, test: float = 0.0
) -> int:
    """Import ``src`` (format ``fmt``) as the owner's dataset the way an upload lands, with these split
    ratios; answers its id."""
    from backend.datasets.service import land_import
    from backend.datasets.splits import SplitRatios
    from backend.db.session import session_scope
    from backend.db.tables import Dataset
    from backend.settings import get_settings

    with session_scope() as s:
        row = Dataset(owner_id=owner_id, name=name, status="importing", source_format=fmt)
        s.add(row)
        s.flush()
        dataset_id = row.id
    land_import(
        get_settings(),
        dataset_id,
        src,
        src.name,
        fmt,
        ratios=SplitRatios(train=train, val=val, test=test),
        staging_name=f"test-{dataset_id}",
    )
    return dataset_id


def serve(model_id: int, image: str, op: str = "predict", **options: Any) -> dict[str, Any]:
    """Ask the inference lane's handler in this process about one picture under ``DATA_DIR/requests``, as
    the API's request would; returns its answer (``overlay``: a PNG under the requests folder)."""
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel
    from worker.serving.lane import handle

    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        assert row is not None and row.checkpoint_path
        path = Path(row.checkpoint_path)
    request = {
        "op": op,
        "model_id": model_id,
        "checkpoint": str(path),
        "checkpoint_mtime": path.stat().st_mtime,
    }
    reply = handle({**request, "images": [image], **options})
    assert reply["error"] is None, reply["error"]
    answer: dict[str, Any] = reply["answers"][0]
    return answer
