"""Classification losses from ``LossSpec``. Every loss takes logits ``(N, C)`` and either class indices
``(N,)`` or class probabilities ``(N, C)`` (Mixup/CutMix targets), so one loss serves training and eval."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from backend.tasks.classification import LossSpec


def to_probabilities(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Class indices to (optionally smoothed) one-hot rows; probability rows are smoothed as given."""
    probs = F.one_hot(target.long(), num_classes).float() if target.ndim == 1 else target.float()
    if smoothing > 0:
        probs = probs * (1.0 - smoothing) + smoothing / num_classes
    return probs


class SoftTargetCrossEntropy(nn.Module):
    """Cross-entropy against probability targets: ``-sum_c w_c t_c log p_c``, averaged over the batch."""

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        self.weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        per_class = -target * logp
        if self.weight is not None:
            per_class = per_class * self.weight
        return per_class.sum(1).mean()


class CrossEntropy(nn.Module):
    """Cross-entropy with label smoothing and class weights; probability targets go to the soft version."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight, persistent=False)
        self.weight: torch.Tensor | None
        self.soft = SoftTargetCrossEntropy(weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            loss: torch.Tensor = F.cross_entropy(
                logits, target, weight=self.weight, label_smoothing=self.label_smoothing
            )
            return loss
        soft: torch.Tensor = self.soft(
            logits, to_probabilities(target, self.num_classes, self.label_smoothing)
        )
        return soft


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al. 2017): ``-sum_c a_c t_c (1 - p_c)^gamma log p_c``.

    Class weights play the role of alpha; with gamma 0 and no weights it is cross-entropy."""

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        label_smoothing: float = 0.0,
        weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight, persistent=False)
        self.weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        t = to_probabilities(target, self.num_classes, self.label_smoothing)
        per_class = -t * (1.0 - logp.exp()).pow(self.gamma) * logp
        if self.weight is not None:
            per_class = per_class * self.weight
        return per_class.sum(1).mean()


class L1ProbabilityLoss(nn.Module):
    """L1 distance between softmax probabilities and the (one-hot or mixed) target, summed over classes."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight, persistent=False)
        self.weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = to_probabilities(target, self.num_classes, self.label_smoothing)
        diff = (logits.float().softmax(1) - target).abs()
        if self.weight is not None:
            diff = diff * self.weight
        return diff.sum(1).mean()


def build_loss(spec: LossSpec, num_classes: int) -> nn.Module:
    """The loss ``spec`` names, for ``num_classes`` classes; class weights must have one entry per class."""
    weight: torch.Tensor | None = None
    if spec.class_weights is not None:
        if len(spec.class_weights) != num_classes:
            raise ValueError(
                f"loss.class_weights: {len(spec.class_weights)} weights given, "
                f"the dataset has {num_classes} classes"
            )
        weight = torch.tensor(spec.class_weights, dtype=torch.float32)
    if spec.name == "cross_entropy":
        return CrossEntropy(num_classes, spec.label_smoothing, weight)
    if spec.name == "focal":
        return FocalLoss(num_classes, spec.focal_gamma, spec.label_smoothing, weight)
    if spec.name == "l1":
        return L1ProbabilityLoss(num_classes, spec.label_smoothing, weight)
    raise ValueError(f"loss.name: unknown loss {spec.name!r}")
