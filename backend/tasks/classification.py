"""Image classification: one class per picture (labelme flags, or the folder a picture sits in). Its run
config, its catalog of architectures, its pre-queue checks and its ``TaskSpec``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field
from sqlalchemy.orm import Session

from backend.datasets.canonical import CanonicalDataset, Task
from backend.datasets.export import (
    ExportFormat,
    copy_image,
    export_names,
    split_images,
    write_lines,
)
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


class RandomResizedCrop(Strict):
    """A random part of the picture (area and aspect ratio at random), resized to the input size."""

    model_config = ConfigDict(title="Random resized crop")
    name: Literal["random_resized_crop"]
    scale: tuple[float, float] = Field(
        default=(0.08, 1.0), title="Area kept", description="Smallest and largest share of the picture's area"
    )


class Resize(Strict):
    """Resize to the input size."""

    model_config = ConfigDict(title="Resize")
    name: Literal["resize"]


class CenterCrop(Strict):
    """The centre of the picture, at the input size."""

    model_config = ConfigDict(title="Centre crop")
    name: Literal["center_crop"]


class HorizontalFlip(Strict):
    """Mirror left to right."""

    model_config = ConfigDict(title="Horizontal flip")
    name: Literal["horizontal_flip"]
    p: float = probability()


class VerticalFlip(Strict):
    """Mirror top to bottom."""

    model_config = ConfigDict(title="Vertical flip")
    name: Literal["vertical_flip"]
    p: float = probability()


class Rotation(Strict):
    """Rotate by a random angle."""

    model_config = ConfigDict(title="Rotation")
    name: Literal["rotation"]
    degrees: float = Field(
        default=15,
        ge=0,
        le=180,
        title="Largest angle",
        description="Either way",
        json_schema_extra={"unit": "°"},
    )


class ColorJitter(Strict):
    """Brightness, contrast, saturation and hue changed at random."""

    model_config = ConfigDict(title="Colour jitter")
    name: Literal["color_jitter"]
    brightness: float = Field(default=0.2, ge=0, le=2)
    contrast: float = Field(default=0.2, ge=0, le=2)
    saturation: float = Field(default=0.2, ge=0, le=2)
    hue: float = Field(default=0.0, ge=0, le=0.5)


class Grayscale(Strict):
    """Drop the colour."""

    model_config = ConfigDict(title="Greyscale")
    name: Literal["grayscale"]
    p: float = probability(0.1)


class GaussianBlur(Strict):
    """Blur with a kernel about a tenth of the picture."""

    model_config = ConfigDict(title="Gaussian blur")
    name: Literal["gaussian_blur"]
    p: float = probability()


class RandAugment(Strict):
    """RandAugment (Cubuk et al. 2020): two random operations per picture."""

    model_config = ConfigDict(title="RandAugment")
    name: Literal["rand_augment"]
    magnitude: int = Field(
        default=9, ge=0, le=30, title="Magnitude", description="How strong the operations are"
    )


class TrivialAugment(Strict):
    """TrivialAugment Wide (Müller and Hutter 2021): one random operation at a random strength."""

    model_config = ConfigDict(title="TrivialAugment")
    name: Literal["trivial_augment"]


class AutoAugment(Strict):
    """AutoAugment's ImageNet policy (Cubuk et al. 2019)."""

    model_config = ConfigDict(title="AutoAugment")
    name: Literal["auto_augment"]


class RandomErasing(Strict):
    """Blank a random rectangle (after normalising)."""

    model_config = ConfigDict(title="Random erasing")
    name: Literal["random_erasing"]
    p: float = probability()


AugmentStep = Annotated[
    RandomResizedCrop
    | Resize
    | CenterCrop
    | HorizontalFlip
    | VerticalFlip
    | Rotation
    | ColorJitter
    | Grayscale
    | GaussianBlur
    | RandAugment
    | TrivialAugment
    | AutoAugment
    | RandomErasing,
    Field(discriminator="name"),
]
augment_step = step_factory(AugmentStep)


# A config written before each step took only its own fields held every step's (version 1 still reads).
LEGACY_STEPS = legacy_steps(
    AugmentStep, ("p", "scale", "degrees", "brightness", "contrast", "saturation", "hue", "magnitude")
)


def default_augment() -> list[AugmentStep]:
    return [
        RandomResizedCrop(name="random_resized_crop", scale=(0.6, 1.0)),
        HorizontalFlip(name="horizontal_flip"),
    ]


