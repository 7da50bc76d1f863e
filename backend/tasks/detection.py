"""Object detection (boxes) and instance segmentation (boxes and a mask per object): two tasks that share
a run config, a catalog of detectors and their checks; one ``TaskSpec`` each."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from backend.datasets.canonical import Task
from backend.db.tables import User
from backend.specs.checks import (
    catalog_entry,
    check_options,
    check_start_model,
    field_error,
    owned_dataset,
    require_task,
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

# Joint (picture + boxes + masks) transforms of the detection training pipeline (transforms v2). After the
# steps, boxes that left the picture or shrank below ``data.min_box_size`` are dropped (and counted in the
# run's summary).


class DetHorizontalFlip(Strict):
    """Mirror left to right, boxes and masks with the picture."""

    model_config = ConfigDict(title="Horizontal flip")
    name: Literal["horizontal_flip"]
    p: float = probability()


class DetVerticalFlip(Strict):
    """Mirror top to bottom, boxes and masks with the picture."""

    model_config = ConfigDict(title="Vertical flip")
    name: Literal["vertical_flip"]
    p: float = probability()


class DetRandomCrop(Strict):
    """A random crop that keeps enough of the boxes (SSD-style)."""

    model_config = ConfigDict(title="Random crop")
    name: Literal["random_crop"]
    p: float = probability()
    min_scale: float = Field(
        default=0.5, gt=0, le=1, title="Smallest crop side", description="As a share of the picture's side"
    )
    min_visible: float = Field(
        default=0.3,
        ge=0,
        le=1,
        title="Box share kept",
        description="A box keeps at least this share of its area inside the crop, or is dropped",
    )


class DetZoomOut(Strict):
    """Place the picture on a larger grey canvas (small objects for the detector to learn from)."""

    model_config = ConfigDict(title="Zoom out")
    name: Literal["zoom_out"]
    p: float = probability()
    max_zoom_out: float = Field(
        default=2.0, ge=1, le=8, title="Largest zoom out", description="Canvas side over the picture's side"
    )


class DetPhotometricDistortion(Strict):
    """Brightness, contrast, saturation and hue changed at random."""

    model_config = ConfigDict(title="Photometric distortion")
    name: Literal["photometric_distortion"]
    p: float = probability()
    brightness: float = Field(default=0.125, ge=0, le=1)
    contrast: float = Field(default=0.5, ge=0, le=1)
    saturation: float = Field(default=0.5, ge=0, le=1)
    hue: float = Field(default=0.05, ge=0, le=0.5)


DetAugmentStep = Annotated[
    DetHorizontalFlip | DetVerticalFlip | DetRandomCrop | DetZoomOut | DetPhotometricDistortion,
    Field(discriminator="name"),
]
det_augment_step = step_factory(DetAugmentStep)
LEGACY_DET_STEPS = legacy_steps(
    DetAugmentStep,
    ("p", "min_scale", "min_visible", "max_zoom_out", "brightness", "contrast", "saturation", "hue"),
)


def default_det_augment() -> list[DetAugmentStep]:
    return [
        DetRandomCrop(name="random_crop", p=0.5),
        DetHorizontalFlip(name="horizontal_flip"),
        DetPhotometricDistortion(name="photometric_distortion"),
    ]


class DetDataSpec(Strict):
    dataset_id: int = Field(title="Dataset version", description="A dataset version from GET /api/datasets")
    scales: list[Annotated[int, Field(ge=16, le=4096)]] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        title="Training sizes",
        json_schema_extra={"unit": "px"},
        description="Training: short-side sizes picked at random per image (multi-scale resize); none: "
        "the model's min_size alone",
    )
    max_size: int | None = Field(
        default=None,
        ge=16,
        le=8192,
        title="Longest side",
        json_schema_extra={"unit": "px"},
        description="Training: long-side cap; none: the model's max_size",
    )
    augment: Annotated[list[DetAugmentStep], BeforeValidator(LEGACY_DET_STEPS)] = Field(
        default_factory=default_det_augment,
        title="Augmentation",
        description="Joint transforms of picture, boxes and masks, in order",
    )
    min_box_size: float = Field(
        default=2.0, ge=0, le=1024, description="Boxes narrower or lower than this (pixels) are dropped"
    )
    group_aspect_ratio: bool = Field(
        default=True, description="Batch images of similar aspect ratio together (less padding)"
    )
    batch_size: int = batch_size_field(4, 1024)
    workers: int = loader_workers_field()
    normalize_mean: tuple[float, float, float] = normalize_mean_field()
    normalize_std: tuple[float, float, float] = normalize_std_field()

    @property
    def input_size(self) -> int:
        """The largest training scale (what the model record calls its input size); 0 when unset."""
        return max(self.scales) if self.scales else 0


class DetEvalSpec(Strict):
    score_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Detections at or above this score are drawn, predicted and counted in the confusion "
        "matrix and worst images; COCO mAP uses every detection",
    )
    mask_threshold: float = Field(default=0.5, gt=0, lt=1, description="Mask probability that is inside")


DETECTION_TASKS = ("object_detection", "instance_segmentation")


class DetectionConfig(Strict):
    """Train an object detector or an instance segmentation model; classes come from the dataset.

    The detectors compute their own losses (classification, box regression, objectness, masks), so the
    config has no loss section."""

    version: Literal[1] = CONFIG_VERSION
    task: Literal["object_detection", "instance_segmentation"]
    name: str = Field(default="", max_length=200, title="Run name", description="A name for the run")
    model: ModelSpec = Field(
        title="Model", default_factory=lambda: ModelSpec(architecture="fasterrcnn_mobilenet_v3_large_fpn")
    )
    data: DetDataSpec = Field(title="Data")
    evaluation: DetEvalSpec = Field(default_factory=DetEvalSpec, title="Evaluation")
    # AdamW learns detectors from scratch faster than the SGD of the pretrained recipes.
    schedule: ScheduleSpec = Field(title="Schedule", default_factory=lambda: ScheduleSpec(warmup_iters=100))
    runtime: RuntimeSpec = Field(title="Runtime", default_factory=lambda: RuntimeSpec(best_metric="bbox/mAP"))

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


COCO_NUMBERS = (
    "mAP",
    "mAP_50",
    "mAP_75",
    "mAP_s",
    "mAP_m",
    "mAP_l",
    "AR_1",
    "AR_10",
    "AR_100",
    "AR_s",
    "AR_m",
    "AR_l",
)


def detection_metrics(task: str) -> list[str]:
    """The metric names a detection run reports: COCO's twelve numbers for boxes (and masks)."""
    kinds = ("bbox", "segm") if task == "instance_segmentation" else ("bbox",)
    return [f"{kind}/{name}" for kind in kinds for name in COCO_NUMBERS]


