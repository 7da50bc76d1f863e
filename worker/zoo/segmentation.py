"""Semantic segmentation models from the catalog: segmentation-models-pytorch heads on any catalog encoder
and torchvision's FCN / DeepLabV3 / LR-ASPP, all returning logits ``(N, classes, H, W)`` at input size.

Weights are never downloaded (``encoder_weights=None``, ``weights=None``); a run starts from scratch or
from a studio model (``load_from``). Every model carries ``studio_heads``: the module paths whose
weights depend on the number of classes, so ``load_weights`` re-initialises them for other classes."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from backend.specs.catalog import CatalogEntry

# torchvision builders and their class-dependent heads (the aux head only where it is built).
_TV_HEADS = {
    "fcn_resnet50": ("net.classifier.4", "net.aux_classifier.4"),
    "deeplabv3_resnet50": ("net.classifier.4", "net.aux_classifier.4"),
    "deeplabv3_mobilenet_v3_large": ("net.classifier.4", "net.aux_classifier.4"),
    "lraspp_mobilenet_v3_large": ("net.classifier.low_classifier", "net.classifier.high_classifier"),
}


class TorchvisionSegmenter(nn.Module):
    """A torchvision segmentation model as a tensor-in, tensor-out module: ``out`` in eval mode, and
    ``(out, aux)`` in training when the auxiliary head is on (the loss weighs the two)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out: dict[str, torch.Tensor] = self.net(x)
        if self.training and "aux" in out:
            return out["out"], out["aux"]
        return out["out"]


def _build_smp(entry: CatalogEntry, num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    import segmentation_models_pytorch as smp

    builder = getattr(smp, entry.builder)
    kwargs: dict[str, Any] = {
        "encoder_name": options["encoder"],
        "encoder_weights": None,
        "classes": num_classes,
        **entry.fixed,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm/smp notes on unused pretrained settings
        model: nn.Module = builder(**kwargs)
    model.studio_heads = ("segmentation_head",)  # type: ignore[assignment]
    return model


def _build_tv(entry: CatalogEntry, num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    import torchvision.models.segmentation as tvs

    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    if entry.name != "lraspp_mobilenet_v3_large":
        kwargs["aux_loss"] = bool(options.get("aux", False))
    model = TorchvisionSegmenter(getattr(tvs, entry.builder)(**kwargs))
    heads = _TV_HEADS[entry.name]
    model.studio_heads = tuple(  # type: ignore[assignment]
        h for h in heads if _has(model, h)
    )
    return model


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def build_segmentation(entry: CatalogEntry, num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    """The segmentation model of ``entry`` with ``num_classes`` outputs (background included)."""
    if entry.source == "segmentation_models_pytorch":
        return _build_smp(entry, num_classes, options)
    if entry.source == "torchvision":
        return _build_tv(entry, num_classes, options)
    raise ValueError(f"{entry.name}: source {entry.source!r} is not buildable here")