class DataSpec(Strict):
    dataset_id: int = Field(title="Dataset version", description="A dataset version from GET /api/datasets")
    input_size: int = Field(
        default=224,
        title="Input size",
        json_schema_extra={"unit": "px"},
        ge=16,
        le=4096,
        description="Square side the images are resized to",
    )
    augment: Annotated[list[AugmentStep], BeforeValidator(LEGACY_STEPS)] = Field(
        default_factory=default_augment, title="Augmentation", description="Training transforms, in order"
    )
    batch_size: int = batch_size_field(32, 4096)
    workers: int = loader_workers_field()
    mixup_alpha: float = Field(default=0.0, ge=0, le=10, description="Mixup (batch level); 0 is off")
    cutmix_alpha: float = Field(default=0.0, ge=0, le=10, description="CutMix (batch level); 0 is off")
    normalize_mean: tuple[float, float, float] = normalize_mean_field()
    normalize_std: tuple[float, float, float] = normalize_std_field()


class LossSpec(Strict):
    name: Literal["cross_entropy", "focal", "l1"] = Field(default="cross_entropy", title="Loss")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    class_weights: list[float] | None = Field(
        default=None, description="One weight per class, in class order"
    )
    focal_gamma: float = Field(default=2.0, ge=0, le=10)


class ClassificationConfig(Strict):
    """Train an image classifier on a dataset version; its classes come from the dataset."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["classification"] = "classification"
    name: str = Field(default="", max_length=200, title="Run name", description="A name for the run")
    model: ModelSpec = Field(title="Model", default_factory=ModelSpec)
    data: DataSpec = Field(title="Data")
    loss: LossSpec = Field(default_factory=LossSpec, title="Loss")
    schedule: ScheduleSpec = Field(title="Schedule", default_factory=ScheduleSpec)
    runtime: RuntimeSpec = Field(title="Runtime", default_factory=RuntimeSpec)


def check_classification(session: Session, owner: User, config: ClassificationConfig) -> None:
    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    check_options(entry, config.model.options, ("model", "options"))
    check_input_size(entry, config.data.input_size, ("data", "input_size"))
    if config.model.pretrained and not entry.pretrained_weights:
        raise field_error(("model", "pretrained"), f"{entry.name} has no pretrained weights in the catalog")
    check_start_model(session, owner, config, entry)
    weights = config.loss.class_weights
    if weights is not None and len(weights) != len(dataset.classes):
        raise field_error(
            ("loss", "class_weights"),
            f"give one weight per class: dataset {dataset.id} has {len(dataset.classes)} classes "
            f"({', '.join(dataset.classes)}), not {len(weights)}",
        )
    require_train_images(dataset)


def _cls(
    name: str,
    family: str,
    source: Literal["torchvision", "timm", "studio"],
    builder: str,
    *,
    size: int = 224,
    weights: str | None = None,
    cam: str | None = None,
    light: bool = False,
    desc: str = "",
    min_size: int = 32,
    multiple: int = 1,
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        task=Task.classification,
        family=family,
        source=source,
        builder=builder,
        default_input_size=size,
        min_input_size=min_size,
        input_multiple=multiple,
        pretrained_weights=weights,
        cam_layer=cam,
        light=light,
        description=desc,
        options=[
            OptionSpec(
                name="dropout",
                type="float",
                default=0.0,
                minimum=0.0,
                maximum=0.9,
                description="Dropout before the classifier head",
            )
        ],
    )


ENTRIES: tuple[CatalogEntry, ...] = (
    _cls(
        "tiny_cnn",
        "Studio",
        "studio",
        "studio.tiny_cnn",
        size=64,
        light=True,
        cam="features.4",
        desc="A four-layer CNN for quick experiments and CPU training",
        min_size=16,
    ),
    _cls(
        "resnet18",
        "ResNet",
        "torchvision",
        "resnet18",
        weights="ResNet18_Weights.IMAGENET1K_V1",
        cam="layer4",
        light=True,
    ),
    _cls(
        "resnet50",
        "ResNet",
        "torchvision",
        "resnet50",
        weights="ResNet50_Weights.IMAGENET1K_V2",
        cam="layer4",
    ),
    _cls(
        "mobilenet_v3_small",
        "MobileNetV3",
        "torchvision",
        "mobilenet_v3_small",
        weights="MobileNet_V3_Small_Weights.IMAGENET1K_V1",
        cam="features",
        light=True,
    ),
    _cls(
        "mobilenet_v3_large",
        "MobileNetV3",
        "torchvision",
        "mobilenet_v3_large",
        weights="MobileNet_V3_Large_Weights.IMAGENET1K_V2",
        cam="features",
    ),
    _cls(
        "efficientnet_b0",
        "EfficientNet",
        "torchvision",
        "efficientnet_b0",
        weights="EfficientNet_B0_Weights.IMAGENET1K_V1",
        cam="features",
    ),
    _cls(
        "convnext_tiny",
        "ConvNeXt",
        "torchvision",
        "convnext_tiny",
        weights="ConvNeXt_Tiny_Weights.IMAGENET1K_V1",
        cam="features",
    ),
    _cls(
        "regnet_y_400mf",
        "RegNet",
        "torchvision",
        "regnet_y_400mf",
        weights="RegNet_Y_400MF_Weights.IMAGENET1K_V2",
        cam="trunk_output",
        light=True,
    ),
    _cls(
        "vit_b_16",
        "ViT",
        "torchvision",
        "vit_b_16",
        weights="ViT_B_16_Weights.IMAGENET1K_V1",
        cam="encoder.layers.encoder_layer_11.ln_1",
        min_size=224,
        multiple=16,
    ),
    _cls(
        "vit_tiny_patch16_224",
        "ViT",
        "timm",
        "vit_tiny_patch16_224",
        cam="blocks.11.norm1",
        min_size=224,
        multiple=16,
        light=True,
    ),
    _cls(
        "vit_small_patch16_224",
        "ViT",
        "timm",
        "vit_small_patch16_224",
        cam="blocks.11.norm1",
        min_size=224,
        multiple=16,
    ),
    _cls(
        "swin_t",
        "Swin",
        "torchvision",
        "swin_t",
        weights="Swin_T_Weights.IMAGENET1K_V1",
        cam="features",
        min_size=224,
        multiple=32,
    ),
)


METRICS = ("accuracy/top1", "accuracy/top5", "precision/macro", "recall/macro", "f1/macro")

# ------------------------------------------------------------------------------------------- export


def single_tags(ds: CanonicalDataset) -> dict[int, int]:
    """Each image's class index, or a ValueError saying which images do not have exactly one tag."""
    index = {name: i for i, name in enumerate(ds.classes)}
    labels: dict[int, int] = {}
    bad: list[str] = []
    for rec in ds.images:
        if len(rec.tags) != 1 or rec.tags[0] not in index:
            bad.append(
                f"{rec.source} ({len(rec.tags)} tags)"
                if len(rec.tags) != 1
                else f"{rec.source} (unknown tag)"
            )
            continue
        labels[rec.id] = index[rec.tags[0]]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(
            "ImageNet export needs exactly one image-level class per image; "
            f"{len(bad)} images do not: {shown}"
        )
    return labels


