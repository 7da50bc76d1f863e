"""What the run form stands on: one set of defaults (from the entry and the machine, in the config the
API records), augmentation steps that take only their own fields, presets from the dataset, and the
estimate a real worker measures before anything trains."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from backend.specs.config import parse_train_config, train_config_schema
from backend.specs.recipes import DatasetFacts, entry_defaults, presets
from backend.tasks import TASKS
from tests.conftest import Stack, WorkerProcess
from tests.datasets.synth import make_image_folder, zip_folder
from tests.helpers import sign_up, wait_for


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_few_fields_give_the_entrys_defaults_for_the_machine(task: str, device: Any) -> None:
    spec = TASKS[task]
    config = parse_train_config({"task": task, "data": {"dataset_id": 1}}, device)
    pick = spec.recipe.gpu_pick if device == "cuda" else spec.recipe.cpu_pick
    assert config.model.architecture == pick
    entry = next(e for e in spec.entries if e.name == pick)
    dumped = config.model_dump(mode="json")
    for dotted, value in entry_defaults(spec, entry, device).items():
        section, field = dotted.split(".")
        assert dumped[section][field] == value, dotted
    # Given values stay; a schedule in iterations is not also given epochs.
    given = parse_train_config(
        {"task": task, "data": {"dataset_id": 1, "batch_size": 3}, "schedule": {"iterations": 7}}, device
    )
    assert given.data.batch_size == 3  # type: ignore[attr-defined]
    assert (given.schedule.iterations, given.schedule.epochs) == (7, None)
    # What the API records re-parses to itself, on any machine.
    other = "cpu" if device == "cuda" else "cuda"
    assert parse_train_config(dumped, other).model_dump(mode="json") == dumped


@pytest.mark.parametrize("task", list(TASKS))
def test_pretrained_is_on_by_default_where_an_entry_has_weights_unless_offline(
    task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the network may be used, every entry with ImageNet weights starts from them by default;
    offline (as every test is), runs start from scratch."""
    from backend.settings import get_settings

    spec = TASKS[task]
    try:
        monkeypatch.setenv("STUDIO_OFFLINE", "0")
        get_settings.cache_clear()
        for entry in spec.entries:
            online = parse_train_config(
                {"task": task, "data": {"dataset_id": 1}, "model": {"architecture": entry.name}}, "cpu"
            )
            assert online.model.pretrained is bool(entry.pretrained_weights), entry.name
        monkeypatch.setenv("STUDIO_OFFLINE", "1")
        get_settings.cache_clear()
        for entry in spec.entries:
            offline = parse_train_config(
                {"task": task, "data": {"dataset_id": 1}, "model": {"architecture": entry.name}}, "cpu"
            )
            assert offline.model.pretrained is False, entry.name
    finally:
        get_settings.cache_clear()


def test_light_entries_train_small_on_a_cpu_and_full_size_on_a_gpu() -> None:
    seg = TASKS["semantic_segmentation"]
    unet = next(e for e in seg.entries if e.name == "unet")
    cpu = parse_train_config(
        {"task": seg.name, "data": {"dataset_id": 1}, "model": {"architecture": "unet_light"}}, "cpu"
    )
    assert cpu.data.input_size <= 128  # type: ignore[attr-defined]
    gpu = parse_train_config({"task": seg.name, "data": {"dataset_id": 1}}, "cuda")
    assert gpu.data.input_size == unet.default_input_size  # type: ignore[attr-defined]
    # A missing required section is still named as missing, not half-filled.
    with pytest.raises(ValidationError) as err:
        parse_train_config({"task": seg.name}, "cpu")
    assert [e["loc"] for e in err.value.errors()] == [("data",)]


