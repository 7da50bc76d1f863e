"""Training end to end: a tiny CNN learns synthetic shapes on the CPU, the model is recorded with its
files, it evaluates, it starts another run (load_from), and a SIGKILLed worker's run resumes elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.db.session import session_scope
from backend.db.tables import Artifact, Job, JobMetric, TrainedModel
from backend.settings import get_settings
from tests.conftest import Stack, WorkerProcess
from tests.datasets.synth import make_image_folder
from tests.helpers import land_folder, make_user, run_to_end, sign_up, wait_for
from worker.data import eval_transform, read_image
from worker.engine.checkpoint import load_file, load_model_file
from worker.zoo import build_model

StartWorker = Callable[..., WorkerProcess]
SHAPES = ["circle", "square", "triangle"]


def import_shapes(owner_id: int, tmp: Path, per_class: int = 60, classes: tuple[str, ...] = ()) -> int:
    """Draw circle/square/triangle images and import them the way the studio does (a folder per class)."""
    src = tmp / f"shapes-{per_class}-{len(classes)}"
    make_image_folder(src, per_class=per_class, size=(48, 48))
    for name in set(SHAPES) - set(classes or SHAPES):
        for f in (src / name).iterdir():
            f.unlink()
        (src / name).rmdir()
    return land_folder(owner_id, src, "shapes", "folder", train=0.7, val=0.3)


def train_config(dataset_id: int, **over: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "shapes",
        "model": {"architecture": "tiny_cnn"},
        "data": {"dataset_id": dataset_id, "input_size": 32, "batch_size": 16, "workers": 0},
        "schedule": {"optimizer": "adamw", "lr": 3e-3, "policy": "cosine", "epochs": 6, "warmup_iters": 5},
        "runtime": {"log_interval": 5, "seed": 0},
    }
    for key, value in over.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_tiny_cnn_learns_shapes_and_is_recorded(sqlite_stack: Stack, tmp_path: Path) -> None:
    owner = make_user("trainer@example.com")
    dataset_id = import_shapes(owner, tmp_path)
    started = time.monotonic()
    job = run_to_end(owner, "train", train_config(dataset_id))
    seconds = time.monotonic() - started
    result = job["result"]
    print(f"classification training: {seconds:.1f}s, final {result['final']}")
    assert result["final"]["accuracy/top1"] >= 0.95, result
    assert result["epochs"] == 6 and result["resumed_from_epoch"] is None

    with session_scope() as s:
        model = s.get(TrainedModel, result["model_id"])
        assert model is not None and model.status == "ready" and model.job_id == job["id"]
        assert model.class_names == SHAPES and model.input_size == 32 and model.architecture == "tiny_cnn"
        assert model.params and model.params > 1000 and model.flops and model.flops > model.params
        assert model.metrics["best"]["metric"] == "accuracy/top1" and len(model.metrics["history"]) == 6
        assert model.config["data"]["dataset_id"] == dataset_id
        kinds = sorted(a.kind for a in s.scalars(select(Artifact).where(Artifact.model_id == model.id)))
        assert kinds == ["checkpoint", "config", "report"]
        checkpoint = Path(model.checkpoint_path or "")
        steps = s.scalars(
            select(JobMetric.step).where(JobMetric.job_id == job["id"], JobMetric.name == "val/accuracy/top1")
        ).all()
    per_epoch = -(-126 // 16)  # 60 images a class, 70 % of them in train, batches of 16
    assert sorted(steps) == [per_epoch * e for e in range(1, 7)]

    # The model file is the contract: rebuild it and classify a validation image.
    data = load_model_file(checkpoint)
    net = build_model(data["architecture"], len(data["class_names"]), data["options"]).eval()
    net.load_state_dict(data["state_dict"])
    image = next((get_settings().datasets_dir / str(dataset_id) / "images").glob("*"))
    norm = data["normalize"]
    x = eval_transform(data["input_size"], norm["mean"], norm["std"])(read_image(image))
    assert net(x.unsqueeze(0)).shape == (1, 3)

    evaluated = run_to_end(
        owner, "evaluate", {"model_id": result["model_id"], "dataset_id": dataset_id, "split": "val"}
    )
    metrics = evaluated["result"]["metrics"]
    assert metrics["accuracy/top1"] >= 0.95 and metrics["samples"] == 54
    assert sum(map(sum, metrics["confusion_matrix"])) == 54 and set(metrics["per_class"]) == set(SHAPES)


def test_load_from_reinitialises_the_head_for_new_classes(sqlite_stack: Stack, tmp_path: Path) -> None:
    owner = make_user("trainer@example.com")
    three = import_shapes(owner, tmp_path, per_class=20)
    first = run_to_end(owner, "train", train_config(three, schedule={"epochs": 1}))
    two = import_shapes(owner, tmp_path, per_class=20, classes=("circle", "square"))
    second = run_to_end(
        owner,
        "train",
        train_config(
            two, schedule={"epochs": 1}, model={"load_from": {"model_id": first["result"]["model_id"]}}
        ),
    )
    notes = second["result"]["load_from"]
    assert (
        sorted(notes["missing"]) == ["classifier.1.bias", "classifier.1.weight"] and notes["unexpected"] == []
    )
    with session_scope() as s:
        model = s.get(TrainedModel, second["result"]["model_id"])
        assert model is not None and model.class_names == ["circle", "square"]


def test_train_cli_records_a_run_like_any_job(
    sqlite_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.specs.config import parse_train_config, to_yaml
    from worker.train_cli import main

    owner = make_user("cli@example.com")
    dataset_id = import_shapes(owner, tmp_path, per_class=20)
    path = tmp_path / "run.yaml"
    path.write_text(to_yaml(parse_train_config(train_config(dataset_id, schedule={"epochs": 2}))))
    assert main([str(path), "--user", "cli@example.com", "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "succeeded: model" in said
    with session_scope() as s:
        job = s.scalars(select(Job).where(Job.owner_id == owner)).one()
        top1 = job.result["final"]["accuracy/top1"]
        assert f", val accuracy/top1 {100 * top1:.1f}% in " in said, said  # the score, not just the id
        assert job.kind == "train" and job.status == "succeeded" and job.worker.startswith("local-")
        assert (
            s.scalar(select(func.count()).select_from(TrainedModel).where(TrainedModel.job_id == job.id)) == 1
        )
    assert main([str(path), "--user", "nobody@example.com", "--quiet"]) == 2
    assert "no user with email nobody@example.com" in capsys.readouterr().err


def test_killed_training_resumes_on_another_worker(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    """SQLite + the filesystem broker only: tests/test_worker.py runs the kill-and-resume path on every
    database and broker pair with the probe job; this one checks what training adds (checkpoints, steps)."""
    full_stack = sqlite_stack
    me = sign_up(client)
    owner = client.get("/api/auth/me").json().get("id") or me.get("id") or me["user"]["id"]
    dataset_id = import_shapes(int(owner), full_stack.data_dir.parent)
    epochs, per_epoch = 5, 16  # 126 train images in batches of 8
    config = train_config(
        dataset_id, data={"batch_size": 8}, schedule={"epochs": epochs}, runtime={"log_interval": 1}
    )
    first = start_worker(full_stack)
    response = client.post("/api/jobs", json={"kind": "train", "config": config})
    assert response.status_code in (200, 201), response.text
    job_id = response.json()["id"]
    last = full_stack.data_dir / "jobs" / str(job_id) / "last.pt"
    wait_for(lambda: last.exists(), 120, interval=0.02, what="the first checkpoint")
    time.sleep(0.05)  # a few iterations into the next epoch
    first.kill()
    saved = load_file(last)
    assert 1 <= saved["epoch"] < epochs, "killed too late to test a resume"
    before = client.get(f"/api/jobs/{job_id}").json()
    assert before["status"] == "running"

    second = start_worker(full_stack)
    done = wait_for(
        lambda: (j := client.get(f"/api/jobs/{job_id}").json())["status"] in ("succeeded", "failed") and j,
        120,
        what="the resumed job to finish",
    )
    assert done["status"] == "succeeded", done["error"]
    assert done["worker"] == second.name and done["attempt"] == 2
    result = done["result"]
    assert 1 <= result["resumed_from_epoch"] < epochs and result["final"]["accuracy/top1"] >= 0.95
    with session_scope() as s:
        rows = s.execute(
            select(JobMetric.name, func.count(), func.count(func.distinct(JobMetric.step)))
            .where(JobMetric.job_id == job_id)
            .group_by(JobMetric.name)
        ).all()
        loss_steps = s.scalars(
            select(JobMetric.step).where(JobMetric.job_id == job_id, JobMetric.name == "train/loss")
        ).all()
        val_steps = s.scalars(
            select(JobMetric.step).where(JobMetric.job_id == job_id, JobMetric.name == "val/accuracy/top1")
        ).all()
        models = s.scalar(select(func.count()).select_from(TrainedModel).where(TrainedModel.job_id == job_id))
    assert all(total == distinct for _, total, distinct in rows)  # no step written twice
    assert sorted(loss_steps) == list(range(1, epochs * per_epoch + 1))  # every iteration once, none lost
    assert sorted(val_steps) == [per_epoch * e for e in range(1, epochs + 1)]
    assert models == 1