def check_detection(session: Session, owner: User, config: DetectionConfig) -> None:
    """The detection run's checks: a dataset with boxes (masks, for instance segmentation) in its train
    split, no box of zero area, no class that only validation has, an architecture of the task."""
    from backend.datasets.service import load_canonical

    dataset = owned_dataset(session, owner, config.data.dataset_id, ("data", "dataset_id"))
    require_task(dataset, config.task, ("task",))
    entry = catalog_entry(config.model.architecture, config.task, ("model", "architecture"))
    check_options(entry, config.model.options, ("model", "options"))
    if config.model.pretrained and not entry.pretrained_weights:
        raise field_error(
            ("model", "pretrained"),
            f"{entry.name} has no pretrained backbone weights in the catalog; start from a studio model "
            "with load_from",
        )
    check_start_model(session, owner, config, entry)
    known = detection_metrics(config.task)
    if config.runtime.best_metric not in known:
        raise field_error(
            ("runtime", "best_metric"),
            f"{config.runtime.best_metric!r} is not a {config.task} metric; choose one of {', '.join(known)}",
        )
    canonical = load_canonical(dataset)
    split_of = {image.id: image for image in canonical.images}
    classes_in: dict[str, set[int]] = {"train": set(), "val": set(), "test": set()}
    for ann in canonical.annotations:
        if ann.ignore or ann.category_id <= 0:
            continue
        image = split_of.get(ann.image_id)
        if image is None:
            continue
        if ann.bbox[2] <= 0 or ann.bbox[3] <= 0:
            name = canonical.classes[ann.category_id - 1]
            raise field_error(
                ("data", "dataset_id"),
                f"dataset {dataset.id}: {image.source} has a {name} {ann.shape_type} whose box has zero "
                f"area ({ann.bbox[2]:g} x {ann.bbox[3]:g} px, annotation {ann.id}); remove or redraw it",
                kind="zero_area_box",
            )
        classes_in[image.split].add(ann.category_id)
    if not classes_in["train"]:
        raise field_error(
            ("data", "dataset_id"),
            f"dataset {dataset.id} has no objects in its train split: nothing to learn boxes from",
            kind="empty",
        )
    only_val = sorted(classes_in["val"] - classes_in["train"])
    if only_val:
        names = ", ".join(canonical.classes[c - 1] for c in only_val)
        raise field_error(
            ("data", "dataset_id"),
            f"dataset {dataset.id}: class {names} appears only in the val split, never in train; the "
            "model could not learn it (move some of its images to train with PATCH "
            f"/api/datasets/{dataset.id}/splits)",
            kind="class_only_in_val",
        )


