"""Segmentation end to end on the CPU: labelme polygons drawn with Pillow, imported by the studio, become
masks; a small UNet learns them to mIoU >= 0.80 through the one Trainer; the model is recorded with its
per-class table and worst images, evaluates, predicts a palette mask, explains with Grad-CAM, exports."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Artifact, JobMetric, TrainedModel
from backend.settings import get_settings
from tests.conftest import Stack
from tests.datasets.synth import make_labelme_project
from tests.helpers import land_folder, make_user, run_to_end, serve
from worker.tasks.segmentation.metrics import confusion_matrix, scores

SIZE = 64


def import_labelme_shapes(owner_id: int, tmp: Path, n_images: int = 64) -> int:
    """Circles, squares and triangles as labelme polygons, imported the way an upload is."""
    src = tmp / "labelme-shapes"
    make_labelme_project(src, n_images=n_images, width=SIZE, height=SIZE, image_format="PNG", seed=3)
    return land_folder(owner_id, src, "shapes-seg", "labelme", train=0.75, val=0.25)


def seg_config(dataset_id: int, **over: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task": "semantic_segmentation",
        "name": "shapes-unet",
        "model": {"architecture": "unet_light", "options": {"encoder": "resnet18"}},
        "data": {
            "dataset_id": dataset_id,
            "input_size": SIZE,
            "batch_size": 8,
            "workers": 0,
            "augment": [{"name": "horizontal_flip"}],
        },
        "loss": {"terms": [{"name": "cross_entropy"}, {"name": "dice", "weight": 0.5}]},
        "schedule": {"optimizer": "adamw", "lr": 3e-3, "policy": "poly", "epochs": 8, "warmup_iters": 5},
        "runtime": {"log_interval": 5, "seed": 0, "best_metric": "mIoU", "eval_interval": 4},
    }
    for key, value in over.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_unet_learns_labelme_shapes_to_miou_080(sqlite_stack: Stack, tmp_path: Path) -> None:
    owner = make_user("seg@example.com")
    dataset_id = import_labelme_shapes(owner, tmp_path)
    started = time.monotonic()
    job = run_to_end(owner, "train", seg_config(dataset_id))
    seconds = time.monotonic() - started
    result = job["result"]
    print(f"segmentation training: {seconds:.1f}s, final {result['final']}")
    assert result["final"]["mIoU"] >= 0.80, result
    assert len(result["worst_images"]) >= 1 and "image_id" in result["worst_images"][0]

    with session_scope() as s:
        model = s.get(TrainedModel, result["model_id"])
        assert model is not None and model.status == "ready" and model.task == "semantic_segmentation"
        assert model.class_names == ["_background_", "circle", "square", "triangle"]
        best = model.metrics["best"]
        assert best["metric"] == "mIoU" and set(best["per_class"]) == set(model.class_names)
        assert len(best["confusion_matrix"]) == 4 and model.metrics["worst_images"]
        names = set(s.scalars(select(JobMetric.name).where(JobMetric.job_id == job["id"])).all())
    assert {"val/mIoU", "val/mDice", "val/aAcc", "train/loss"} <= names

    evaluated = run_to_end(
        owner, "evaluate", {"model_id": result["model_id"], "dataset_id": dataset_id, "split": "val"}
    )
    metrics = evaluated["result"]["metrics"]
    assert metrics["mIoU"] >= 0.80 and metrics["samples"] == 16
    assert abs(metrics["mIoU"] - result["final"]["mIoU"]) < 1e-6  # same images, same inference
    drawn = metrics["worst_images"]
    assert drawn and all(len(w["artifacts"]) == 4 for w in drawn), drawn
    with session_scope() as s:
        arts = s.scalars(select(Artifact).where(Artifact.job_id == evaluated["id"])).all()
        assert {a.name for a in arts} >= {f"worst/{drawn[0]['image_id']}/pred_mask.png"}
        assert all(a.model_id is None for a in arts if a.name.startswith("worst/"))

    _dashboard(result["model_id"], dataset_id)
    _batch_predict(owner, result["model_id"], dataset_id, metrics["mIoU"])
    _predict_cam_and_export(result["model_id"], dataset_id, tmp_path)
    _image_jobs(owner, result["model_id"], dataset_id)


def _batch_predict(owner: int, model_id: int, dataset_id: int, evaluated_miou: float) -> None:
    """A predict job over the val split: one palette mask per image in a zip (what evaluation scored:
    same mIoU), a CSV row per image with its IoU and class shares."""
    import csv
    import io
    import zipfile

    from backend.datasets.canonical import CanonicalDataset
    from worker.tasks.segmentation.data import SegmentationDataset

    job = run_to_end(owner, "predict", {"model_id": model_id, "dataset_id": dataset_id, "split": "val"})
    out = job["result"]
    assert out["images"] == out["labelled"] == 16 and out["mIoU"] == pytest.approx(evaluated_miou)
    with session_scope() as s:
        arts = {a.name: Path(a.path) for a in s.scalars(select(Artifact).where(Artifact.job_id == job["id"]))}
    assert set(arts) == {"predictions.csv", "predictions.json", "masks.zip"}
    rows = list(csv.DictReader(io.StringIO(arts["predictions.csv"].read_text())))
    assert len(rows) == 16 and all(0 <= float(r["iou"]) <= 1 for r in rows)
    folder = get_settings().datasets_dir / str(dataset_id)
    val = SegmentationDataset(folder, CanonicalDataset.load(folder), ["val"])
    with zipfile.ZipFile(arts["masks.zip"]) as archive:
        assert sorted(archive.namelist()) == sorted(r["mask"] for r in rows)
        first = rows[0]
        with archive.open(first["mask"]) as fh, Image.open(fh) as mask:
            pred = np.array(mask)
            assert mask.mode == "P"
    truth = val.mask(val.image_ids.index(int(first["image_id"])))
    shares = np.bincount(pred.ravel(), minlength=4) / pred.size
    assert float(first["share_circle"]) == pytest.approx(shares[1], abs=1e-6)
    iou = scores(confusion_matrix(torch.tensor(pred), torch.tensor(truth.astype(np.int64)), 4))["iou"]
    assert float(first["iou"]) == pytest.approx(float(iou.nanmean()), abs=1e-6)


def _dashboard(model_id: int, dataset_id: int) -> None:
    """The dashboard's worst images are the lowest-IoU validation images, their masks the true ones and
    what the kept weights predict, and each image's figure is the IoU of the two masks shown."""
    from backend.datasets.canonical import CanonicalDataset
    from backend.models.dashboard import model_dashboard
    from worker.tasks.segmentation.data import SegmentationDataset

    with session_scope() as s:
        model = s.get(TrainedModel, model_id)
        assert model is not None
        board = model_dashboard(s, model)
        paths = {a.id: Path(a.path) for a in s.scalars(select(Artifact).where(Artifact.model_id == model_id))}
    assert board.task == "semantic_segmentation" and set(board.summary) >= {"mIoU", "mDice", "aAcc"}
    assert board.columns == ["iou", "dice", "acc", "pixels"]
    assert [r.name for r in board.per_class] == ["_background_", "circle", "square", "triangle"]
    assert board.summary["mIoU"] == pytest.approx(
        np.nanmean([r.values["iou"] if r.values["iou"] is not None else np.nan for r in board.per_class])
    )
    assert len(board.curves["val/mIoU"]) == 2 and board.curves["train/loss"]  # eval every 4 of 8 epochs
    worst = board.worst_images
    assert 1 <= len(worst) <= 10
    scores_shown = [w.score for w in worst]
    assert scores_shown == sorted(scores_shown), scores_shown  # worst first

    folder = get_settings().datasets_dir / str(dataset_id)
    val = SegmentationDataset(folder, CanonicalDataset.load(folder), ["val"])
    for w in worst:
        assert w.split == "val" and w.file_name and w.image_url
        assert w.true_mask_url and w.predicted_mask_url and w.true_overlay_url and w.predicted_overlay_url
        art = lambda url: paths[int(url.rsplit("/", 1)[1])]  # noqa: E731
        true = np.asarray(Image.open(art(w.true_mask_url)))
        pred = np.asarray(Image.open(art(w.predicted_mask_url)))
        assert np.array_equal(true, val.mask(val.image_ids.index(w.image_id)))
        iou = scores(confusion_matrix(torch.tensor(pred), torch.tensor(true), 4))["iou"]
        assert float(iou.nanmean()) == pytest.approx(w.score)
        with Image.open(art(w.predicted_overlay_url)) as overlay:
            assert overlay.mode == "RGB" and overlay.size == (true.shape[1], true.shape[0])


