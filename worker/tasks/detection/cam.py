"""Class activation maps of a detector (pytorch-grad-cam), over the whole picture.

Two methods:
- **Grad-CAM of one box** (``FasterRCNNBoxScoreTarget``): the gradient of the score of the detection that
  matches a box (and class) at the feature maps; what made the model find *that* object. The default when
  the model finds something: its top box (of the target class, when one is given).
- **EigenCAM**: the first principal component of the feature maps; needs no box or gradient, so it also
  shows where a model looks on a picture where it found nothing (a missed object).

The maps are taken at every level the detector's heads read and averaged: the FPN's output convolutions
for the R-CNN, RetinaNet and FCOS families (the MobileNetV3 FPN has fewer levels than a ResNet FPN, which
is why pytorch-grad-cam's ``AblationLayerFasterRCNN``, with its hard-coded FPN keys, is not used), SSD's
feature stages, and the backbone stages Deformable DETR's encoder reads. A module path given as
``target_layer`` replaces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.ops import box_iou
from torchvision.transforms.v2.functional import pil_to_tensor

from worker.cam import CamOutput, find_layer, resolve_target
from worker.models import LoadedModel

METHODS = ("gradcam", "eigencam")
BLANK = 0.01  # a normalised map whose top is below this has no signal (a gradient of ~0 everywhere)
MATCH_IOU = 0.5  # a box given matches the model's detection over this IoU (pytorch-grad-cam's own)


def detector_layers(model: nn.Module) -> tuple[str, list[nn.Module]]:
    """The feature maps the detector's heads read: a description and the modules that output them."""
    for name, module in model.named_modules():
        if name.endswith("fpn.layer_blocks"):
            return f"{name} ({len(module)} levels)", list(module)
    for name, module in model.named_modules():
        if type(module).__name__ == "DeformableDetrConvEncoder":
            features = module.model
            names = [str(n).replace(".", "_") for n in features.feature_info.module_name()]
            return f"{name}.model ({', '.join(names)})", [features.get_submodule(n) for n in names]
    net = getattr(model, "net", model)
    features = getattr(getattr(net, "backbone", None), "features", None)
    if isinstance(features, nn.Sequential):
        return f"net.backbone.features ({len(features)} stages)", list(features)
    raise ValueError("target_layer: this detector has no feature maps the studio knows; name a module")


def _pick(found: dict[str, torch.Tensor], label: int | None, box: Sequence[float] | None) -> int | None:
    """The detection to explain: the one matching ``box`` (and ``label``) best, else the top-scoring
    one (of ``label``); None when there is none."""
    labels, scores = found["labels"], found["scores"]
    keep = torch.ones_like(scores, dtype=torch.bool) if label is None else labels == label
    if box is not None and len(found["boxes"]):
        ious = box_iou(torch.tensor([list(box)], dtype=torch.float32), found["boxes"].float())[0]
        ious = torch.where(keep, ious, torch.zeros_like(ious))
        best = int(ious.argmax())
        return best if float(ious[best]) > MATCH_IOU else None
    if not bool(keep.any()):
        return None
    return int(torch.where(keep, scores, torch.full_like(scores, -1.0)).argmax())


class _Nothing:
    """EigenCAM's target: pytorch-grad-cam asks for one per image but takes no gradient of it."""

    def __call__(self, output: Any) -> torch.Tensor:
        return torch.zeros(())


def detection_cam(
    loaded: LoadedModel,
    image: Image.Image,
    target_class: str | int | None = None,
    target_layer: str | None = None,
    *,
    box: Sequence[float] | None = None,
    method: str | None = None,
    image_weight: float = 0.5,
) -> CamOutput:
    """The map of ``image`` for one of its boxes (Grad-CAM) or for the picture (EigenCAM). ``box``
    (x1, y1, x2, y2 in the picture's pixels) chooses the detection; without it, the top one of
    ``target_class`` (or of any class). Raises ``ValueError`` naming the field when Grad-CAM has no box."""
    from pytorch_grad_cam import EigenCAM, GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    if method is not None and method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    image = image.convert("RGB")
    model = loaded.model
    if target_layer:
        described, layers = target_layer, [find_layer(model, target_layer)]
    else:
        described, layers = detector_layers(model)
    target = resolve_target(loaded, target_class)
    label = None if target is None else target + 1  # detectors' labels count from 1
    x = pil_to_tensor(image).float().div(255).unsqueeze(0)
    with loaded.lock:
        with torch.no_grad():
            found = {k: v.detach().cpu() for k, v in model(x)[0].items()}
        chosen = _pick(found, label, box)
        method = method or ("gradcam" if chosen is not None else "eigencam")
        if method == "gradcam":
            if chosen is None:
                of = f" of {target_class}" if label else ""
                what = "the box given" if box is not None else f"a box{of}"
                raise ValueError(
                    f"target_box: the model finds no detection matching {what} on this picture; "
                    "EigenCAM (method=eigencam) shows where it looks without one"
                )
            chosen_box = found["boxes"][chosen].numpy()
            targets: list[Any] = [
                FasterRCNNBoxScoreTarget(labels=[int(found["labels"][chosen])], bounding_boxes=[chosen_box])
            ]
            explainer: Any = GradCAM(model=model, target_layers=layers)
            x = x.requires_grad_(True)  # the weights are frozen: the gradient reaches the maps through x
        else:
            targets, explainer = [_Nothing()], EigenCAM(model=model, target_layers=layers)
        with explainer as cam:
            heat = np.nan_to_num(cam(input_tensor=x, targets=targets)[0].astype(np.float32))
        if method == "gradcam" and not heat.max() > BLANK:
            # The box's score has no positive gradient at these maps (it happens with SSD's heads): a
            # blank map would read as "looked at nothing", so the picture's EigenCAM is shown, and said.
            method, described = "eigencam", f"{described}; Grad-CAM of the box was zero everywhere"
            with EigenCAM(model=model, target_layers=layers) as cam:
                heat = np.nan_to_num(cam(input_tensor=x.detach(), targets=[_Nothing()])[0].astype(np.float32))
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    overlay = show_cam_on_image(rgb, np.clip(heat, 0.0, 1.0), use_rgb=True, image_weight=image_weight)
    top = int(found["scores"].argmax()) if len(found["scores"]) else None
    index = int(found["labels"][chosen]) - 1 if chosen is not None else (target if target is not None else 0)
    return CamOutput(
        overlay=Image.fromarray(overlay),
        target_index=index,
        target_class=loaded.class_names[index],
        score=float(found["scores"][chosen]) if chosen is not None else 0.0,
        predicted_index=int(found["labels"][top]) - 1 if top is not None else index,
        target_layer=f"{method}: {described}",
        heatmap=heat,
        box=[round(float(v), 2) for v in found["boxes"][chosen]] if chosen is not None else None,
        method=method,
    )
