"""The augmentation preview: a run's training pipeline drawn on dataset images by a real worker."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Stack, WorkerProcess
from tests.datasets.synth import make_image_folder, make_labelme_project, zip_folder
from tests.helpers import sign_up, wait_for


def test_preview_shows_transformed_training_images(
    sqlite_stack: Stack, client: TestClient, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    make_image_folder(tmp_path / "f", per_class=4, splits=True, size=(40, 40))
    with zip_folder(tmp_path / "f", tmp_path / "f.zip").open("rb") as fh:
        started = client.post("/api/datasets", files={"file": ("f.zip", fh, "application/zip")}).json()
    wait_for(lambda: client.get(f"/api/jobs/{started['job_id']}").json()["status"] == "succeeded", 90)
    config = {
        "task": "classification",
        "model": {"architecture": "tiny_cnn"},
        "data": {
            "dataset_id": started["dataset"]["id"],
            "input_size": 32,
            "augment": [{"name": "random_resized_crop", "scale": [0.5, 1.0]}, {"name": "horizontal_flip"}],
        },
    }
    r = client.post("/api/configs/preview", json={"config": config, "count": 4, "seed": 1})
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert len(images) == 4 and all(i["label"] in ("circle", "square", "triangle") for i in images)
    png = client.get(images[0]["url"])
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (32, 32)

    bad = client.post(
        "/api/configs/preview", json={"config": {**config, "data": {**config["data"], "batch_size": 0}}}
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("config.data.batch_size")
    other = TestClient(client.app)
    sign_up(other)
    assert other.post("/api/configs/preview", json={"config": config}).status_code == 404
    assert other.get(images[0]["url"]).status_code == 404


def test_segmentation_preview_paints_the_augmented_masks(
    sqlite_stack: Stack, client: TestClient, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Image and mask go through the joint transform together: each crop is the input size, and the
    classes named under it are the ones its mask still holds."""
    start_worker(sqlite_stack)
    sign_up(client)
    make_labelme_project(tmp_path / "lm", n_images=8, width=64, height=64, image_format="PNG", seed=2)
    with zip_folder(tmp_path / "lm", tmp_path / "lm.zip").open("rb") as fh:
        started = client.post("/api/datasets", files={"file": ("lm.zip", fh, "application/zip")}).json()
    wait_for(lambda: client.get(f"/api/jobs/{started['job_id']}").json()["status"] == "succeeded", 90)
    config = {
        "task": "semantic_segmentation",
        "model": {"architecture": "unet_light", "options": {"encoder": "resnet18"}},
        "data": {
            "dataset_id": started["dataset"]["id"],
            "input_size": 32,
            "augment": [{"name": "random_resize", "ratio_range": [0.5, 1.5]}, {"name": "random_crop"}],
        },
    }
    r = client.post("/api/configs/preview", json={"config": config, "count": 3, "seed": 4})
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert len(images) == 3
    for item in images:
        assert set(item["label"].split(", ")) <= {"circle", "square", "triangle", "background only"}, item
        png = client.get(item["url"])
        assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (32, 32)


def test_detection_preview_draws_the_kept_objects(
    sqlite_stack: Stack, client: TestClient, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Image, boxes and masks go through the training transform together, at the run's scale; each
    picture is named by the objects it still holds."""
    import re

    from tests.worker.detection_data import make_detection_project

    start_worker(sqlite_stack)
    sign_up(client)
    make_detection_project(tmp_path / "det", 10, size=128, seed=1, negatives=1)
    with zip_folder(tmp_path / "det", tmp_path / "det.zip").open("rb") as fh:
        started = client.post("/api/datasets", files={"file": ("det.zip", fh, "application/zip")}).json()
    wait_for(lambda: client.get(f"/api/jobs/{started['job_id']}").json()["status"] == "succeeded", 90)
    config = {
        "task": "instance_segmentation",
        "model": {"architecture": "maskrcnn_mobilenet_v3_large_fpn"},
        "data": {
            "dataset_id": started["dataset"]["id"],
            "scales": [96],
            "max_size": 160,
            "augment": [{"name": "horizontal_flip"}, {"name": "random_crop", "p": 1.0, "min_scale": 0.6}],
        },
    }
    r = client.post("/api/configs/preview", json={"config": config, "count": 3, "seed": 2})
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert len(images) == 3
    for item in images:
        assert re.fullmatch(r"\d+ objects?(, \d+ dropped)?", item["label"]), item
        png = client.get(item["url"])
        assert png.status_code == 200 and min(Image.open(io.BytesIO(png.content)).size) == 96
