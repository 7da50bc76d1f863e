"""The model registry over HTTP: scoping, checkpoint uploads, the checks single-image predict and CAM make
before they ask the inference lane (tests/worker/test_serving.py asks it for real), exports, artifacts.
These run without torch; the tests at the end use a real worker."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from backend.db.session import session_scope
from backend.db.tables import Artifact, Job, JobMetric, JobStatus, TrainedModel
from backend.jobs.lifecycle import finish, take_lease
from backend.models.contract import model_dir, requests_dir
from backend.settings import get_settings
from tests.conftest import ROOT, Stack, WorkerProcess
from tests.helpers import sign_up, wait_for
from tests.test_specs_api import make_dataset, make_model, me

StartWorker = Callable[..., WorkerProcess]


def png_bytes(size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _with_weights(model_id: int) -> Path:
    """Give a model row a weights file (its content is only read by the inference lane)."""
    path = model_dir(get_settings().data_dir, model_id) / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    with session_scope() as s:
        row = s.get(TrainedModel, model_id)
        assert row is not None
        row.checkpoint_path = str(path)
    return path


def jobs_of(kind: str) -> list[Job]:
    with session_scope() as s:
        return list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))


def add_artifact(owner_id: int, path: Path, *, kind: str, media_type: str, **ids: int | None) -> int:
    with session_scope() as s:
        row = Artifact(
            owner_id=owner_id,
            kind=kind,
            name=path.name,
            path=str(path),
            size_bytes=path.stat().st_size,
            media_type=media_type,
            **ids,
        )
        s.add(row)
        s.flush()
        return row.id


@pytest.fixture
def owner(client: TestClient) -> Iterator[int]:
    sign_up(client)
    yield me(client)


def _other(client: TestClient) -> TestClient:
    other = TestClient(client.app)
    sign_up(other)
    return other


# --- scoping ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_models_are_scoped_to_their_owner_and_deleted_with_their_files(
    client: TestClient, owner: int
) -> None:
    model_id = make_model(owner)
    folder = model_dir(get_settings().data_dir, model_id)
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"PK\x03\x04")
    with session_scope() as s:
        s.get_one(TrainedModel, model_id).checkpoint_path = str(folder / "checkpoint.pt")
    export = folder / "model.onnx"
    export.write_bytes(b"onnx")
    art = add_artifact(owner, export, kind="export_onnx", media_type="application/onnx", model_id=model_id)

    listed = client.get("/api/models").json()
    assert [m["id"] for m in listed] == [model_id] and listed[0]["class_names"] == ["cat", "dog", "fox"]
    detail = client.get(f"/api/models/{model_id}").json()
    assert detail["status"] == "ready" and [a["id"] for a in detail["artifacts"]] == [art]
    assert detail["artifacts"][0]["url"] == f"/api/artifacts/{art}"
    assert {"metrics", "config", "params", "flops", "input_size"} <= set(detail)

    other = _other(client)
    assert other.get("/api/models").json() == []
    for method, path in [
        ("GET", f"/api/models/{model_id}"),
        ("GET", f"/api/models/{model_id}/dashboard"),
        ("DELETE", f"/api/models/{model_id}"),
        ("GET", f"/api/models/{model_id}/export?format=onnx"),
        ("POST", f"/api/models/{model_id}/predict"),
        ("POST", f"/api/models/{model_id}/cam"),
        ("GET", f"/api/artifacts/{art}"),
    ]:
        foreign = other.request(
            method, path, files={"image": ("a.png", png_bytes())} if method == "POST" else None
        )
        missing = other.request(method, path.replace(str(model_id), "424242").replace(str(art), "424242"))
        assert foreign.status_code == missing.status_code == 404, (path, foreign.text)
    assert other.get(f"/api/models/{model_id}").json()["detail"] == f"model {model_id} not found"

    assert client.delete(f"/api/models/{model_id}").status_code == 204
    assert client.get(f"/api/models/{model_id}").status_code == 404
    assert client.get(f"/api/artifacts/{art}").status_code == 404
    assert not folder.exists() and client.get("/api/models").json() == []


def test_dashboard_arranges_a_classifiers_figures(client: TestClient, owner: int) -> None:
    """Headline figures of the kept weights, the per-class table in class order with the task's columns,
    the confusion matrix and the run's validation curves; NaN shown as null."""
    model_id = make_model(owner)
    job = client.post("/api/jobs", json={"kind": "probe", "config": {"steps": 1}}).json()["id"]
    per_class = {
        "fox": {"precision": 0.5, "recall": 1.0, "f1": 0.667, "support": 2},
        "cat": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4},
        "dog": {"precision": float("nan"), "recall": 0.0, "f1": 0.0, "support": 0},
    }
    best = {"accuracy/top1": 0.75, "loss": 0.4, "per_class": per_class, "confusion_matrix": [[2, 2, 0]] * 3}
    with session_scope() as s:
        row = s.get_one(TrainedModel, model_id)
        row.job_id = job
        row.metrics = {"best": {**best, "metric": "accuracy/top1"}, "final": {"accuracy/top1": 0.5}}
        for step, value in [(10, 0.5), (20, 0.75)]:
            s.add(JobMetric(job_id=job, step=step, name="val/accuracy/top1", value=value))
        s.add(JobMetric(job_id=job, step=20, name="train/lr", value=0.1))

    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["task"] == "classification" and board["summary"] == {"accuracy/top1": 0.75, "loss": 0.4}
    assert board["columns"] == ["precision", "recall", "f1", "support"]
    assert [r["name"] for r in board["per_class"]] == ["cat", "dog", "fox"]
    assert board["per_class"][1]["values"]["precision"] is None
    assert board["confusion_matrix"] == [[2, 2, 0]] * 3
    assert board["curves"] == {"val/accuracy/top1": [{"step": 10, "value": 0.5}, {"step": 20, "value": 0.75}]}
    assert board["worst_images"] == []


