"""Detection end to end on the CPU: rectangles and discs drawn with Pillow, labelled as labelme rectangles
and polygons (grouped halves included), imported by the studio; a light Faster R-CNN learns them to box
mAP@0.5 >= 0.5 and a light Mask R-CNN to mask mAP@0.5 >= 0.3 through the one Trainer. The models are
recorded with COCO's numbers per class, PR curves, a confusion matrix and worst images, and evaluate,
predict (one picture and a split as COCO results) and export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Job, JobMetric, TrainedModel, User
from backend.jobs.service import create_job
from tests.conftest import Stack
from tests.helpers import make_user, run_to_end, serve
from tests.worker.detection_data import import_detection_dataset
from worker.runner import run_job

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


# About a minute each on two free cores; the limit leaves room for a machine shared with other work.
@pytest.mark.timeout(900)
def test_faster_rcnn_learns_rectangles_and_discs_to_map50_050(sqlite_stack: Stack, tmp_path: Path) -> None:
    owner = make_user("det@example.com")
    dataset_id = import_detection_dataset(owner, tmp_path)
    started = time.monotonic()
    job = run_to_end(owner, "train", det_config(dataset_id, schedule={"iterations": 250}))
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
    _dashboard(result["model_id"])


def _dashboard(model_id: int) -> None:
    """The dashboard's worst images are those the metrics name (most missed first), each with the
    dataset's drawing of its labels and the kept weights' detections drawn at the image's size."""
    from PIL import Image

    from backend.db.tables import Artifact
    from backend.models.dashboard import model_dashboard

    with session_scope() as s:
        model = s.get(TrainedModel, model_id)
        assert model is not None
        board = model_dashboard(s, model)
        listed = model.metrics["worst_images"]
        paths = {a.id: Path(a.path) for a in s.scalars(select(Artifact).where(Artifact.model_id == model_id))}
    assert board.summary["bbox/mAP_50"] == model.metrics["best"]["bbox/mAP_50"]
    assert board.columns[-1] == "objects" and {r.name for r in board.per_class} == {"box", "disc"}
    assert set(board.pr_curves["bbox"]) == {"box", "disc"}
    assert board.worst_images and [w.image_id for w in board.worst_images] == [w["image_id"] for w in listed]
    for w in board.worst_images:
        assert w.counts["missed"] + w.counts["false_detections"] >= 1
        assert w.true_overlay_url and w.true_overlay_url.endswith("/render?overlay=true")
        assert w.predicted_overlay_url
        drawn = paths[int(w.predicted_overlay_url.rsplit("/", 1)[1])]
        with Image.open(drawn) as png:
            assert png.size == (128, 128) and png.mode == "RGB"


@pytest.mark.timeout(900)
def test_mask_rcnn_learns_masks_to_segm_map50_030_then_evaluates_predicts_exports(
    sqlite_stack: Stack, tmp_path: Path
) -> None:
    owner = make_user("masks@example.com")
    dataset_id = import_detection_dataset(owner, tmp_path)
    started = time.monotonic()
    job = run_to_end(owner, "train", det_config(dataset_id, task="instance_segmentation"))
    seconds = time.monotonic() - started
    result = job["result"]
    print(f"instance segmentation training: {seconds:.1f}s, final {result['final']}")
    assert result["final"]["segm/mAP_50"] >= 0.3, result
    assert result["options"]["anchor_size"] > 0 and result["options"]["mask_head_layers"] == 2
    model_id = result["model_id"]
    with session_scope() as s:
        model = s.get(TrainedModel, model_id)
        assert model is not None and model.task == "instance_segmentation"
        assert model.metrics["best"]["metric"] == "segm/mAP" and "segm/pr_curve" in model.metrics["best"]
        assert model.flops is not None and model.flops > 0

    evaluated = run_to_end(
        owner, "evaluate", {"model_id": model_id, "dataset_id": dataset_id, "split": "val"}
    )
    metrics = evaluated["result"]["metrics"]
    assert abs(metrics["segm/mAP_50"] - result["final"]["segm/mAP_50"]) < 1e-6  # same images, same model
    assert metrics["samples"] == evaluated["result"]["images"] and metrics["worst_images"] is not None

    _predict_and_export(owner, model_id, dataset_id)


