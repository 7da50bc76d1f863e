"""Batch predict jobs: every image of a dataset split, by the model's task (CSV, JSON or the task's own
format as artifacts). One uploaded picture is answered by the inference lane (``worker.serving``)."""

from __future__ import annotations

from typing import Any

from backend.jobs.kinds import PredictConfig
from worker.context import JobContext
from worker.jobs.common import warm_model
from worker.tasks import get_runtime


def run_predict(ctx: JobContext) -> dict[str, Any]:
    cfg = PredictConfig.model_validate(ctx.config)
    loaded = warm_model(ctx, cfg.model_id)
    return get_runtime(loaded.task).predict_split(ctx, cfg, loaded)
