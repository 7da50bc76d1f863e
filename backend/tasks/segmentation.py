"""Semantic segmentation: a class for every pixel, from labelme polygons, rectangles and circles (VOC's
masks, mmseg's recipes). Its run config, its catalog, its pre-queue checks and its ``TaskSpec``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from backend.datasets.canonical import Task
from backend.db.tables import User
from backend.specs.checks import (
    catalog_entry,
    check_input_size,
    check_options,
    check_start_model,
    field_error,
    owned_dataset,
    require_task,
    require_train_images,
)
from backend.specs.sections import (
    CONFIG_VERSION,
    ModelSpec,
    RuntimeSpec,
    ScheduleSpec,
    Strict,
    batch_size_field,
    legacy_steps,
    loader_workers_field,
    normalize_mean_field,
    normalize_std_field,
    probability,
    step_factory,
)
from backend.specs.taskspec import CatalogEntry, OptionSpec, Recipe, TaskSpec

SEGMENTATION_IGNORE_INDEX = 255  # the mask value no loss or metric counts (VOC's, labelme2voc's)


class SegRandomResize(Strict):
    """Resize picture and mask by a random factor (applied to data.scale, or to the picture's size)."""

    model_config = ConfigDict(title="Random resize")
    name: Literal["random_resize"]
    ratio_range: tuple[float, float] = Field(
        default=(0.5, 2.0), title="Scale range", description="Smallest and largest resize factor"
    )

    @model_validator(mode="after")
    def _ordered_range(self) -> SegRandomResize:
        low, high = self.ratio_range
        if not 0 < low <= high <= 8:
            raise ValueError("ratio_range: give (low, high) with 0 < low <= high <= 8")
        return self


class SegRandomCrop(Strict):
    """A crop of the input size (mmseg's: retried where one class would fill it)."""

    model_config = ConfigDict(title="Random crop")
    name: Literal["random_crop"]
    cat_max_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        title="Largest class share",
        description="Retry (up to 10 times) crops where one class covers more than this share",
    )


class SegHorizontalFlip(Strict):
    """Mirror picture and mask left to right."""

    model_config = ConfigDict(title="Horizontal flip")
    name: Literal["horizontal_flip"]
    p: float = probability()


class SegVerticalFlip(Strict):
    """Mirror picture and mask top to bottom."""

    model_config = ConfigDict(title="Vertical flip")
    name: Literal["vertical_flip"]
    p: float = probability()


class SegPhotometricDistortion(Strict):
    """Brightness, contrast, saturation and hue changed at random (the picture only)."""

    model_config = ConfigDict(title="Photometric distortion")
    name: Literal["photometric_distortion"]
    brightness: float = Field(default=0.125, ge=0, le=1)
    contrast: float = Field(default=0.5, ge=0, le=1)
    saturation: float = Field(default=0.5, ge=0, le=1)
    hue: float = Field(default=0.05, ge=0, le=0.5)


class SegPad(Strict):
    """Pad to the input size (the mask with the ignore index 255)."""

    model_config = ConfigDict(title="Pad")
    name: Literal["pad"]


SegAugmentStep = Annotated[
    SegRandomResize | SegRandomCrop | SegHorizontalFlip | SegVerticalFlip | SegPhotometricDistortion | SegPad,
    Field(discriminator="name"),
]
seg_augment_step = step_factory(SegAugmentStep)
LEGACY_SEG_STEPS = legacy_steps(
    SegAugmentStep, ("p", "ratio_range", "cat_max_ratio", "brightness", "contrast", "saturation", "hue")
)


def default_seg_augment() -> list[SegAugmentStep]:
    return [
        SegRandomResize(name="random_resize", ratio_range=(0.5, 2.0)),
        SegRandomCrop(name="random_crop", cat_max_ratio=0.75),
        SegHorizontalFlip(name="horizontal_flip"),
        SegPhotometricDistortion(name="photometric_distortion"),
        SegPad(name="pad"),
    ]


class SegDataSpec(Strict):
    dataset_id: int = Field(title="Dataset version", description="A dataset version from GET /api/datasets")
    input_size: int = Field(
        default=512,
        title="Input size",
        json_schema_extra={"unit": "px"},
        ge=16,
        le=4096,
        description="Training crop side (square); also the sliding-window crop",
    )
    scale: int | None = Field(
        default=None,
        ge=16,
        le=8192,
        description="Long side images are resized to (aspect kept) before augmenting and for evaluation; "
        "none keeps their size",
    )
    augment: Annotated[list[SegAugmentStep], BeforeValidator(LEGACY_SEG_STEPS)] = Field(
        default_factory=default_seg_augment,
        title="Augmentation",
        description="Joint transforms of picture and mask, in order (masks resized with nearest neighbour)",
    )
    batch_size: int = batch_size_field(8, 4096)
    workers: int = loader_workers_field()
    normalize_mean: tuple[float, float, float] = normalize_mean_field()
    normalize_std: tuple[float, float, float] = normalize_std_field()


