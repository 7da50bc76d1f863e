"""What a task is to the backend: one ``TaskSpec`` per task, declared in ``backend/tasks/<task>.py`` and
listed in ``backend.tasks.TASKS``. The config union, the catalog, the pre-queue checks and the model's
page read it; nothing else in the backend names a task.

The worker's half of a task (data, model builders, loss, metrics, inference) is ``worker/tasks/<task>/``,
behind the protocol in ``worker/tasks/protocol.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from backend.datasets.canonical import Task
from backend.datasets.export import ExportFormat

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from backend.db.tables import User


class OptionSpec(BaseModel):
    """One option of an architecture, as a JSON-Schema-like description the form renders."""

    name: str
    type: Literal["int", "float", "bool", "choice"]
    default: Any
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


class CatalogEntry(BaseModel):
    name: str = Field(description="Stable id used in TrainConfig.model.architecture, e.g. 'resnet18'")
    task: Task
    family: str = Field(description="Display group, e.g. 'ResNet'")
    source: Literal["torchvision", "timm", "segmentation_models_pytorch", "transformers", "studio"]
    builder: str = Field(description="What the worker calls, e.g. 'torchvision.models.resnet18'")
    default_input_size: int
    min_input_size: int = 32
    input_multiple: int = 1
    pretrained_weights: str | None = Field(
        default=None,
        description="torchvision weights enum, if any (a detector's: its backbone's ImageNet weights)",
    )
    options: list[OptionSpec] = Field(default_factory=list)
    description: str = ""
    cam_layer: str | None = Field(default=None, description="Default Grad-CAM target layer (module path)")
    light: bool = Field(default=False, description="Small enough to train on a CPU in minutes")
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="Builder arguments this entry fixes (not options), e.g. depth"
    )


Check = Callable[["Session", "User", Any], None]


@dataclass(frozen=True)
class Recipe:
    """How a task sizes a run of one of its entries on a machine: the values a config gets for the fields
    it does not give (``backend.specs.recipes``), the presets, and the entry picked first on the form."""

    batch_size: int = 8  # on a GPU
    cpu_batch_size: int = 8  # on a CPU
    epochs: int = 10
    size_path: str | None = "data.input_size"  # the square input side, if the config has one
    cpu_input_size: int | None = 64  # a light entry's side on a CPU (clamped to what the entry takes)
    lr: float | None = None  # None: the schedule section's own default
    cpu_pick: str = ""  # the entry the form preselects on a CPU-only machine
    gpu_pick: str = ""  # ... and where the training lane has a GPU


@dataclass(frozen=True)
class TaskSpec:
    """One task, as the API, the form and the model's page see it."""

    name: str  # the config's ``task`` and the model row's, e.g. "object_detection"
    title: str  # in words, for people: "Object detection"
    description: str  # what a model of this task answers and how its figures read (the model's page)
    config: type[BaseModel]  # the run config of this task; its ``task`` field is a Literal of ``name``
    metrics: tuple[str, ...]  # what runtime.best_metric may name (higher is better)
    headline: str  # the figure a model of this task is judged by first
    summary: tuple[str, ...]  # the model page's headline figures, in order
    columns: tuple[str, ...]  # the model page's per-class table, in order
    entries: tuple[CatalogEntry, ...]  # the architectures that train for it
    check: Check  # everything about a run the schema cannot know, before it is queued (422 naming the field)
    explain: str | None = None  # None: Grad-CAM explains its models; else why it cannot
    # A detector's maps: Grad-CAM of one box's score, or EigenCAM of the picture (they take a box and a
    # method); empty: the task's Grad-CAM takes neither.
    cam_methods: tuple[str, ...] = ()
    truth_overlay: Literal["artifact", "dataset"] = "artifact"  # worst images: who draws the ground truth
    background: bool = False  # the model's classes start with _background_, which a dataset does not list
    # What the network returns: one tensor (logits, masks, maps) or detections (boxes after non-maximum
    # suppression, whose forward looks at values: exported and counted differently).
    model_outputs: Literal["tensor", "detections"] = "tensor"
    stats_classes: int = 1000  # the head the catalog's parameters and FLOPs are counted with
    drawn: str = "Prediction drawn"  # what the picture with a model's answer painted on shows, in words
    recipe: Recipe = Recipe()  # defaults from the entry and the machine, presets, the preselected entry
    # The fields the run form shows first (dotted paths), beside the dataset, the task and the model.
    simple_fields: tuple[str, ...] = (
        "schedule.epochs",
        "data.input_size",
        "data.batch_size",
        "model.pretrained",
    )
    # The download layouts only this task's datasets take (VOC and COCO take any): ImageNet folders,
    # ICDAR 2015 files. ``backend.tasks.EXPORTS`` lists them all.
    exports: tuple[ExportFormat, ...] = ()
    # What ``GET /api/models/{id}/evaluation/images`` lists for this task (names of
    # ``backend.models.evaluation.View``): a matrix cell's images, a class's errors, the highest losses.
    explain_views: tuple[str, ...] = ()
