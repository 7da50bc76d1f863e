"""Segmentation losses from ``SegLossSpec``: a weighted sum of cross-entropy (class weights), Dice, focal
and Lovász-softmax terms (the last three from segmentation-models-pytorch), all ignoring mask value 255.

The model's output is logits ``(N, C, H, W)``, or ``(main, aux)`` in training when an auxiliary head is
on: the aux loss is added with ``aux_weight``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from backend.tasks.segmentation import SEGMENTATION_IGNORE_INDEX, SegLossSpec

Term = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class WeightedCrossEntropy(nn.Module):
    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        self.weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), target, weight=self.weight, ignore_index=SEGMENTATION_IGNORE_INDEX
        )


def _term(name: str, spec: SegLossSpec, weight: torch.Tensor | None) -> nn.Module:
    from segmentation_models_pytorch import losses

    ignore = SEGMENTATION_IGNORE_INDEX
    if name == "cross_entropy":
        return WeightedCrossEntropy(weight)
    if name == "dice":
        return losses.DiceLoss("multiclass", ignore_index=ignore, from_logits=True)
    if name == "focal":
        return losses.FocalLoss("multiclass", gamma=spec.focal_gamma, ignore_index=ignore)
    if name == "lovasz":
        return losses.LovaszLoss("multiclass", ignore_index=ignore, from_logits=True)
    raise ValueError(f"loss.terms: unknown loss {name!r}")


class SegmentationLoss(nn.Module):
    """``sum_i w_i * term_i(logits, mask)``, plus ``aux_weight`` times the same on an aux output."""

    def __init__(self, spec: SegLossSpec, num_classes: int) -> None:
        super().__init__()
        weight: torch.Tensor | None = None
        if spec.class_weights is not None:
            if len(spec.class_weights) != num_classes:
                raise ValueError(
                    f"loss.class_weights: {len(spec.class_weights)} weights given, the model has "
                    f"{num_classes} outputs (background and the dataset's classes)"
                )
            weight = torch.tensor(spec.class_weights, dtype=torch.float32)
        self.terms = nn.ModuleList(_term(t.name, spec, weight) for t in spec.terms)
        self.weights = [t.weight for t in spec.terms]
        self.aux_weight = spec.aux_weight

    def _one(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        total = logits.new_zeros((), dtype=torch.float32)
        for w, term in zip(self.weights, self.terms, strict=True):
            total = total + w * term(logits.float(), target)
        return total

    def forward(self, output: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
        if isinstance(output, tuple):
            main, *aux = output
            loss = self._one(main, target)
            for extra in aux:
                loss = loss + self.aux_weight * self._one(extra, target)
            return loss
        return self._one(output, target)
