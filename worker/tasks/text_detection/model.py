"""DBNet (Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020) and
DBNet++'s adaptive scale fusion (Liao et al., TPAMI 2022) on torchvision backbones.

Backbone features at strides 4, 8, 16 and 32 go through the DBNet FPN (the reference ``SegDetector``'s
neck, mmocr's ``FPNC``): 1x1 laterals to ``neck_channels``, top-down nearest upsampling and addition, a 3x3
smoothing conv per level to ``neck_channels // 4``, every level upsampled to stride 4 and concatenated back
to ``neck_channels``. With ``asf=True`` the concatenation is re-weighted per level by mmocr's
``ScaleChannelSpatialAttention`` (DBNet++). Two heads (conv3x3-BN-ReLU, deconv x2, BN-ReLU, deconv x2)
predict the probability map P and the threshold map T at the input resolution; training also returns the
approximate binary map B = sigmoid(k (P - T)), k = 50 (the paper's Eq. 2).

In ``train()`` mode ``forward`` returns ``prob_logits`` (so the loss can take a numerically stable BCE on
logits), ``prob``, ``thresh`` and ``binary``; in ``eval()`` mode only ``prob`` — the threshold branch is not
even run, which keeps inference and exported graphs light (DBNet's threshold map is a training aid)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_large")
# torchvision's ImageNet weights per backbone (the same enum members the studio's catalog names).
BACKBONE_WEIGHTS = {
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V2",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
}
# MobileNetV3-Large ``features`` split after blocks 3, 6, 12 and 16: strides 4, 8, 16, 32 (doctr's choice).
_MOBILENET_CUTS = (4, 7, 13, 17)
DB_K = 50.0  # the amplifying factor of differentiable binarisation


class Backbone(nn.Module):
    """A torchvision classifier cut into four stages whose outputs are at strides 4, 8, 16 and 32."""

    def __init__(self, name: str, pretrained: bool = False) -> None:
        super().__init__()
        import torchvision.models as tvm

        if name not in BACKBONES:
            raise ValueError(f"unknown DBNet backbone {name!r}; choose one of {', '.join(BACKBONES)}")
        net: nn.Module = getattr(tvm, name)(weights=None)
        if pretrained:
            # The studio's rule for ImageNet weights: torchvision's file from the local hub cache, never a
            # download (worker.zoo raises a clear error when the file is not there).
            from worker.zoo import pretrained_state

            net.load_state_dict(pretrained_state(BACKBONE_WEIGHTS[name]))
        if name.startswith("resnet"):
            stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)  # type: ignore[arg-type]
            self.stages = nn.ModuleList(
                [nn.Sequential(stem, net.layer1), net.layer2, net.layer3, net.layer4]  # type: ignore[list-item]
            )
        else:
            features: nn.Sequential = net.features  # type: ignore[assignment]
            bounds = (0, *_MOBILENET_CUTS)
            self.stages = nn.ModuleList(
                [features[a:b] for a, b in itertools.pairwise(bounds)]  # type: ignore[misc]
            )
        with torch.no_grad():
            was_training = self.training
            self.eval()
            probe = self(torch.zeros(1, 3, 64, 64))
            self.train(was_training)
        self.channels = [int(f.shape[1]) for f in probe]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class ScaleChannelSpatialAttention(nn.Module):
    """DBNet++'s attention (mmocr's ``ScaleChannelSpatialAttention``): a channel-wise weighting (global
    pooling, 1x1-ReLU-1x1-sigmoid) added to the features, a spatial weighting of their channel mean
    (3x3-ReLU-1x1-sigmoid) added on top, then one sigmoid weight map per scale."""

    def __init__(self, in_channels: int, hidden: int, n_scales: int) -> None:
        super().__init__()
        self.channel_wise = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, in_channels, 1, bias=False),
            nn.Sigmoid(),
        )
        self.spatial_wise = nn.Sequential(
            nn.Conv2d(1, 1, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(1, 1, 1, bias=False),
            nn.Sigmoid(),
        )
        self.attention_wise = nn.Sequential(nn.Conv2d(in_channels, n_scales, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.channel_wise(x) + x
        out = self.spatial_wise(out.mean(dim=1, keepdim=True)) + out
        return self.attention_wise(out)


class DBNeck(nn.Module):
    """The DBNet FPN over four levels, optionally with DBNet++'s adaptive scale fusion."""

    def __init__(self, in_channels: list[int], channels: int, asf: bool) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"neck_channels must be a multiple of 4, got {channels}")
        level = channels // 4
        self.lateral = nn.ModuleList([nn.Conv2d(c, channels, 1, bias=False) for c in in_channels])
        self.smooth = nn.ModuleList(
            [nn.Conv2d(channels, level, 3, padding=1, bias=False) for _ in in_channels]
        )
        self.asf_conv: nn.Module | None = None
        self.asf_attention: nn.Module | None = None
        if asf:
            self.asf_conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.asf_attention = ScaleChannelSpatialAttention(channels, channels // 4, len(in_channels))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2.0, mode="nearest")
        levels = [conv(t) for conv, t in zip(self.smooth, laterals, strict=True)]
        levels = [levels[0]] + [
            F.interpolate(t, scale_factor=float(2**i), mode="nearest") for i, t in enumerate(levels[1:], 1)
        ]
        fused = torch.cat(levels, dim=1)
        if self.asf_conv is None or self.asf_attention is None:
            return fused
        weights = self.asf_attention(self.asf_conv(fused))
        return torch.cat([weights[:, i : i + 1] * t for i, t in enumerate(levels)], dim=1)


def _head(channels: int) -> nn.Sequential:
    """conv3x3-BN-ReLU, deconv x2, BN-ReLU, deconv x2 to one map of logits at the input resolution."""
    mid = channels // 4
    return nn.Sequential(
        nn.Conv2d(channels, mid, 3, padding=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, mid, 2, stride=2),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, 1, 2, stride=2),
    )