class SegLossTerm(Strict):
    name: Literal["cross_entropy", "dice", "focal", "lovasz"] = Field(default="cross_entropy", title="Loss")
    weight: float = Field(default=1.0, gt=0, le=100, title="Weight")


class SegLossSpec(Strict):
    """A weighted sum of terms; every term ignores mask value 255."""

    terms: list[SegLossTerm] = Field(default_factory=lambda: [SegLossTerm()], min_length=1, max_length=8)
    class_weights: list[float] | None = Field(
        default=None,
        description="cross_entropy: one weight per output class, background first (classes + 1 values)",
    )
    focal_gamma: float = Field(default=2.0, ge=0, le=10)
    aux_weight: float = Field(default=0.4, ge=0, le=10, description="Weight of an auxiliary head's loss")


class InferenceSpec(Strict):
    """How evaluation and prediction run the model over a whole image."""

    mode: Literal["whole", "slide"] = Field(
        default="whole", description="whole: one pass (padded); slide: overlapping crops, averaged"
    )
    crop_size: int | None = Field(default=None, ge=16, le=8192, description="slide: default data.input_size")
    stride: int | None = Field(default=None, ge=1, le=8192, description="slide: default 2/3 of the crop")
    flip: bool = Field(default=False, description="Average with the horizontally flipped prediction")


