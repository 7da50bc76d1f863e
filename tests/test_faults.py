"""Faults survived on purpose, with real processes. Here: the studio stopped during a run.

``studio up`` told to stop (SIGTERM, as Ctrl-C or a service manager does) while a model trains with a
data-loader process: the running job gives itself back to its queue (its attempt not counted, its
data-loader processes untouched) and the studio exits; started again, the job resumes from its last
checkpoint and finishes. A second signal stops at once: the workers are killed and the job is taken back
all the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Job
from tests.conftest import ROOT, Stack, free_port
from tests.datasets.synth import make_image_folder, zip_folder
from tests.helpers import wait_for
from tests.worker.test_train_classification import train_config


class Studio:
    """One ``studio up`` process on the stack's database, broker and data folder."""

    def __init__(self, stack: Stack, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            **stack.env(),
            "STUDIO_HEARTBEAT_TIMEOUT_SECONDS": "300",  # only the studio itself can take jobs back in time
            "STUDIO_LIGHT_CONCURRENCY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", "--port", str(self.port)],
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        wait_for(self._live, 120, 0.5, "every lane to have a live worker")

    def _live(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"studio up exited: {self.log.read_text()[-3000:]}")
        try:
            lanes = self.client.get("/api/health").json()["lanes"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        return all(any(w["live"] for w in lane["workers"]) for lane in lanes.values())

    def sign_in(self, email: str) -> None:
        body = {"email": email, "password": "pw-pw-pw-pw"}
        r = self.client.post("/api/auth/register", json=body)
        if r.status_code != 201:
            r = self.client.post("/api/auth/login", json=body)
        assert r.status_code in (200, 201), r.text
        self.client.headers["X-CSRF-Token"] = r.json()["csrf_token"]

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout: float) -> float:
        started = time.monotonic()
        self.proc.wait(timeout=timeout)
        self.client.close()
        self._fh.close()
        return time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.client.close()
        self._fh.close()


def _row(job_id: int) -> dict[str, Any]:
    with session_scope() as s:
        job = s.scalars(select(Job).where(Job.id == job_id)).one()
        return {"status": job.status, "attempt": job.attempt, "message": job.message, "error": job.error}


@pytest.mark.timeout(600)
def test_a_run_survives_the_studio_being_stopped_warm_and_at_once(
    sqlite_stack: Stack, tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    studio = Studio(sqlite_stack, log)
    try:
        studio.sign_in("stop@example.com")
        make_image_folder(tmp_path / "shapes", per_class=30, size=(40, 40))
        archive = zip_folder(tmp_path / "shapes", tmp_path / "shapes.zip").read_bytes()
        r = studio.client.post(
            "/api/datasets", files={"file": ("shapes.zip", archive)}, data={"name": "s", "format": "folder"}
        )
        assert r.status_code in (201, 202), r.text
        dataset_id = int(r.json()["dataset"]["id"] if "dataset" in r.json() else r.json()["id"])
        wait_for(
            lambda: studio.client.get(f"/api/datasets/{dataset_id}").json()["status"] == "ready",
            90,
            0.5,
            "import",
        )
        # A run long enough to be stopped in, with a data-loader process and a checkpoint every epoch.
        config = train_config(
            dataset_id,
            data={"batch_size": 8, "workers": 1},
            schedule={"epochs": 15},
            runtime={"checkpoint_interval": 1, "eval_interval": 10, "log_interval": 5},
        )
        r = studio.client.post("/api/jobs", json={"kind": "train", "config": config})
        assert r.status_code in (200, 201), r.text
        job_id = int(r.json()["id"])
        last = sqlite_stack.data_dir / "jobs" / str(job_id) / "last.pt"
        wait_for(lambda: last.exists(), 180, 0.1, "the run's first checkpoint")

        # 1. A warm stop: the job is given back, not failed, and the studio exits.
        studio.signal(signal.SIGTERM)
        took = studio.wait_exit(60)
        row = _row(job_id)
        assert row["status"] == "queued" and row["error"] is None, row
        assert row["attempt"] == 0 and "its worker was stopped" in (row["message"] or ""), row
        text = log.read_text()
        assert "killed by signal" not in text and "DataLoader worker" not in text, text[-3000:]
        print(f"warm stop: studio up exited {took:.1f} s after SIGTERM")

        # 2. Started again, the run resumes; then a second signal at once stops it now.
        studio = Studio(sqlite_stack, log)
        wait_for(lambda: _row(job_id)["status"] == "running", 120, 0.2, "the run to resume")
        before = last.stat().st_mtime
        wait_for(lambda: last.stat().st_mtime > before, 120, 0.1, "a checkpoint of the resumed run")
        studio.signal(signal.SIGTERM)
        time.sleep(0.3)
        studio.signal(signal.SIGTERM)
        took = studio.wait_exit(30)
        assert took < 15, f"a second signal should stop the studio at once, it took {took:.1f} s"
        row = _row(job_id)
        assert row["status"] == "queued" and row["error"] is None, row

        # 3. Started once more, it finishes from its checkpoint.
        studio = Studio(sqlite_stack, log)
        studio.sign_in("stop@example.com")
        done = wait_for(
            lambda: (
                (j := studio.client.get(f"/api/jobs/{job_id}").json())["status"] in ("succeeded", "failed")
                and j
            ),
            300,
            0.5,
            "the run to finish",
        )
        assert done["status"] == "succeeded", done["error"]
        assert done["result"]["resumed_from_epoch"] >= 1 and done["result"]["epochs"] == 15, done["result"]
    finally:
        studio.close()
