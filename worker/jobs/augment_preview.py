"""The augmentation preview: a run config's training transforms applied to a few of its images, drawn by
the run's task."""

from __future__ import annotations

from typing import Any

from backend.jobs.kinds import AugmentPreviewConfig
from backend.specs.config import parse_train_config
from worker.context import JobContext
from worker.tasks import get_runtime


def run_augment_preview(ctx: JobContext) -> dict[str, Any]:
    job = AugmentPreviewConfig.model_validate(ctx.config)
    config = parse_train_config(job.config)
    return get_runtime(config.task).preview(ctx, job, config)
