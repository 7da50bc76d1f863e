"""The config contract over HTTP: catalog, schema, YAML import/export, and every way a run config can be
wrong answered before anything is queued, naming the field."""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from backend.db.session import session_scope
from backend.db.tables import Dataset, Job, JobStatus, TrainedModel, utcnow
from backend.settings import get_settings
from backend.specs.catalog import CatalogEntry, list_models
from backend.specs.stats import CatalogStats, EntryStats, write_catalog_stats
from backend.tasks import TASKS
from tests.conftest import ROOT, Stack, WorkerProcess
from tests.helpers import sign_up, wait_for


def make_dataset(
    owner_id: int,
    *,
    classes: tuple[str, ...] = ("cat", "dog", "fox"),
    tasks: tuple[str, ...] = ("classification",),
    status: str = "ready",
    train: int = 6,
) -> int:
    """A dataset version row as an import leaves it (the checks read the row, not the files)."""
    splits = {"train": {"images": train}, "val": {"images": 2}, "test": {"images": 2}}
    with session_scope() as s:
        row = Dataset(
            owner_id=owner_id,
            name="pets",
            status=status,
            path="/nonexistent" if status == "ready" else None,
            classes=list(classes),
            tasks=list(tasks),
            stats={"images": train + 4, "splits": splits},
        )
        s.add(row)
        s.flush()
        return row.id


def make_model(
    owner_id: int,
    *,
    task: str = "classification",
    architecture: str = "resnet18",
    status: str = "ready",
    classes: tuple[str, ...] = ("cat", "dog", "fox"),
) -> int:
    with session_scope() as s:
        row = TrainedModel(
            owner_id=owner_id,
            name="m",
            task=task,
            architecture=architecture,
            class_names=list(classes),
            status=status,
            input_size=224,
        )
        s.add(row)
        s.flush()
        return row.id


def me(client: TestClient) -> int:
    return int(client.get("/api/auth/me").json()["id"])


