"""``TrainConfig``: one typed, versioned description of a training run (model, data, schedule, runtime,
loss). Its JSON Schema drives the browser's form; it round-trips through YAML; ``num_classes`` and class
names are never in it: they come from the dataset version the run names."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

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
    """Train an image classifier on a dataset version; its classes come from the dataset."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["classification"] = "classification"
    name: str = Field(default="", max_length=200, description="A name for the run")
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec
    loss: LossSpec = Field(default_factory=LossSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)


SEGMENTATION_IGNORE_INDEX = 255  # the mask value no loss or metric counts (VOC's, labelme2voc's)


class SegAugmentStep(_Strict):
    """One joint (image + mask) transform of the segmentation training pipeline, mmseg's steps.

    Masks are resized with nearest neighbour and padded with the ignore index 255."""

    name: Literal[
        "random_resize", "random_crop", "horizontal_flip", "vertical_flip", "photometric_distortion", "pad"
    ]
    p: float = Field(default=0.5, ge=0, le=1, description="Probability, for the flips")
    ratio_range: tuple[float, float] = Field(
        default=(0.5, 2.0), description="random_resize: scale factor range, applied to data.scale"
    )
    cat_max_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="random_crop: retry (up to 10 times) crops where one class covers more than this share",
    )
    brightness: float = Field(default=0.125, ge=0, le=1, description="photometric_distortion")
    contrast: float = Field(default=0.5, ge=0, le=1, description="photometric_distortion")
    saturation: float = Field(default=0.5, ge=0, le=1, description="photometric_distortion")
    hue: float = Field(default=0.05, ge=0, le=0.5, description="photometric_distortion")

    @model_validator(mode="after")
    def _ordered_range(self) -> SegAugmentStep:
        low, high = self.ratio_range
        if not 0 < low <= high <= 8:
            raise ValueError("ratio_range: give (low, high) with 0 < low <= high <= 8")
        return self


def default_seg_augment() -> list[SegAugmentStep]:
    return [
        SegAugmentStep(name="random_resize", ratio_range=(0.5, 2.0)),
        SegAugmentStep(name="random_crop", cat_max_ratio=0.75),
        SegAugmentStep(name="horizontal_flip"),
        SegAugmentStep(name="photometric_distortion"),
        SegAugmentStep(name="pad"),
    ]


class SegDataSpec(_Strict):
    dataset_id: int = Field(description="A dataset version from GET /api/datasets")
    input_size: int = Field(
        default=512, ge=16, le=4096, description="Training crop side (square); also the sliding-window crop"
    )
    scale: int | None = Field(
        default=None,
        ge=16,
        le=8192,
        description="Long side images are resized to (aspect kept) before augmenting and for evaluation; "
        "none keeps their size",
    )
    augment: list[SegAugmentStep] = Field(default_factory=default_seg_augment)
    batch_size: int = Field(default=8, ge=1, le=4096)
    workers: int = Field(default=2, ge=0, le=64, description="Data loader processes")
    normalize_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    normalize_std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class SegLossTerm(_Strict):
    name: Literal["cross_entropy", "dice", "focal", "lovasz"] = "cross_entropy"
    weight: float = Field(default=1.0, gt=0, le=100)


class SegLossSpec(_Strict):
    """A weighted sum of terms; every term ignores mask value 255."""

    terms: list[SegLossTerm] = Field(default_factory=lambda: [SegLossTerm()], min_length=1, max_length=8)
    class_weights: list[float] | None = Field(
        default=None,
        description="cross_entropy: one weight per output class, background first (classes + 1 values)",
    )
    focal_gamma: float = Field(default=2.0, ge=0, le=10)
    aux_weight: float = Field(default=0.4, ge=0, le=10, description="Weight of an auxiliary head's loss")


class InferenceSpec(_Strict):
    """How evaluation and prediction run the model over a whole image."""

    mode: Literal["whole", "slide"] = Field(
        default="whole", description="whole: one pass (padded); slide: overlapping crops, averaged"
    )
    crop_size: int | None = Field(default=None, ge=16, le=8192, description="slide: default data.input_size")
    stride: int | None = Field(default=None, ge=1, le=8192, description="slide: default 2/3 of the crop")
    flip: bool = Field(default=False, description="Average with the horizontally flipped prediction")


