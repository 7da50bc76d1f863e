"""The studio's ICDAR 2015 text-localisation metric (``worker.tasks.text_detection.metrics``: the
threshold-independent work done once per image with vectorised shapely, then only the greedy matching
per score threshold) against a straightforward implementation of the same protocol (the official
``script.py`` loops: per threshold, per image, per pair ``Polygon.intersection().area``) on a seeded
synthetic split: 500 images x 20 words (rotated rectangles and irregular quadrilaterals, 10 %
don't-care) and about 22 detections each (jittered copies, merged and split words, false positives;
random scores, drawn higher for good detections than for bad ones). Both produce the whole
precision/recall curve (19 thresholds); they must give the same precision, recall and hmean at every
threshold. Reports median times over the repeats and their ratio (target: at most 0.5).

    .venv/bin/python benchmarks/hmean.py [--images 500] [--words 20] [--batch 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.worker.icdar_reference import reference_counts
from worker.tasks.text_detection.metrics import TextDetectionMetrics

WIDTH, HEIGHT = 1280, 720
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2).tolist()
Image = tuple[list[np.ndarray], list[bool], list[np.ndarray], list[float]]


def _quad(rng: np.random.Generator, irregular: bool) -> np.ndarray:
    """A word: a rotated rectangle, or with ``irregular`` a quadrilateral with jittered corners."""
    w, h = rng.uniform(30, 160), rng.uniform(12, 40)
    cx, cy = rng.uniform(w / 2, WIDTH - w / 2), rng.uniform(h / 2, HEIGHT - h / 2)
    a = rng.normal(0, 0.3)
    c, s = np.cos(a), np.sin(a)
    pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    if irregular:
        pts += rng.uniform(-0.15, 0.15, (4, 2)) * [w, h]
    return pts @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _bounds_box(pts: np.ndarray) -> np.ndarray:
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def make_split(images: int, words: int, seed: int) -> list[Image]:
    """Ground truth and detections per image. Detections: most words found once with jitter, some
    twice (a duplicate), some split in two halves, a neighbouring pair merged into one box, a few
    missed, random false positives and the odd self-intersecting quadrilateral. Scores are random, drawn
    from Beta laws that put good detections higher than bad ones, so the curve peaks inside."""
    rng = np.random.default_rng(seed)
    split: list[Image] = []
    for _ in range(images):
        gts = [_quad(rng, irregular=rng.random() < 0.3) for _ in range(words)]
        ignore = [bool(rng.random() < 0.1) for _ in gts]
        dets: list[np.ndarray] = []
        scores: list[float] = []
        for k, g in enumerate(gts):
            r = rng.random()
            size = np.ptp(g, axis=0)
            if r < 0.08:  # missed
                continue
            if r < 0.14:  # split into two halves along its length
                mid = (g[0] + g[1]) / 2, (g[3] + g[2]) / 2
                dets.append(np.array([g[0], mid[0], mid[1], g[3]]))
                dets.append(np.array([mid[0], g[1], g[2], mid[1]]))
                scores += [rng.beta(2, 3), rng.beta(2, 3)]
                continue
            if r < 0.19 and k + 1 < len(gts):  # merged with the next word
                dets.append(_bounds_box(np.vstack([g, gts[k + 1]])))
                scores.append(rng.beta(3, 3))
                continue
            dets.append(g + rng.normal(0, 0.06, (4, 2)) * size)
            scores.append(rng.beta(5, 2))
            if r > 0.93:  # a duplicate
                dets.append(g + rng.normal(0, 0.1, (4, 2)) * size)
                scores.append(rng.beta(2, 3))
        for _ in range(rng.integers(1, 4)):
            dets.append(_quad(rng, irregular=True))
            scores.append(rng.beta(2, 4))
        if rng.random() < 0.05:
            dets.append(rng.uniform(0, [WIDTH, HEIGHT], (4, 2)))  # usually a bow-tie
            scores.append(rng.beta(2, 4))
        order = rng.permutation(len(dets))
        split.append((gts, ignore, [dets[k] for k in order], [float(scores[k]) for k in order]))
    return split


def straightforward(split: list[Image], thresholds: list[float]) -> list[tuple[float, float, float]]:
    """The official script run once per threshold on the detections kept at it
    (``tests/worker/icdar_reference.py``, the reference the metric's tests check against)."""
    curve = []
    for t in thresholds:
        matched_sum, care_gt, care_det = reference_counts(split, t)
        recall = 0.0 if care_gt == 0 else matched_sum / care_gt
        precision = 0.0 if care_det == 0 else matched_sum / care_det
        hmean = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
        curve.append((precision, recall, hmean))
    return curve


def studio(split: list[Image], batch: int) -> list[tuple[float, float, float]]:
    """``TextDetectionMetrics`` fed batch by batch, as the engine's Evaluator does, then ``compute()``."""
    metrics = TextDetectionMetrics(score_threshold=0.5)
    for start in range(0, len(split), batch):
        part = split[start : start + batch]
        metrics.update(
            [{"polygons": d, "scores": s} for _, _, d, s in part],
            [{"polygons": g, "ignore": i, "image_id": start + k} for k, (g, i, _, _) in enumerate(part)],
        )
    curve = metrics.compute()["pr_curve"]
    assert curve["thresholds"] == THRESHOLDS
    return list(zip(curve["precision"], curve["recall"], curve["hmean"], strict=True))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    split = make_split(args.images, args.words, args.seed)
    n_det = sum(len(d) for _, _, d, _ in split)
    n_dc = sum(sum(i) for _, i, _, _ in split)

    t_studio, ours = timed(lambda: studio(split, args.batch), args.repeat)
    t_plain, theirs = timed(lambda: straightforward(split, THRESHOLDS), args.repeat)
    same = ours == theirs
    med_s, med_p = statistics.median(t_studio), statistics.median(t_plain)

    print(
        f"{args.images} images, {args.images * args.words} words ({n_dc} don't-care), {n_det} detections, "
        f"{len(THRESHOLDS)} thresholds, {args.repeat} repeats"
    )
    print(f"{'method':<36}{'median s':>10}{'min s':>10}{'hmean@0.5':>12}")
    at = THRESHOLDS.index(0.5)
    for name, times, curve in (
        ("studio TextDetectionMetrics", t_studio, ours),
        ("straightforward per-pair shapely", t_plain, theirs),
    ):
        print(f"{name:<36}{statistics.median(times):>10.3f}{min(times):>10.3f}{curve[at][2]:>12.6f}")
    best = max(range(len(THRESHOLDS)), key=lambda k: (ours[k][2], -k))
    print(f"best threshold on the curve: {THRESHOLDS[best]} (hmean {ours[best][2]:.6f})")
    print(f"same numbers: {'yes' if same else 'no'}")
    print(f"time ratio studio/straightforward = {med_s / med_p:.4f} (target <= 0.5)")
    if not same:
        for t, a, b in zip(THRESHOLDS, ours, theirs, strict=True):
            if a != b:
                print(f"  threshold {t}: studio {a} vs straightforward {b}")
        raise SystemExit("the two implementations disagree")


if __name__ == "__main__":
    main()
