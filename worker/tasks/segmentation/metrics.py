"""Segmentation metrics from one confusion matrix counted with ``torch.bincount``: per-class IoU, Dice and
accuracy, mIoU, mDice, mAcc and aAcc, the same numbers as mmseg's intersect-and-union (its classes with
no pixels in label or prediction are NaN and left out of the means). Pixels labelled 255 never count."""

from __future__ import annotations

import math
from typing import Any

import torch

from backend.models.evaluation import Item, Kind

IGNORE_INDEX = 255
WORST_IMAGES = 10


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` int64 counts (rows: true class, columns: predicted) of same-shaped ``pred``, ``target``."""
    n2 = num_classes * num_classes
    # No boolean selection (a copy of every kept pixel): a label outside 0..C-1 (255 above all) puts its
    # pixel at an index >= C*C, which the slice drops. Predictions are always in 0..C-1.
    # The narrowest type that holds 255 * C + C - 1: bincount over int16 is ~10x faster than over int64.
    dtype = torch.int16 if 256 * num_classes <= torch.iinfo(torch.int16).max else torch.int32
    index = target.flatten().to(dtype, copy=True)
    index.mul_(num_classes).add_(pred.flatten())  # in place: one buffer per call, not three
    counts = torch.bincount(index, minlength=n2)[:n2]
    return counts.reshape(num_classes, num_classes)


def scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class ``iou``, ``dice``, ``acc`` (NaN where undefined) and the totals, from a confusion matrix."""
    cm = cm.to(torch.float64)
    intersect = cm.diagonal()
    area_label = cm.sum(1)
    area_pred = cm.sum(0)
    union = area_label + area_pred - intersect
    return {
        "iou": intersect / union,
        "dice": 2 * intersect / (area_label + area_pred),
        "acc": intersect / area_label,
        "aacc": intersect.sum() / area_label.sum(),
        "area_label": area_label,
    }


def _nanmean(values: torch.Tensor) -> float:
    mean = float(values.nanmean()) if values.numel() else math.nan
    return mean


def image_items(image_id: int, cm: torch.Tensor) -> list[Item]:
    """One image's rows of the evaluation: the pixels of each cell of its confusion matrix (true class i
    painted as j), and each class it holds or was painted with, with its IoU and pixel counts there."""
    items = [
        Item(image_id, i, j, float(cm[i, j]), kind=Kind.pixels.value) for i, j in (cm > 0).nonzero().tolist()
    ]
    tp, truth, painted = cm.diagonal(), cm.sum(1), cm.sum(0)
    for c in range(cm.shape[0]):
        t, fn, fp = int(tp[c]), int(truth[c] - tp[c]), int(painted[c] - tp[c])
        if t + fn + fp:
            detail = {"tp": t, "fp": fp, "fn": fn}
            items.append(Item(image_id, c, c, t / (t + fn + fp), kind=Kind.klass.value, detail=detail))
    return items


class SegmentationMetrics:
    """``update(logits, target)`` per batch (logits ``(N, C, H, W)``, target ``(N, H, W)``), ``compute()``
    at the end. ``image_ids`` (the loader's order) names the worst images by their own mIoU."""

    def __init__(
        self,
        class_names: list[str],
        device: torch.device | str = "cpu",
        image_ids: list[int] | None = None,
        keep_items: bool = False,
    ) -> None:
        self.class_names = list(class_names)
        self.n = len(class_names)
        self.device = torch.device(device)
        self.image_ids = image_ids
        self.keep_items = keep_items  # ``items``: each image's part in each cell and class
        self.reset()

    def reset(self) -> None:
        self.cm = torch.zeros(self.n, self.n, dtype=torch.int64, device=self.device)
        self.per_image: list[float] = []
        self.items: list[Item] = []

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pred = logits.argmax(1)
        for p, t in zip(pred, target, strict=True):
            cm = confusion_matrix(p, t, self.n)
            self.cm += cm
            if self.keep_items:
                at = len(self.per_image)
                self.items += image_items(self.image_ids[at] if self.image_ids else at, cm.cpu())
            self.per_image.append(_nanmean(scores(cm)["iou"]))

    def compute(self) -> dict[str, Any]:
        if not self.per_image:
            return {"samples": 0}
        s = scores(self.cm.cpu())
        out: dict[str, Any] = {
            "mIoU": _nanmean(s["iou"]),
            "mDice": _nanmean(s["dice"]),
            "mAcc": _nanmean(s["acc"]),
            "aAcc": float(s["aacc"]),
            "per_class": {
                name: {
                    "iou": float(s["iou"][i]),
                    "dice": float(s["dice"][i]),
                    "acc": float(s["acc"][i]),
                    "pixels": int(s["area_label"][i]),
                }
                for i, name in enumerate(self.class_names)
            },
            "confusion_matrix": self.cm.cpu().tolist(),
            "samples": len(self.per_image),
        }
        ids = self.image_ids or list(range(len(self.per_image)))
        ranked = sorted(
            zip(ids, self.per_image, strict=False), key=lambda p: -math.inf if math.isnan(p[1]) else p[1]
        )
        out["worst_images"] = [{"image_id": i, "iou": v} for i, v in ranked[:WORST_IMAGES]]
        return out
