"""Grad-CAM of a text detector: the gradient of its probability map, summed over the pixels it calls
text, weighting a layer's activations (pytorch-grad-cam's ``SemanticSegmentationTarget`` on a one-class
map), so the overlay shows what the backbone and neck looked at to find the words."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from worker.cam import CamOutput, default_layer, find_layer
from worker.models import LoadedModel
from worker.tasks.text_detection.transforms import TextEvalTransform


def text_map_cam(
    loaded: LoadedModel, image: Image.Image, target_layer: str | None = None, *, image_weight: float = 0.5
) -> CamOutput:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    image = image.convert("RGB")
    model = loaded.model
    layer_path = target_layer or default_layer(model, loaded.architecture)
    layer = find_layer(model, layer_path)
    sample = TextEvalTransform(loaded.input_size, loaded.normalize["mean"], loaded.normalize["std"])(image)
    x = sample.image[None].requires_grad_(True)
    # The picture fills the top-left of the padded square, at ``scale`` network pixels per pixel.
    h = max(1, round(image.height * sample.scale))
    w = max(1, round(image.width * sample.scale))
    threshold = float(loaded.inference.get("binary_threshold", 0.3))
    with loaded.lock:
        model.eval()
        with torch.no_grad():
            prob = model(x).float()[0, 0]
        region = (prob >= threshold).float()
        region[h:, :] = 0
        region[:, w:] = 0
        if not bool(region.any()):  # no text found: explain the map as a whole
            region[:h, :w] = 1
        with GradCAM(model=model, target_layers=[layer]) as cam:
            heat = cam(input_tensor=x, targets=[SemanticSegmentationTarget(0, region.numpy())])[0]
    heat = np.nan_to_num(heat[:h, :w].astype(np.float32))
    full = cv2.resize(heat, (image.width, image.height), interpolation=cv2.INTER_LINEAR)
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    overlay = show_cam_on_image(rgb, np.clip(full, 0.0, 1.0), use_rgb=True, image_weight=image_weight)
    inside = region.bool()
    score = float(prob[inside].mean()) if bool(inside.any()) else 0.0
    return CamOutput(
        overlay=Image.fromarray(overlay),
        target_index=0,
        target_class="text",
        score=score,
        predicted_index=0,
        target_layer=layer_path,
        heatmap=full.astype(np.float32),
    )
