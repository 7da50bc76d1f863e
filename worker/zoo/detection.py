"""Object detection and instance segmentation models from the catalog: torchvision's Faster R-CNN,
RetinaNet, FCOS, SSDlite and Mask R-CNN, plus light Faster / Mask R-CNN on a MobileNetV3-Large FPN with
trainable BatchNorm (torchvision's frozen BatchNorm cannot learn from scratch).

Every model is a :class:`Detector`: images (a list of ``(3, H, W)`` float tensors in [0, 1], or one
``(N, 3, H, W)`` batch) in; in training with targets, the detector's loss dict out; in evaluation, one
dict per image of ``boxes`` (xyxy, in the input's pixels), ``labels`` (1-based: class ``classes[i]`` is
label ``i + 1``, as COCO category ids), ``scores`` and, for Mask R-CNN, ``masks`` ``(N, 1, H, W)``.

Only the backbone's ImageNet weights are ever loaded (``model.pretrained``, through
``worker.zoo.pretrained_state``); the heads start afresh. The normalisation the detector applies inside
is kept as buffers, so it travels with the weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from backend.specs.catalog import CatalogEntry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Module paths whose weights depend on the number of classes (``load_weights`` re-initialises them).
_HEADS = {
    "fasterrcnn_resnet50_fpn_v2": ("net.roi_heads.box_predictor",),
    "fasterrcnn_mobilenet_v3_large_fpn": ("net.roi_heads.box_predictor",),
    "retinanet_resnet50_fpn_v2": ("net.head.classification_head.cls_logits",),
    "fcos_resnet50_fpn": ("net.head.classification_head.cls_logits",),
    "ssdlite320_mobilenet_v3_large": ("net.head.classification_head",),
    "maskrcnn_resnet50_fpn_v2": (
        "net.roi_heads.box_predictor",
        "net.roi_heads.mask_predictor.mask_fcn_logits",
    ),
    "maskrcnn_mobilenet_v3_large_fpn": (
        "net.roi_heads.box_predictor",
        "net.roi_heads.mask_predictor.mask_fcn_logits",
    ),
    "deformable_detr": ("net.class_embed",),
}


class Detector(nn.Module):
    """A torchvision detector with the studio's conventions (see the module docstring)."""

    def __init__(self, net: nn.Module, task: str, has_masks: bool) -> None:
        super().__init__()
        self.net = net
        self.studio_task = task
        self.has_masks = has_masks
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN))
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD))

    def set_normalize(self, mean: Sequence[float], std: Sequence[float]) -> None:
        with torch.no_grad():
            self.pixel_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.pixel_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def sync_transform(self) -> None:
        """Hand the normalisation buffers to torchvision's transform (which takes plain lists)."""
        transform = self.net.transform
        transform.image_mean = [float(v) for v in self.pixel_mean]
        transform.image_std = [float(v) for v in self.pixel_std]

    def forward(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> Any:
        if isinstance(images, torch.Tensor):
            images = list(images.unbind(0)) if images.dim() == 4 else [images]
        self.sync_transform()
        return self.net(list(images), targets)


class DetrDetector(Detector):
    """Deformable DETR (``transformers``, built from its configuration: nothing is downloaded) behind the
    same interface as the torchvision detectors. It resizes (in evaluation), normalises and pads a batch
    itself, trains on boxes normalised to each image's own size (cx, cy, w, h) with 0-based class labels,
    and answers with the top-scoring (query, class) pairs mapped back to the input's pixels."""

    def __init__(self, net: nn.Module, min_size: int, max_size: int, detections: int) -> None:
        super().__init__(net, "object_detection", has_masks=False)
        self.min_size, self.max_size, self.detections = min_size, max_size, detections

    def sync_transform(self) -> None:
        """Normalisation happens in ``forward`` from the buffers: nothing to hand over."""

    def _scale(self, height: int, width: int) -> float:
        scale = self.min_size / min(height, width)
        if max(height, width) * scale > self.max_size:
            scale = self.max_size / max(height, width)
        return scale

    def _batch(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        from torch.nn import functional as F

        mean, std = self.pixel_mean[:, None, None], self.pixel_std[:, None, None]
        ready = []
        for image in images:
            if not self.training:  # training images come resized by the data pipeline (multi-scale)
                scale = self._scale(int(image.shape[-2]), int(image.shape[-1]))
                size = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
                image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
            ready.append((image - mean) / std)
        height = max(int(x.shape[-2]) for x in ready)
        width = max(int(x.shape[-1]) for x in ready)
        pixels = ready[0].new_zeros(len(ready), 3, height, width)
        mask = torch.zeros(len(ready), height, width, dtype=torch.long, device=pixels.device)
        for i, x in enumerate(ready):
            pixels[i, :, : x.shape[-2], : x.shape[-1]] = x
            mask[i, : x.shape[-2], : x.shape[-1]] = 1
        return pixels, mask, [(int(x.shape[-2]), int(x.shape[-1])) for x in ready]

    def forward(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> Any:
        if isinstance(images, torch.Tensor):
            images = list(images.unbind(0)) if images.dim() == 4 else [images]
        images = list(images)
        pixels, mask, sizes = self._batch(images)
        if self.training:
            if targets is None:
                raise ValueError("in training mode, targets should be passed")
            labels = []
            for target, (h, w) in zip(targets, sizes, strict=True):
                x1, y1, x2, y2 = target["boxes"].float().unbind(-1)
                boxes = torch.stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], -1)
                labels.append({"class_labels": target["labels"] - 1, "boxes": boxes.reshape(-1, 4)})
            out = self.net(pixel_values=pixels, pixel_mask=mask, labels=labels)
            return {"loss_detr": out.loss}
        out = self.net(pixel_values=pixels, pixel_mask=mask)
        return self._detections(out.logits, out.pred_boxes, images, sizes)

    def _detections(
        self,
        logits: torch.Tensor,
        boxes: torch.Tensor,
        images: list[torch.Tensor],
        sizes: list[tuple[int, int]],
    ) -> list[dict[str, torch.Tensor]]:
        results = []
        classes = logits.shape[-1]
        for prob, box, image, (h, w) in zip(logits.sigmoid(), boxes, images, sizes, strict=True):
            k = min(self.detections, prob.numel())
            scores, index = prob.flatten().topk(k)
            cx, cy, bw, bh = box[index // classes].unbind(-1)
            # Boxes are relative to the unpadded (resized) image: back to the input's pixels.
            sy, sx = image.shape[-2] / h, image.shape[-1] / w
            width, height = image.shape[-1], image.shape[-2]
            # Clamped before stacking, not in place after: Grad-CAM takes gradients through these boxes.
            xyxy = torch.stack(
                [
                    ((cx - bw / 2) * w * sx).clamp(0, width),
                    ((cy - bh / 2) * h * sy).clamp(0, height),
                    ((cx + bw / 2) * w * sx).clamp(0, width),
                    ((cy + bh / 2) * h * sy).clamp(0, height),
                ],
                -1,
            )
            results.append({"boxes": xyxy, "scores": scores, "labels": index % classes + 1})
        return results


def _deformable_detr(
    num_classes: int, options: Mapping[str, Any], min_size: int, max_size: int
) -> DetrDetector:
    import transformers
    from transformers import DeformableDetrConfig, DeformableDetrForObjectDetection, TimmBackboneConfig

    transformers.logging.set_verbosity_error()  # notes on weights that are initialised (all of them)
    width = int(options.get("d_model", 256))
    config = DeformableDetrConfig(
        backbone_config=TimmBackboneConfig(
            backbone=str(options.get("backbone", "resnet50")),
            out_indices=(2, 3, 4),
            use_pretrained_backbone=False,
        ),
        num_labels=num_classes,
        num_queries=int(options.get("num_queries", 300)),
        d_model=width,
        encoder_layers=int(options.get("encoder_layers", 6)),
        decoder_layers=int(options.get("decoder_layers", 6)),
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
    )
    net = DeformableDetrForObjectDetection(config)
    return DetrDetector(net, min_size, max_size, int(options.get("detections_per_image", 100)))


def resolved_sizes(entry: CatalogEntry, options: Mapping[str, Any]) -> tuple[int, int]:
    """``(min_size, max_size)``: the options, 0 meaning the entry's default (and 1333/800 of min_size)."""
    min_size = int(options.get("min_size") or entry.default_input_size)
    max_size = int(options.get("max_size") or round(min_size * 1333 / 800))
    return min_size, max(max_size, min_size)


def _pyramid_anchors(base: int, levels: int = 5) -> tuple[tuple[int, ...], ...]:
    return tuple((base * 2**i,) for i in range(levels))


def _anchor_base(options: Mapping[str, Any]) -> int:
    return int(options.get("anchor_size") or 32)


def _mobilenet_fpn(channels: int) -> nn.Module:
    """MobileNetV3-Large features with an FPN on its last two stages (torchvision's
    ``_mobilenet_extractor`` layout) with ``channels`` pyramid channels and plain, trainable BatchNorm."""
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    features = mobilenet_v3_large(weights=None, norm_layer=nn.BatchNorm2d).features
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
    returned = [len(stages) - 2, len(stages) - 1]
    return_layers = {f"{stages[k]}": str(v) for v, k in enumerate(returned)}
    in_channels = [features[stages[i]].out_channels for i in returned]
    return BackboneWithFPN(
        features, return_layers, in_channels, channels, extra_blocks=LastLevelMaxPool(), norm_layer=None
    )


def _rcnn_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    train = int(options.get("rpn_proposals_train", 2000))
    test = int(options.get("rpn_proposals_test", 1000))
    return {
        "rpn_pre_nms_top_n_train": train,
        "rpn_post_nms_top_n_train": train,
        "rpn_pre_nms_top_n_test": test,
        "rpn_post_nms_top_n_test": test,
        "box_batch_size_per_image": int(options.get("box_samples_per_image", 512)),
        "box_detections_per_img": int(options.get("detections_per_image", 100)),
    }


def _light_rcnn(num_classes: int, options: Mapping[str, Any], sizes: dict[str, Any], mask: bool) -> nn.Module:
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.detection.rpn import RPNHead

    channels = int(options.get("fpn_channels", 256))
    backbone = _mobilenet_fpn(channels)
    base = _anchor_base(options)
    anchor_sizes = ((base, base * 2, base * 4, base * 8, base * 16),) * 3
    anchors = AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * 3)
    rpn_head = RPNHead(channels, anchors.num_anchors_per_location()[0])
    width = int(options.get("box_head_size", 1024))
    common: dict[str, Any] = {
        "num_classes": None,
        "rpn_anchor_generator": anchors,
        "rpn_head": rpn_head,
        "box_head": TwoMLPHead(channels * 7 * 7, width),
        "box_predictor": FastRCNNPredictor(width, num_classes),
        "rpn_score_thresh": 0.05,
        **sizes,
        **_rcnn_kwargs(options),
    }
    if not mask:
        return FasterRCNN(backbone, **common)
    mask_channels = int(options.get("mask_head_channels", 256))
    layers = [mask_channels] * int(options.get("mask_head_layers", 4))
    return MaskRCNN(
        backbone,
        mask_head=MaskRCNNHeads(channels, layers, 1),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes),
        **common,
    )


