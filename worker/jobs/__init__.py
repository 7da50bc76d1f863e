"""Job handlers by kind. Each takes a JobContext and returns the job's result (a JSON-able dict).

Handlers are imported when a job of their kind first runs, so a worker starts (and consumes its first
canary) in a moment instead of waiting for torch to import."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from worker.context import JobContext

Handler = Callable[[JobContext], dict[str, Any] | None]

HANDLERS: dict[str, str] = {
    "probe": "worker.jobs.probe:run_probe",
    "import_dataset": "worker.jobs.dataset_import:run_import_dataset",
    "train": "worker.jobs.train:run_train",
    "evaluate": "worker.jobs.evaluate:run_evaluate",
    "predict": "worker.jobs.predict:run_predict",
    "cam": "worker.jobs.cam:run_cam",
    "export": "worker.jobs.export:run_export",
    "export_dataset": "worker.jobs.export_dataset:run_export_dataset",
    "analyze_catalog": "worker.jobs.analyze_catalog:run_analyze_catalog",
    "import_model": "worker.jobs.import_model:run_import_model",
    "augment_preview": "worker.jobs.augment_preview:run_augment_preview",
    "estimate_run": "worker.jobs.estimate:run_estimate",
}


def get_handler(kind: str) -> Handler | None:
    """The handler for ``kind``, imported on first use; ``None`` for a kind this worker does not run."""
    target = HANDLERS.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler
