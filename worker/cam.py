"""Grad-CAM heat maps (pytorch-grad-cam) over the picture a model saw, for CNNs and vision transformers.

The map is computed on the eval crop (``worker.data.eval_transform``: short side to ``size / 0.875``,
centre crop) and drawn back onto the whole original picture, so the overlay has the picture's size and
the area outside the crop, which the model never saw, reads as cold.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from torch import nn

from backend.specs.catalog import get_entry
from worker.data import EVAL_CROP_RATIO
from worker.models import LoadedModel, preprocess

ReshapeTransform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class CamOutput:
    """One explained picture: the overlay (original size), the class explained and its probability."""

    overlay: Image.Image
    target_index: int
    target_class: str
    score: float
    predicted_index: int
    target_layer: str
    heatmap: NDArray[np.float32]  # 0..1 over the eval crop, input_size x input_size
    box: list[float] | None = None  # a detector's: the box explained (x1, y1, x2, y2)
    method: str = "gradcam"  # or "eigencam" (a detector's map of the whole picture)


# ------------------------------------------------------------------------------------------- layers


def default_layer(model: nn.Module, architecture: str) -> str:
    """The catalog's ``cam_layer`` for ``architecture``; failing that the last Conv2d (the classic choice)."""
    try:
        layer: str | None = get_entry(architecture).cam_layer
    except KeyError:
        layer = None
    if layer:
        return layer
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{architecture} has no default Grad-CAM layer; choose one with target_layer")
    return str(convs[-1])


def find_layer(model: nn.Module, path: str) -> nn.Module:
    """The module at ``path`` (e.g. ``layer4`` or ``blocks.11.norm1``); ValueError suggests near names."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; top-level modules: {_top_level(model)}"
        raise ValueError(f"target_layer: {type(model).__name__} has no module {path!r}{hint}") from None


def _top_level(model: nn.Module) -> str:
    return ", ".join(name for name, _ in model.named_children())


# ---------------------------------------------------------------------------- transformer activations


def _vit_layout(model: nn.Module) -> tuple[int, int] | None:
    """``(prefix tokens, patch size)`` for a ViT, or None for anything else.

    timm keeps the class token and any register tokens first (``num_prefix_tokens``; zero when the
    model pools without a class token); torchvision's ``VisionTransformer`` always has exactly one."""
    from torchvision.models.vision_transformer import VisionTransformer as TvViT

    if isinstance(model, TvViT):
        return 1, int(model.patch_size)
    prefix = getattr(model, "num_prefix_tokens", None)
    patch_embed = getattr(model, "patch_embed", None)
    if prefix is not None and patch_embed is not None and hasattr(patch_embed, "patch_size"):
        patch = patch_embed.patch_size
        return int(prefix), int(patch[0] if isinstance(patch, tuple | list) else patch)
    return None


def _channels_last_model(model: nn.Module) -> bool:
    """Models whose feature maps are ``(B, H, W, C)``: torchvision's Swin (and timm's hierarchical ones)."""
    from torchvision.models.swin_transformer import SwinTransformer

    return isinstance(model, SwinTransformer) or type(model).__name__.startswith(
        ("SwinTransformer", "MaxVit")
    )


def reshape_transform_for(model: nn.Module, input_size: int) -> ReshapeTransform:
    """What turns the target layer's activation into ``(B, C, H, W)`` for Grad-CAM (a CNN's maps pass
    through unchanged).

    ViT tokens ``(B, prefix + h*w, C)`` lose their prefix (class/register tokens) and become an
    ``h x w`` grid; Swin's ``(B, H, W, C)`` maps are permuted. A 3-D activation from an unknown model
    is read as tokens with as many leading extras as make the rest a square."""
    vit = _vit_layout(model)
    if vit is not None:
        prefix, patch = vit
        side = input_size // patch
        return lambda t: _tokens_to_grid(t, prefix, side)
    if _channels_last_model(model):
        return _nhwc_or_tokens
    return _generic


def _tokens_to_grid(tokens: torch.Tensor, prefix: int, side: int) -> torch.Tensor:
    if tokens.dim() == 4:  # a layer after the tokens were folded back (e.g. timm's NHWC patch_embed)
        return tokens.permute(0, 3, 1, 2)
    grid = tokens[:, prefix:, :]
    if grid.shape[1] != side * side:
        raise ValueError(
            f"target_layer gives {tokens.shape[1]} tokens, expected {prefix} + {side}x{side}; "
            "choose a transformer block's layer (e.g. blocks.11.norm1)"
        )
    return grid.reshape(grid.shape[0], side, side, grid.shape[2]).permute(0, 3, 1, 2)


def _nhwc_or_tokens(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2) if t.dim() == 4 else _generic(t)


