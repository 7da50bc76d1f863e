"""Lanes on one machine, as `studio up` runs them: an import and a picture are answered while the training
lane is busy, and a training worker killed mid-job is restarted, its job requeued at once (long before the
reaper's timeout) and resumed from its checkpoint. Real processes, on both brokers."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Stack, free_port
from tests.datasets.synth import make_labelme_project, zip_folder
from tests.helpers import wait_for
from tests.worker.test_inference import picture


@pytest.fixture
def studio(full_stack: Stack, tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    port = free_port()
    env = {
        **os.environ,
        **full_stack.env(),
        # Only the supervisor can take a killed worker's job back in time: the reaper waits 5 minutes.
        "STUDIO_HEARTBEAT_TIMEOUT_SECONDS": "300",
        "STUDIO_LIGHT_CONCURRENCY": "1",
        "STUDIO_RESTART_BACKOFF_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "up.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", "--port", str(port)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            wait_for(lambda: _lanes_live(client, proc, log), 120, 0.5, "every lane to have a live worker")
            r = client.post(
                "/api/auth/register", json={"email": "lanes@example.com", "password": "pw-pw-pw-pw"}
            )
            assert r.status_code == 201, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield client, log
        finally:
            client.close()
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _lanes_live(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"studio up exited: {log.read_text()[-3000:]}")
    try:
        lanes = client.get("/api/health").json()["lanes"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    return all(any(w["live"] for w in lane["workers"]) for lane in lanes.values())


def _job(client: httpx.Client, job_id: int) -> dict[str, Any]:
    return client.get(f"/api/jobs/{job_id}").json()  # type: ignore[no-any-return]


def _upload(client: httpx.Client, tmp_path: Path, n: int) -> int:
    make_labelme_project(tmp_path / "project", n_images=n)
    archive = zip_folder(tmp_path / "project", tmp_path / "project.zip")
    r = client.post(
        "/api/datasets", files={"file": ("project.zip", archive.read_bytes())}, data={"name": "p"}
    )
    assert r.status_code in (201, 202), r.text
    return int(r.json()["dataset"]["id"] if "dataset" in r.json() else r.json()["id"])


def _tiny_model(owner_id: int) -> int:
    from backend.db.session import session_scope
    from backend.db.tables import TrainedModel
    from backend.models.contract import model_dir
    from backend.settings import get_settings
    from tests.worker.test_inference import CLASSES, save_tiny

    with session_scope() as s:
        row = TrainedModel(
            owner_id=owner_id, name="tiny", task="classification", architecture="tiny_cnn",
            class_names=CLASSES, status="ready", input_size=32,
        )  # fmt: skip
        s.add(row)
        s.flush()
        path = model_dir(get_settings().data_dir, row.id) / "model.pt"
        save_tiny(path)
        row.checkpoint_path = str(path)
        return int(row.id)


def test_an_import_and_a_picture_do_not_wait_behind_training_and_a_killed_worker_comes_back(
    studio: tuple[httpx.Client, Path], tmp_path: Path
) -> None:
    client, log = studio
    train = client.post(
        "/api/jobs",
        json={"kind": "probe", "config": {"steps": 60, "step_seconds": 0.25, "queue": "training"}},
    ).json()
    wait_for(
        lambda: _job(client, train["id"])["status"] == "running", 60, what="the training-lane job to run"
    )
    queued = client.post(
        "/api/jobs", json={"kind": "probe", "config": {"steps": 1, "queue": "training"}}
    ).json()
    assert queued["queue_position"]["text"] == "behind 1 running job on the training lane", queued
    assert queued["queue_position"]["ahead"] == 1

    # The light lane imports a dataset while the training lane is busy.
    dataset_id = _upload(client, tmp_path, 12)
    ds = wait_for(
        lambda: (d := client.get(f"/api/datasets/{dataset_id}").json())["status"] != "importing" and d,
        90,
        what="the import",
    )
    assert ds["status"] == "ready", ds
    assert _job(client, train["id"])["status"] == "running"  # the import did not wait for it

    # The inference lane answers a picture meanwhile, and it is not a job.
    model_id = _tiny_model(int(client.get("/api/auth/me").json()["id"]))
    buf = io.BytesIO()
    picture(50, 40).save(buf, format="PNG")
    r = client.post(f"/api/models/{model_id}/predict", files={"image": ("p.png", buf.getvalue())})
    assert r.status_code == 200 and len(r.json()["top_k"]) == 3, r.text
    assert _job(client, train["id"])["status"] == "running"
    assert {j["kind"] for j in client.get("/api/jobs").json()} == {"probe", "import_dataset"}

    # The training worker is killed (as an out-of-memory kill would): restarted, the job resumes.
    health = client.get("/api/health").json()["lanes"]["training"]
    busy = next(w for w in health["workers"] if w["job_id"] == train["id"])
    assert busy["pid"], health
    progress_at_kill = _job(client, train["id"])["progress"]
    os.kill(busy["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    requeued = wait_for(
        lambda: (j := _job(client, train["id"]))["attempt"] >= 2 and j["status"] == "running" and j,
        60,
        what="the killed worker's job to run again",
    )
    assert time.monotonic() - killed_at < 60  # the reaper alone would have waited 300 s
    done = wait_for(
        lambda: (j := _job(client, train["id"]))["status"] in ("succeeded", "failed") and j,
        90,
        what="the job",
    )
    assert done["status"] == "succeeded", done
    assert done["result"]["resumed_from"] > 0 and done["result"]["attempt"] == requeued["attempt"]
    assert progress_at_kill > 0
    lane = client.get("/api/health").json()["lanes"]["training"]
    worker = next(w for w in lane["workers"] if w["name"] == busy["name"])
    assert worker["restarts"] == 1 and worker["last_exit"] == "killed by SIGKILL", lane
    assert worker["pid"] != busy["pid"]
    assert wait_for(lambda: _job(client, queued["id"])["status"] == "succeeded", 60, what="the next job")
    assert "restarting in" in log.read_text()


def test_each_planned_worker_says_what_it_was_given() -> None:
    """The health page reads what each lane's process has from its supervisor: a training worker per GPU
    named in the setting (pinned to it), or one pinned to the CPU; light workers see no GPU."""
    from backend.settings import Settings
    from backend.supervisor import lane_slots

    def given(**fields: Any) -> dict[str, str]:
        slots = lane_slots(Settings(**fields), host="box")
        return {slot.name: slot.resources for slot in slots}

    on_cpu = given(training_devices="cpu", training_threads=2, light_threads=1, light_concurrency=1)
    assert on_cpu["training-1@box"] == "no GPU · 2 CPU threads"
    assert on_cpu["light-1@box"] == "no GPU · 1 CPU thread"
    assert on_cpu["inference-1@box"].endswith("CPU threads") or on_cpu["inference-1@box"].endswith(
        "CPU thread"
    )
    on_gpus = given(training_devices="0,1", training_threads=8)
    assert on_gpus["training-1@box"] == "GPU 0 · 8 CPU threads"
    assert on_gpus["training-2@box"] == "GPU 1 · 8 CPU threads"