def _torchvision(
    entry: CatalogEntry, num_classes: int, options: Mapping[str, Any], sizes: dict[str, Any]
) -> nn.Module:
    import torchvision.models.detection as tvd
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    base: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    name = entry.name
    if name == "ssdlite320_mobilenet_v3_large":
        # A fixed 320 x 320 input; its builder hands extra keyword arguments to the backbone, so the
        # detection count is set on the built model.
        net: nn.Module = tvd.ssdlite320_mobilenet_v3_large(**base)
        net.detections_per_img = int(options.get("detections_per_image", 100))
        return net
    if name in ("fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2"):
        net = getattr(tvd, entry.builder)(**base, **sizes, **_rcnn_kwargs(options))
        # Same anchors per location (3 ratios), so the built RPN head fits the replaced generator.
        net.rpn.anchor_generator = AnchorGenerator(
            _pyramid_anchors(_anchor_base(options)), ((0.5, 1.0, 2.0),) * 5
        )
        return net
    per_image = int(options.get("detections_per_image", 100))
    if name == "retinanet_resnet50_fpn_v2":
        net = tvd.retinanet_resnet50_fpn_v2(**base, **sizes, detections_per_img=per_image)
        b = _anchor_base(options)
        octaves = tuple(
            (x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in (b, 2 * b, 4 * b, 8 * b, 16 * b)
        )
        net.anchor_generator = AnchorGenerator(octaves, ((0.5, 1.0, 2.0),) * 5)
        return net
    if name == "fcos_resnet50_fpn":
        return tvd.fcos_resnet50_fpn(**base, **sizes, detections_per_img=per_image)
    raise ValueError(f"{name}: not a torchvision detector the studio builds")


def build_detection(entry: CatalogEntry, num_classes: int, options: Mapping[str, Any]) -> Detector:
    """The detector of ``entry`` for ``num_classes`` foreground classes (torchvision's heads get one more,
    for the background). ``options`` are the catalog's, defaults filled in."""
    n = num_classes + 1
    min_size, max_size = resolved_sizes(entry, options)
    # Training images arrive already resized (multi-scale, by the data pipeline): the detector's own
    # resize then only runs in evaluation, at min_size / max_size.
    sizes: dict[str, Any] = {"min_size": min_size, "max_size": max_size, "_skip_resize": True}
    masks = entry.task == "instance_segmentation"
    if entry.source == "transformers":
        detr = _deformable_detr(num_classes, options, min_size, max_size)  # no background class
        detr.studio_heads = _HEADS[entry.name]  # type: ignore[assignment]
        return detr
    if entry.name == "fasterrcnn_mobilenet_v3_large_fpn":
        net = _light_rcnn(n, options, sizes, mask=False)
    elif entry.name == "maskrcnn_mobilenet_v3_large_fpn":
        net = _light_rcnn(n, options, sizes, mask=True)
    elif entry.source == "torchvision":
        net = _torchvision(entry, n, options, sizes)
    else:
        raise ValueError(f"{entry.name}: source {entry.source!r} is not buildable here")
    model = Detector(net, str(entry.task), has_masks=masks)
    model.studio_heads = _HEADS[entry.name]  # type: ignore[assignment]
    return model


def load_backbone_weights(detector: Detector, entry: CatalogEntry, state: Mapping[str, torch.Tensor]) -> int:
    """ImageNet weights of a ResNet-50 or MobileNetV3-Large into a torchvision detector's backbone body
    (the FPN and heads start afresh). Every body tensor must be found, or nothing is changed: a partial
    load would pass for pretrained. Answers the number of tensors loaded."""
    body = detector.net.backbone.body
    prefix = "features." if "mobilenet" in entry.name else ""
    wanted = {k: v for k, v in body.state_dict().items() if not k.endswith("num_batches_tracked")}
    found = {k: state[prefix + k] for k in wanted if prefix + k in state}
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(
            f"{entry.name}: the backbone weights lack {len(missing)} tensors, e.g. {missing[:3]}"
        )
    for key, value in found.items():
        if value.shape != wanted[key].shape:
            raise ValueError(
                f"{entry.name}: backbone tensor {key} is {tuple(value.shape)}, expected "
                f"{tuple(wanted[key].shape)}"
            )
    body.load_state_dict(found, strict=False)
    return len(found)
