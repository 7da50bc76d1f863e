"""``TrainConfig``: one typed, versioned description of a training run (model, data, schedule, runtime,
loss). Its JSON Schema drives the browser's form; it round-trips through YAML; ``num_classes`` and class
names are never in it: they come from the dataset version the run names."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadFrom(_Strict):
    """Start from weights: a model the studio trained or a checkpoint uploaded with POST /api/models."""

    model_id: int = Field(description="Id of a model in /api/models")


class ModelSpec(_Strict):
    architecture: str = Field(default="resnet18", description="A name from GET /api/catalog")
    options: dict[str, Any] = Field(default_factory=dict, description="Architecture options from the catalog")
    pretrained: bool = Field(default=False, description="torchvision's ImageNet weights, if cached locally")
    load_from: LoadFrom | None = None


class AugmentStep(_Strict):
    """One transform of the training pipeline (torchvision transforms v2)."""

    name: Literal[
        "random_resized_crop",
        "resize",
        "center_crop",
        "horizontal_flip",
        "vertical_flip",
        "rotation",
        "color_jitter",
        "grayscale",
        "gaussian_blur",
        "rand_augment",
        "trivial_augment",
        "auto_augment",
        "random_erasing",
    ]
    p: float = Field(default=0.5, ge=0, le=1, description="Probability, for the flips, grayscale and erasing")
    scale: tuple[float, float] = Field(default=(0.08, 1.0), description="random_resized_crop area range")
    degrees: float = Field(default=15, ge=0, le=180, description="rotation range")
    brightness: float = Field(default=0.2, ge=0, le=2)
    contrast: float = Field(default=0.2, ge=0, le=2)
    saturation: float = Field(default=0.2, ge=0, le=2)
    hue: float = Field(default=0.0, ge=0, le=0.5)
    magnitude: int = Field(default=9, ge=0, le=30, description="rand_augment magnitude")


def default_augment() -> list[AugmentStep]:
    return [AugmentStep(name="random_resized_crop", scale=(0.6, 1.0)), AugmentStep(name="horizontal_flip")]


class DataSpec(_Strict):
    dataset_id: int = Field(description="A dataset version from GET /api/datasets")
    input_size: int = Field(default=224, ge=16, le=4096, description="Square side the images are resized to")
    augment: list[AugmentStep] = Field(default_factory=default_augment)
    batch_size: int = Field(default=32, ge=1, le=4096)
    workers: int = Field(default=2, ge=0, le=64, description="Data loader processes")
    mixup_alpha: float = Field(default=0.0, ge=0, le=10, description="Mixup (batch level); 0 is off")
    cutmix_alpha: float = Field(default=0.0, ge=0, le=10, description="CutMix (batch level); 0 is off")
    normalize_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    normalize_std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class LossSpec(_Strict):
    name: Literal["cross_entropy", "focal", "l1"] = "cross_entropy"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    class_weights: list[float] | None = Field(
        default=None, description="One weight per class, in class order"
    )
    focal_gamma: float = Field(default=2.0, ge=0, le=10)


class ScheduleSpec(_Strict):
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


class RuntimeSpec(_Strict):
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


class ClassificationConfig(_Strict):
    version: Literal[1] = CONFIG_VERSION
    task: Literal["classification"] = "classification"
    name: str = Field(default="", max_length=200, description="A name for the run")
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec
    loss: LossSpec = Field(default_factory=LossSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)


# One member per task; segmentation and detection join this union with their own ``task`` literal.
TrainConfig = Annotated[ClassificationConfig, Field(description="A training run, discriminated by task")]


def parse_train_config(data: dict[str, Any]) -> ClassificationConfig:
    return ClassificationConfig.model_validate(data)


def to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def from_yaml(text: str) -> ClassificationConfig:
    """Parse YAML (safe loader only) into a TrainConfig; errors name the field."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("a run config is a YAML mapping")
    return parse_train_config(data)