def _generic(t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 3:
        return t
    n = t.shape[1]
    for prefix in range(0, 9):  # class token plus up to 8 registers
        side = math.isqrt(n - prefix)
        if side * side == n - prefix and side > 0:
            return _tokens_to_grid(t, prefix, side)
    raise ValueError(f"target_layer gives {n} tokens, which do not form a square grid")


# --------------------------------------------------------------------------------------------- CAM


def resolve_target(loaded: LoadedModel, target_class: str | int | None) -> int | None:
    """A class name or index as the model's output index; None means the top prediction."""
    if target_class is None:
        return None
    if isinstance(target_class, int):
        if not 0 <= target_class < loaded.num_classes:
            raise ValueError(f"target_class: index {target_class} is outside 0..{loaded.num_classes - 1}")
        return target_class
    if target_class not in loaded.class_names:
        raise ValueError(
            f"target_class: the model has no class {target_class!r} "
            f"(classes: {', '.join(loaded.class_names)})"
        )
    return loaded.class_names.index(target_class)


def grad_cam(
    loaded: LoadedModel,
    image: Image.Image,
    target_class: str | int | None = None,
    target_layer: str | None = None,
    *,
    image_weight: float = 0.5,
) -> CamOutput:
    """Grad-CAM of ``image`` for ``target_class`` (default: the predicted class) at ``target_layer``
    (default: the catalog's ``cam_layer``), drawn over the whole picture."""
    # Imported here: pytorch-grad-cam pulls in scikit-learn (~1.4 s of imports), which a worker that
    # only imports datasets or trains should not pay for at start.
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    image = image.convert("RGB")
    model = loaded.model
    layer_path = target_layer or default_layer(model, loaded.architecture)
    layer = find_layer(model, layer_path)
    target = resolve_target(loaded, target_class)
    # The model's weights are frozen (worker.models); gradients reach the layer through the input.
    x = preprocess(image, loaded.input_size, loaded.normalize).requires_grad_(True)
    with (
        loaded.lock,
        GradCAM(
            model=model,
            target_layers=[layer],
            reshape_transform=reshape_transform_for(model, loaded.input_size),
        ) as cam,
    ):
        targets = None if target is None else [ClassifierOutputTarget(target)]
        heat = cam(input_tensor=x, targets=targets)[0]
        logits = cam.outputs.detach()
    probs = torch.softmax(logits.float(), dim=1)[0]
    predicted = int(probs.argmax())
    index = predicted if target is None else target
    heat = np.nan_to_num(heat.astype(np.float32))  # a layer with no gradient gives 0/0
    return CamOutput(
        overlay=overlay_on_image(image, heat, loaded.input_size, image_weight),
        target_index=index,
        target_class=loaded.class_names[index],
        score=float(probs[index]),
        predicted_index=predicted,
        target_layer=layer_path,
        heatmap=heat,
    )


def eval_crop_box(width: int, height: int, input_size: int) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of the original picture that the eval crop covers."""
    scale = round(input_size / EVAL_CROP_RATIO) / min(width, height)
    side = input_size / scale
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def overlay_on_image(
    image: Image.Image, heat: NDArray[np.float32], input_size: int, image_weight: float = 0.5
) -> Image.Image:
    """The heat map (over the eval crop) placed where the crop came from and blended onto ``image``."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    h, w = rgb.shape[:2]
    left, top, right, bottom = eval_crop_box(w, h, input_size)
    # Map crop pixels to picture pixels with one affine warp: exact for any crop offset or scale.
    sx, sy = (right - left) / heat.shape[1], (bottom - top) / heat.shape[0]
    affine = np.array([[sx, 0, left + 0.5 * sx - 0.5], [0, sy, top + 0.5 * sy - 0.5]], dtype=np.float64)
    full = cv2.warpAffine(heat, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    blended = show_cam_on_image(rgb, np.clip(full, 0.0, 1.0), use_rgb=True, image_weight=image_weight)
    return Image.fromarray(blended)


# ------------------------------------------------------------------------------------ segmentation


def segmentation_cam(
    loaded: LoadedModel,
    image: Image.Image,
    target_class: str | int | None = None,
    target_layer: str | None = None,
    *,
    image_weight: float = 0.5,
) -> CamOutput:
    """Grad-CAM of a segmentation model for one class over the pixels it predicts as that class
    (pytorch-grad-cam's ``SemanticSegmentationTarget``); default class: the largest non-background one.
    The whole picture is the input (at the model's eval scale), so the map covers all of it."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    from worker.tasks.segmentation.inference import _pad_to_multiple
    from worker.tasks.segmentation.predict import image_tensor, settings_of

    image = image.convert("RGB")
    model = loaded.model
    layer_path = target_layer or default_layer(model, loaded.architecture)
    layer = find_layer(model, layer_path)
    x = image_tensor(loaded, image)
    h, w = x.shape[-2:]
    x = _pad_to_multiple(x, settings_of(loaded).multiple).requires_grad_(True)
    with loaded.lock:
        with torch.no_grad():
            logits = model(x).float()
        probs = torch.softmax(logits[0, :, :h, :w], dim=0)
        predicted = probs.argmax(0)
        target = resolve_target(loaded, target_class)
        if target is None:
            counts = torch.bincount(predicted.flatten(), minlength=loaded.num_classes)
            counts[0] = 0 if loaded.num_classes > 1 else counts[0]
            target = int(counts.argmax())
        region = torch.zeros(logits.shape[-2:], dtype=torch.float32)
        region[:h, :w] = (predicted == target).float()
        with GradCAM(model=model, target_layers=[layer]) as cam:
            heat = cam(input_tensor=x, targets=[SemanticSegmentationTarget(target, region.numpy())])[0]
    heat = np.nan_to_num(heat[:h, :w].astype(np.float32))
    full = cv2.resize(heat, (image.width, image.height), interpolation=cv2.INTER_LINEAR)
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    overlay = show_cam_on_image(rgb, np.clip(full, 0.0, 1.0), use_rgb=True, image_weight=image_weight)
    inside = predicted == target
    score = float(probs[target][inside].mean()) if bool(inside.any()) else 0.0
    return CamOutput(
        overlay=Image.fromarray(overlay),
        target_index=target,
        target_class=loaded.class_names[target],
        score=score,
        predicted_index=target,
        target_layer=layer_path,
        heatmap=full.astype(np.float32),
    )
