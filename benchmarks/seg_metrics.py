"""The studio's segmentation metrics (one ``torch.bincount`` confusion matrix) against the numpy
intersect-and-union method (mmseg's ``intersect_and_union`` with numpy histograms) on 200 masks of 512²:
same mIoU / mDice, and the ratio of times (target: at most 0.5).

    .venv/bin/python benchmarks/seg_metrics.py [--images 200] [--size 512] [--classes 21] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from worker.tasks.segmentation.metrics import confusion_matrix, scores

IGNORE = 255


def numpy_method(preds: list[np.ndarray], labels: list[np.ndarray], n: int) -> tuple[float, float]:
    """mmseg's per-image intersect-and-union, summed, then mIoU and mDice (nan-means)."""
    inter = np.zeros(n)
    area_p = np.zeros(n)
    area_t = np.zeros(n)
    for pred, label in zip(preds, labels, strict=True):
        keep = label != IGNORE
        p, t = pred[keep], label[keep]
        hit = p[p == t]
        inter += np.histogram(hit, bins=n, range=(0, n - 1))[0]
        area_p += np.histogram(p, bins=n, range=(0, n - 1))[0]
        area_t += np.histogram(t, bins=n, range=(0, n - 1))[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_p + area_t - inter)
        dice = 2 * inter / (area_p + area_t)
    return float(np.nanmean(iou)), float(np.nanmean(dice))


def studio_method(preds: list[torch.Tensor], labels: list[torch.Tensor], n: int) -> tuple[float, float]:
    cm = torch.zeros(n, n, dtype=torch.int64)
    for pred, label in zip(preds, labels, strict=True):
        cm += confusion_matrix(pred, label, n)
    s = scores(cm)
    return float(s["iou"].nanmean()), float(s["dice"].nanmean())


def best_time(fn: Callable[[], tuple[float, float]], repeat: int) -> tuple[float, tuple[float, float]]:
    best, out = float("inf"), (0.0, 0.0)
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, size = args.classes, args.size
    labels, preds = [], []
    for _ in range(args.images):
        label = rng.integers(0, n, (size, size), dtype=np.uint8)
        label[rng.random((size, size)) < 0.05] = IGNORE
        noise = rng.integers(0, n, (size, size), dtype=np.uint8)
        pred = np.where(rng.random((size, size)) < 0.7, np.where(label == IGNORE, 0, label), noise)
        labels.append(label)
        preds.append(pred.astype(np.uint8))
    t_labels = [torch.from_numpy(x) for x in labels]
    t_preds = [torch.from_numpy(x) for x in preds]

    t_numpy, (miou_np, mdice_np) = best_time(lambda: numpy_method(preds, labels, n), args.repeat)
    t_studio, (miou, mdice) = best_time(lambda: studio_method(t_preds, t_labels, n), args.repeat)
    same = abs(miou - miou_np) < 1e-12 and abs(mdice - mdice_np) < 1e-12
    print(f"{args.images} masks of {size}x{size}, {n} classes, {torch.get_num_threads()} torch threads")
    print(f"numpy intersect-and-union: {t_numpy:.3f}s  mIoU {miou_np:.10f}  mDice {mdice_np:.10f}")
    print(f"studio bincount:           {t_studio:.3f}s  mIoU {miou:.10f}  mDice {mdice:.10f}")
    print(f"same numbers: {same}; time ratio studio/numpy = {t_studio / t_numpy:.3f} (target <= 0.5)")
    if not same:
        raise SystemExit("the two methods disagree")


if __name__ == "__main__":
    main()
