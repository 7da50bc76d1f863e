"""Job handlers by kind. Each takes a JobContext and returns the job's result (a JSON-able dict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.context import JobContext
from worker.jobs.dataset_import import run_import_dataset
from worker.jobs.probe import run_probe

Handler = Callable[[JobContext], dict[str, Any] | None]

HANDLERS: dict[str, Handler] = {
    "probe": run_probe,
    "import_dataset": run_import_dataset,
}
