"""Classification metrics (torchmetrics): top-1, top-5, per-class precision / recall / F1 and the
confusion matrix, accumulated over batches, returned as a JSON-able dict."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)


class ClassificationMetrics:
    """``update(logits, target)`` per batch, ``compute()`` at the end, ``reset()`` to start again.

    ``compute()`` keys: ``accuracy/top1``, ``accuracy/top5`` (5 or more classes), ``precision/macro``,
    ``recall/macro``, ``f1/macro``, ``per_class`` ({name: {precision, recall, f1, support}}),
    ``confusion_matrix`` (rows: true class, columns: predicted), ``samples``."""

    def __init__(self, class_names: list[str], device: torch.device | str = "cpu") -> None:
        n = len(class_names)
        if n < 2:
            raise ValueError("classification metrics need at least two classes")
        self.class_names = list(class_names)
        kw: dict[str, Any] = {"num_classes": n, "validate_args": False}
        self.top1 = MulticlassAccuracy(top_k=1, average="micro", **kw).to(device)
        self.top5 = MulticlassAccuracy(top_k=5, average="micro", **kw).to(device) if n >= 5 else None
        self.precision = MulticlassPrecision(average=None, **kw).to(device)
        self.recall = MulticlassRecall(average=None, **kw).to(device)
        self.f1 = MulticlassF1Score(average=None, **kw).to(device)
        self.confusion = MulticlassConfusionMatrix(**kw).to(device)
        self.samples = 0

    def _all(self) -> list[Any]:
        return [m for m in (self.top1, self.top5, self.precision, self.recall, self.f1, self.confusion) if m]

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if target.ndim == 2:  # probability targets (Mixup): score against the dominant class
            target = target.argmax(1)
        logits = logits.detach().float()
        preds = logits.argmax(1)
        self.top1.update(logits, target)
        if self.top5 is not None:
            self.top5.update(logits, target)
        for m in (self.precision, self.recall, self.f1, self.confusion):
            m.update(preds, target)
        self.samples += int(target.numel())

    def compute(self) -> dict[str, Any]:
        if self.samples == 0:
            return {"samples": 0}
        cm = self.confusion.compute().cpu()
        precision = self.precision.compute().cpu().tolist()
        recall = self.recall.compute().cpu().tolist()
        f1 = self.f1.compute().cpu().tolist()
        support = cm.sum(1).tolist()
        present = [i for i, s in enumerate(support) if s > 0]  # macro over classes that occur

        def macro(values: list[float]) -> float:
            return float(sum(values[i] for i in present) / len(present)) if present else 0.0

        out: dict[str, Any] = {"accuracy/top1": float(self.top1.compute())}
        if self.top5 is not None:
            out["accuracy/top5"] = float(self.top5.compute())
        out["precision/macro"] = macro(precision)
        out["recall/macro"] = macro(recall)
        out["f1/macro"] = macro(f1)
        out["per_class"] = {
            name: {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": int(support[i])}
            for i, name in enumerate(self.class_names)
        }
        out["confusion_matrix"] = [[int(v) for v in row] for row in cm.tolist()]
        out["samples"] = self.samples
        return out

    def reset(self) -> None:
        for m in self._all():
            m.reset()
        self.samples = 0