class SegmentationConfig(_Strict):
    """Train a semantic segmentation model; classes (plus background 0) come from the dataset."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["semantic_segmentation"]
    name: str = Field(default="", max_length=200, description="A name for the run")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(architecture="unet"))
    data: SegDataSpec
    loss: SegLossSpec = Field(default_factory=SegLossSpec)
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    schedule: ScheduleSpec = Field(default_factory=lambda: ScheduleSpec(policy="poly", lr=1e-3))
    runtime: RuntimeSpec = Field(default_factory=lambda: RuntimeSpec(best_metric="mIoU"))

    @model_validator(mode="after")
    def _segmentation_best_metric(self) -> SegmentationConfig:
        # RuntimeSpec's default best metric is classification's; a runtime section that names none keeps
        # the best mIoU.
        if "best_metric" not in self.runtime.model_fields_set:
            self.runtime.best_metric = "mIoU"
        # Likewise the poly learning-rate policy (mmseg's schedule) unless the schedule names another.
        if "policy" not in self.schedule.model_fields_set:
            self.schedule.policy = "poly"
        return self


class DetAugmentStep(_Strict):
    """One joint (image + boxes + masks) transform of the detection training pipeline (transforms v2).

    After the steps, boxes that left the picture or shrank below ``data.min_box_size`` are dropped (and
    counted in the run's summary)."""

    name: Literal["horizontal_flip", "vertical_flip", "random_crop", "zoom_out", "photometric_distortion"]
    p: float = Field(default=0.5, ge=0, le=1, description="Probability of the step")
    min_scale: float = Field(
        default=0.5, gt=0, le=1, description="random_crop: smallest crop side, as a share of the image's"
    )
    min_visible: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="random_crop: a box keeps at least this share of its area inside the crop, or is dropped",
    )
    max_zoom_out: float = Field(default=2.0, ge=1, le=8, description="zoom_out: largest canvas / image side")
    brightness: float = Field(default=0.125, ge=0, le=1, description="photometric_distortion")
    contrast: float = Field(default=0.5, ge=0, le=1, description="photometric_distortion")
    saturation: float = Field(default=0.5, ge=0, le=1, description="photometric_distortion")
    hue: float = Field(default=0.05, ge=0, le=0.5, description="photometric_distortion")


def default_det_augment() -> list[DetAugmentStep]:
    return [
        DetAugmentStep(name="random_crop", p=0.5),
        DetAugmentStep(name="horizontal_flip"),
        DetAugmentStep(name="photometric_distortion"),
    ]


class DetDataSpec(_Strict):
    dataset_id: int = Field(description="A dataset version from GET /api/datasets")
    scales: list[Annotated[int, Field(ge=16, le=4096)]] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Training: short-side sizes picked at random per image (multi-scale resize); none: "
        "the model's min_size alone",
    )
    max_size: int | None = Field(
        default=None, ge=16, le=8192, description="Training: long-side cap; none: the model's max_size"
    )
    augment: list[DetAugmentStep] = Field(default_factory=default_det_augment)
    min_box_size: float = Field(
        default=2.0, ge=0, le=1024, description="Boxes narrower or lower than this (pixels) are dropped"
    )
    group_aspect_ratio: bool = Field(
        default=True, description="Batch images of similar aspect ratio together (less padding)"
    )
    batch_size: int = Field(default=4, ge=1, le=1024)
    workers: int = Field(default=2, ge=0, le=64, description="Data loader processes")
    normalize_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    normalize_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def input_size(self) -> int:
        """The largest training scale (what the model record calls its input size); 0 when unset."""
        return max(self.scales) if self.scales else 0


class DetEvalSpec(_Strict):
    score_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Detections at or above this score are drawn, predicted and counted in the confusion "
        "matrix and worst images; COCO mAP uses every detection",
    )
    mask_threshold: float = Field(default=0.5, gt=0, lt=1, description="Mask probability that is inside")


