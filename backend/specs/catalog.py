"""The model catalog: every architecture the studio can build, by task, with its options.

Listable without torch: the worker's zoo builds each entry by name (``worker/zoo``), and computes its
parameter count and FLOPs at the default input size (cached in ``DATA_DIR/catalog_stats.json``,
see ``backend/specs/stats.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.datasets.canonical import Task


class OptionSpec(BaseModel):
    """One option of an architecture, as a JSON-Schema-like description the form renders."""

    name: str
    type: Literal["int", "float", "bool", "choice"]
    default: Any
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


class CatalogEntry(BaseModel):
    name: str = Field(description="Stable id used in TrainConfig.model.architecture, e.g. 'resnet18'")
    task: Task
    family: str = Field(description="Display group, e.g. 'ResNet'")
    source: Literal["torchvision", "timm", "segmentation_models_pytorch", "transformers", "studio"]
    builder: str = Field(description="What the worker calls, e.g. 'torchvision.models.resnet18'")
    default_input_size: int
    min_input_size: int = 32
    input_multiple: int = 1
    pretrained_weights: str | None = Field(
        default=None,
        description="torchvision weights enum, if any (a detector's: its backbone's ImageNet weights)",
    )
    options: list[OptionSpec] = Field(default_factory=list)
    description: str = ""
    cam_layer: str | None = Field(default=None, description="Default Grad-CAM target layer (module path)")
    light: bool = Field(default=False, description="Small enough to train on a CPU in minutes")
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="Builder arguments this entry fixes (not options), e.g. depth"
    )


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


CATALOG: list[CatalogEntry] = [
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
]


# ------------------------------------------------------------------------------- semantic segmentation

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


CATALOG += [
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
]


# ------------------------------------------------------------------ object detection, instance segmentation

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

CATALOG += [
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
]


def list_models(task: Task | str | None = None) -> list[CatalogEntry]:
    """Catalog entries, optionally of one task."""
    return [e for e in CATALOG if task is None or e.task == Task(task)]


def get_entry(name: str) -> CatalogEntry:
    """The entry named ``name``; ``KeyError`` naming the known ones otherwise."""
    for entry in CATALOG:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown architecture {name!r}; known: {', '.join(e.name for e in CATALOG)}")
