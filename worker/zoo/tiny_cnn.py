"""``tiny_cnn``: the studio's own four-conv CNN, small enough to train on a CPU in seconds."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class TinyCNN(nn.Module):
    """Four 3x3 conv layers in three stages (stride 1, 2, 4), global average pooling, one linear head.

    ``features.4`` (the last stage, two convs at stride 4) is the Grad-CAM layer: it is the last spatial
    map and keeps enough resolution (8x8 at 32 px) for a readable heat map."""

    def __init__(self, num_classes: int, dropout: float = 0.0, width: int = 24) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Sequential(*_conv(3, w)),  # 0
            nn.MaxPool2d(2),  # 1
            nn.Sequential(*_conv(w, 2 * w)),  # 2
            nn.MaxPool2d(2),  # 3
            nn.Sequential(*_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w)),  # 4: CAM layer
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(torch.flatten(self.pool(self.features(x)), 1))
        return logits