DETECTION_TASKS = ("object_detection", "instance_segmentation")


class DetectionConfig(_Strict):
    """Train an object detector or an instance segmentation model; classes come from the dataset.

    The detectors compute their own losses (classification, box regression, objectness, masks), so the
    config has no loss section."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["object_detection", "instance_segmentation"]
    name: str = Field(default="", max_length=200, description="A name for the run")
    model: ModelSpec = Field(
        default_factory=lambda: ModelSpec(architecture="fasterrcnn_mobilenet_v3_large_fpn")
    )
    data: DetDataSpec
    evaluation: DetEvalSpec = Field(default_factory=DetEvalSpec)
    # AdamW learns detectors from scratch faster than the SGD of the pretrained recipes.
    schedule: ScheduleSpec = Field(default_factory=lambda: ScheduleSpec(warmup_iters=100))
    runtime: RuntimeSpec = Field(default_factory=lambda: RuntimeSpec(best_metric="bbox/mAP"))

    @model_validator(mode="after")
    def _detection_defaults(self) -> DetectionConfig:
        # The defaults of ModelSpec and RuntimeSpec are classification's: fill in this task's when the
        # sections given leave them out.
        if "model" not in self.model_fields_set or "architecture" not in self.model.model_fields_set:
            self.model.architecture = (
                "maskrcnn_mobilenet_v3_large_fpn"
                if self.task == "instance_segmentation"
                else "fasterrcnn_mobilenet_v3_large_fpn"
            )
        if "runtime" not in self.model_fields_set or "best_metric" not in self.runtime.model_fields_set:
            self.runtime.best_metric = "segm/mAP" if self.task == "instance_segmentation" else "bbox/mAP"
        return self


AnyTrainConfig = ClassificationConfig | SegmentationConfig | DetectionConfig
# One member per task, told apart by ``task`` (absent: classification, as configs written before it).
TrainConfig = Annotated[AnyTrainConfig, Field(discriminator="task", description="A training run, by task")]
CONFIG_BY_TASK: dict[str, type[ClassificationConfig] | type[SegmentationConfig] | type[DetectionConfig]] = {
    "classification": ClassificationConfig,
    "semantic_segmentation": SegmentationConfig,
    "object_detection": DetectionConfig,
    "instance_segmentation": DetectionConfig,
}


class _TaskOnly(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task: Literal["classification", "semantic_segmentation", "object_detection", "instance_segmentation"] = (
        "classification"
    )


def parse_train_config(data: dict[str, Any]) -> AnyTrainConfig:
    """The config of ``data["task"]`` (default classification). Dispatched by hand rather than through
    the union, so validation errors name ``data.input_size``, not ``semantic_segmentation.data...``."""
    task = _TaskOnly.model_validate(data if isinstance(data, dict) else {}).task
    return CONFIG_BY_TASK[task].model_validate(data)


def train_config_schema(task: str | None = None) -> dict[str, Any]:
    """JSON Schema of one task's config, or (``task`` None) of the union, discriminated by ``task``."""
    if task is not None:
        return CONFIG_BY_TASK[task].model_json_schema()
    return TypeAdapter(TrainConfig).json_schema()


def to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


MAX_YAML_CHARS = 256 * 1024


def load_yaml_mapping(text: str) -> dict[str, Any]:
    """YAML text (safe loader only) as a mapping; ``ValueError`` naming the line otherwise.

    Anchors and aliases are refused: a config never needs them, and nested aliases ("billion laughs")
    would make validation walk an exponentially large tree."""
    if len(text) > MAX_YAML_CHARS:
        raise ValueError(f"the YAML is {len(text)} characters; the limit is {MAX_YAML_CHARS}")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                raise ValueError(f"line {line}: anchors and aliases are not allowed in a config")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ValueError(f"{where}{getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("a run config is a YAML mapping")
    return data


def from_yaml(text: str) -> AnyTrainConfig:
    """Parse YAML (safe loader only) into a TrainConfig; errors name the field."""
    return parse_train_config(load_yaml_mapping(text))