def test_dashboard_arranges_a_detectors_figures(client: TestClient, owner: int) -> None:
    """Box mAP headline figures, per-class AP with object counts, the confusion matrix with its background
    row and column named, PR curves per class, and the images with missed objects with their counts."""
    model_id = make_model(
        owner, task="object_detection", architecture="fasterrcnn_mobilenet_v3_light", classes=("box", "disc")
    )
    curve = {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.9, 0.4], "score": [0.98, 0.7, 0.06]}
    best = {
        "bbox/mAP": 0.61,
        "bbox/mAP_50": 0.9,
        "bbox/mAP_75": 0.7,
        "bbox/AR_100": 0.66,
        "bbox/mAP_s": None,
        "per_class": {
            "box": {"objects": 12, "bbox/AP": 0.7, "bbox/AP50": 0.95, "bbox/AP75": 0.8, "bbox/AR": 0.75},
            "disc": {"objects": 9, "bbox/AP": 0.52, "bbox/AP50": 0.85, "bbox/AP75": 0.6, "bbox/AR": 0.57},
        },
        "confusion_matrix": [[11, 0, 1], [1, 8, 0], [2, 0, 0]],
        "confusion_labels": ["box", "disc", "background"],
        "bbox/pr_curve": {"box": curve, "disc": curve},
        "worst_images": [{"image_id": 4, "missed": 2, "objects": 3, "detections": 1, "false_detections": 0}],
    }
    with session_scope() as s:
        s.get_one(TrainedModel, model_id).metrics = {"best": best, "worst_images": best["worst_images"]}

    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["summary"] == {"bbox/mAP": 0.61, "bbox/mAP_50": 0.9, "bbox/mAP_75": 0.7, "bbox/AR_100": 0.66}
    assert board["columns"] == ["bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/AR", "objects"]
    assert board["per_class"][1] == {
        "name": "disc",
        "values": {"bbox/AP": 0.52, "bbox/AP50": 0.85, "bbox/AP75": 0.6, "bbox/AR": 0.57, "objects": 9},
    }
    assert board["confusion_labels"] == ["box", "disc", "background"]
    assert board["pr_curves"] == {"bbox": {"box": curve, "disc": curve}}
    worst = board["worst_images"]
    assert len(worst) == 1 and worst[0]["image_id"] == 4 and worst[0]["counts"]["missed"] == 2
    assert worst[0]["file_name"] is None  # the model names no dataset


