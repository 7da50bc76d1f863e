"""Every task in the registry keeps the same contract, through the real jobs on tiny data: it trains two
iterations, is recorded with its headline metric, resumes from a checkpoint, evaluates, predicts a split,
has its iterations timed for the run form's estimate, answers a picture on the inference lane, and
exports (or refuses, saying why)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backend.db.session import session_scope
from backend.db.tables import User
from backend.jobs.service import create_job
from backend.settings import get_settings
from backend.tasks import TASKS
from tests.conftest import Stack
from tests.helpers import job_row, land_folder, make_user, run_to_end, serve
from tests.worker.detection_data import import_detection_dataset
from tests.worker.test_detection_train import det_config
from tests.worker.test_segmentation_train import import_labelme_shapes, seg_config
from tests.worker.test_train_classification import import_shapes, train_config
from tests.worker.text_synth import write_icdar_project
from worker.runner import run_job


@dataclass(frozen=True)
class Case:
    """A task's tiny dataset (imported the way an upload lands) and a run config for it."""

    dataset: Callable[[int, Path], int]
    config: Callable[[int], dict[str, Any]]


CASES: dict[str, Case] = {
    "classification": Case(lambda owner, tmp: import_shapes(owner, tmp, per_class=6), train_config),
    "semantic_segmentation": Case(
        lambda owner, tmp: import_labelme_shapes(owner, tmp, n_images=8),
        lambda ds: seg_config(ds, data={"batch_size": 4}),
    ),
    "object_detection": Case(
        lambda owner, tmp: import_detection_dataset(owner, tmp, n_images=10, negatives=1),
        lambda ds: det_config(ds, data={"batch_size": 4}),
    ),
    "instance_segmentation": Case(
        lambda owner, tmp: import_detection_dataset(owner, tmp, n_images=10, negatives=1),
        lambda ds: det_config(ds, "instance_segmentation", data={"batch_size": 4}),
    ),
    "text_detection": Case(
        lambda owner, tmp: _icdar(owner, tmp),
        lambda ds: {
            "task": "text_detection",
            "model": {"architecture": "dbnet_resnet18", "options": {"neck_channels": 32}},
            "data": {"dataset_id": ds, "input_size": 128, "batch_size": 4, "workers": 0},
            "schedule": {"optimizer": "adamw", "lr": 1e-3, "epochs": 1},
            "runtime": {"seed": 0},
        },
    ),
}


def _icdar(owner: int, tmp: Path) -> int:
    """Words drawn with Pillow (some rotated, some don't-care), imported as an ICDAR 2015 upload."""
    write_icdar_project(tmp / "icdar", 8, seed=0, size=(128, 96))
    return land_folder(owner, tmp / "icdar", "words", "icdar", train=0.7, val=0.3)


def _short(config: dict[str, Any], iterations: int) -> dict[str, Any]:
    schedule = {**config["schedule"], "iterations": iterations, "epochs": None, "warmup_iters": 0}
    runtime = {**config["runtime"], "eval_interval": 1, "checkpoint_interval": 1, "log_interval": 1}
    return {**config, "schedule": schedule, "runtime": runtime}


def test_every_task_has_a_contract_case() -> None:
    assert set(CASES) == set(TASKS)


def _queue(owner_id: int, kind: str, config: dict[str, Any]) -> int:
    with session_scope() as s:
        owner = s.get(User, owner_id)
        assert owner is not None
        return int(create_job(s, owner, kind, config).id)