def test_each_augmentation_step_takes_only_its_own_fields() -> None:
    schema = train_config_schema("semantic_segmentation")
    items = schema["$defs"]["SegDataSpec"]["properties"]["augment"]["items"]
    assert items["discriminator"]["propertyName"] == "name"
    flip = schema["$defs"]["SegHorizontalFlip"]
    assert set(flip["properties"]) == {"name", "p"}
    base = {"task": "semantic_segmentation", "data": {"dataset_id": 1}}
    with pytest.raises(ValidationError) as err:
        parse_train_config({**base, "data": {"dataset_id": 1, "augment": [{"name": "pad", "bogus": 1}]}})
    assert "bogus" in str(err.value)
    with pytest.raises(ValidationError) as err:
        parse_train_config({**base, "data": {"dataset_id": 1, "augment": [{"name": "spin"}]}})
    assert "spin" in str(err.value) and "random_resize" in str(err.value)


def test_configs_written_when_every_step_held_every_field_still_parse() -> None:
    old = {
        "task": "classification",
        "data": {
            "dataset_id": 1,
            "augment": [
                {
                    "name": "horizontal_flip",
                    "p": 0.3,
                    "scale": [0.08, 1.0],
                    "degrees": 15,
                    "brightness": 0.2,
                    "contrast": 0.2,
                    "saturation": 0.2,
                    "hue": 0.0,
                    "magnitude": 9,
                }
            ],
        },
    }
    config = parse_train_config(copy.deepcopy(old))
    assert config.data.augment[0].model_dump() == {"name": "horizontal_flip", "p": 0.3}  # type: ignore[attr-defined]


def test_presets_scale_with_the_dataset_and_the_machine() -> None:
    spec = TASKS["classification"]
    entry = next(e for e in spec.entries if e.name == "resnet18")
    small = presets(spec, entry, "cpu", DatasetFacts(train_images=64, typical_side=512))
    large = presets(spec, entry, "cpu", DatasetFacts(train_images=6400, typical_side=512))
    assert [p["name"] for p in small] == ["quick", "balanced", "best"]
    epochs = [p["changes"]["schedule.epochs"] for p in small]
    assert epochs == sorted(epochs) and epochs[0] < epochs[-1]
    assert all(
        b["changes"]["schedule.epochs"] <= s["changes"]["schedule.epochs"]
        for s, b in zip(small, large, strict=True)
    )
    sizes = [p["changes"]["data.input_size"] for p in small]
    assert sizes[0] <= sizes[1] <= sizes[2] <= entry.default_input_size
    tiny_pictures = presets(spec, entry, "cpu", DatasetFacts(train_images=64, typical_side=96))
    assert tiny_pictures[2]["changes"]["data.input_size"] <= 96
    # Balanced is the entry's defaults; quick is never longer, best never shorter.
    base = entry_defaults(spec, entry, "cpu")["schedule.epochs"]
    for p in (*small, *large):
        quick_or_best = {
            "quick": lambda e: e <= base,
            "balanced": lambda e: e == base,
            "best": lambda e: e >= base,
        }
        assert quick_or_best[p["name"]](p["changes"]["schedule.epochs"]), p
    # A GPU makes more of a quick look on a large dataset than a CPU does.
    gpu = presets(spec, entry, "cuda", DatasetFacts(train_images=6400, typical_side=512))
    assert gpu[0]["changes"]["schedule.epochs"] > large[0]["changes"]["schedule.epochs"]
    # Every preset's changes make a config the studio accepts.
    for preset in small:
        config: dict[str, Any] = {"task": "classification", "data": {"dataset_id": 1}}
        for dotted, value in preset["changes"].items():
            section, field = dotted.split(".")
            config.setdefault(section, {})[field] = value
        parse_train_config(config, "cpu")


def _dataset(client: TestClient, tmp_path: Path) -> int:
    make_image_folder(tmp_path / "f", per_class=5, splits=True, size=(40, 40))
    with zip_folder(tmp_path / "f", tmp_path / "f.zip").open("rb") as fh:
        started = client.post("/api/datasets", files={"file": ("f.zip", fh, "application/zip")}).json()
    wait_for(lambda: client.get(f"/api/jobs/{started['job_id']}").json()["status"] == "succeeded", 120)
    return int(started["dataset"]["id"])