def test_a_cam_request_is_checked_against_what_the_models_task_takes(client: TestClient, owner: int) -> None:
    """A detector's map takes a box and a method; a classifier's neither; a box must be a box. Each is
    refused before the inference lane is asked, naming the field, and the upload is not kept."""
    detector = make_model(owner, task="object_detection", architecture="fasterrcnn_mobilenet_v3_large_fpn")
    classifier = make_model(owner)
    cases = [
        (classifier, {"target_box": "1,2,30,40"}, "config.target_box: model"),
        (classifier, {"method": "eigencam"}, "config.method: model"),
        (detector, {"method": "smooth"}, "config.method: 'smooth' is not one of gradcam, eigencam"),
        (detector, {"target_box": "1,2,3"}, "config.target_box: '1,2,3' is not a box"),
        (detector, {"target_box": "10,10,5,40"}, "config.target_box: '10,10,5,40' is not a box"),
        (detector, {"target_box": "nan,1,2,3"}, "config.target_box: 'nan,1,2,3' is not a box"),
    ]
    for model_id, form, said in cases:
        r = client.post(f"/api/models/{model_id}/cam", files={"image": ("a.png", png_bytes())}, data=form)
        assert r.status_code == 422 and r.json()["detail"].startswith(said), (form, r.text)
    assert list(requests_dir(get_settings().data_dir).rglob("*.png")) == []  # the uploads are not kept


# --- uploads ----------------------------------------------------------------------------------------------


def _upload(client: TestClient, filename: str, data: bytes, **fields: str) -> Any:
    form = {"architecture": "resnet18", "class_names": '["cat", "dog"]', **fields}
    return client.post("/api/models", files={"file": (filename, data, "application/octet-stream")}, data=form)


TORCH_ZIP = b"PK\x03\x04" + bytes(200)


@pytest.mark.usefixtures("db_stack")
def test_checkpoint_upload_queues_its_verification(client: TestClient, owner: int) -> None:
    r = _upload(
        client, "weights.pth", TORCH_ZIP, name="my r18", class_names="cat\ndog\n\nfox\n", input_size="96"
    )
    assert r.status_code == 201, r.text
    body = r.json()
    model = body["model"]
    assert model["status"] == "importing" and model["name"] == "my r18" and model["input_size"] == 96
    assert model["class_names"] == ["cat", "dog", "fox"] and model["architecture"] == "resnet18"
    (job,) = jobs_of("import_model")
    assert job.id == body["job_id"] == model["job_id"] and job.config == {"model_id": model["id"]}
    assert job.queue == "light" and job.status == JobStatus.queued
    with session_scope() as s:
        stored = Path(str(s.get_one(TrainedModel, model["id"]).checkpoint_path))
    assert stored.read_bytes() == TORCH_ZIP and stored.parent == model_dir(
        get_settings().data_dir, model["id"]
    )
    assert not any(get_settings().uploads_dir.iterdir())
    # Not usable until verified; an import whose job ended without the worker's word counts as failed.
    assert (
        client.post(f"/api/models/{model['id']}/predict", files={"image": ("a.png", png_bytes())}).status_code
        == 409
    )
    assert client.delete(f"/api/models/{model['id']}").status_code == 409
    with session_scope() as s:
        assert take_lease(s, job.id, "hand", 30) is not None
    with session_scope() as s:
        finish(s, job.id, "hand", JobStatus.failed, error="UnpicklingError: weights only")
    failed = client.get(f"/api/models/{model['id']}").json()
    assert failed["status"] == "failed" and "weights only" in failed["error"]
    assert client.delete(f"/api/models/{model['id']}").status_code == 204
    assert not stored.exists()
    safetensors = (2).to_bytes(8, "little") + b"{}" + bytes(10)
    assert _upload(client, "w.safetensors", safetensors).status_code == 201


@pytest.mark.parametrize(
    ("name", "data", "fields", "status", "detail"),
    [
        ("notes.txt", TORCH_ZIP, {}, 422, "file: notes.txt is not a"),
        ("weights.pt", b"hello world, not a checkpoint", {}, 422, "file: weights.pt is not a .pt checkpoint"),
        ("w.safetensors", b"\xff" * 32, {}, 422, "file: w.safetensors"),
        ("weights.pt", TORCH_ZIP, {"architecture": "resnet9000"}, 422, "architecture: unknown architecture"),
        ("weights.pt", TORCH_ZIP, {"task": "poetry"}, 422, "task:"),
        ("weights.pt", TORCH_ZIP, {"class_names": "[1, 2]"}, 422, "class_names:"),
        ("weights.pt", TORCH_ZIP, {"class_names": "a\na"}, 422, "class_names: class 'a' is given twice"),
        ("weights.pt", TORCH_ZIP, {"class_names": ""}, 422, "class_names:"),
        ("weights.pt", TORCH_ZIP, {"architecture": "vit_b_16", "input_size": "100"}, 422, "input_size:"),
    ],
)
@pytest.mark.usefixtures("sqlite_stack")
def test_bad_checkpoint_upload_names_the_field_and_records_nothing(
    client: TestClient, owner: int, name: str, data: bytes, fields: dict[str, str], status: int, detail: str
) -> None:
    r = _upload(client, name, data, **fields)
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(detail), r.json()
    assert client.get("/api/models").json() == [] and jobs_of("import_model") == []
    assert not any(get_settings().uploads_dir.iterdir())
    assert not model_dir(get_settings().data_dir, 1).exists()