def run_config(dataset_id: int, **sections: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "pets-r18",
        "model": {"architecture": "resnet18"},
        "data": {"dataset_id": dataset_id, "input_size": 64, "batch_size": 8},
        "schedule": {"epochs": 2, "lr": 0.01},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


# --- catalog and schema -----------------------------------------------------------------------------------


def _analysis_jobs() -> list[Job]:
    with session_scope() as s:
        return list(s.scalars(select(Job).where(Job.kind == "analyze_catalog")))


@pytest.mark.usefixtures("db_stack")
def test_catalog_lists_entries_per_task_and_counts_from_the_worker_cache(client: TestClient) -> None:
    sign_up(client)
    r = client.get("/api/catalog", params={"task": "classification"})
    assert r.status_code == 200, r.text
    body = r.json()
    names = [e["name"] for e in body["entries"]]
    assert names == [e.name for e in list_models() if e.task == "classification"] and "resnet18" in names
    r18 = next(e for e in body["entries"] if e["name"] == "resnet18")
    assert r18["task"] == "classification" and r18["source"] == "torchvision"
    assert r18["default_input_size"] == 224 and r18["min_input_size"] == 32 and r18["input_multiple"] == 1
    assert [o["name"] for o in r18["options"]] == ["dropout"]
    assert r18["params"] is None and r18["flops"] is None and body["stats_pending"] is True

    # One analysis of the task asked for is queued (cpu, internal), and no other while it is queued.
    jobs = _analysis_jobs()
    assert len(jobs) == 1 and jobs[0].queue == "light" and jobs[0].status == JobStatus.queued
    assert jobs[0].config == {"architectures": names}
    assert body["stats_job_id"] == jobs[0].id
    assert client.get("/api/catalog").json()["stats_job_id"] == jobs[0].id
    other = TestClient(client.app)
    sign_up(other)
    assert other.get("/api/catalog").json()["stats_job_id"] is None  # not theirs to see
    seg_body = client.get("/api/catalog", params={"task": "semantic_segmentation"}).json()
    seg = seg_body["entries"]
    assert {e["task"] for e in seg} == {"semantic_segmentation"} and "unet" in {e["name"] for e in seg}
    assert seg_body["stats_job_id"] == jobs[0].id and len(_analysis_jobs()) == 1
    # Once it has ended, another task's entries are counted at once; the same task's are not asked again.
    with session_scope() as s:
        s.execute(update(Job).values(status=JobStatus.succeeded, finished_at=utcnow()))
    assert client.get("/api/catalog", params={"task": "classification"}).json()["stats_job_id"] is None
    seg_job = client.get("/api/catalog", params={"task": "semantic_segmentation"}).json()["stats_job_id"]
    newest = max(_analysis_jobs(), key=lambda j: j.id)
    assert seg_job == newest.id and newest.config == {"architectures": [e["name"] for e in seg]}
    with session_scope() as s:
        s.execute(update(Job).values(status=JobStatus.succeeded, finished_at=utcnow()))
    bad = client.get("/api/catalog", params={"task": "poetry"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("task:")
    assert client.post("/api/jobs", json={"kind": "analyze_catalog", "config": {}}).status_code == 422

    # The worker fills the cache; an entry measured at another size does not count.
    stats = {
        e.name: EntryStats(input_size=e.default_input_size, params=1000 + i, flops=10**9 + i)
        for i, e in enumerate(list_models())
    }
    stats["resnet50"] = EntryStats(input_size=999, params=1, flops=1)
    write_catalog_stats(get_settings().data_dir, CatalogStats(entries=stats))
    with session_scope() as s:  # the analysis just ended: no new one for a while
        s.execute(update(Job).values(status=JobStatus.succeeded, finished_at=utcnow()))
    before = len(_analysis_jobs())
    body = client.get("/api/catalog", params={"task": "classification"}).json()
    by_name = {e["name"]: e for e in body["entries"]}
    assert by_name["resnet18"]["params"] == stats["resnet18"].params
    assert by_name["resnet18"]["flops"] == stats["resnet18"].flops
    assert by_name["resnet50"]["params"] is None and body["stats_pending"] is True
    assert len(_analysis_jobs()) == before

    # Long after, the missing entry is asked for alone.
    with session_scope() as s:
        s.execute(update(Job).values(finished_at=utcnow().replace(year=2000)))
    body = client.get("/api/catalog", params={"task": "classification"}).json()
    newest = max(_analysis_jobs(), key=lambda j: j.id)
    assert newest.config == {"architectures": ["resnet50"]} and body["stats_job_id"] == newest.id


@pytest.mark.usefixtures("db_stack")
def test_complete_cache_queues_nothing(client: TestClient) -> None:
    sign_up(client)
    stats = {e.name: EntryStats(input_size=e.default_input_size, params=5, flops=7) for e in list_models()}
    write_catalog_stats(get_settings().data_dir, CatalogStats(entries=stats))
    body = client.get("/api/catalog").json()
    assert body["stats_pending"] is False and body["stats_job_id"] is None
    assert all(e["params"] == 5 and e["flops"] == 7 for e in body["entries"])
    assert _analysis_jobs() == []


@pytest.mark.usefixtures("db_stack")
def test_train_config_schema_drives_the_form(client: TestClient) -> None:
    schema = client.get("/api/schema/train-config").json()
    assert set(schema["properties"]) >= {"task", "model", "data", "loss", "schedule", "runtime"}
    assert schema["required"] == ["data"]
    data = schema["$defs"]["DataSpec"]["properties"]
    assert data["input_size"]["minimum"] == 16 and data["input_size"]["default"] == 224
    assert "num_classes" not in str(schema) and "class_names" not in str(schema)


# --- YAML -------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_yaml_round_trip_and_validation(client: TestClient) -> None:
    sign_up(client)
    ds = make_dataset(me(client))
    r = client.post("/api/configs/yaml", json=run_config(ds), params={"filename": "run.yaml"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/yaml")
    assert r.headers["content-disposition"] == 'attachment; filename="run.yaml"'
    text = r.text
    parsed = yaml.safe_load(text)
    assert parsed["data"]["dataset_id"] == ds and parsed["schedule"]["optimizer"] == "adamw"  # defaults in

    back = client.post("/api/configs/validate", json={"yaml": text})
    assert back.status_code == 200, back.text
    assert back.json()["config"] == parsed and back.json()["yaml"] == text
    direct = client.post("/api/configs/validate", json=run_config(ds))
    assert direct.json() == back.json()

    edited = text.replace("lr: 0.01", "lr: 0.05")
    assert (
        client.post("/api/configs/validate", json={"yaml": edited}).json()["config"]["schedule"]["lr"] == 0.05
    )


@pytest.mark.usefixtures("db_stack")
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("data: {dataset_id: [1,", "line"),
        ("- 1\n- 2\n", "mapping"),
        ("base: &b {lr: 1}\nschedule: *b\n", "aliases"),
    ],
)
def test_bad_yaml_is_422_naming_yaml(client: TestClient, text: str, needle: str) -> None:
    sign_up(client)
    r = client.post("/api/configs/validate", json={"yaml": text})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("yaml:") and needle in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["body", "yaml"]


@pytest.mark.usefixtures("db_stack")
def test_yaml_export_checks_the_schema(client: TestClient) -> None:
    sign_up(client)
    r = client.post("/api/configs/yaml", json={"data": {"dataset_id": 1, "input_size": 8}})
    assert r.status_code == 422 and r.json()["detail"].startswith("config.data.input_size:")


# --- run configs checked before they are queued -------------------------------------------------------------


@pytest.mark.usefixtures("db_stack")
def test_valid_train_job_is_queued_on_the_gpu_queue_with_defaults(client: TestClient) -> None:
    sign_up(client)
    ds = make_dataset(me(client))
    r = client.post("/api/jobs", json={"kind": "train", "config": run_config(ds)})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["queue"] == "training" and job["status"] == "queued"
    assert job["config"]["data"]["dataset_id"] == ds  # the dataset version the run records
    assert job["config"]["loss"]["name"] == "cross_entropy" and job["config"]["version"] == 1
    kinds = {k["name"] for k in client.get("/api/jobs/kinds").json()}
    assert {"train", "evaluate", "predict", "cam"} <= kinds
    assert not kinds & {"export", "analyze_catalog", "import_model", "predict_image", "cam_image"}


SEGMENTATION_ENTRY = CatalogEntry(
    name="unet_r18",
    task="semantic_segmentation",  # type: ignore[arg-type]
    family="UNet",
    source="segmentation_models_pytorch",
    builder="smp.Unet",
    default_input_size=256,
)


def _case_foreign_dataset(client: TestClient, ds: int) -> dict[str, Any]:
    other = TestClient(client.app)
    sign_up(other)
    return run_config(make_dataset(me(other)))


Case = Callable[[TestClient, int], dict[str, Any]]
CASES: list[tuple[str, Case, int, str]] = [
    ("missing dataset", lambda c, ds: {"model": {"architecture": "resnet18"}}, 422, "config.data:"),
    (
        "missing dataset id",
        lambda c, ds: run_config(ds) | {"data": {"input_size": 64}},
        422,
        "config.data.dataset_id:",
    ),
    (
        "no such dataset",
        lambda c, ds: run_config(424242),
        404,
        "config.data.dataset_id: dataset 424242 not found",
    ),
    ("foreign dataset", _case_foreign_dataset, 404, "config.data.dataset_id: dataset"),
    (
        "dataset not ready",
        lambda c, ds: run_config(make_dataset(me(c), status="importing")),
        422,
        "config.data.dataset_id:",
    ),
    (
        "dataset of another task",
        lambda c, ds: run_config(make_dataset(me(c), tasks=("object_detection",))),
        422,
        "config.task:",
    ),
    (
        "empty train split",
        lambda c, ds: run_config(make_dataset(me(c), train=0)),
        422,
        "config.data.dataset_id:",
    ),
    (
        "architecture unknown",
        lambda c, ds: run_config(ds, model={"architecture": "resnet9000"}),
        422,
        "config.model.architecture:",
    ),
    (
        "architecture of another task",
        lambda c, ds: run_config(ds, model={"architecture": "unet_r18"}),
        422,
        "config.model.architecture:",
    ),
    (
        "unknown option",
        lambda c, ds: run_config(ds, model={"architecture": "resnet18", "options": {"depth": 3}}),
        422,
        "config.model.options.depth:",
    ),
    (
        "option out of range",
        lambda c, ds: run_config(ds, model={"options": {"dropout": 2}}),
        422,
        "config.model.options.dropout:",
    ),
    (
        "input size below minimum",
        lambda c, ds: run_config(ds, model={"architecture": "vit_b_16"}, data={"input_size": 128}),
        422,
        "config.data.input_size:",
    ),
    (
        "input size not a multiple",
        lambda c, ds: run_config(ds, model={"architecture": "swin_t"}, data={"input_size": 240}),
        422,
        "config.data.input_size:",
    ),
    (
        "input size below the schema's floor",
        lambda c, ds: run_config(ds, data={"input_size": 8}),
        422,
        "config.data.input_size:",
    ),
    (
        "class_weights wrong length",
        lambda c, ds: run_config(ds, loss={"class_weights": [1.0, 2.0]}),
        422,
        "config.loss.class_weights:",
    ),
    (
        "load_from foreign model",
        lambda c, ds: run_config(ds, model={"load_from": {"model_id": _foreign_model(c)}}),
        404,
        "config.model.load_from.model_id:",
    ),
    (
        "load_from model of another task",
        lambda c, ds: run_config(
            ds, model={"load_from": {"model_id": make_model(me(c), task="object_detection")}}
        ),
        422,
        "config.model.load_from.model_id:",
    ),
    (
        "load_from model not ready",
        lambda c, ds: run_config(
            ds, model={"load_from": {"model_id": make_model(me(c), status="importing")}}
        ),
        422,
        "config.model.load_from.model_id:",
    ),
    (
        "load_from other architecture",
        lambda c, ds: run_config(
            ds, model={"load_from": {"model_id": make_model(me(c), architecture="resnet50")}}
        ),
        422,
        "config.model.load_from.model_id:",
    ),
    (
        "num_classes in the config",
        lambda c, ds: run_config(ds, data={"num_classes": 3}),
        422,
        "config.data.num_classes:",
    ),
    ("unknown field", lambda c, ds: run_config(ds) | {"optimiser": "sgd"}, 422, "config.optimiser:"),
    (
        "pretrained without weights",
        lambda c, ds: run_config(ds, model={"architecture": "tiny_cnn", "pretrained": True}),
        422,
        "config.model.pretrained:",
    ),
    ("out-of-range lr", lambda c, ds: run_config(ds, schedule={"lr": 0}), 422, "config.schedule.lr:"),
    (
        "epochs and iterations",
        lambda c, ds: run_config(ds, schedule={"iterations": 100}),
        422,
        "config.schedule:",
    ),
]


def _foreign_model(client: TestClient) -> int:
    other = TestClient(client.app)
    sign_up(other)
    return make_model(me(other))


@pytest.mark.usefixtures("db_stack")
@pytest.mark.parametrize(("case", "status", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_run_config_names_its_field_and_queues_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, case: Case, status: int, detail: str
) -> None:
    seg = TASKS["semantic_segmentation"]
    monkeypatch.setitem(TASKS, seg.name, dataclasses.replace(seg, entries=(*seg.entries, SEGMENTATION_ENTRY)))
    sign_up(client)
    ds = make_dataset(me(client))
    config = case(client, ds)
    for r in (
        client.post("/api/jobs", json={"kind": "train", "config": copy.deepcopy(config)}),
        client.post("/api/configs/validate", json=copy.deepcopy(config)),
    ):
        assert r.status_code == status, r.text
        assert r.json()["detail"].startswith(detail), r.json()
        field = detail.split(":")[0].split(".")
        assert r.json()["errors"][0]["loc"][: len(field) + 1] == ["body", *field]
    assert client.get("/api/jobs").json() == []
    with session_scope() as s:
        assert s.scalars(select(Job).where(Job.kind == "train")).all() == []


@pytest.mark.usefixtures("db_stack")
def test_foreign_and_missing_dataset_read_the_same(client: TestClient) -> None:
    sign_up(client)
    other = TestClient(client.app)
    sign_up(other)
    foreign = make_dataset(me(other))
    missing = foreign + 1000
    a = client.post("/api/jobs", json={"kind": "train", "config": run_config(foreign)}).json()
    b = client.post("/api/jobs", json={"kind": "train", "config": run_config(missing)}).json()
    assert a["detail"].replace(str(foreign), "N") == b["detail"].replace(str(missing), "N")
    assert a["code"] == b["code"] == "not_found"


@pytest.mark.usefixtures("db_stack")
def test_config_with_class_names_matching_the_dataset_is_accepted(client: TestClient) -> None:
    sign_up(client)
    ds = make_dataset(me(client), classes=("a", "b"))
    start = make_model(me(client), classes=("x", "y", "z"))  # a different head is fine to start from
    config = run_config(ds, loss={"class_weights": [1.0, 3.0]}, model={"load_from": {"model_id": start}})
    r = client.post("/api/configs/validate", json=config)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["loss"]["class_weights"] == [1.0, 3.0]


@pytest.mark.skipif(
    '"analyze_catalog"' not in (ROOT / "worker" / "jobs" / "__init__.py").read_text(),
    reason="the worker has no analyze_catalog handler yet",
)
def test_worker_fills_the_catalog_counts(
    sqlite_stack: Stack, client: TestClient, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(sqlite_stack, "light")
    sign_up(client)
    job_id = client.get("/api/catalog").json()["stats_job_id"]
    job = wait_for(
        lambda: (j := client.get(f"/api/jobs/{job_id}").json())["status"] in ("succeeded", "failed") and j,
        300,
        what="the catalog analysis",
    )
    assert job["status"] == "succeeded", job
    body = client.get("/api/catalog").json()
    r18 = next(e for e in body["entries"] if e["name"] == "resnet18")
    assert r18["params"] == 11_689_512  # torchvision's published count, 1000-class head
    assert r18["flops"] is not None and 3.0e9 < r18["flops"] < 4.0e9  # 1.8 GMACs at 224


def test_studio_train_hands_the_config_to_the_worker_trainer(tmp_path: Path) -> None:
    from backend.cli import _train_argv

    config = tmp_path / "run.yaml"
    assert _train_argv(config, "me@example.com") == [
        sys.executable,
        "-m",
        "worker.train_cli",
        str(config),
        "--user",
        "me@example.com",
    ]
    missing = subprocess.run(
        [sys.executable, "-m", "backend.cli", "train", str(config), "--user", "me@example.com"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "STUDIO_DATA_DIR": str(tmp_path / "data")},
    )
    assert missing.returncode == 2 and "run.yaml" in missing.stderr


def test_tasks_are_listed_from_the_registry(client: TestClient) -> None:
    got = client.get("/api/tasks").json()
    assert [t["name"] for t in got] == list(TASKS)
    by_name = {t["name"]: t for t in got}
    assert (
        by_name["semantic_segmentation"]["headline"] == "mIoU"
        and by_name["semantic_segmentation"]["background"]
    )
    # Every task's models are explained; a detector's maps are of one box or of the whole picture.
    assert all(t["explain"] is None for t in got)
    assert by_name["object_detection"]["cam_methods"] == ["gradcam", "eigencam"]
    assert by_name["classification"]["cam_methods"] == [] and by_name["classification"]["explain_views"]
    for task in got:
        assert task["headline"] in task["metrics"] and task["title"] and task["description"], task
