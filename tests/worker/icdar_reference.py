"""A plain implementation of the ICDAR 2015 text-localisation protocol, written as the official
``script.py`` is (per image: polygons read, the don't-care test per detection and per don't-care word,
the full IoU matrix with ``Polygon.intersection().area``, the greedy index-order loop). The metric tests
check the studio's vectorised metric against it, and ``benchmarks/hmean.py`` times the two."""

from __future__ import annotations

from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import unary_union
from shapely.validation import make_valid

# One image: its words' polygons, which are don't-care, the detections' polygons, their scores.
Image = tuple[list[Any], list[bool], list[Any], list[float]]


def reference_polygon(points: Any) -> Any:
    """A shapely polygon, repaired as the studio does (``make_valid``, its polygonal part only)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) < 3:
        return Polygon()
    p = Polygon(pts)
    if p.is_valid:
        return p
    fixed = make_valid(p)
    if isinstance(fixed, Polygon | MultiPolygon):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else unary_union(parts)


def reference_counts(images: list[Image], threshold: float) -> tuple[int, int, int]:
    """(matched, care words, care detections) over ``images`` for the detections kept at ``threshold``."""
    matched_sum = care_gt = care_det = 0
    for gts, ignore, dets, scores in images:
        gt_pols = [reference_polygon(g) for g in gts]
        det_pols = [reference_polygon(d) for d, s in zip(dets, scores, strict=True) if s >= threshold]
        dont_care_gt = [k for k, flag in enumerate(ignore) if flag]
        dont_care_det = []
        for n, det in enumerate(det_pols):
            for k in dont_care_gt:
                inter = gt_pols[k].intersection(det).area
                share = 0 if det.area == 0 else inter / det.area
                if share > 0.5:
                    dont_care_det.append(n)
                    break
        iou = np.zeros((len(gt_pols), len(det_pols)))
        for g, pg in enumerate(gt_pols):
            for d, pd in enumerate(det_pols):
                inter = pd.intersection(pg).area
                union = pd.area + pg.area - inter
                iou[g, d] = 0 if union == 0 else inter / union
        gt_used = np.zeros(len(gt_pols), bool)
        det_used = np.zeros(len(det_pols), bool)
        for g in range(len(gt_pols)):
            for d in range(len(det_pols)):
                if gt_used[g] or det_used[d] or g in dont_care_gt or d in dont_care_det:
                    continue
                if iou[g, d] > 0.5:
                    gt_used[g] = det_used[d] = True
                    matched_sum += 1
        care_gt += len(gt_pols) - len(dont_care_gt)
        care_det += len(det_pols) - len(dont_care_det)
    return matched_sum, care_gt, care_det
