"""Class activation maps of detectors: EigenCAM of the picture for every detector family the studio builds
(two-stage R-CNN on a ResNet or MobileNetV3 FPN, one-stage RetinaNet and FCOS, SSDlite, Deformable
DETR), each a map of the picture's own size; Grad-CAM of one box where the model finds one, and a clear
error naming the box where it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from worker.models import LoadedModel
from worker.tasks.detection.cam import detection_cam, detector_layers
from worker.zoo import build_model

SMALL = {"min_size": 96, "max_size": 128}
FAMILIES: dict[str, dict[str, Any]] = {
    "fasterrcnn_mobilenet_v3_large_fpn": {**SMALL, "fpn_channels": 32, "box_head_size": 64},
    "maskrcnn_mobilenet_v3_large_fpn": {
        **SMALL,
        "fpn_channels": 32,
        "box_head_size": 64,
        "mask_head_channels": 16,
        "mask_head_layers": 1,
    },
    "fasterrcnn_resnet50_fpn_v2": SMALL,
    "retinanet_resnet50_fpn_v2": SMALL,
    "fcos_resnet50_fpn": SMALL,
    "ssdlite320_mobilenet_v3_large": {},
    "deformable_detr": {
        **SMALL,
        "backbone": "resnet18",
        "d_model": 32,
        "num_queries": 10,
        "encoder_layers": 1,
        "decoder_layers": 2,
    },
}


def _loaded(architecture: str) -> LoadedModel:
    from backend.specs.catalog import get_entry

    torch.manual_seed(0)
    model = build_model(architecture, 2, FAMILIES[architecture]).eval().requires_grad_(False)
    return LoadedModel(
        model=model,
        architecture=architecture,
        task=str(get_entry(architecture).task),
        class_names=["box", "disc"],
        input_size=96,
        normalize={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        options=FAMILIES[architecture],
        path=Path("model.pt"),
    )


def _picture() -> Image.Image:
    img = Image.new("RGB", (120, 90), (200, 200, 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, 50, 60), fill=(200, 30, 30))
    draw.ellipse((70, 30, 110, 70), fill=(30, 30, 200))
    return img


@pytest.mark.parametrize("architecture", list(FAMILIES))
def test_every_detector_family_gets_a_map_of_the_pictures_size(architecture: str) -> None:
    loaded = _loaded(architecture)
    described, layers = detector_layers(loaded.model)
    assert layers, described
    picture = _picture()
    out = detection_cam(loaded, picture, method="eigencam")
    assert out.method == "eigencam" and out.overlay.size == picture.size
    assert out.heatmap.shape == (picture.height, picture.width)
    assert np.isfinite(out.heatmap).all() and out.heatmap.max() > 0  # a real map, not a blank one
    assert out.target_layer.startswith("eigencam: ")

    # Grad-CAM of one box: the model's top detection, or a clear refusal when it finds none.
    with torch.no_grad():
        found = loaded.model(torch.zeros(1, 3, 90, 120) + 0.5)[0]
    try:
        box_cam = detection_cam(loaded, picture, method="gradcam")
    except ValueError as exc:
        assert str(exc).startswith("target_box: the model finds no detection"), exc
    else:
        assert box_cam.box is not None and len(box_cam.box) == 4
        # Grad-CAM of the box, or (a score with no gradient at the maps) the picture's EigenCAM, said so.
        assert box_cam.method == "gradcam" or "Grad-CAM of the box was zero" in box_cam.target_layer
        assert box_cam.heatmap.max() > 0.5
        assert box_cam.heatmap.shape == (picture.height, picture.width)
        # The same box asked for by its coordinates gives the same map.
        again = detection_cam(loaded, picture, box=box_cam.box, method="gradcam")
        assert np.allclose(again.heatmap, box_cam.heatmap, atol=1e-5)
    assert isinstance(found, dict)


def test_a_box_nothing_matches_is_refused_by_name() -> None:
    loaded = _loaded("fasterrcnn_mobilenet_v3_large_fpn")
    with pytest.raises(ValueError, match=r"^target_box: the model finds no detection matching the box given"):
        detection_cam(loaded, _picture(), box=[0, 0, 1, 1], method="gradcam")
    with pytest.raises(ValueError, match=r"^method: 'smooth'"):
        detection_cam(loaded, _picture(), method="smooth")
    with pytest.raises(ValueError, match=r"^target_layer: .* has no module 'nowhere'"):
        detection_cam(loaded, _picture(), target_layer="nowhere")