def _image_jobs(owner: int, model_id: int, dataset_id: int) -> None:
    """The synchronous endpoints' jobs answer a segmentation model with a mask, a CAM and an export."""
    import uuid

    image = next((get_settings().datasets_dir / str(dataset_id) / "images").glob("*.png"))
    name = f"images/{uuid.uuid4().hex}.png"
    target = get_settings().data_dir / "requests" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(image.read_bytes())
    predicted = serve(model_id, name, overlay=True)
    assert predicted["mask_png"] and predicted["overlay"] and predicted["top_k"]
    with Image.open(io.BytesIO(base64.b64decode(predicted["mask_png"]))) as mask:
        assert mask.mode == "P" and mask.size == Image.open(image).size
    cam = serve(model_id, name, "cam", target_class="circle")
    assert cam["target_class"] == "circle" and cam["overlay"]
    exported = run_to_end(owner, "export", {"model_id": model_id, "format": "onnx"})["result"]
    assert exported["max_abs_diff"] <= 1e-4


def _predict_cam_and_export(model_id: int, dataset_id: int, tmp_path: Path) -> None:
    from backend.datasets.canonical import CanonicalDataset
    from backend.datasets.export import VOC_PALETTE
    from worker.cam import segmentation_cam
    from worker.export import export_onnx, export_torchscript
    from worker.models import load_model
    from worker.tasks.segmentation.data import SegmentationDataset
    from worker.tasks.segmentation.predict import predict_mask

    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        assert row is not None and row.checkpoint_path
        checkpoint = Path(row.checkpoint_path)
    loaded = load_model(checkpoint)
    folder = get_settings().datasets_dir / str(dataset_id)
    canonical = CanonicalDataset.load(folder)
    val = SegmentationDataset(folder, canonical, ["val"])
    image = Image.open(val.samples[0].path)
    out = predict_mask(loaded, image)
    assert out.mask.size == image.size and out.mask.mode == "P"
    assert out.mask.getpalette()[:12] == VOC_PALETTE[:12]
    truth = val.mask(0)
    assert (np.asarray(out.mask) == truth)[truth != 255].mean() > 0.9
    assert out.overlay.size == image.size and out.overlay.mode == "RGB"
    present = [c for c in out.classes if c["name"] != "_background_"]
    assert present, out.classes

    cam = segmentation_cam(loaded, image, present[0]["name"])
    assert cam.overlay.size == image.size and cam.heatmap.max() > 0

    ts = export_torchscript(loaded.model, SIZE, tmp_path / "m.pt")
    onnx = export_onnx(loaded.model, SIZE, tmp_path / "m.onnx")
    assert ts.max_abs_diff <= 1e-4 and onnx.max_abs_diff <= 1e-4