@pytest.mark.parametrize("task", list(TASKS))
def test_task_trains_resumes_evaluates_predicts_answers_and_exports(
    task: str, sqlite_stack: Stack, tmp_path: Path
) -> None:
    spec, case = TASKS[task], CASES[task]
    owner = make_user(f"{task}@example.com")
    dataset_id = case.dataset(owner, tmp_path)
    config = {**case.config(dataset_id), "task": task}

    trained = run_to_end(owner, "train", _short(config, 2))
    first = trained["result"]
    assert first["iterations"] == 2 and first["model_id"], first
    assert spec.headline in first["final"], first["final"]

    # Resume: a later job that finds the first one's checkpoint in its folder continues from it.
    later = _queue(owner, "train", _short(config, 3))
    first_work = get_settings().data_dir / "jobs" / str(trained["id"])
    shutil.copyfile(first_work / "last.pt", _work_dir(later) / "last.pt")
    assert run_job(later, "test-worker@local") == "succeeded", job_row(later)["error"]
    resumed = job_row(later)["result"]
    assert resumed["resumed_from_epoch"] is not None and resumed["iterations"] == 3, resumed
    model_id = int(resumed["model_id"])

    evaluated = run_to_end(
        owner, "evaluate", {"model_id": model_id, "dataset_id": dataset_id, "split": "val"}
    )
    assert spec.headline in evaluated["result"]["metrics"], evaluated["result"]["metrics"].keys()

    _every_view_reads(model_id, [int(later), int(evaluated["id"])])

    predicted = run_to_end(owner, "predict", {"model_id": model_id, "dataset_id": dataset_id, "split": "val"})
    assert predicted["result"]["artifact_ids"], predicted["result"]

    # The run form's estimate: the task's own first iterations timed, and one evaluation batch.
    with session_scope() as s:
        owner_row = s.get(User, owner)
        assert owner_row is not None
        estimate_config = {"config": _short(config, 2), "key": "0" * 64, "iterations": 2}
        estimate = int(create_job(s, owner_row, "estimate_run", estimate_config, internal=True).id)
    assert run_job(estimate, "test-worker@local") == "succeeded", job_row(estimate)["error"]
    measured = job_row(estimate)["result"]
    assert measured["seconds_per_iteration"] > 0 and measured["timed_iterations"] >= 1, measured
    assert measured["iterations_per_epoch"] >= 1 and measured["eval_seconds"] is not None, measured

    name = f"images/{uuid.uuid4().hex}.png"
    picture = get_settings().data_dir / "requests" / name
    picture.parent.mkdir(parents=True, exist_ok=True)
    _any_image(dataset_id, picture)
    answer = serve(model_id, name)
    assert "top_k" in answer, answer

    with session_scope() as s:
        owner_row = s.get(User, owner)
        assert owner_row is not None
        export = int(
            create_job(s, owner_row, "export", {"model_id": model_id, "format": "onnx"}, internal=True).id
        )
    outcome = run_job(export, "test-worker@local")
    row = job_row(export)
    assert outcome == "succeeded" or (outcome == "failed" and row["error"]), row
    if outcome == "succeeded":
        assert row["result"]["max_abs_diff"] is not None, row["result"]


def _every_view_reads(model_id: int, jobs: list[int]) -> None:
    """Each list of images the task's figures open (``TaskSpec.explain_views``) reads from the training
    run's evaluation and the evaluate job's: both kept the images behind their figures."""
    from backend.db.tables import TrainedModel
    from backend.models.evaluation import View, evaluations, list_images

    with session_scope() as s:
        model = s.get(TrainedModel, model_id)
        assert model is not None
        spec = TASKS[model.task]
        assert spec.explain_views, f"{model.task}: its figures open no images (TaskSpec.explain_views)"
        assert sorted(evaluations(s, model)) == sorted(jobs)
        first = model.class_names[-1]
        for job in jobs:
            for name in spec.explain_views:
                page = list_images(
                    s, model, View(name), true=first, predicted=first, class_name=first, evaluation=job
                )
                assert page.evaluation == job and page.total >= len(page.images), (name, page)


def _work_dir(job_id: int) -> Path:
    folder = get_settings().data_dir / "jobs" / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _any_image(dataset_id: int, target: Path) -> None:
    from backend.datasets.service import load_canonical
    from backend.db.tables import Dataset

    with session_scope() as s:
        row = s.get(Dataset, dataset_id)
        assert row is not None and row.path
        canonical = load_canonical(row)
        folder = Path(row.path)
    record = next(im for im in canonical.images if im.split == "val")
    target.write_bytes((folder / record.file_name).read_bytes())
