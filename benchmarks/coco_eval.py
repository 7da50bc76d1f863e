"""The studio's COCO evaluation (``worker.tasks.detection.metrics.coco_evaluate``, faster-coco-eval) against
pycocotools on the same files: 500 images x 100 detections by default, the twelve numbers side by side
(they must be identical) and the ratio of times (target: at most 0.25).

    .venv/bin/python benchmarks/coco_eval.py [--images 500] [--detections 100] [--iou-type bbox] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from worker.tasks.detection.metrics import COCO_NUMBERS, coco_evaluate

SIZE = 640


def _rle(box: list[float]) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    m = np.zeros((SIZE, SIZE), dtype=np.uint8, order="F")
    x, y, w, h = (int(v) for v in box)
    m[y : y + max(1, h), x : x + max(1, w)] = 1
    r = mask_utils.encode(m)
    return {"size": r["size"], "counts": r["counts"].decode()}


def make_files(
    folder: Path, images: int, detections: int, classes: int, segm: bool, seed: int
) -> tuple[Path, Path]:
    """A COCO ground truth (1-15 objects per image, 5% crowd) and results: ``detections`` per image, a
    third of them near a true object (so AP is neither 0 nor 1), the rest anywhere."""
    rng = random.Random(seed)
    gt: dict[str, Any] = {
        "images": [{"id": i + 1, "width": SIZE, "height": SIZE} for i in range(images)],
        "categories": [{"id": c + 1, "name": f"class{c + 1}"} for c in range(classes)],
        "annotations": [],
    }
    results: list[dict[str, Any]] = []
    for i in range(images):
        objects = []
        for _ in range(rng.randint(1, 15)):
            w, h = rng.uniform(8, 300), rng.uniform(8, 300)
            box = [rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h), w, h]
            ann = {
                "id": len(gt["annotations"]) + 1,
                "image_id": i + 1,
                "category_id": rng.randint(1, classes),
                "bbox": box,
                "area": w * h,
                "iscrowd": int(rng.random() < 0.05),
            }
            if segm:
                ann["segmentation"] = _rle(box)
            gt["annotations"].append(ann)
            objects.append(ann)
        for d in range(detections):
            if d % 3 == 0:
                near = rng.choice(objects)
                box = [v + rng.gauss(0, 0.08 * near["bbox"][2 + k % 2]) for k, v in enumerate(near["bbox"])]
                box[2], box[3] = max(2.0, box[2]), max(2.0, box[3])
                category = near["category_id"] if rng.random() < 0.8 else rng.randint(1, classes)
            else:
                w, h = rng.uniform(8, 300), rng.uniform(8, 300)
                box = [rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h), w, h]
                category = rng.randint(1, classes)
            det = {"image_id": i + 1, "category_id": category, "bbox": box, "score": rng.random()}
            if segm:
                det["segmentation"] = _rle([max(0.0, v) for v in box])
            results.append(det)
    gt_path, dt_path = folder / "instances.json", folder / "results.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    return gt_path, dt_path


def studio(gt_path: Path, dt_path: Path, iou_type: str) -> list[float]:
    return coco_evaluate(gt_path, dt_path, iou_type).stats


def reference(gt_path: Path, dt_path: Path, iou_type: str) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(str(dt_path)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def best_time(fn: Any, repeat: int, *args: Any) -> tuple[float, list[float]]:
    best, out = float("inf"), []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--detections", type=int, default=100, help="per image")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--iou-type", choices=["bbox", "segm"], default="bbox")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, dt_path = make_files(
            Path(tmp), args.images, args.detections, args.classes, args.iou_type == "segm", seed=0
        )
        t_ref, ref = best_time(reference, args.repeat, gt_path, dt_path, args.iou_type)
        t_ours, ours = best_time(studio, args.repeat, gt_path, dt_path, args.iou_type)
    print(
        f"COCO {args.iou_type} evaluation: {args.images} images x {args.detections} detections, "
        f"best of {args.repeat}"
    )
    print(f"{'':8} {'studio':>10} {'pycocotools':>12}")
    # Identical up to the order of float additions (differences of 1e-17 where they sum in another order).
    for name, a, b in zip(COCO_NUMBERS, ours, ref, strict=True):
        print(f"{name:8} {a:10.6f} {b:12.6f}{'' if abs(a - b) <= 1e-12 else '   DIFFERENT'}")
    same = all(abs(a - b) <= 1e-12 for a, b in zip(ours, ref, strict=True))
    print(
        f"time: studio {t_ours:.3f}s, pycocotools {t_ref:.3f}s, ratio {t_ours / t_ref:.3f} (target <= 0.25)"
    )
    print("numbers: identical (to 1e-12)" if same else "numbers: DIFFERENT")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
