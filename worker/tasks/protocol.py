"""What a task is to the worker: a ``TaskRuntime``, in ``worker/tasks/<task>/``, listed in
``worker.tasks.RUNTIMES``. The one training recipe (``worker.training.recipe``) asks it for a ``Plan``
(data, model, loss or train step, metrics) and, once the loop has run, for what the task adds to the
model's record (worst images drawn, counts); everything else about a run (devices, seeds, ``load_from``,
optimizer and schedule, callbacks, resume, keeping the best weights, recording the model) is the
recipe's, the same for every task. The evaluate, predict, CAM and preview jobs and the inference lane
call the runtime's other methods; none of them names a task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from torch import nn

    from backend.jobs.kinds import AugmentPreviewConfig, PredictConfig
    from worker.cam import CamOutput
    from worker.context import JobContext
    from worker.engine.callbacks import Callback
    from worker.models import LoadedModel
    from worker.serving.answer import Picture
    from worker.training.recipe import DatasetInfo, Fitted


@dataclass
class Plan:
    """A run as its task sets it up, before the loop starts."""

    config: Any  # the run's config as recorded: with what was decided from the dataset filled in
    class_names: list[str]  # the model's outputs, in order
    data: Any  # .train, .val (datasets, val may be None), .train_loader, .val_loader
    model: nn.Module
    flops_size: int  # the square input side FLOPs are counted at
    loss: Any = None  # loss_fn(outputs, targets); None when ``train_step`` computes the loss
    train_step: Callable[..., torch.Tensor] | None = None  # see ``worker.engine.loop.Trainer``
    metrics: Any = None  # the validation metrics (reset / update / compute), when there is a val split
    infer: Callable[..., Any] | None = None  # the Evaluator's forward, when it is not ``model(images)``
    callbacks: list[Callback] = field(default_factory=list)  # the task's own (a loss-parts logger...)
    checkpoint_extra: Callable[[], dict[str, Any]] | None = None  # what the task keeps in each last.pt
    inference: dict[str, Any] | None = None  # what ``model.pt`` carries for inference (thresholds...)
    after_load_from: Callable[[], None] | None = None  # called once ``load_from``'s weights are in


@dataclass
class Finished:
    """What a task adds to a finished run's record."""

    summary: dict[str, Any] = field(default_factory=dict)  # into the model's metrics
    result: dict[str, Any] = field(default_factory=dict)  # into the job's result
    drawn: list[dict[str, Any]] = field(default_factory=list)  # rendered worst images to attach
    # The images behind the val split's figures (``backend.models.evaluation.Item``), kept with the model.
    items: list[Any] = field(default_factory=list)


class TaskRuntime(Protocol):
    """The worker's half of one task (or of tasks that share it: detection serves two)."""

    def plan(self, ctx: JobContext, config: Any, ds: DatasetInfo, device: torch.device) -> Plan:
        """Data, model, loss, metrics for ``config`` on the dataset version ``ds``; raises ``ValueError``
        naming the config field when the run cannot go ahead."""
        ...

    def finish(self, ctx: JobContext, plan: Plan, fitted: Fitted, device: torch.device) -> Finished:
        """After the loop: what the task adds to the model's record (the kept weights are in
        ``fitted.weights``, not yet in ``plan.model``)."""
        ...

    def evaluate(
        self, ctx: JobContext, loaded: LoadedModel, ds: DatasetInfo, split: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model measured on one split of a dataset version: its metrics, and what the evaluation
        report adds (images counted, skipped); under ``items``, if the task keeps them, the images behind
        its figures (``backend.models.evaluation.Item``), which the job stores instead of reporting."""
        ...

    def predict_split(self, ctx: JobContext, cfg: PredictConfig, loaded: LoadedModel) -> dict[str, Any]:
        """Every image of a split through the model, written as the job's artifacts; the job's result."""
        ...

    def answer(self, loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
        """The inference lane's answers: one JSON-able answer per picture, in order."""
        ...

    def explain(
        self,
        loaded: LoadedModel,
        image: Image.Image,
        target_class: str | None,
        target_layer: str | None,
        **detector: Any,
    ) -> CamOutput:
        """Grad-CAM of one picture; ``ValueError`` naming why when the task's models cannot be explained.
        A detector's also takes ``box`` (the detection to explain) and ``method`` (``gradcam`` or
        ``eigencam``); the API refuses them for other tasks (``TaskSpec.cam_methods``)."""
        ...

    def preview(self, ctx: JobContext, job: AugmentPreviewConfig, config: Any) -> dict[str, Any]:
        """The run's training transforms on a few of its images, drawn as the job's artifacts."""
        ...
