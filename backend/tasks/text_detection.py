"""Text detection: the outline of every word, as polygons (ICDAR 2015 uploads, or labelme polygons and
rectangles labelled ``text``, with ``###`` as don't-care), learnt by DBNet (Liao et al. 2020; DBNet++ with
adaptive scale fusion) and scored by the ICDAR 2015 protocol. Its run config, its catalog, its pre-queue
checks and its ``TaskSpec``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from backend.datasets.canonical import Annotation, CanonicalDataset, Task
from backend.datasets.export import ExportFormat, annotations_by_image, copy_image, split_images
from backend.db.tables import User
from backend.specs.checks import (
    catalog_entry,
    check_best_metric,
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
    loader_workers_field,
    normalize_mean_field,
    normalize_std_field,
    probability,
)
from backend.specs.taskspec import CatalogEntry, OptionSpec, Recipe, TaskSpec

# ------------------------------------------------------------------------------------------- config


class Rotate(Strict):
    """Rotate by a random angle; the canvas grows so no word is cut."""

    model_config = ConfigDict(title="Rotate")
    name: Literal["rotate"]
    p: float = probability()
    degrees: float = Field(
        default=10.0,
        ge=0,
        le=180,
        title="Largest angle",
        description="Either way",
        json_schema_extra={"unit": "°"},
    )


class RandomCrop(Strict):
    """Crop along rows and columns no word covers, so words stay whole (a word a crop must cut is dropped,
    counted, and becomes don't-care)."""

    model_config = ConfigDict(title="Random crop keeping words")
    name: Literal["random_crop"]
    p: float = probability()
    min_side_ratio: float = Field(
        default=0.3, gt=0, le=1, title="Smallest crop side", description="As a share of the picture's side"
    )


class ColorJitter(Strict):
    """Brightness, contrast, saturation and hue changed at random."""

    model_config = ConfigDict(title="Colour jitter")
    name: Literal["color_jitter"]
    p: float = probability(0.8)
    brightness: float = Field(default=0.3, ge=0, le=1)
    contrast: float = Field(default=0.3, ge=0, le=1)
    saturation: float = Field(default=0.3, ge=0, le=1)
    hue: float = Field(default=0.02, ge=0, le=0.5)


class HorizontalFlip(Strict):
    """Mirror the picture (off by default: it mirrors the glyphs too)."""

    model_config = ConfigDict(title="Horizontal flip")
    name: Literal["horizontal_flip"]
    p: float = probability()


TextAugmentStep = Annotated[Rotate | RandomCrop | ColorJitter | HorizontalFlip, Field(discriminator="name")]


def default_text_augment() -> list[TextAugmentStep]:
    return [Rotate(name="rotate"), RandomCrop(name="random_crop"), ColorJitter(name="color_jitter")]


class TextDataSpec(Strict):
    dataset_id: int = Field(title="Dataset version", description="A dataset version from GET /api/datasets")
    input_size: int = Field(
        default=640,
        title="Input size",
        json_schema_extra={"unit": "px"},
        ge=32,
        le=4096,
        description="Square side (a multiple of 32) pictures are resized to, long side first, then padded",
    )
    augment: list[TextAugmentStep] = Field(default_factory=default_text_augment)
    batch_size: int = batch_size_field(8, 1024)
    workers: int = loader_workers_field()
    shrink_ratio: float = Field(
        title="Kernel shrink",
        default=0.4,
        gt=0,
        lt=1,
        description="How far word kernels shrink (DBNet's r: offset A(1-r²)/L)",
    )
    min_word_side: float = Field(
        title="Smallest word side",
        json_schema_extra={"unit": "px"},
        default=3.0,
        ge=0,
        le=64,
        description="Words narrower than this (pixels, after resizing) are don't-care",
    )
    normalize_mean: tuple[float, float, float] = normalize_mean_field()
    normalize_std: tuple[float, float, float] = normalize_std_field()


class TextLossSpec(Strict):
    """DBNet's loss: balanced BCE with hard negatives on the probability map, dice on the approximate
    binary map, L1 on the threshold map."""

    prob_weight: float = Field(
        default=5.0,
        gt=0,
        le=100,
        title="Probability map weight",
        description="Weight of the probability map's BCE",
    )
    thresh_weight: float = Field(
        default=10.0,
        gt=0,
        le=100,
        title="Threshold map weight",
        description="Weight of the threshold map's L1",
    )
    ohem_ratio: float = Field(
        default=3.0, gt=0, le=100, title="Hard negatives", description="Hard negatives per positive pixel"
    )


class TextEvalSpec(Strict):
    """How probability maps become words, and which words count."""

    score_threshold: float = Field(
        title="Score threshold",
        default=0.3,
        ge=0,
        le=1,
        description="Words whose mean probability is below this are dropped (0.3: mmocr's DBNet default); "
        "the P/R curve sweeps it. "
        "With choose_threshold, the best one on the validation split replaces it in the model",
    )
    choose_threshold: bool = Field(
        title="Choose the threshold on val",
        default=True,
        description="Keep the score threshold with the best validation hmean (never chosen on test)",
    )
    binary_threshold: float = Field(
        default=0.3, gt=0, lt=1, title="Binary threshold", description="Probability that is text"
    )
    unclip_ratio: float = Field(
        title="Unclip ratio",
        default=1.5,
        gt=0,
        le=10,
        description="How far a found kernel grows back (DBNet's D' = A' r / L')",
    )
    polygons: bool = Field(
        title="Polygons",
        default=False,
        description="Answer the grown outline; off: its min-area quadrilateral (ICDAR style)",
    )


class TextDetectionConfig(Strict):
    """Train a text detector (DBNet) on a dataset version whose words are outlined."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["text_detection"]
    name: str = Field(default="", max_length=200, title="Run name", description="A name for the run")
    model: ModelSpec = Field(title="Model", default_factory=lambda: ModelSpec(architecture="dbnet_resnet18"))
    data: TextDataSpec = Field(title="Data")
    loss: TextLossSpec = Field(default_factory=TextLossSpec, title="Loss")
    evaluation: TextEvalSpec = Field(default_factory=TextEvalSpec, title="Evaluation")
    schedule: ScheduleSpec = Field(
        title="Schedule", default_factory=lambda: ScheduleSpec(policy="poly", lr=1e-3)
    )
    runtime: RuntimeSpec = Field(title="Runtime", default_factory=lambda: RuntimeSpec(best_metric="hmean"))

    @model_validator(mode="after")
    def _text_defaults(self) -> TextDetectionConfig:
        # The shared sections' defaults are classification's: this task's fill in what was left out.
        if "model" not in self.model_fields_set or "architecture" not in self.model.model_fields_set:
            self.model.architecture = "dbnet_resnet18"
        if "runtime" not in self.model_fields_set or "best_metric" not in self.runtime.model_fields_set:
            self.runtime.best_metric = "hmean"
        if "schedule" not in self.model_fields_set or "policy" not in self.schedule.model_fields_set:
            self.schedule.policy = "poly"
        return self


METRICS = ("hmean", "precision", "recall")

# ------------------------------------------------------------------------------------------- checks


def check_text_detection(session: Session, owner: User, config: TextDetectionConfig) -> None:
    """A dataset whose train split outlines words, an architecture of the task, an input size it takes."""
    from backend.datasets.service import load_canonical

    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    check_options(entry, config.model.options, ("model", "options"))
    check_input_size(entry, config.data.input_size, ("data", "input_size"))
    if config.model.pretrained and not entry.pretrained_weights:
        raise field_error(("model", "pretrained"), f"{entry.name} has no pretrained backbone weights")
    check_start_model(session, owner, config, entry)
    check_best_metric(config, METRICS)
    require_train_images(dataset)
    canonical = load_canonical(dataset)
    train = {im.id for im in canonical.images if im.split == "train"}
    words = [a for a in canonical.annotations if a.image_id in train and not a.ignore and a.category_id > 0]
    if not words:
        raise field_error(
            ("data", "dataset_id"),
            f"dataset {dataset.id} has no words outlined in its train split (only don't-care ones or none): "
            "nothing to learn text from",
            kind="empty",
        )


# ------------------------------------------------------------------------------------------ catalog


def _dbnet(
    name: str, backbone: str, weights: str, family: str, desc: str, light: bool = False
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        task=Task.text_detection,
        family=family,
        source="studio",
        builder="worker.tasks.text_detection.model.build_dbnet",
        default_input_size=640,
        min_input_size=64,
        input_multiple=32,
        pretrained_weights=weights,
        options=[
            OptionSpec(
                name="asf",
                type="bool",
                default=False,
                description="DBNet++: adaptive scale fusion of the neck's four levels",
            ),
            OptionSpec(
                name="neck_channels",
                type="int",
                default=256,
                minimum=16,
                maximum=1024,
                description="Width of the feature pyramid (a multiple of 4); smaller trains faster",
            ),
        ],
        description=desc,
        cam_layer="neck",
        light=light,
        fixed={"backbone": backbone},
    )


ENTRIES: tuple[CatalogEntry, ...] = (
    _dbnet(
        "dbnet_resnet18",
        "resnet18",
        "ResNet18_Weights.IMAGENET1K_V1",
        "DBNet",
        "DBNet (Liao et al. 2020) on ResNet-18 with an FPN neck; option asf makes it DBNet++",
        light=True,
    ),
    _dbnet(
        "dbnet_resnet50",
        "resnet50",
        "ResNet50_Weights.IMAGENET1K_V2",
        "DBNet",
        "DBNet on ResNet-50, the paper's stronger backbone; option asf makes it DBNet++",
    ),
    _dbnet(
        "dbnet_mobilenet_v3_large",
        "mobilenet_v3_large",
        "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
        "DBNet",
        "DBNet on MobileNetV3-Large: small and fast; option asf makes it DBNet++",
        light=True,
    ),
)


# ------------------------------------------------------------------------------------------- export


def icdar_lines(anns: list[Annotation]) -> list[str]:
    """ICDAR 2015's ground-truth lines for one image: ``x1,y1,x2,y2,x3,y3,x4,y4,transcription`` (a polygon
    of more vertices lists them all), ``###`` for a don't-care word; coordinates rounded to pixels."""
    lines = []
    for ann in anns:
        outline = ann.segmentation[0] if ann.segmentation else [v for p in ann.points for v in p]
        if len(outline) == 4:  # a rectangle by two corners: its four, clockwise from the top-left
            x0, y0, x1, y1 = outline
            outline = [x0, y0, x1, y0, x1, y1, x0, y1]
        if len(outline) < 6:
            continue
        text = "###" if ann.ignore else (ann.text or "").replace("\n", " ").replace("\r", " ")
        lines.append(",".join(str(round(v)) for v in outline) + f",{text}")
    return lines