def _predict_and_export(owner: int, model_id: int, dataset_id: int) -> None:
    import json
    import uuid

    from PIL import Image

    from backend.datasets.canonical import CanonicalDataset
    from backend.db.tables import Artifact
    from backend.settings import get_settings

    folder = get_settings().datasets_dir / str(dataset_id)
    canonical = CanonicalDataset.load(folder)
    record = next(
        im
        for im in canonical.images
        if im.split == "val" and any(a.image_id == im.id for a in canonical.annotations)
    )
    truth = [a for a in canonical.annotations if a.image_id == record.id]
    name = f"images/{uuid.uuid4().hex}.png"
    target = get_settings().data_dir / "requests" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((folder / record.file_name).read_bytes())
    predicted = serve(model_id, name, overlay=True)
    assert predicted["overlay"] and predicted["detections"], predicted
    assert all(d["score"] >= predicted["score_threshold"] for d in predicted["detections"])
    best = max(predicted["detections"], key=lambda d: d["score"])
    assert best["mask"]["size"] == [record.height, record.width] and best["mask_pixels"] > 0
    x1, y1, x2, y2 = best["box"]
    # the most confident detection lies on one of the drawn objects
    assert any(
        min(x2, a.bbox[0] + a.bbox[2]) - max(x1, a.bbox[0]) > 0
        and min(y2, a.bbox[1] + a.bbox[3]) - max(y1, a.bbox[1]) > 0
        for a in truth
    )
    with Image.open(get_settings().data_dir / "requests" / predicted["overlay"]) as drawn:
        assert drawn.size == (record.width, record.height)

    batch = run_to_end(owner, "predict", {"model_id": model_id, "dataset_id": dataset_id, "split": "val"})[
        "result"
    ]
    assert batch["images"] == sum(im.split == "val" for im in canonical.images) and batch["detections"] > 0
    with session_scope() as s:
        artifact = s.get(Artifact, batch["artifact_ids"][0])
        assert artifact is not None
        results = json.loads(Path(artifact.path).read_text())
    assert {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(results[0])
    assert {r["category_id"] for r in results} <= {1, 2}

    exported = run_to_end(owner, "export", {"model_id": model_id, "format": "torchscript"})["result"]
    assert exported["max_abs_diff"] <= 1e-3
    onnx = run_to_end(owner, "export", {"model_id": model_id, "format": "onnx"})["result"]
    assert onnx["max_abs_diff"] <= 1e-3


def test_deformable_detr_trains_through_the_same_job_and_refuses_export_plainly(
    sqlite_stack: Stack, tmp_path: Path
) -> None:
    """Not a learning test (DETR needs far longer than a test has): the run goes through the one loop with
    gradient clipping, is recorded with COCO numbers, and an export says plainly that it cannot be done."""
    owner = make_user("detr@example.com")
    dataset_id = import_detection_dataset(owner, tmp_path, n_images=24)
    tiny = {"min_size": 96, "max_size": 128, "backbone": "resnet18", "d_model": 64, "num_queries": 30}
    config = det_config(
        dataset_id,
        model={
            "architecture": "deformable_detr",
            "options": {**tiny, "encoder_layers": 1, "decoder_layers": 2},
        },
        schedule={"iterations": 6, "grad_clip": 0.1, "warmup_iters": 0},
        runtime={"log_interval": 2, "seed": 0, "eval_interval": 1},
    )
    result = run_to_end(owner, "train", config)["result"]
    assert 0.0 <= result["final"]["bbox/mAP_50"] <= 1.0 and result["iterations"] == 6
    with session_scope() as s:
        losses = s.scalars(select(JobMetric.value).where(JobMetric.name == "train/loss_detr")).all()
    assert losses and all(v == v and v > 0 for v in losses)
    with session_scope() as s:
        model = s.get(TrainedModel, result["model_id"])
        assert model is not None and model.flops is not None and model.flops > 0  # counted, as for the others
    with session_scope() as s:
        owner_row = s.get(User, owner)
        assert owner_row is not None
        job_id = create_job(
            s, owner_row, "export", {"model_id": result["model_id"], "format": "onnx"}, internal=True
        ).id
    assert run_job(job_id, "test-worker@local") == "failed"
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.error is not None
        assert "Deformable DETR export to ONNX is not supported" in job.error
