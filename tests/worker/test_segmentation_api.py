"""Segmentation run configs over HTTP: a good one is queued; every bad one is a 4xx naming its field,
before anything is queued. YAML round-trips the union; the schema endpoint serves each task's form."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import sign_up
from tests.test_specs_api import make_dataset, make_model, me


def seg_run(dataset_id: int, **sections: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "task": "semantic_segmentation",
        "model": {"architecture": "unet", "options": {"encoder": "resnet18"}},
        "data": {"dataset_id": dataset_id, "input_size": 256, "batch_size": 4},
        "schedule": {"epochs": 2},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


def _seg_dataset(client: TestClient, **kw: Any) -> int:
    return make_dataset(me(client), tasks=("semantic_segmentation", "object_detection"), **kw)


@pytest.mark.usefixtures("db_stack")
def test_good_segmentation_config_is_queued_with_its_defaults(client: TestClient) -> None:
    sign_up(client)
    ds = _seg_dataset(client)
    r = client.post("/api/jobs", json={"kind": "train", "config": seg_run(ds, runtime={"seed": 3})})
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert config["task"] == "semantic_segmentation" and config["runtime"]["best_metric"] == "mIoU"
    assert config["loss"]["terms"] == [{"name": "cross_entropy", "weight": 1.0}]
    assert config["inference"]["mode"] == "whole"
    assert config["schedule"]["policy"] == "poly"  # a schedule section that names no policy keeps poly
    stepped = client.post(
        "/api/configs/validate", json=seg_run(ds, schedule={"epochs": 3, "policy": "step", "step_size": 2})
    )
    assert stepped.status_code == 200 and stepped.json()["config"]["schedule"]["policy"] == "step"

    text = client.post("/api/configs/yaml", json=seg_run(ds)).text
    back = client.post("/api/configs/validate", json={"yaml": text})
    assert back.status_code == 200 and back.json()["config"]["task"] == "semantic_segmentation"

    schema = client.get("/api/schema/train-config", params={"task": "semantic_segmentation"}).json()
    assert "inference" in schema["properties"] and "SegLossTerm" in schema["$defs"]
    union = client.get("/api/schema/train-config", params={"task": "all"}).json()
    assert union["discriminator"]["propertyName"] == "task"
    assert {"classification", "semantic_segmentation"} <= set(union["discriminator"]["mapping"])
    unknown = client.get("/api/schema/train-config", params={"task": "pose_estimation"})
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith("task: the studio trains")
    assert "inference" not in client.get("/api/schema/train-config").json()["properties"]  # classification


CASES: list[tuple[str, Any, str]] = [
    ("dataset without masks", lambda c, ds: seg_run(make_dataset(me(c))), "config.task:"),
    (
        "classifier architecture",
        lambda c, ds: seg_run(ds, model={"architecture": "resnet18"}),
        "config.model.architecture:",
    ),
    (
        "encoder the head cannot take",
        lambda c, ds: seg_run(ds, model={"architecture": "unetplusplus", "options": {"encoder": "mit_b0"}}),
        "config.model.options.encoder:",
    ),
    (
        "input size not a multiple of 32",
        lambda c, ds: seg_run(ds, data={"input_size": 100}),
        "config.data.input_size:",
    ),
    (
        "crop larger than any resized image",
        lambda c, ds: seg_run(ds, data={"scale": 64, "input_size": 256}),
        "config.data.input_size:",
    ),
    (
        "slide crop not a multiple",
        lambda c, ds: seg_run(ds, inference={"mode": "slide", "crop_size": 100}),
        "config.inference.crop_size:",
    ),
    (
        "stride larger than the crop",
        lambda c, ds: seg_run(ds, inference={"mode": "slide", "stride": 300}),
        "config.inference.stride:",
    ),
    (
        "class weights without background",
        lambda c, ds: seg_run(ds, loss={"class_weights": [1, 1, 1]}),
        "config.loss.class_weights:",
    ),
    (
        "unknown loss term",
        lambda c, ds: seg_run(ds, loss={"terms": [{"name": "hinge"}]}),
        "config.loss.terms.0.name:",
    ),
    (
        "classification best metric",
        lambda c, ds: seg_run(ds, runtime={"best_metric": "accuracy/top1"}),
        "config.runtime.best_metric:",
    ),
    ("pretrained", lambda c, ds: seg_run(ds, model={"pretrained": True}), "config.model.pretrained:"),
    (
        "bad ratio range",
        lambda c, ds: seg_run(ds, data={"augment": [{"name": "random_resize", "ratio_range": [2, 1]}]}),
        "config.data.augment.0:",
    ),
    (
        "load_from another encoder",
        lambda c, ds: seg_run(
            ds,
            model={
                "load_from": {
                    "model_id": make_model(me(c), task="semantic_segmentation", architecture="unet")
                }
            },
        ),
        "config.model.load_from.model_id:",
    ),
]


@pytest.mark.usefixtures("db_stack")
@pytest.mark.parametrize(("case", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_segmentation_config_names_its_field(client: TestClient, case: Any, detail: str) -> None:
    sign_up(client)
    ds = _seg_dataset(client)
    config = case(client, ds)
    for r in (
        client.post("/api/jobs", json={"kind": "train", "config": copy.deepcopy(config)}),
        client.post("/api/configs/validate", json=copy.deepcopy(config)),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(detail), r.json()
        field = detail.split(":")[0].split(".")
        assert [str(p) for p in r.json()["errors"][0]["loc"][: len(field) + 1]] == ["body", *field]
    assert client.get("/api/jobs").json() == []
