"""Detection end to end on the CPU: rectangles and discs drawn with Pillow, labelled as labelme rectangles
and polygons (grouped halves included), imported by the studio; a light Faster R-CNN learns them to box
mAP@0.5 >= 0.5 and a light Mask R-CNN to mask mAP@0.5 >= 0.3 through the one Trainer. The models are
recorded with COCO's numbers per class, PR curves, a confusion matrix and worst images, and evaluate,
predict (one picture and a split as COCO results) and export."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import select

from backend.auth.service import create_user
from backend.db.session import session_scope
from backend.db.tables import Job, JobMetric, TrainedModel, User
from backend.jobs.service import create_job
from tests.conftest import Stack
from tests.worker.detection_data import import_detection_dataset
from worker.runner import run_job


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(before)


# Small heads and few proposals: the same architectures, sized for 128 px pictures with 1-3 objects.
LIGHT = {
    "min_size": 128,
    "max_size": 144,
    "fpn_channels": 64,
    "box_head_size": 256,
    "rpn_proposals_train": 200,
    "rpn_proposals_test": 100,
    "box_samples_per_image": 64,
}


def det_config(dataset_id: int, task: str = "object_detection", **over: Any) -> dict[str, Any]:
    architecture = "fasterrcnn_mobilenet_v3_large_fpn"
    options = dict(LIGHT)
    if task == "instance_segmentation":
        architecture = "maskrcnn_mobilenet_v3_large_fpn"
        options.update({"mask_head_channels": 32, "mask_head_layers": 2})
    config: dict[str, Any] = {
        "task": task,
        "name": "objects",
        "model": {"architecture": architecture, "options": options},
        "data": {
            "dataset_id": dataset_id,
            "scales": [112, 128, 144],
            "max_size": 144,
            "batch_size": 8,
            "workers": 0,
            "augment": [{"name": "horizontal_flip"}, {"name": "random_crop", "p": 0.3, "min_scale": 0.7}],
        },
        "schedule": {
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "policy": "cosine",
            "iterations": 200,
            "epochs": None,
            "warmup_iters": 20,
            "grad_clip": 10.0,
        },
        "runtime": {"log_interval": 10, "seed": 0, "eval_interval": 25},
    }
    for key, value in over.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def _user(email: str = "det@example.com") -> int:
    with session_scope() as s:
        user = create_user(s, email, "correct horse battery")
        s.flush()
        return int(user.id)


def _run(owner_id: int, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    with session_scope() as s:
        owner = s.get(User, owner_id)
        assert owner is not None
        internal = kind in ("predict_image", "cam_image", "export")
        job_id = create_job(s, owner, kind, config, internal=internal).id
    outcome = run_job(job_id, "test-worker@local")
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert outcome == "succeeded", job.error
        return {"id": job.id, "result": job.result or {}}


def test_faster_rcnn_learns_rectangles_and_discs_to_map50_050(sqlite_stack: Stack, tmp_path: Path) -> None:
    owner = _user()
    dataset_id = import_detection_dataset(owner, tmp_path)
    started = time.monotonic()
    job = _run(owner, "train", det_config(dataset_id))
    seconds = time.monotonic() - started
    result = job["result"]
    print(f"detection training: {seconds:.1f}s, final {result['final']}")
    assert result["final"]["bbox/mAP_50"] >= 0.5, result
    assert result["negative_images"]["train"] + result["negative_images"]["val"] == 3
    with session_scope() as s:
        model = s.get(TrainedModel, result["model_id"])
        assert model is not None and model.status == "ready" and model.task == "object_detection"
        assert model.class_names == ["box", "disc"]
        best = model.metrics["best"]
        assert set(best["per_class"]) == {"box", "disc"} and best["per_class"]["disc"]["objects"] > 0
        assert len(best["confusion_matrix"]) == 3 and best["confusion_labels"][-1] == "background"
        assert set(best["bbox/pr_curve"]) == {"box", "disc"}
        names = set(s.scalars(select(JobMetric.name).where(JobMetric.job_id == job["id"])).all())
    assert {
        "val/bbox/mAP",
        "val/bbox/mAP_50",
        "val/bbox/AR_100",
        "train/loss",
        "train/loss_classifier",
    } <= names