@pytest.mark.usefixtures("sqlite_stack")
def test_oversized_checkpoint_is_413_and_leaves_nothing(
    client: TestClient, owner: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1000)
    r = _upload(client, "big.pt", TORCH_ZIP + bytes(5000))
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large"
    assert client.get("/api/models").json() == [] and not any(get_settings().uploads_dir.iterdir())
    assert client.post("/api/models", data={"name": "x"}).status_code in (415, 422)


# --- single-image predict and CAM -------------------------------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_non_image_is_422_naming_the_file_and_queues_nothing(client: TestClient, owner: int) -> None:
    model_id = make_model(owner)
    _with_weights(model_id)
    for name, data in [("notes.png", b"just some text, honest"), ("broken.png", png_bytes()[:40])]:
        r = client.post(f"/api/models/{model_id}/predict", files={"image": (name, data, "image/png")})
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("image:") and name in r.json()["detail"]
        assert r.json()["file"] == name
        r = client.post(f"/api/models/{model_id}/cam", files={"image": (name, data, "image/png")})
        assert r.status_code == 422 and name in r.json()["detail"]
    assert (
        client.post(f"/api/models/{model_id}/predict", files={"file": ("a.png", png_bytes())}).status_code
        == 422
    )
    assert client.get("/api/jobs").json() == []
    assert not list(requests_dir(get_settings().data_dir).rglob("*.*"))


@pytest.mark.usefixtures("db_stack")
def test_predict_of_a_model_without_its_weights_is_410_before_the_image_is_read(
    client: TestClient, owner: int
) -> None:
    model_id = make_model(owner)
    r = client.post(f"/api/models/{model_id}/predict", files={"image": ("a.png", png_bytes())})
    assert r.status_code == 410 and r.json()["detail"] == f"model {model_id}: its weights file is gone"
    batch = client.post(f"/api/models/{model_id}/predict/batch", files=[("images", ("a.png", png_bytes()))])
    assert batch.status_code == 410
    assert not list(requests_dir(get_settings().data_dir).rglob("*.png"))


