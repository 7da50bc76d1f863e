"""The registry of tasks: every task the studio trains, by name, each one ``TaskSpec``
(``backend/specs/taskspec.py``). Adding a task is a module here and a line below."""

from __future__ import annotations

from backend.datasets.export import GENERIC_EXPORTS, ExportFormat
from backend.specs.taskspec import CatalogEntry, OptionSpec, TaskSpec
from backend.tasks import classification, detection, segmentation, text_detection

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        classification.SPEC,
        segmentation.SPEC,
        detection.OBJECT_DETECTION,
        detection.INSTANCE_SEGMENTATION,
        text_detection.SPEC,
    )
}

# Every layout a dataset downloads in: VOC and COCO, then each task's own, in the order of TASKS.
EXPORTS: dict[str, ExportFormat] = {
    fmt.name: fmt for fmt in (*GENERIC_EXPORTS, *(f for spec in TASKS.values() for f in spec.exports))
}

__all__ = [
    "EXPORTS",
    "TASKS",
    "CatalogEntry",
    "ExportFormat",
    "OptionSpec",
    "TaskSpec",
    "get_export_format",
    "get_task",
    "list_tasks",
]


def get_task(name: str) -> TaskSpec:
    """The task named ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


def list_tasks() -> list[TaskSpec]:
    return list(TASKS.values())


def get_export_format(name: str) -> ExportFormat:
    """The download layout named ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return EXPORTS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not one of {', '.join(EXPORTS)}") from None