# ------------------------------------------------------------------------------------------ catalog

AUTO = 0  # an int option whose value 0 means "from the dataset" (the train job resolves it)


def _det_options(
    *,
    anchors: bool = True,
    proposals: bool = True,
    light_heads: bool = False,
    mask: bool = False,
    size: int = 800,
) -> list[OptionSpec]:
    opts = [
        OptionSpec(
            name="min_size",
            type="int",
            default=AUTO,
            minimum=0,
            maximum=2048,
            description="Short side images are resized to for evaluation and prediction (training: "
            f"data.scales); 0: from the dataset (median short side, 32 to {size})",
        ),
        OptionSpec(
            name="max_size",
            type="int",
            default=AUTO,
            minimum=0,
            maximum=4096,
            description="Long side cap; 0: min_size x 1333 / 800",
        ),
        OptionSpec(
            name="detections_per_image",
            type="int",
            default=100,
            minimum=1,
            maximum=1000,
            description="Most detections kept per image (COCO evaluation counts up to 100)",
        ),
    ]
    if anchors:
        opts.append(
            OptionSpec(
                name="anchor_size",
                type="int",
                default=AUTO,
                minimum=0,
                maximum=512,
                description="Smallest anchor side in pixels (the pyramid doubles it per level); 0: from "
                "the dataset's small boxes after resizing",
            )
        )
    if proposals:
        opts += [
            OptionSpec(
                name="rpn_proposals_train",
                type="int",
                default=2000,
                minimum=10,
                maximum=10000,
                description="Region proposals kept per image after NMS in training",
            ),
            OptionSpec(
                name="rpn_proposals_test",
                type="int",
                default=1000,
                minimum=10,
                maximum=10000,
                description="Region proposals kept per image after NMS in evaluation",
            ),
            OptionSpec(
                name="box_samples_per_image",
                type="int",
                default=512,
                minimum=16,
                maximum=4096,
                description="Proposals sampled per image to train the box head",
            ),
        ]
    if light_heads:
        opts += [
            OptionSpec(
                name="fpn_channels",
                type="int",
                default=256,
                minimum=16,
                maximum=512,
                description="Channels of the feature pyramid (and of the heads on it)",
            ),
            OptionSpec(
                name="box_head_size",
                type="int",
                default=1024,
                minimum=32,
                maximum=4096,
                description="Width of the two-layer box head",
            ),
        ]
        if mask:
            opts += [
                OptionSpec(
                    name="mask_head_channels",
                    type="int",
                    default=256,
                    minimum=16,
                    maximum=512,
                    description="Channels of each mask head convolution",
                ),
                OptionSpec(
                    name="mask_head_layers",
                    type="int",
                    default=4,
                    minimum=1,
                    maximum=8,
                    description="Convolutions in the mask head",
                ),
            ]
    return opts