def test_catalog_presets_and_a_measured_estimate(
    sqlite_stack: Stack, client: TestClient, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    start_worker(sqlite_stack)
    sign_up(client)
    dataset_id = _dataset(client, tmp_path)

    config = {
        "task": "classification",
        "model": {"architecture": "tiny_cnn"},
        "data": {"dataset_id": dataset_id, "input_size": 32, "batch_size": 4, "workers": 0},
        "schedule": {"epochs": 3},
    }
    answer: dict[str, Any] = {}

    def measured() -> bool:
        nonlocal answer
        r = client.post("/api/configs/estimate", params={"wait": 10}, json={"config": config})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] != "failed", answer
        return answer["status"] == "ready"

    wait_for(measured, 180)
    # 12 training pictures in batches of 4: 3 iterations an epoch, 9 for the run.
    assert answer["iterations_per_epoch"] == 3 and answer["total_iterations"] == 9
    assert answer["seconds_per_iteration"] > 0 and answer["data_seconds_per_iteration"] >= 0
    assert answer["evaluations"] == 3 and answer["eval_seconds"] > 0
    assert answer["run_seconds"] >= 9 * answer["seconds_per_iteration"]
    assert answer["memory_mb"] is not None and answer["memory_note"]
    # More epochs: the same measure, read again at once and scaled.
    longer = client.post(
        "/api/configs/estimate", json={"config": {**config, "schedule": {"epochs": 6}}}
    ).json()
    assert longer["status"] == "ready" and longer["cached"] and longer["job_id"] == answer["job_id"]
    assert longer["total_iterations"] == 18
    # A bad config is refused before anything is measured; another user's dataset is not found.
    refused = client.post(
        "/api/configs/estimate", json={"config": {**config, "data": {**config["data"], "batch_size": 0}}}
    )
    assert refused.status_code == 422 and refused.json()["detail"].startswith("config.data.batch_size")
    other = TestClient(client.app)
    sign_up(other)
    assert other.post("/api/configs/estimate", json={"config": config}).status_code == 404

    # The jobs list shows the user's own work; the measures are the studio's, behind a filter.
    assert {j["kind"] for j in client.get("/api/jobs").json()} == {"import_dataset"}
    everything = {j["kind"] for j in client.get("/api/jobs", params={"background": True}).json()}
    assert everything == {"import_dataset", "estimate_run"}
    named = client.get("/api/jobs", params={"kind": "estimate_run"}).json()
    assert [j["id"] for j in named] == [answer["job_id"]]

    # The catalog (asked last: its first view queues the worker counting parameters and FLOPs).
    catalog = client.get("/api/catalog", params={"task": "classification"}).json()
    assert catalog["machine"]["device"] in ("cpu", "cuda") and catalog["machine"]["description"]
    assert catalog["recommended"] in {e["name"] for e in catalog["entries"]} and catalog["recommended_reason"]
    tiny = next(e for e in catalog["entries"] if e["name"] == "tiny_cnn")
    assert tiny["defaults"]["data.batch_size"] >= 1 and "schedule.epochs" in tiny["defaults"]
    tasks = {t["name"]: t for t in client.get("/api/tasks").json()}
    assert "data.batch_size" in tasks["classification"]["simple_fields"]
    assert "data.scales" in tasks["object_detection"]["simple_fields"]

    r = client.get(
        "/api/configs/presets",
        params={"task": "classification", "dataset_id": dataset_id, "architecture": "tiny_cnn"},
    )
    assert r.status_code == 200, r.text
    assert [p["title"] for p in r.json()["presets"]] == ["Quick look", "Balanced", "Best"]
    bad = client.get(
        "/api/configs/presets",
        params={"task": "classification", "dataset_id": dataset_id, "architecture": "x"},
    )
    assert bad.status_code == 422 and "tiny_cnn" in bad.json()["detail"]
    assert (
        other.get(
            "/api/configs/presets", params={"task": "classification", "dataset_id": dataset_id}
        ).status_code
        == 404
    )