@pytest.mark.usefixtures("sqlite_stack")
def test_predict_with_no_inference_worker_is_a_503_that_says_so(
    client: TestClient, owner: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_INFERENCE_TIMEOUT_SECONDS", "0.5")
    get_settings.cache_clear()
    model_id = make_model(owner)
    _with_weights(model_id)
    started = time.monotonic()
    r = client.post(f"/api/models/{model_id}/predict", files={"image": ("a.png", png_bytes())})
    assert r.status_code == 503 and r.json()["code"] == "inference_timeout", r.text
    assert "inference lane" in r.json()["detail"] and time.monotonic() - started < 10
    assert client.get("/api/jobs").json() == []  # a picture is never a job
    assert not list(requests_dir(get_settings().data_dir).rglob("*.png"))  # the image is not kept
    assert client.post("/api/jobs", json={"kind": "predict_image", "config": {}}).status_code == 422


@pytest.mark.usefixtures("sqlite_stack")
def test_batch_requests_are_checked_before_the_lane_is_asked(client: TestClient, owner: int) -> None:
    model_id = make_model(owner)
    _with_weights(model_id)
    images = [("images", (f"p{i}.png", png_bytes(), "image/png")) for i in range(2)]
    bad = client.post(
        f"/api/models/{model_id}/predict/batch",
        files=[*images, ("images", ("notes.png", b"just text", "image/png"))],
    )
    assert bad.status_code == 422 and bad.json()["index"] == 2 and bad.json()["file"] == "notes.png"
    assert bad.json()["detail"].startswith("images[2]:")
    over = [("images", (f"p{i}.png", png_bytes(), "image/png")) for i in range(17)]
    r = client.post(f"/api/models/{model_id}/predict/batch", files=over)
    assert r.status_code == 413 and r.json()["code"] == "batch_too_large"
    r = client.post(f"/api/models/{model_id}/predict/batch", files={"image": ("a.png", png_bytes())})
    assert r.status_code == 422 and r.json()["code"] == "file_missing"
    assert not [p for p in requests_dir(get_settings().data_dir).rglob("*") if p.is_file()]


@pytest.mark.usefixtures("sqlite_stack")
def test_cam_refuses_a_class_the_model_lacks(client: TestClient, owner: int) -> None:
    model_id = make_model(owner)
    _with_weights(model_id)
    bad = client.post(
        f"/api/models/{model_id}/cam", files={"image": ("a.png", png_bytes())}, data={"target_class": "zebra"}
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("config.target_class:")
    assert "zebra" in bad.json()["detail"]
    assert not list(requests_dir(get_settings().data_dir).rglob("*.png"))


# --- exports and artifacts --------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_export_queues_once_then_downloads_the_verified_file(client: TestClient, owner: int) -> None:
    model_id = make_model(owner)
    r = client.get(f"/api/models/{model_id}/export", params={"format": "onnx"})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert client.get(f"/api/models/{model_id}/export", params={"format": "onnx"}).json()["job_id"] == job_id
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["kind"] == "export" and job["config"] == {"model_id": model_id, "format": "onnx"}
    ts = client.get(f"/api/models/{model_id}/export", params={"format": "torchscript"}).json()["job_id"]
    assert ts != job_id
    assert client.get(f"/api/models/{model_id}/export", params={"format": "tflite"}).status_code == 422
    assert client.post("/api/jobs", json={"kind": "export", "config": job["config"]}).status_code == 422

    out = model_dir(get_settings().data_dir, model_id) / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"onnx-bytes")
    add_artifact(
        owner, out, kind="export_onnx", media_type="application/onnx", model_id=model_id, job_id=job_id
    )
    got = client.get(f"/api/models/{model_id}/export", params={"format": "onnx"})
    assert got.status_code == 200 and got.content == b"onnx-bytes"
    assert (
        got.headers["content-disposition"].startswith("attachment;")
        and ".onnx" in got.headers["content-disposition"]
    )
    not_ready = make_model(owner, status="importing")
    assert client.get(f"/api/models/{not_ready}/export").status_code == 409


@pytest.mark.usefixtures("db_stack")
def test_artifacts_are_downloaded_and_listed_by_their_owner_only(client: TestClient, owner: int) -> None:
    job_id = client.post("/api/jobs", json={"kind": "probe", "config": {}}).json()["id"]
    folder = get_settings().data_dir / "jobs" / str(job_id)
    folder.mkdir(parents=True)
    (folder / "predictions.csv").write_text("file,label\na.png,cat\n")
    (folder / "cam.png").write_bytes(png_bytes())
    csv = add_artifact(
        owner, folder / "predictions.csv", kind="predictions", media_type="text/csv", job_id=job_id
    )
    png = add_artifact(owner, folder / "cam.png", kind="cam", media_type="image/png", job_id=job_id)
    outside = Path("/etc/hostname")
    escaped = add_artifact(owner, outside, kind="report", media_type="text/plain", job_id=job_id)

    listed = client.get(f"/api/jobs/{job_id}/artifacts").json()
    assert [a["id"] for a in listed] == [csv, png, escaped] and listed[0]["kind"] == "predictions"
    r = client.get(f"/api/artifacts/{csv}")
    assert (
        r.status_code == 200
        and r.text.startswith("file,label")
        and r.headers["content-type"].startswith("text/csv")
    )
    assert r.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/api/artifacts/{png}").headers["content-disposition"].startswith("inline")
    assert (
        client.get(f"/api/artifacts/{escaped}").status_code == 404
    )  # never served from outside the data dir

    other = _other(client)
    assert other.get(f"/api/artifacts/{csv}").status_code == 404
    assert other.get(f"/api/jobs/{job_id}/artifacts").status_code == 404


# --- batch model jobs checked before they are queued ----------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_model_jobs_are_checked_against_models_and_datasets(client: TestClient, owner: int) -> None:
    model_id = make_model(owner)
    ds = make_dataset(owner)
    other_classes = make_dataset(owner, classes=("car", "bus"))
    foreign = make_model(_other(client).get("/api/auth/me").json()["id"])

    def post(kind: str, **config: Any) -> Any:
        return client.post("/api/jobs", json={"kind": kind, "config": config})

    ok = post("evaluate", model_id=model_id, dataset_id=ds, split="val")
    assert ok.status_code == 201 and ok.json()["queue"] == "training"
    assert post("predict", model_id=model_id, dataset_id=other_classes, split="all").status_code == 201
    assert post("cam", model_id=model_id, dataset_id=ds, target_class="dog", limit=4).status_code == 201
    cases = [
        (post("evaluate", model_id=model_id, dataset_id=other_classes), 422, "config.dataset_id:"),
        (post("evaluate", model_id=foreign, dataset_id=ds), 404, "config.model_id:"),
        (post("predict", model_id=model_id, dataset_id=424242), 404, "config.dataset_id:"),
        (
            post("predict", model_id=model_id, dataset_id=make_dataset(owner, train=0), split="train"),
            422,
            "config.split:",
        ),
        (post("cam", model_id=model_id, dataset_id=ds, target_class="zebra"), 422, "config.target_class:"),
        (
            post("cam", model_id=model_id, dataset_id=ds, target_layer="layer4; rm -rf /"),
            422,
            "config.target_layer:",
        ),
        (post("cam", model_id=model_id, dataset_id=ds, limit=0), 422, "config.limit:"),
        (
            post("evaluate", model_id=make_model(owner, status="failed"), dataset_id=ds),
            422,
            "config.model_id:",
        ),
    ]
    for r, status, detail in cases:
        assert r.status_code == status and r.json()["detail"].startswith(detail), r.text
    assert len(client.get("/api/jobs").json()) == 3


# --- with the worker's torch handlers -----------------------------------------------------------------------


def _has_handler(kind: str) -> bool:
    return f'"{kind}"' in (ROOT / "worker" / "jobs" / "__init__.py").read_text()


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(_Evil.marker),))

    marker = ""