def _det(
    name: str,
    task: Task,
    family: str,
    builder: str,
    *,
    size: int = 800,
    light: bool = False,
    desc: str = "",
    options: list[OptionSpec] | None = None,
    source: Literal["torchvision", "transformers"] = "torchvision",
    backbone: str | None = None,
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        task=task,
        family=family,
        source=source,
        builder=builder,
        default_input_size=size,
        min_input_size=32,
        input_multiple=1,
        options=options if options is not None else _det_options(size=size),
        light=light,
        description=desc,
        pretrained_weights=backbone,  # the backbone's ImageNet weights; the heads start afresh
    )


_R50 = "ResNet50_Weights.IMAGENET1K_V1"
_MBV3 = "MobileNet_V3_Large_Weights.IMAGENET1K_V1"


_OD, _IS = Task.object_detection, Task.instance_segmentation

ENTRIES: tuple[CatalogEntry, ...] = (
    _det(
        "fasterrcnn_resnet50_fpn_v2",
        _OD,
        "Faster R-CNN",
        "fasterrcnn_resnet50_fpn_v2",
        backbone=_R50,
        desc="Faster R-CNN, ResNet-50-FPN v2 (Li et al. 2021), torchvision",
    ),
    _det(
        "fasterrcnn_mobilenet_v3_large_fpn",
        _OD,
        "Faster R-CNN",
        "fasterrcnn_mobilenet_v3_large_fpn",
        size=512,
        light=True,
        options=_det_options(light_heads=True, size=512),
        backbone=_MBV3,
        desc="Faster R-CNN on a MobileNetV3-Large FPN with trainable BatchNorm: trains on a CPU",
    ),
    _det(
        "retinanet_resnet50_fpn_v2",
        _OD,
        "RetinaNet",
        "retinanet_resnet50_fpn_v2",
        options=_det_options(proposals=False),
        backbone=_R50,
        desc="RetinaNet, ResNet-50-FPN v2, focal loss, torchvision",
    ),
    _det(
        "fcos_resnet50_fpn",
        _OD,
        "FCOS",
        "fcos_resnet50_fpn",
        options=_det_options(anchors=False, proposals=False),
        backbone=_R50,
        desc="FCOS, anchor-free, ResNet-50-FPN, torchvision",
    ),
    _det(
        "ssdlite320_mobilenet_v3_large",
        _OD,
        "SSD",
        "ssdlite320_mobilenet_v3_large",
        size=320,
        light=True,
        options=[
            OptionSpec(
                name="detections_per_image",
                type="int",
                default=100,
                minimum=1,
                maximum=1000,
                description="Most detections kept per image (COCO evaluation counts up to 100)",
            )
        ],
        desc="SSDlite on MobileNetV3-Large at a fixed 320 x 320, torchvision",
    ),
    _det(
        "maskrcnn_resnet50_fpn_v2",
        _IS,
        "Mask R-CNN",
        "maskrcnn_resnet50_fpn_v2",
        backbone=_R50,
        desc="Mask R-CNN, ResNet-50-FPN v2, torchvision",
    ),
    _det(
        "maskrcnn_mobilenet_v3_large_fpn",
        _IS,
        "Mask R-CNN",
        "maskrcnn_mobilenet_v3_large_fpn",
        size=512,
        light=True,
        options=_det_options(light_heads=True, mask=True, size=512),
        backbone=_MBV3,
        desc="Mask R-CNN on a MobileNetV3-Large FPN with trainable BatchNorm: the light option",
    ),
    _det(
        "deformable_detr",
        _OD,
        "Deformable DETR",
        "transformers.DeformableDetrForObjectDetection",
        source="transformers",
        options=[
            *_det_options(anchors=False, proposals=False),
            OptionSpec(
                name="backbone",
                type="choice",
                default="resnet50",
                choices=["resnet18", "resnet34", "resnet50"],
                description="timm backbone (weights are never downloaded)",
            ),
            OptionSpec(name="num_queries", type="int", default=300, minimum=1, maximum=2000),
            OptionSpec(
                name="d_model",
                type="int",
                default=256,
                minimum=32,
                maximum=1024,
                description="Transformer width (its feed-forward layers are 4x)",
            ),
            OptionSpec(name="encoder_layers", type="int", default=6, minimum=1, maximum=12),
            OptionSpec(name="decoder_layers", type="int", default=6, minimum=2, maximum=12),
        ],
        desc="Deformable DETR (Zhu et al. 2021), transformers, built from its configuration; train with "
        "schedule.grad_clip (0.1 in the paper)",
    ),
)


