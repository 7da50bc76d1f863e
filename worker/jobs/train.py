"""The train job: a run config in, a ready model out, through the one recipe (``worker.training``)."""

from __future__ import annotations

from worker.training.recipe import run_train

__all__ = ["run_train"]
