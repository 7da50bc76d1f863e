"""Datasets through the REST API with a real worker: upload, import job, browse, render, split, export."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Stack, WorkerProcess
from tests.datasets.synth import make_image_folder, make_labelme_project, zip_folder
from tests.helpers import sign_up, wait_for


def export_ready(client: TestClient, dataset_id: int, fmt: str) -> Any:
    """Ask for an export, wait for the light-lane job that writes it, and ask again."""
    first = client.post(f"/api/datasets/{dataset_id}/exports", params={"format": fmt})
    if first.status_code != 202:
        return first
    job_id = first.json()["job_id"]
    wait_for(
        lambda: client.get(f"/api/jobs/{job_id}").json()["status"] in ("succeeded", "failed"),
        90,
        what=f"the {fmt} export job",
    )
    return client.post(f"/api/datasets/{dataset_id}/exports", params={"format": fmt})


LABELS = ["__ignore__", "_background_", "circle", "square", "triangle"]
StartWorker = Callable[..., WorkerProcess]


def _upload(client: TestClient, path: Path, **fields: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/api/datasets", files={"file": (path.name, fh, "application/zip")}, data=fields)


def _landed(client: TestClient, started: dict[str, Any]) -> dict[str, Any]:
    job = wait_for(
        lambda: (
            (j := client.get(f"/api/jobs/{started['job_id']}").json())["status"] in ("succeeded", "failed")
            and j
        ),
        90,
        what="the import job",
    )
    ds = client.get(f"/api/datasets/{started['dataset']['id']}").json()
    ds["job"] = job
    return ds  # type: ignore[no-any-return]


@pytest.fixture
def project_zip(tmp_path: Path) -> Path:
    make_labelme_project(tmp_path / "proj", n_images=12, labels_txt=LABELS, nested=True)
    return zip_folder(tmp_path / "proj", tmp_path / "proj.zip", prefix="my project/")


def test_labelme_upload_lands_and_can_be_browsed_split_and_exported(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, project_zip: Path
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    r = _upload(client, project_zip, name="shapes")
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["dataset"]["status"] == "importing"
    ds = _landed(client, started)
    assert ds["job"]["status"] == "succeeded", ds["job"]
    assert ds["status"] == "ready" and ds["source_format"] == "labelme"
    assert ds["classes"] == ["circle", "square", "triangle"]  # labels.txt order
    assert "semantic_segmentation" in ds["tasks"] and "object_detection" in ds["tasks"]
    assert ds["stats"]["images"] == 12
    assert sum(ds["stats"]["splits"][s]["images"] for s in ("train", "val", "test")) == 12

    page = client.get(f"/api/datasets/{ds['id']}/images", params={"page_size": 5}).json()
    assert page["total"] == 12 and len(page["images"]) == 5
    first = page["images"][0]
    detail = client.get(f"/api/datasets/{ds['id']}/images/{first['id']}").json()
    assert detail["annotations"] and detail["classes"] == ds["classes"]
    cls = ds["classes"][detail["annotations"][0]["category_id"] - 1]
    filtered = client.get(f"/api/datasets/{ds['id']}/images", params={"class": cls}).json()
    assert all(cls in i["classes"] for i in filtered["images"]) and filtered["total"] >= 1
    train = client.get(f"/api/datasets/{ds['id']}/images", params={"split": "train"}).json()
    assert all(i["split"] == "train" for i in train["images"])
    # Previous / next follow the grid's order under the same filters.
    order = [i["id"] for i in train["images"]]
    here = client.get(f"/api/datasets/{ds['id']}/images/{order[1]}/neighbours", params={"split": "train"})
    assert here.json() == {"position": 2, "total": len(order), "previous": order[0], "next": order[2]}
    ends = client.get(f"/api/datasets/{ds['id']}/images/{order[0]}/neighbours", params={"split": "train"})
    assert ends.json()["previous"] is None and ends.json()["position"] == 1
    unfiltered = client.get(f"/api/datasets/{ds['id']}/images/{order[0]}/neighbours").json()
    assert unfiltered["total"] == 12
    val_only = [
        i["id"]
        for i in client.get(f"/api/datasets/{ds['id']}/images", params={"split": "val"}).json()["images"]
    ]
    if val_only:  # an image the filter leaves out has no place in it
        outside = client.get(
            f"/api/datasets/{ds['id']}/images/{val_only[0]}/neighbours", params={"split": "train"}
        )
        assert outside.json()["position"] is None and outside.json()["next"] is None
    assert client.get(f"/api/datasets/{ds['id']}/images/999999/neighbours").status_code == 404

    png = client.get(f"/api/datasets/{ds['id']}/images/{first['id']}/render")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    plain = client.get(f"/api/datasets/{ds['id']}/images/{first['id']}/render", params={"overlay": 0})
    a = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(plain.content)).convert("RGB"), dtype=int)
    assert a.shape == b.shape and (np.abs(a - b).sum(axis=2) > 30).mean() > 0.01  # labels drawn on
    thumb = client.get(f"/api/datasets/{ds['id']}/images/{first['id']}/thumbnail", params={"size": 64})
    assert (
        thumb.headers["content-type"] == "image/jpeg"
        and max(Image.open(io.BytesIO(thumb.content)).size) <= 64
    )

    layouts = {e["format"]: e for e in client.get(f"/api/datasets/{ds['id']}").json()["exports"]}
    assert list(layouts) == ["voc", "coco", "imagenet", "icdar"]
    assert layouts["voc"]["title"] == "Pascal VOC" and layouts["voc"]["refusal"] is None
    assert layouts["imagenet"]["refusal"] == "ImageNet needs exactly one image-level class per image"
    assert layouts["icdar"]["refusal"].startswith("ICDAR 2015 needs words")
    unknown = client.post(f"/api/datasets/{ds['id']}/exports", params={"format": "yolo"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "format: 'yolo' is not one of voc, coco, imagenet, icdar"

    first_ask = client.post(f"/api/datasets/{ds['id']}/exports", params={"format": "voc"})
    assert first_ask.status_code == 202 and first_ask.json()["ready"] is False, first_ask.text
    job = client.get(f"/api/jobs/{first_ask.json()['job_id']}").json()
    assert job["kind"] == "export_dataset" and job["queue"] == "light"
    ready = export_ready(client, ds["id"], "voc")
    assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
    assert ready.json()["url"] == f"/api/datasets/{ds['id']}/export?format=voc"
    assert ready.json()["filename"].endswith("-v1-voc.zip")
    voc = client.get(ready.json()["url"])
    assert voc.status_code == 200 and voc.headers["content-type"] == "application/zip"
    assert len(voc.content) == ready.json()["size_bytes"]
    names = zipfile.ZipFile(io.BytesIO(voc.content)).namelist()
    assert any(n.endswith("class_names.txt") for n in names)
    assert sum(n.startswith("SegmentationClass/") and n.endswith(".png") for n in names) == 12
    export_ready(client, ds["id"], "coco")
    coco = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/datasets/{ds['id']}/export", params={"format": "coco"}).content)
    )
    train_json = json.loads(coco.read("annotations/instances_train.json"))
    assert [c["name"] for c in train_json["categories"]] == ds["classes"]
    bad = export_ready(client, ds["id"], "imagenet")  # refused from the dataset's tasks, before any job
    assert bad.status_code == 422
    assert bad.json()["detail"] == "format: ImageNet needs exactly one image-level class per image"
    refused = client.get(f"/api/datasets/{ds['id']}/export", params={"format": "imagenet"})
    assert refused.status_code == 422 and refused.json() == bad.json()

    # Re-split: a new version, the old one untouched.
    v2 = client.patch(
        f"/api/datasets/{ds['id']}/splits",
        json={"ratios": {"train": 0.5, "val": 0.5, "test": 0.0}, "seed": 3},
    ).json()
    assert v2["version"] == 2 and v2["parent_id"] == ds["id"]
    counts = {
        s: client.get(f"/api/datasets/{v2['id']}/images", params={"split": s}).json()["total"]
        for s in ("train", "val", "test")
    }
    assert counts == {"train": 6, "val": 6, "test": 0}
    assert client.get(f"/api/datasets/{ds['id']}").json()["stats"] == ds["stats"]
    moved = client.patch(
        f"/api/datasets/{v2['id']}/splits", json={"assign": {str(first["id"]): "test"}}
    ).json()
    img = client.get(f"/api/datasets/{moved['id']}/images/{first['id']}").json()["image"]
    assert img["split"] == "test" and moved["version"] == 3
    unknown = client.patch(f"/api/datasets/{v2['id']}/splits", json={"assign": {"99999": "test"}})
    assert unknown.status_code == 422 and "99999" in unknown.json()["detail"]

    # Classes: merge two into one, rename: a new version whose counts add up.
    merged = client.patch(
        f"/api/datasets/{moved['id']}/classes", json={"classes": {"square": "box", "triangle": "box"}}
    )
    assert merged.status_code == 201, merged.text
    merged_ds = merged.json()
    assert merged_ds["classes"] == ["circle", "box"] and merged_ds["version"] == 4
    by_name = {c["name"]: c["instances"] for c in merged_ds["stats"]["classes"]}
    before = {c["name"]: c["instances"] for c in ds["stats"]["classes"]}
    assert by_name["box"] == before["square"] + before["triangle"]
    bad = client.patch(f"/api/datasets/{moved['id']}/classes", json={"classes": {"hexagon": "x"}})
    assert bad.status_code == 422 and "hexagon" in bad.json()["detail"]
    bad = client.patch(f"/api/datasets/{moved['id']}/classes", json={"classes": {"circle": "<b>x</b>"}})
    assert bad.status_code == 422 and "not a valid class name" in bad.json()["detail"]

    # Another user sees none of it.
    other = TestClient(client.app)
    sign_up(other)
    for path in (
        f"/api/datasets/{ds['id']}",
        f"/api/datasets/{ds['id']}/images",
        f"/api/datasets/{ds['id']}/export",
        f"/api/datasets/{ds['id']}/images/{first['id']}/render",
        f"/api/datasets/{ds['id']}/images/{first['id']}/neighbours",
    ):
        assert other.get(path).status_code == 404, path
    assert other.post(f"/api/datasets/{ds['id']}/exports", params={"format": "voc"}).status_code == 404
    assert other.get("/api/datasets").json() == []

    assert client.delete(f"/api/datasets/{moved['id']}").status_code == 204
    assert client.get(f"/api/datasets/{moved['id']}").status_code == 404
    assert not (sqlite_stack.data_dir / "datasets" / str(moved["id"])).exists()


def test_image_folder_upload_is_a_classification_dataset(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    make_image_folder(tmp_path / "folders", per_class=4, splits=True)
    ds = _landed(client, _upload(client, zip_folder(tmp_path / "folders", tmp_path / "f.zip")).json())
    assert ds["status"] == "ready" and ds["source_format"] == "folder"
    assert ds["classes"] == ["circle", "square", "triangle"] and ds["tasks"] == ["classification"]
    val = client.get(f"/api/datasets/{ds['id']}/images", params={"split": "val"}).json()
    assert val["total"] == 3  # splits taken from the folders
    export_ready(client, ds["id"], "imagenet")
    imagenet = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/datasets/{ds['id']}/export", params={"format": "imagenet"}).content)
    )
    assert "classes.txt" in imagenet.namelist()


def test_a_broken_project_fails_whole_with_named_errors(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    make_labelme_project(tmp_path / "proj", n_images=3, labels_txt=LABELS)
    (tmp_path / "proj" / "img_0001.json").write_text('{"shapes": [ oops')
    ds = _landed(client, _upload(client, zip_folder(tmp_path / "proj", tmp_path / "p.zip")).json())
    assert ds["status"] == "failed" and ds["job"]["status"] == "failed"
    errors = [f for f in ds["report"]["findings"] if f["level"] == "error"]
    assert errors[0]["code"] == "json_invalid" and "img_0001.json" in errors[0]["message"]
    assert "img_0001.json" in ds["job"]["error"] and not ds["job"]["error"].startswith("ImportFailed")
    assert ds["failure"] == errors[0]["message"]
    data = sqlite_stack.data_dir
    assert not (data / "datasets" / str(ds["id"])).exists()
    assert not any((data / "staging").glob("*"))
    assert len(list((data / "uploads").glob("*.zip"))) == 1  # kept for a retry, until the dataset goes
    assert client.get(f"/api/datasets/{ds['id']}/images").status_code == 409
    listed = next(d for d in client.get("/api/datasets").json() if d["id"] == ds["id"])
    assert listed["status"] == "failed" and "img_0001.json" in listed["failure"]
    assert client.delete(f"/api/datasets/{ds['id']}").status_code == 204
    assert not any((data / "uploads").glob("*"))


def test_skip_bad_shapes_lands_the_rest_at_upload_or_on_retry(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    """One polygon of two points fails the project by default; retried with skip_bad_shapes (no second
    upload), the rest lands and the report lists the skipped shape. Asked at upload, it lands at once."""
    start_worker(sqlite_stack)
    sign_up(client)
    make_labelme_project(tmp_path / "proj", n_images=4, labels_txt=LABELS)
    doc = json.loads((tmp_path / "proj" / "img_0002.json").read_text())
    total = sum(len(json.loads(p.read_text())["shapes"]) for p in (tmp_path / "proj").glob("*.json"))
    doc["shapes"].insert(0, {**doc["shapes"][0], "shape_type": "polygon", "points": [[1, 1], [9, 9]]})
    (tmp_path / "proj" / "img_0002.json").write_text(json.dumps(doc))
    archive = zip_folder(tmp_path / "proj", tmp_path / "p.zip")

    failed = _landed(client, _upload(client, archive).json())
    assert failed["status"] == "failed"
    assert failed["failure"] == "img_0002.json, shape 0: polygon has 2 points, needs at least 3."
    assert client.post(f"/api/datasets/{failed['id']}/retry", json={"skip": True}).status_code == 422
    retried = client.post(f"/api/datasets/{failed['id']}/retry", json={"skip_bad_shapes": True})
    assert retried.status_code == 202 and retried.json()["dataset"]["status"] == "importing", retried.text
    landed = _landed(client, retried.json())
    assert landed["status"] == "ready" and landed["failure"] is None, landed["job"]
    assert landed["stats"]["annotations"] == total
    (skipped,) = [f for f in landed["report"]["findings"] if f["skipped"]]
    assert skipped["file"] == "img_0002.json" and skipped["shape"] == 0 and skipped["level"] == "warning"
    again = client.post(f"/api/datasets/{failed['id']}/retry", json={"skip_bad_shapes": True})
    assert again.status_code == 409 and "only a failed import" in again.json()["detail"]
    assert not any((sqlite_stack.data_dir / "uploads").glob("*"))  # spent once landed

    at_once = _landed(client, _upload(client, archive, skip_bad_shapes="true").json())
    assert at_once["status"] == "ready" and at_once["stats"]["annotations"] == total
    bad = _upload(client, archive, skip_bad_shapes="maybe")
    assert bad.status_code == 422 and bad.json()["detail"] == "skip_bad_shapes: 'maybe' is not true or false"


@pytest.mark.usefixtures("sqlite_stack")
def test_unsafe_or_oversized_uploads_are_refused_at_once(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.json", "{}")
    r = _upload(client, evil)
    assert r.status_code == 422 and r.json()["code"] == "archive_path_traversal"
    assert "evil.zip" in r.json()["detail"] and r.json()["entry"] == "../../escape.json"
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")
    assert _upload(client, not_zip).json()["code"] == "not_a_zip"
    assert _upload(client, evil, format="yolo").json()["detail"].startswith("format:")
    from backend.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1000)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as zf:
        zf.writestr("a.bin", bytes(5000))
    r = _upload(client, big)
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large"
    assert client.post("/api/datasets", data={"name": "x"}).status_code in (415, 422)
    assert client.get("/api/datasets").json() == []  # nothing recorded
    assert not any((get_settings().uploads_dir).glob("*"))


def test_an_import_that_crashes_fails_its_dataset_saying_why_and_can_be_run_again(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import that ends without a report (here the disk fails under it) does not leave its dataset
    'importing' for ever: the dataset fails saying why, and imports again from the kept upload."""
    import worker.jobs.dataset_import as importing
    from worker.runner import run_job

    sign_up(client)
    make_labelme_project(tmp_path / "proj", n_images=3, labels_txt=LABELS)
    started = _upload(client, zip_folder(tmp_path / "proj", tmp_path / "p.zip")).json()
    real = importing.land_import

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importing, "land_import", broken)
    assert run_job(started["job_id"], "test-worker@local") == "failed"
    ds = client.get(f"/api/datasets/{started['dataset']['id']}").json()
    assert ds["status"] == "failed"
    assert ds["failure"] == "the import stopped: OSError: [Errno 28] No space left on device"
    monkeypatch.setattr(importing, "land_import", real)
    again = client.post(f"/api/datasets/{ds['id']}/retry", json={"skip_bad_shapes": False})
    assert again.status_code == 202, again.text
    assert run_job(again.json()["job_id"], "test-worker@local") == "succeeded"
    landed = client.get(f"/api/datasets/{ds['id']}").json()
    assert landed["status"] == "ready" and landed["stats"]["images"] == 3 and landed["failure"] is None