class SegmentationConfig(Strict):
    """Train a semantic segmentation model; classes (plus background 0) come from the dataset."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["semantic_segmentation"]
    name: str = Field(default="", max_length=200, title="Run name", description="A name for the run")
    model: ModelSpec = Field(title="Model", default_factory=lambda: ModelSpec(architecture="unet"))
    data: SegDataSpec = Field(title="Data")
    loss: SegLossSpec = Field(default_factory=SegLossSpec, title="Loss")
    inference: InferenceSpec = Field(default_factory=InferenceSpec, title="Inference")
    schedule: ScheduleSpec = Field(
        title="Schedule", default_factory=lambda: ScheduleSpec(policy="poly", lr=1e-3)
    )
    runtime: RuntimeSpec = Field(title="Runtime", default_factory=lambda: RuntimeSpec(best_metric="mIoU"))

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


SEGMENTATION_METRICS = ("mIoU", "mDice", "mAcc", "aAcc")


def check_segmentation(session: Session, owner: User, config: SegmentationConfig) -> None:
    """The segmentation run's checks: a dataset with masks, an architecture of the task whose encoder
    suits its head, sizes the architecture and the pipeline can take, class weights per output class."""
    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    encoder = config.model.options.get("encoder")
    valid = next((o.choices for o in entry.options if o.name == "encoder"), None)
    if encoder is not None and valid is not None and encoder not in valid:
        raise field_error(
            ("model", "options", "encoder"),
            f"{entry.name} cannot take encoder {encoder!r}; it takes {', '.join(map(str, valid))}",
        )
    check_options(entry, config.model.options, ("model", "options"))
    check_input_size(entry, config.data.input_size, ("data", "input_size"))
    if config.model.pretrained:
        raise field_error(
            ("model", "pretrained"),
            f"{entry.name}: the studio downloads no weights; start from a studio model with load_from",
        )
    data, inference = config.data, config.inference
    if data.scale is not None:
        ratios = [s.ratio_range[1] for s in data.augment if isinstance(s, SegRandomResize)] or [1.0]
        largest = int(data.scale * max(ratios))
        if data.input_size > largest:
            raise field_error(
                ("data", "input_size"),
                f"the crop ({data.input_size}) is larger than any image the pipeline makes (long side at "
                f"most {largest} = data.scale x ratio): crops would be mostly padding; lower it or raise "
                "data.scale",
            )
    crop = inference.crop_size or data.input_size
    if inference.mode == "slide":
        check_input_size(entry, crop, ("inference", "crop_size"))
        if inference.stride is not None and inference.stride > crop:
            raise field_error(
                ("inference", "stride"),
                f"a stride of {inference.stride} leaves gaps between windows of {crop}; use at most {crop}",
            )
    check_start_model(session, owner, config, entry)
    weights = config.loss.class_weights
    n_out = len(dataset.classes) + 1
    if weights is not None and len(weights) != n_out:
        raise field_error(
            ("loss", "class_weights"),
            f"give one weight per output class, background first: dataset {dataset.id} has {n_out} "
            f"(_background_, {', '.join(dataset.classes)}), not {len(weights)}",
        )
    if config.runtime.best_metric not in SEGMENTATION_METRICS:
        raise field_error(
            ("runtime", "best_metric"),
            f"{config.runtime.best_metric!r} is not a segmentation metric; choose one of "
            f"{', '.join(SEGMENTATION_METRICS)}",
        )
    require_train_images(dataset)


# ------------------------------------------------------------------------------------------ catalog

SMP_ENCODERS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v2",
    "efficientnet-b0",
    "mit_b0",
    "tu-convnext_tiny",
]
# Encoders each smp head cannot take (smp refuses them at build time); the rest of SMP_ENCODERS build.
SMP_UNSUPPORTED = {"unetplusplus": {"mit_b0"}}


def encoders_for(head: str) -> list[str]:
    """The encoders an smp head takes, in catalog order."""
    return [e for e in SMP_ENCODERS if e not in SMP_UNSUPPORTED.get(head, set())]


def _encoder_option(head: str, default: str) -> OptionSpec:
    return OptionSpec(
        name="encoder",
        type="choice",
        default=default,
        choices=encoders_for(head),
        description="Backbone; weights are never downloaded (start from a studio model with load_from)",
    )


def _smp(
    name: str,
    family: str,
    builder: str,
    *,
    encoder: str = "resnet34",
    size: int = 512,
    light: bool = False,
    fixed: dict[str, Any] | None = None,
    multiple: int = 32,
    desc: str = "",
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        task=Task.semantic_segmentation,
        family=family,
        source="segmentation_models_pytorch",
        builder=builder,
        default_input_size=size,
        min_input_size=max(32, multiple),
        input_multiple=multiple,
        options=[_encoder_option(builder.lower(), encoder)],
        cam_layer="decoder",
        light=light,
        fixed=fixed or {},
        description=desc,
    )


def _tv_seg(name: str, family: str, *, aux: bool, cam: str, desc: str) -> CatalogEntry:
    options = []
    if aux:
        options.append(
            OptionSpec(
                name="aux",
                type="bool",
                default=False,
                description="Auxiliary FCN head on layer3 in training (its loss weighted by loss.aux_weight)",
            )
        )
    return CatalogEntry(
        name=name,
        task=Task.semantic_segmentation,
        family=family,
        source="torchvision",
        builder=name,
        default_input_size=512,
        min_input_size=32,
        input_multiple=8,
        options=options,
        cam_layer=cam,
        description=desc,
    )


ENTRIES: tuple[CatalogEntry, ...] = (
    _smp(
        "unet_light",
        "UNet",
        "Unet",
        encoder="resnet18",
        size=64,
        light=True,
        fixed={"encoder_depth": 3, "decoder_channels": [64, 32, 16]},
        multiple=8,
        desc="A three-stage UNet on a ResNet-18 stem: trains on a CPU in seconds",
    ),
    _smp("unet", "UNet", "Unet", desc="UNet (Ronneberger et al. 2015), smp"),
    _smp("unetplusplus", "UNet", "UnetPlusPlus", desc="UNet++ nested skip connections, smp"),
    _smp("deeplabv3plus", "DeepLabV3+", "DeepLabV3Plus", encoder="resnet50", desc="DeepLabV3+, smp"),
    _smp("fpn", "FPN", "FPN", desc="Feature Pyramid Network head, smp"),
    _smp("pspnet", "PSPNet", "PSPNet", desc="Pyramid Scene Parsing Network, smp"),
    _smp("upernet", "UPerNet", "UPerNet", encoder="resnet50", desc="UPerNet (Xiao et al. 2018), smp"),
    _smp("segformer", "SegFormer", "Segformer", encoder="mit_b0", desc="SegFormer head, smp"),
    _tv_seg(
        "fcn_resnet50",
        "FCN",
        aux=True,
        cam="net.classifier.2",
        desc="FCN on ResNet-50, torchvision",
    ),
    _tv_seg(
        "deeplabv3_resnet50",
        "DeepLabV3",
        aux=True,
        cam="net.classifier.3",
        desc="DeepLabV3 on ResNet-50, torchvision",
    ),
    _tv_seg(
        "deeplabv3_mobilenet_v3_large",
        "DeepLabV3",
        aux=True,
        cam="net.classifier.3",
        desc="DeepLabV3 on MobileNetV3-Large, torchvision",
    ),
    _tv_seg(
        "lraspp_mobilenet_v3_large",
        "LR-ASPP",
        aux=False,
        cam="net.classifier.cbr",
        desc="Lite R-ASPP on MobileNetV3-Large, torchvision",
    ),
)


SPEC = TaskSpec(
    name="semantic_segmentation",
    title="Semantic segmentation",
    description="Gives every pixel a class (or background). IoU is, per class, the overlap of the "
    "predicted and true regions over their union; Dice is twice the overlap over their sum; mIoU and mDice "
    "average them over the classes, aAcc is the share of pixels right.",
    config=SegmentationConfig,
    metrics=SEGMENTATION_METRICS,
    headline="mIoU",
    summary=(*SEGMENTATION_METRICS, "loss"),
    columns=("iou", "dice", "acc", "pixels"),
    entries=ENTRIES,
    check=check_segmentation,
    background=True,
    stats_classes=21,  # Pascal VOC: background + 20 classes
    drawn="Predicted mask",
    explain_views=("cell", "lowest_iou"),
    recipe=Recipe(
        batch_size=8, cpu_batch_size=8, epochs=20, cpu_input_size=128, cpu_pick="unet_light", gpu_pick="unet"
    ),
)
