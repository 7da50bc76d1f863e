"""The sections every task's run config shares: the model it builds, the schedule, the runtime. Each
task's config (``backend/tasks/<task>.py``) adds its own data, loss and evaluation sections."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_VERSION: Literal[1] = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadFrom(Strict):
    """Start from weights: a model the studio trained or a checkpoint uploaded with POST /api/models."""

    model_id: int = Field(description="Id of a model in /api/models")


class ModelSpec(Strict):
    architecture: str = Field(default="resnet18", description="A name from GET /api/catalog")
    options: dict[str, Any] = Field(default_factory=dict, description="Architecture options from the catalog")
    pretrained: bool = Field(default=False, description="torchvision's ImageNet weights, if cached locally")
    load_from: LoadFrom | None = None


class ScheduleSpec(Strict):
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(default=1e-3, gt=0, le=10)
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD only")
    policy: Literal["constant", "step", "cosine", "poly", "one_cycle"] = "cosine"
    step_size: int = Field(default=30, ge=1, description="step: epochs between decays")
    gamma: float = Field(default=0.1, gt=0, le=1, description="step: decay factor")
    power: float = Field(default=0.9, gt=0, le=10, description="poly: exponent")
    warmup_iters: int = Field(default=0, ge=0, description="Linear warm-up, in iterations")
    warmup_ratio: float = Field(default=0.1, gt=0, le=1, description="Warm-up starts at lr * this")
    epochs: int | None = Field(default=10, ge=1, le=100_000)
    iterations: int | None = Field(default=None, ge=1, le=100_000_000, description="Instead of epochs")
    grad_clip: float | None = Field(default=None, gt=0, description="Max gradient norm")
    accumulate: int = Field(default=1, ge=1, le=1024, description="Batches per optimizer step")

    @model_validator(mode="after")
    def _one_length(self) -> ScheduleSpec:
        if (self.epochs is None) == (self.iterations is None):
            raise ValueError("give epochs or iterations, not both and not neither")
        return self


class RuntimeSpec(Strict):
    eval_interval: int = Field(default=1, ge=1, description="Evaluate every N epochs")
    checkpoint_interval: int = Field(default=1, ge=1, description="Checkpoint every N epochs")
    log_interval: int = Field(default=10, ge=1, description="Log metrics every N iterations")
    best_metric: str = Field(
        default="accuracy/top1", description="Kept as the best checkpoint, higher is better"
    )
    seed: int = Field(default=0, ge=0)
    deterministic: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: bool = Field(default=False, description="bf16/fp16 autocast on CUDA")
    channels_last: bool = False


class TaskConfig(Protocol):
    """What every task's config has (``backend/tasks/<task>.py`` declares each one whole, its own ``data``
    section and the rest, so that its JSON Schema lists the fields in the order the form shows them)."""

    @property
    def version(self) -> int: ...
    @property
    def task(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def model(self) -> ModelSpec: ...
    @property
    def schedule(self) -> ScheduleSpec: ...
    @property
    def runtime(self) -> RuntimeSpec: ...

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]: ...
