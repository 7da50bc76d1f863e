"""The registry of task runtimes: for every task the studio trains, where its ``TaskRuntime``
(``worker.tasks.protocol``) lives. Imported when a job of the task first needs it, so a worker starts
without importing every task's libraries."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.tasks.protocol import TaskRuntime

RUNTIMES: dict[str, str] = {
    "classification": "worker.tasks.classification.runtime:RUNTIME",
    "semantic_segmentation": "worker.tasks.segmentation.runtime:RUNTIME",
    "object_detection": "worker.tasks.detection.runtime:RUNTIME",
    "instance_segmentation": "worker.tasks.detection.runtime:RUNTIME",
    "text_detection": "worker.tasks.text_detection.runtime:RUNTIME",
}


def get_runtime(task: str) -> TaskRuntime:
    """The runtime of ``task``; ``KeyError`` naming the known tasks otherwise."""
    target = RUNTIMES.get(task)
    if target is None:
        raise KeyError(f"this worker has no runtime for task {task!r}; known: {', '.join(RUNTIMES)}")
    module, _, name = target.partition(":")
    runtime: TaskRuntime = getattr(importlib.import_module(module), name)
    return runtime