def export_icdar(ds: CanonicalDataset, ds_dir: Path, out_dir: Path) -> None:
    """ICDAR 2015 text localisation: ``{split}/img_N.{ext}`` with ``{split}/gt_img_N.txt`` (UTF-8 with a
    byte-order mark, as the challenge's files are). Only words count: a dataset without any is refused."""
    if not any(a.text is not None for a in ds.annotations):
        raise ValueError("ICDAR 2015 export needs words (text polygons); this dataset outlines none")
    by_image = annotations_by_image(ds)
    for split, recs in split_images(ds).items():
        for n, rec in enumerate(recs, start=1):
            src = ds_dir / rec.file_name
            copy_image(src, out_dir / split / f"img_{n}{src.suffix.lower()}")
            words = [a for a in by_image.get(rec.id, []) if a.text is not None]
            text = "".join(line + "\n" for line in icdar_lines(words))
            (out_dir / split / f"gt_img_{n}.txt").write_text("\ufeff" + text, "utf-8")


ICDAR = ExportFormat(
    "icdar",
    "ICDAR 2015",
    "{split}/img_N images with gt_img_N.txt word polygons",
    export_icdar,
    task=Task.text_detection,
    needs="words: text polygons (labelled text, or ### for don't-care)",
)


SPEC = TaskSpec(
    name="text_detection",
    title="Text detection",
    description="Outlines every word as a polygon with a score. Scored by the ICDAR 2015 protocol: a "
    "found word matches a true one when their IoU is above 0.5 (one to one); words found mostly inside a "
    "don't-care region (###) are not counted. Precision is the share of found words that match, recall the "
    "share of true words found, hmean their harmonic mean, all from counts over the whole split.",
    config=TextDetectionConfig,
    metrics=METRICS,
    headline="hmean",
    summary=(*METRICS, "loss"),
    columns=(),
    entries=ENTRIES,
    check=check_text_detection,
    truth_overlay="dataset",
    stats_classes=1,
    drawn="Words found",
    exports=(ICDAR,),
    explain_views=("missed", "false_detections"),
    recipe=Recipe(
        batch_size=8,
        cpu_batch_size=4,
        epochs=50,
        cpu_input_size=256,
        cpu_pick="dbnet_resnet18",
        gpu_pick="dbnet_resnet18",
    ),
)
