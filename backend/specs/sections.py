"""The sections every task's run config shares: the model it builds, the schedule, the runtime. Each
task's config (``backend/tasks/<task>.py``) adds its own data, loss and evaluation sections."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

CONFIG_VERSION: Literal[1] = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Fields every task's config has in the same words (its data section's loader and normalisation, a step's
# probability); each a fresh ``Field`` so a model's schema is the same as if it were written out there.


def probability(default: float = 0.5) -> Any:
    """An augmentation step's probability."""
    return Field(default=default, ge=0, le=1, title="Probability", description="How often the step applies")


def batch_size_field(default: int, maximum: int) -> Any:
    return Field(
        default=default,
        ge=1,
        le=maximum,
        title="Batch size",
        description="Pictures per iteration (default: from the model's catalog entry)",
    )


def loader_workers_field() -> Any:
    return Field(default=2, ge=0, le=64, title="Loader processes", description="Data loader processes")


def normalize_mean_field() -> Any:
    return Field(
        default=(0.485, 0.456, 0.406),
        title="Normalisation mean",
        description="Per channel (RGB); ImageNet's by default",
    )


def normalize_std_field() -> Any:
    return Field(
        default=(0.229, 0.224, 0.225),
        title="Normalisation std",
        description="Per channel (RGB); ImageNet's by default",
    )


def step_models(union: Any) -> dict[str, type[BaseModel]]:
    """An augmentation step union's members by step name (``Annotated[A | B, Field(discriminator)]``)."""
    members = get_args(get_args(union)[0])
    return {get_args(m.model_fields["name"].annotation)[0]: m for m in members}


def step_factory(union: Any) -> Callable[..., Any]:
    """``make(name, **fields)``: the union's step of that name (a step by its name, in tests and scripts)."""
    adapter: TypeAdapter[Any] = TypeAdapter(union)

    def make(name: str, **fields: Any) -> Any:
        return adapter.validate_python({"name": name, **fields})

    return make


def legacy_steps(union: Any, shared: Iterable[str]) -> Callable[[Any], Any]:
    """A before-validator for a list of steps: drops from each step the ``shared`` fields it does not take.
    Configs written when every step carried every step's fields (one model for all) still parse; a field
    no step ever had is still refused."""
    by_name, legacy = step_models(union), frozenset(shared)

    def prune(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for step in value:
            model = by_name.get(str(step.get("name"))) if isinstance(step, dict) else None
            if model is not None:
                step = {k: v for k, v in step.items() if k in model.model_fields or k not in legacy}
            out.append(step)
        return out

    return prune


class LoadFrom(Strict):
    """Start from weights: a model the studio trained or a checkpoint uploaded with POST /api/models."""

    model_id: int = Field(title="Model", description="Id of a model in /api/models")


class ModelSpec(Strict):
    architecture: str = Field(
        default="resnet18", title="Architecture", description="A name from GET /api/catalog"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        title="Architecture options",
        description="Architecture options from the catalog",
    )
    pretrained: bool = Field(
        default=False,
        title="Start from ImageNet weights",
        description="torchvision's ImageNet weights, downloaded once into the torch hub cache (from the "
        "cache only with STUDIO_OFFLINE); on by default where the model has them",
    )
    load_from: LoadFrom | None = Field(default=None, title="Start from a studio model")


class ScheduleSpec(Strict):
    optimizer: Literal["sgd", "adam", "adamw"] = Field(default="adamw", title="Optimizer")
    lr: float = Field(default=1e-3, gt=0, le=10, title="Learning rate")
    weight_decay: float = Field(default=1e-4, ge=0, le=1, title="Weight decay")
    momentum: float = Field(default=0.9, ge=0, lt=1, title="Momentum", description="SGD only")
    policy: Literal["constant", "step", "cosine", "poly", "one_cycle"] = Field(
        default="cosine", title="Learning-rate policy"
    )
    step_size: int = Field(
        default=30, ge=1, title="Decay every", description="step policy", json_schema_extra={"unit": "epochs"}
    )
    gamma: float = Field(default=0.1, gt=0, le=1, title="Decay factor", description="step policy")
    power: float = Field(default=0.9, gt=0, le=10, title="Exponent", description="poly policy")
    warmup_iters: int = Field(
        default=0,
        ge=0,
        title="Warm-up",
        description="Linear warm-up",
        json_schema_extra={"unit": "iterations"},
    )
    warmup_ratio: float = Field(
        default=0.1,
        gt=0,
        le=1,
        title="Warm-up start",
        description="The warm-up starts at the learning rate x this",
    )
    epochs: int | None = Field(
        default=10,
        ge=1,
        le=100_000,
        title="Epochs",
        description="Passes over the train split (default: from the model's catalog entry)",
    )
    iterations: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        title="Iterations",
        description="Batches to train on, instead of epochs",
    )
    grad_clip: float | None = Field(
        default=None, gt=0, title="Gradient clipping", description="Max gradient norm"
    )
    accumulate: int = Field(
        default=1, ge=1, le=1024, title="Accumulate gradients", description="Batches per optimizer step"
    )

    @model_validator(mode="before")
    @classmethod
    def _iterations_instead(cls, data: Any) -> Any:
        # A schedule given in iterations alone is not also given the default epochs.
        if isinstance(data, dict) and data.get("iterations") is not None and "epochs" not in data:
            return {**data, "epochs": None}
        return data

    @model_validator(mode="after")
    def _one_length(self) -> ScheduleSpec:
        if (self.epochs is None) == (self.iterations is None):
            raise ValueError("give epochs or iterations, not both and not neither")
        return self


class RuntimeSpec(Strict):
    eval_interval: int = Field(
        default=1,
        ge=1,
        title="Evaluate every",
        description="On the val split",
        json_schema_extra={"unit": "epochs"},
    )
    checkpoint_interval: int = Field(
        default=1,
        ge=1,
        title="Save a checkpoint every",
        description="A run resumes from its last checkpoint",
        json_schema_extra={"unit": "epochs"},
    )
    log_interval: int = Field(
        default=10,
        ge=1,
        title="Log metrics every",
        description="Loss, learning rate, time",
        json_schema_extra={"unit": "iterations"},
    )
    best_metric: str = Field(
        default="accuracy/top1",
        title="Best metric",
        description="Kept as the best checkpoint, higher is better",
    )
    seed: int = Field(default=0, ge=0, title="Random seed")
    deterministic: bool = Field(default=False, title="Deterministic", description="Slower, repeatable")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", title="Device", description="auto: a GPU if there is one"
    )
    mixed_precision: bool = Field(
        default=False, title="Mixed precision", description="bf16/fp16 autocast on CUDA"
    )
    channels_last: bool = Field(
        default=False, title="Channels last", description="A memory layout faster on some GPUs"
    )


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