_BOX = ("bbox/mAP", "bbox/mAP_50", "bbox/mAP_75", "bbox/AR_100")
_MASK = ("segm/mAP", "segm/mAP_50", "segm/mAP_75")
_COCO = (
    "COCO mAP: the area under the precision-recall curve of each class, averaged over the classes and "
    "over IoU thresholds 0.50 to 0.95 (mAP_50: at IoU 0.5 alone); AR_100 is the recall with up to 100 "
    "detections per picture."
)

_SIMPLE = ("schedule.epochs", "data.scales", "data.batch_size", "model.pretrained")
OBJECT_DETECTION = TaskSpec(
    name="object_detection",
    title="Object detection",
    description="Finds each object as a box with a class and a score. " + _COCO,
    config=DetectionConfig,
    metrics=tuple(detection_metrics("object_detection")),
    headline="bbox/mAP",
    summary=(*_BOX, "loss"),
    columns=("bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/AR", "objects"),
    entries=tuple(e for e in ENTRIES if e.task == Task.object_detection),
    check=check_detection,
    cam_methods=("gradcam", "eigencam"),
    explain_views=("cell", "detections", "missed", "false_detections"),
    truth_overlay="dataset",
    model_outputs="detections",
    stats_classes=80,  # COCO's
    drawn="Detections drawn",
    recipe=Recipe(
        batch_size=4,
        cpu_batch_size=4,
        epochs=12,  # mmdetection's 1x schedule
        size_path=None,  # sizes follow the pictures (data.scales, the min_size option)
        cpu_pick="fasterrcnn_mobilenet_v3_large_fpn",
        gpu_pick="fasterrcnn_resnet50_fpn_v2",
    ),
    simple_fields=_SIMPLE,
)
INSTANCE_SEGMENTATION = TaskSpec(
    name="instance_segmentation",
    title="Instance segmentation",
    description="Finds each object as a box and a mask with a class and a score; mask mAP (segm) "
    "measures the masks' overlap, box mAP (bbox) the boxes'. " + _COCO,
    config=DetectionConfig,
    metrics=tuple(detection_metrics("instance_segmentation")),
    headline="segm/mAP",
    summary=(*_MASK, *_BOX, "loss"),
    columns=("segm/AP", "segm/AP50", "bbox/AP", "bbox/AP50", "bbox/AR", "objects"),
    entries=tuple(e for e in ENTRIES if e.task == Task.instance_segmentation),
    check=check_detection,
    cam_methods=("gradcam", "eigencam"),
    explain_views=("cell", "detections", "missed", "false_detections"),
    truth_overlay="dataset",
    model_outputs="detections",
    stats_classes=80,  # COCO's
    drawn="Detections drawn",
    recipe=Recipe(
        batch_size=4,
        cpu_batch_size=4,
        epochs=12,
        size_path=None,
        cpu_pick="maskrcnn_mobilenet_v3_large_fpn",
        gpu_pick="maskrcnn_resnet50_fpn_v2",
    ),
    simple_fields=_SIMPLE,
)
