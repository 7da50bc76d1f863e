"""From a classifier's figures to the images behind them: every confusion-matrix cell lists exactly the
images whose true and predicted classes are that cell's, a class's false positives and negatives are the
off-diagonal of its column and row, the highest losses come first, an evaluate job keeps its own, and
Grad-CAM of a listed image is drawn by the inference lane once, then read from where it was kept."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from backend.db.session import session_scope
from backend.db.tables import EvaluationItem, TrainedModel
from tests.conftest import Stack, WorkerProcess
from tests.helpers import run_to_end, sign_up
from tests.worker.test_train_classification import SHAPES, import_shapes, train_config

StartWorker = Callable[..., WorkerProcess]


def _all(client: TestClient, model_id: int, **params: Any) -> dict[str, Any]:
    """Every page of a view, joined; checks the pages agree on the total and do not overlap."""
    images: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    while True:
        r = client.get(
            f"/api/models/{model_id}/evaluation/images", params={**params, "offset": len(images), "limit": 7}
        )
        assert r.status_code == 200, r.text
        page = r.json()
        first = first or page
        assert page["total"] == first["total"]
        images += page["images"]
        if not page["images"] or len(images) >= page["total"]:
            break
    assert len(images) == first["total"] and len({i["item_id"] for i in images}) == len(images)
    return {**first, "images": images}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_every_figure_of_a_classifier_opens_the_images_behind_it(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    sign_up(client)
    me = int(client.get("/api/auth/me").json()["id"])
    dataset_id = import_shapes(me, tmp_path, per_class=20)
    # One short epoch: a model that still confuses some shapes, so the off-diagonal cells hold images.
    job = run_to_end(me, "train", train_config(dataset_id, schedule={"epochs": 1, "lr": 1e-3}))
    model_id = job["result"]["model_id"]
    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["explain_views"] == ["cell", "false_positives", "false_negatives", "highest_loss"]
    matrix = board["confusion_matrix"]
    labels = board["confusion_labels"] or SHAPES
    print("confusion matrix of the short run:", matrix)
    assert any(matrix[i][j] for i in range(3) for j in range(3) if i != j), "no mistakes to list"

    every: dict[int, tuple[str, str]] = {}
    for i, true in enumerate(labels):
        for j, predicted in enumerate(labels):
            cell = _all(client, model_id, view="cell", true=true, predicted=predicted)
            assert cell["total"] == matrix[i][j], (true, predicted, cell["total"], matrix)
            assert cell["evaluation"] == job["id"] and cell["split"] == "val"
            scores = [im["score"] for im in cell["images"]]
            assert scores == sorted(scores, reverse=True)  # most confident first
            for im in cell["images"]:
                assert (im["true_class"], im["predicted_class"]) == (true, predicted)
                assert im["source"] and im["page_url"] == f"/datasets/{dataset_id}/images/{im['image_id']}"
                every[im["image_id"]] = (true, predicted)
    assert len(every) == sum(map(sum, matrix))  # each val image in exactly one cell

    for c, name in enumerate(labels):
        fp = _all(client, model_id, view="false_positives", class_name=name)
        fn = _all(client, model_id, view="false_negatives", class_name=name)
        assert fp["total"] == sum(matrix[i][c] for i in range(len(labels)) if i != c)
        assert fn["total"] == sum(matrix[c][j] for j in range(len(labels)) if j != c)
        assert all(every[im["image_id"]] == (im["true_class"], name) for im in fp["images"])
        assert all(im["true_class"] != name for im in fp["images"])
        assert all(im["true_class"] == name != im["predicted_class"] for im in fn["images"])

    ranked = _all(client, model_id, view="highest_loss")
    losses = [im["loss"] for im in ranked["images"]]
    assert len(losses) == len(every) and losses == sorted(losses, reverse=True)
    # The loss is the cross-entropy of the true class's probability.
    import math

    for im in ranked["images"]:
        assert im["loss"] == pytest.approx(-math.log(im["true_score"]), rel=1e-4, abs=1e-5)

    # Bad input names the field; another user's model is not there.
    r = client.get(
        f"/api/models/{model_id}/evaluation/images", params={"true": "hexagon", "predicted": "circle"}
    )
    assert r.status_code == 422 and "true: 'hexagon' is not a class" in r.json()["detail"], r.text
    r = client.get(f"/api/models/{model_id}/evaluation/images", params={"view": "false_positives"})
    assert r.status_code == 422 and r.json()["detail"].startswith("class_name:"), r.text
    r = client.get(f"/api/models/{model_id}/evaluation/images", params={"view": "nowhere"})
    assert r.status_code == 422, r.text
    r = client.get(
        f"/api/models/{model_id}/evaluation/images", params={"view": "highest_loss", "evaluation": 999}
    )
    assert r.status_code == 404 and "job 999" in r.json()["detail"], r.text

    # An evaluate job keeps its own images, listed under its id; the training run's stay the default.
    evaluated = run_to_end(me, "evaluate", {"model_id": model_id, "dataset_id": dataset_id, "split": "train"})
    assert "items" not in evaluated["result"]
    train_matrix = evaluated["result"]["metrics"]["confusion_matrix"]
    mine = _all(client, model_id, view="highest_loss", evaluation=evaluated["id"])
    assert mine["split"] == "train" and mine["total"] == sum(map(sum, train_matrix))
    assert mine["evaluations"] == [job["id"], evaluated["id"]]
    assert _all(client, model_id, view="highest_loss")["evaluation"] == job["id"]
    with session_scope() as s:
        before = s.scalar(select(func.count()).select_from(EvaluationItem))

    # Grad-CAM of a listed image, for its true and its predicted class.
    worst = ranked["images"][0]
    assert worst["cam_true_url"] and worst["cam_predicted_url"]
    assert "target_class=" in worst["cam_true_url"] and f"model_id={model_id}" in worst["cam_true_url"]
    worker = start_worker(sqlite_stack, "inference", pool="threads")
    r = client.get(worst["cam_true_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text + worker.output()[-3000:]
    assert r.headers["x-cam-target-class"] == worst["true_class"]
    image_id = worst["image_id"]
    original = client.get(f"/api/datasets/{dataset_id}/images/{image_id}/render?overlay=false")
    assert Image.open(io.BytesIO(r.content)).size == Image.open(io.BytesIO(original.content)).size
    # Kept: answered again with the lane gone.
    worker.stop()
    again = client.get(worst["cam_true_url"])
    assert again.status_code == 200 and again.content == r.content
    assert again.headers["x-cam-target-class"] == worst["true_class"]

    cam = f"/api/datasets/{dataset_id}/images/{image_id}/cam"
    r = client.get(cam, params={"model_id": model_id, "target_class": "hexagon"})
    assert r.status_code == 422 and "hexagon" in r.json()["detail"], r.text
    r = client.get(f"/api/datasets/{dataset_id}/images/99999/cam", params={"model_id": model_id})
    assert r.status_code == 404 and "image 99999" in r.json()["detail"], r.text
    r = client.get(cam, params={"model_id": model_id, "target_layer": "no such layer"})
    assert r.status_code == 422, r.text

    other = TestClient(client.app)
    sign_up(other)
    for url in (f"/api/models/{model_id}/evaluation/images?view=highest_loss", worst["cam_true_url"]):
        r = other.get(url)
        assert r.status_code == 404, (url, r.text)

    # A second, longer run on the same data: the images it fixed and broke, against each model's own.
    better = run_to_end(me, "train", train_config(dataset_id, schedule={"epochs": 4}))["result"]["model_id"]

    def right(model: int) -> dict[int, bool]:
        ranked = _all(client, model, view="highest_loss")["images"]
        return {im["image_id"]: im["true_class"] == im["predicted_class"] for im in ranked}

    a, b = right(model_id), right(better)
    changes = {}
    for change in ("fixed", "broken"):
        listed: list[dict[str, Any]] = []
        while True:
            r = client.get(
                f"/api/models/{model_id}/evaluation/changes",
                params={"other": better, "change": change, "offset": len(listed), "limit": 2},
            )
            assert r.status_code == 200, r.text
            listed += r.json()["images"]
            if len(listed) >= r.json()["total"] or not r.json()["images"]:
                break
        changes[change] = {im["image_id"] for im in listed}
        moved = [abs(im["change"]) for im in listed]
        assert moved == sorted(moved, reverse=True)  # largest change first
    assert changes["fixed"] == {i for i in a if not a[i] and b[i]}
    assert changes["broken"] == {i for i in a if a[i] and not b[i]}
    print(f"the longer run fixed {len(changes['fixed'])} and broke {len(changes['broken'])} images")
    r = client.get(f"/api/models/{model_id}/evaluation/changes", params={"other": 99999})
    assert r.status_code == 404, r.text

    # Deleting the model drops its items.
    assert client.delete(f"/api/models/{model_id}").status_code == 204
    with session_scope() as s:
        assert s.get(TrainedModel, model_id) is None
        left = s.scalar(
            select(func.count()).select_from(EvaluationItem).where(EvaluationItem.model_id == model_id)
        )
    assert before > 0 and left == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_segmenters_cells_and_classes_open_their_images_and_error_maps(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    from tests.worker.test_segmentation_train import import_labelme_shapes, seg_config

    sign_up(client)
    me = int(client.get("/api/auth/me").json()["id"])
    dataset_id = import_labelme_shapes(me, tmp_path, n_images=16)
    config = seg_config(dataset_id, schedule={"epochs": 2}, runtime={"eval_interval": 1})
    job = run_to_end(me, "train", config)
    model_id = job["result"]["model_id"]
    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["explain_views"] == ["cell", "lowest_iou"]
    matrix = board["confusion_matrix"]
    labels = board["confusion_labels"] or [row["name"] for row in board["per_class"]]
    n = len(matrix)

    # A cell lists the images where class i was painted as j, largest area first; the areas add up to it.
    for i in range(n):
        for j in range(n):
            cell = _all(client, model_id, view="cell", true=labels[i], predicted=labels[j])
            assert cell["score_is"] == "pixels"
            areas = [im["score"] for im in cell["images"]]
            assert areas == sorted(areas, reverse=True)
            assert sum(areas) == matrix[i][j], (labels[i], labels[j])
            assert all(im["errors_url"] and "true=" in im["errors_url"] for im in cell["images"])

    # A class lists its images by their IoU there, lowest first; their pixels are its row and column.
    worst: dict[str, Any] = {}
    for c, name in enumerate(labels):
        listed = _all(client, model_id, view="lowest_iou", class_name=name)
        assert listed["score_is"] == "IoU"
        ious = [im["score"] for im in listed["images"]]
        assert ious == sorted(ious)
        assert sum(im["detail"]["fn"] for im in listed["images"]) == sum(matrix[c]) - matrix[c][c]
        assert sum(im["detail"]["fp"] for im in listed["images"]) == sum(r[c] for r in matrix) - matrix[c][c]
        assert sum(im["detail"]["tp"] for im in listed["images"]) == matrix[c][c]
        if listed["images"] and name != "_background_":
            worst[name] = listed["images"][0]
    assert worst

    # The error map, drawn from the inference lane's mask, counts the same pixels the evaluation did.
    worker = start_worker(sqlite_stack, "inference", pool="threads")
    name, image = next(iter(worst.items()))
    r = client.get(image["errors_url"])
    assert r.status_code == 200, r.text + worker.output()[-3000:]
    assert int(r.headers["x-errors-false-negative-pixels"]) == image["detail"]["fn"]
    assert int(r.headers["x-errors-false-positive-pixels"]) == image["detail"]["fp"]
    drawn = Image.open(io.BytesIO(r.content))
    original = client.get(f"/api/datasets/{dataset_id}/images/{image['image_id']}/render?overlay=false")
    assert drawn.size == Image.open(io.BytesIO(original.content)).size
    painted = np.asarray(drawn.convert("RGB")).reshape(-1, 3)
    from backend.models.error_map import FALSE_NEGATIVE, FALSE_POSITIVE

    assert int((painted == FALSE_NEGATIVE).all(1).sum()) == image["detail"]["fn"]
    assert int((painted == FALSE_POSITIVE).all(1).sum()) == image["detail"]["fp"]
    cell = _all(client, model_id, view="cell", true=name, predicted=name)["images"][0]
    r = client.get(cell["errors_url"])
    assert r.status_code == 200 and int(r.headers["x-errors-cell-pixels"]) == cell["score"], r.text
    # Grad-CAM of the class on that image (pytorch-grad-cam's SemanticSegmentationTarget).
    r = client.get(image["cam_true_url"])
    assert r.status_code == 200 and r.headers["x-cam-target-class"] == name, r.text

    errors = f"/api/datasets/{dataset_id}/images/{image['image_id']}/errors"
    r = client.get(errors, params={"model_id": model_id})
    assert r.status_code == 422 and r.json()["detail"].startswith("class_name:"), r.text
    r = client.get(errors, params={"model_id": model_id, "class_name": "hexagon"})
    assert r.status_code == 422 and "hexagon" in r.json()["detail"], r.text
    r = client.get(f"/api/models/{model_id}/evaluation/images", params={"view": "highest_loss"})
    assert r.status_code == 422 and r.json()["detail"].startswith("view:"), r.text

    # Two segmenters of the same data: images by mean IoU; a model of another task is refused by name.
    again = run_to_end(
        me, "train", seg_config(dataset_id, schedule={"epochs": 1}, runtime={"eval_interval": 1})
    )
    other = again["result"]["model_id"]
    r = client.get(f"/api/models/{model_id}/evaluation/changes", params={"other": other, "change": "fixed"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == body["fixed"] and all(im["change"] > 0 for im in body["images"])
    assert all(im["before"].startswith("mIoU ") for im in body["images"])
    with session_scope() as s:  # a classifier of the same owner: it is refused before any evaluation is read
        classifier = TrainedModel(
            owner_id=me, name="c", task="classification", architecture="tiny_cnn", class_names=["a", "b"]
        )
        s.add(classifier)
        s.flush()
        classifier_id = classifier.id
    r = client.get(f"/api/models/{model_id}/evaluation/changes", params={"other": classifier_id})
    assert r.status_code == 422 and r.json()["detail"].startswith("other: model"), r.text


@pytest.mark.timeout(900)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_detectors_matrix_cells_open_its_boxes_and_missed_objects(
    sqlite_stack: Stack, client: TestClient, start_worker: StartWorker, tmp_path: Path
) -> None:
    from tests.worker.detection_data import import_detection_dataset
    from tests.worker.test_detection_train import det_config

    sign_up(client)
    me = int(client.get("/api/auth/me").json()["id"])
    dataset_id = import_detection_dataset(me, tmp_path, n_images=24)
    # A short run, counted at a low threshold: objects found and missed, and false detections.
    config = det_config(
        dataset_id,
        schedule={"iterations": 100, "warmup_iters": 5},
        runtime={"log_interval": 10, "seed": 0, "eval_interval": 100},
    )
    config["evaluation"] = {"score_threshold": 0.1}
    job = run_to_end(me, "train", config)
    model_id = job["result"]["model_id"]
    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["explain_views"] == ["cell", "detections", "missed", "false_detections"]
    matrix, labels = board["confusion_matrix"], board["confusion_labels"]
    assert labels == ["box", "disc", "background"]
    print("confusion matrix of the short detector run:", matrix)
    found, false, missed = matrix[0][0] + matrix[1][1], sum(matrix[2]), matrix[0][2] + matrix[1][2]
    assert found and false and missed, matrix
    for curve in board["pr_curves"]["bbox"].values():  # each point says the score that reaches it
        assert len(curve["score"]) == len(curve["recall"])

    k = len(labels) - 1
    for i, true in enumerate(labels):
        for j, predicted in enumerate(labels):
            if i == j == k:
                r = client.get(
                    f"/api/models/{model_id}/evaluation/images", params={"true": true, "predicted": predicted}
                )
                assert r.status_code == 422, r.text
                continue
            cell = _all(client, model_id, view="cell", true=true, predicted=predicted)
            assert cell["total"] == matrix[i][j], (true, predicted, cell["total"], matrix)
            assert cell["score_threshold"] == 0.1
            for im in cell["images"]:
                assert im["true_class"] == (None if i == k else true)
                assert im["predicted_class"] == (None if j == k else predicted)
                assert im["width"] and im["height"]
                if j == k:  # missed: the object's box, found by nothing at the threshold
                    assert "true_box" in im["detail"] and (im["score"] is None or im["score"] < 0.1)
                else:
                    assert "box" in im["detail"] and im["score"] >= 0.1
                    assert ("true_box" in im["detail"]) == (i != k)

    # A point of a precision-recall curve: the boxes of a class at or above its score.
    for c, name in enumerate(labels[:k]):
        at = _all(client, model_id, view="detections", class_name=name, min_score=0.1)
        assert at["total"] == sum(row[c] for row in matrix)
        r = client.get(
            f"/api/models/{model_id}/evaluation/images",
            params={"view": "detections", "class_name": name, "min_score": 0, "limit": 50},
        )
        every = r.json()
        assert every["total"] >= at["total"]
        scores = [im["score"] for im in every["images"]]
        assert scores == sorted(scores, reverse=True)
    r = client.get(f"/api/models/{model_id}/evaluation/images", params={"true": "box", "predicted": "cat"})
    assert r.status_code == 422 and "box, disc, background" in r.json()["detail"], r.text

    # What the model looked at: Grad-CAM of a listed box's score, EigenCAM of a picture where it missed.
    worker = start_worker(sqlite_stack, "inference", pool="threads")
    box = _all(client, model_id, view="detections", class_name="box", min_score=0.1)["images"][0]
    assert box["cam_method"] == "gradcam" and "target_box=" in box["cam_predicted_url"]
    r = client.get(box["cam_predicted_url"])
    assert r.status_code == 200, r.text + worker.output()[-3000:]
    assert r.headers["x-cam-method"] == "gradcam" and r.headers["x-cam-target-class"] == "box"
    explained = [float(v) for v in r.headers["x-cam-box"].split(",")]
    assert explained == pytest.approx(box["detail"]["box"], abs=0.05)
    assert Image.open(io.BytesIO(r.content)).size == (box["width"], box["height"])
    missed = _all(client, model_id, view="cell", true="disc", predicted="background")["images"][0]
    assert missed["cam_method"] == "eigencam" and missed["cam_predicted_url"] is None
    r = client.get(missed["cam_true_url"])
    assert r.status_code == 200 and r.headers["x-cam-method"] == "eigencam", r.text


def test_a_text_detectors_missed_and_false_words_are_those_its_counts_count(
    sqlite_stack: Stack, client: TestClient, tmp_path: Path
) -> None:
    from tests.tasks.test_contract import CASES

    sign_up(client)
    me = int(client.get("/api/auth/me").json()["id"])
    dataset_id = CASES["text_detection"].dataset(me, tmp_path)
    config = CASES["text_detection"].config(dataset_id)
    config["schedule"] = {**config["schedule"], "iterations": 30, "epochs": None, "warmup_iters": 0}
    config["evaluation"] = {"choose_threshold": False, "score_threshold": 0.3}
    job = run_to_end(me, "train", config)
    model_id = job["result"]["model_id"]
    kept = client.get(f"/api/models/{model_id}").json()["metrics"]
    counts = (kept.get("best") or kept["final"])["counts"]
    board = client.get(f"/api/models/{model_id}/dashboard").json()
    assert board["explain_views"] == ["missed", "false_detections"]
    missed = _all(client, model_id, view="missed", class_name="text")
    false = _all(client, model_id, view="false_detections", class_name="text")
    print("text counts:", counts, "missed", missed["total"], "false", false["total"])
    # ICDAR 2015's own counts: care words not matched, care detections (outside don't-care) not matched.
    assert missed["total"] == counts["gt_care"] - counts["matched"]
    assert false["total"] == counts["det_care"] - counts["matched"]
    for im in missed["images"]:
        assert im["true_class"] == "text" and len(im["detail"]["true_polygon"]) >= 4
    for im in false["images"]:
        assert im["true_class"] is None and len(im["detail"]["polygon"]) >= 4 and im["score"] >= 0.3