class DBNet(nn.Module):
    """Backbone, DB neck, probability and threshold heads; see the module docstring for the outputs."""

    studio_task = "text_detection"

    def __init__(
        self,
        backbone: str = "resnet18",
        *,
        asf: bool = False,
        neck_channels: int = 256,
        pretrained_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.asf = asf
        self.neck_channels = neck_channels
        self.k = DB_K
        self.backbone = Backbone(backbone, pretrained=pretrained_backbone)
        self.neck = DBNeck(self.backbone.channels, neck_channels, asf)
        self.prob_head = _head(neck_channels)
        self.thresh_head = _head(neck_channels)
        self._init_new_layers()

    def _init_new_layers(self) -> None:
        """The reference's ``weights_init`` for the neck and heads (the backbone keeps torchvision's):
        Kaiming-normal convolutions, BN weight 1 and bias 1e-4 — except each head's last deconvolution,
        which starts near zero so that P and T start at 0.5 everywhere. With Kaiming weights there the maps
        start saturated at random (a first balanced BCE of about 3.4 instead of ln 2), and a short run spends
        its first tens of steps only undoing that."""
        for part in (self.neck, self.prob_head, self.thresh_head):
            for m in part.modules():
                if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                    nn.init.kaiming_normal_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.constant_(m.bias, 1e-4)
        for head in (self.prob_head, self.thresh_head):
            last: nn.ConvTranspose2d = head[-1]  # type: ignore[assignment]
            nn.init.normal_(last.weight, std=0.01)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()  # export: shapes are symbolic
        if not tracing and (x.shape[-1] % 32 or x.shape[-2] % 32):
            raise ValueError(f"DBNet needs a height and width that are multiples of 32, got {tuple(x.shape)}")
        fused = self.neck(self.backbone(x))
        logits = self.prob_head(fused)
        prob = torch.sigmoid(logits)
        if not self.training:
            return {"prob": prob}
        thresh = torch.sigmoid(self.thresh_head(fused))
        binary = torch.sigmoid(self.k * (prob - thresh))
        return {"prob_logits": logits, "prob": prob, "thresh": thresh, "binary": binary}


def build_dbnet(
    backbone: str = "resnet18",
    *,
    asf: bool = False,
    neck_channels: int = 256,
    pretrained_backbone: bool = False,
) -> DBNet:
    """A DBNet (DBNet++ with ``asf``) in train mode. ``pretrained_backbone`` loads torchvision's ImageNet
    weights for the backbone (from the torch hub cache, downloaded once); the neck and heads always start
    afresh."""
    return DBNet(backbone, asf=asf, neck_channels=neck_channels, pretrained_backbone=pretrained_backbone)