@pytest.mark.skipif(not _has_handler("import_model"), reason="the worker has no import_model handler yet")
def test_uploaded_pickle_with_code_is_refused_and_never_run(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    start_worker(sqlite_stack, "light")
    sign_up(client)
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    import torch

    buf = io.BytesIO()
    torch.save({"weights": _Evil()}, buf)  # pickles the __reduce__ call into the checkpoint
    r = _upload(client, "evil.pt", buf.getvalue())
    assert r.status_code == 201, r.text
    model_id = r.json()["model"]["id"]
    done = wait_for(
        lambda: (m := client.get(f"/api/models/{model_id}").json())["status"] != "importing" and m,
        120,
        what="the import job",
    )
    assert done["status"] == "failed" and done["error"]
    assert not marker.exists()


WORKER_KINDS = ("import_model", "export")


@pytest.mark.skipif(not all(map(_has_handler, WORKER_KINDS)), reason="the worker lacks a model handler yet")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_uploaded_model_predicts_explains_and_exports_with_a_real_worker(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    import torch

    from worker.zoo import build_model

    net = build_model("tiny_cnn", num_classes=2)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    r = _upload(
        client, "tiny.pt", buf.getvalue(), architecture="tiny_cnn", input_size="64", class_names="red\ngreen"
    )
    assert r.status_code == 201, r.text
    model_id = r.json()["model"]["id"]
    done = wait_for(
        lambda: (m := client.get(f"/api/models/{model_id}").json())["status"] != "importing" and m,
        120,
        what="the import job",
    )
    assert done["status"] == "ready", done
    assert done["params"] == sum(p.numel() for p in net.parameters())

    image = {"image": ("photo.jpg", png_bytes((80, 60)), "image/jpeg")}  # named wrongly: content decides
    r = client.post(f"/api/models/{model_id}/predict", files=image, params={"top_k": 2})
    assert r.status_code == 200, r.text
    top = r.json()["top_k"]
    assert {t["name"] for t in top} == {"red", "green"} and abs(sum(t["score"] for t in top) - 1) < 1e-4
    overlay = client.post(f"/api/models/{model_id}/predict", files=image, params={"overlay": 1})
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    cam = client.post(f"/api/models/{model_id}/cam", files=image, data={"target_class": "green"})
    assert cam.status_code == 200 and cam.headers["content-type"] == "image/png", cam.text
    assert Image.open(io.BytesIO(cam.content)).size[0] > 0
    assert not list(requests_dir(get_settings().data_dir).rglob("*.*"))  # request images cleaned up

    started = client.get(f"/api/models/{model_id}/export", params={"format": "torchscript"})
    assert started.status_code == 202, started.text
    job = wait_for(
        lambda: (
            (j := client.get(f"/api/jobs/{started.json()['job_id']}").json())["status"]
            in ("succeeded", "failed")
            and j
        ),
        120,
        what="the export job",
    )
    assert job["status"] == "succeeded", job
    got = client.get(f"/api/models/{model_id}/export", params={"format": "torchscript"})
    assert got.status_code == 200
    scripted = torch.jit.load(io.BytesIO(got.content))
    assert scripted(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