def export_imagenet(ds: CanonicalDataset, ds_dir: Path, out_dir: Path) -> None:
    """OpenMMLab custom classification layout: ``{split}/{class}/{file}``, ``meta/{split}.txt`` lines
    ``{class}/{file} {label}`` (paths relative to the split folder) and ``classes.txt``."""
    labels = single_tags(ds)
    names = export_names(ds.images)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_lines(out_dir / "classes.txt", ds.classes)
    for split, recs in split_images(ds).items():
        lines: list[str] = []
        for rec in recs:
            src = ds_dir / rec.file_name
            rel = f"{ds.classes[labels[rec.id]]}/{names[rec.id]}{src.suffix.lower()}"
            copy_image(src, out_dir / split / rel)
            lines.append(f"{rel} {labels[rec.id]}")
        write_lines(out_dir / "meta" / f"{split}.txt", lines)


IMAGENET = ExportFormat(
    "imagenet",
    "ImageNet",
    "{split}/{class}/ folders and meta/{split}.txt",
    export_imagenet,
    task=Task.classification,
    needs="exactly one image-level class per image",
)


SPEC = TaskSpec(
    name="classification",
    title="Classification",
    description="Names the class of the whole picture, with a score per class. Accuracy is the share of "
    "test pictures whose top class is right (top-5: the right class among the five best); precision, "
    "recall and F1 are per class, averaged over the classes (macro).",
    config=ClassificationConfig,
    metrics=METRICS,
    headline="accuracy/top1",
    summary=(*METRICS, "loss"),
    columns=("precision", "recall", "f1", "support"),
    entries=ENTRIES,
    check=check_classification,
    exports=(IMAGENET,),
    explain_views=("cell", "false_positives", "false_negatives", "highest_loss"),
    recipe=Recipe(
        batch_size=32,
        cpu_batch_size=32,
        epochs=10,
        cpu_input_size=64,
        cpu_pick="resnet18",
        gpu_pick="resnet50",
    ),
)
