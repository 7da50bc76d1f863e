"""DBNet post-processing: the probability map to word polygons, and the polygon offsets that the labels
(``labels.py``) share with it.

The recipe is the one of the DBNet paper (Liao et al., "Real-time Scene Text Detection with Differentiable
Binarization", AAAI 2020) and of its reference ``SegDetectorRepresenter`` / mmocr's ``DBPostprocessor``:
binarise the probability map, take each connected component's contour, score it by the mean probability
inside ("box score fast"), and grow the shrunk kernel back by the unclip distance D' = A' * r' / L'
(A' area, L' perimeter of the kernel). The labels shrink each word by D = A (1 - r^2) / L, so both sides
offset with the same pyclipper call (round joins, as in the paper's Vatti clipping)."""

from __future__ import annotations

import cv2
import numpy as np
import pyclipper

# pyclipper works on integers: coordinates are scaled by this factor so sub-pixel offsets survive, and the
# arc tolerance of the round joins is set in the same units (a tenth of a pixel).
_CLIPPER_SCALE = 256.0
_ARC_TOLERANCE_PX = 0.1
# approxPolyDP tolerance for polygon output, as a share of the contour's perimeter (the reference's 0.01).
_APPROX_EPSILON = 0.01


def polygon_area_perimeter(points: np.ndarray) -> tuple[float, float]:
    """Area (absolute, shoelace) and perimeter of a closed polygon (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0, 0.0
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    perimeter = float(np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1).sum())
    return area, perimeter


def offset_polygon(points: np.ndarray, distance: float) -> list[np.ndarray]:
    """The polygon grown (``distance`` > 0) or shrunk (< 0) by ``distance`` pixels with pyclipper's
    round-joined offset; shrinking may split a concave polygon or make it vanish (an empty list). Each
    piece is a float64 (K, 2) array with at least three points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return []
    offset = pyclipper.PyclipperOffset(2.0, _ARC_TOLERANCE_PX * _CLIPPER_SCALE)
    offset.AddPath(
        np.round(pts * _CLIPPER_SCALE).astype(np.int64).tolist(),
        pyclipper.JT_ROUND,
        pyclipper.ET_CLOSEDPOLYGON,
    )
    paths = offset.Execute(float(distance) * _CLIPPER_SCALE)
    return [np.asarray(p, dtype=np.float64) / _CLIPPER_SCALE for p in paths if len(p) >= 3]


def shrink_distance(points: np.ndarray, shrink_ratio: float) -> float:
    """DBNet's shrink offset D = A (1 - r^2) / L (the paper's Eq. 9); 0 for a degenerate polygon."""
    area, perimeter = polygon_area_perimeter(points)
    if perimeter <= 0:
        return 0.0
    return area * (1.0 - shrink_ratio**2) / perimeter


def shrink(points: np.ndarray, shrink_ratio: float = 0.4) -> list[np.ndarray]:
    """The text kernel: the polygon shrunk by D = A (1 - r^2) / L. Empty when the shrink eats it (a word
    too thin for its length), which the labels mark as don't-care, as MakeShrinkMap does."""
    distance = shrink_distance(points, shrink_ratio)
    if distance <= 0:
        return []
    return offset_polygon(points, -distance)


def unclip(points: np.ndarray, unclip_ratio: float = 1.5) -> list[np.ndarray]:
    """A predicted kernel grown back by D' = A' * r' / L' (the reference's ``unclip``); empty for a
    degenerate kernel (no area)."""
    area, perimeter = polygon_area_perimeter(points)
    if area <= 0 or perimeter <= 0:
        return []
    return offset_polygon(points, area * unclip_ratio / perimeter)


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four corners ordered top-left, top-right, bottom-right, bottom-left (ICDAR 2015's clockwise order),
    the way the reference's ``get_mini_boxes`` orders ``cv2.boxPoints``."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.stack([tl, tr, br, bl]).astype(np.float32)


def min_area_quad(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle around ``points`` (ordered corners) and its short side."""
    rect = cv2.minAreaRect(np.asarray(points, dtype=np.float32).reshape(-1, 1, 2))
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def _mean_inside(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean probability inside ``points`` (the reference's ``box_score_fast``: the polygon filled on its
    bounding-box crop of the map)."""
    height, width = prob.shape
    x0 = int(np.clip(np.floor(points[:, 0].min()), 0, width - 1))
    x1 = int(np.clip(np.ceil(points[:, 0].max()), 0, width - 1))
    y0 = int(np.clip(np.floor(points[:, 1].min()), 0, height - 1))
    y1 = int(np.clip(np.ceil(points[:, 1].max()), 0, height - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = np.round(points - np.array([x0, y0], dtype=np.float64)).astype(np.int32)
    cv2.fillPoly(mask, [shifted.reshape(-1, 1, 2)], 1)
    if not mask.any():
        return 0.0
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _largest(pieces: list[np.ndarray]) -> np.ndarray | None:
    if not pieces:
        return None
    return max(pieces, key=lambda p: polygon_area_perimeter(p)[0])


def polygons_from_prob(
    prob: np.ndarray,
    *,
    bin_thresh: float = 0.3,
    min_score: float = 0.0,
    unclip_ratio: float = 1.5,
    max_candidates: int = 1000,
    min_size: float = 3.0,
    scale: tuple[float, float] = (1.0, 1.0),
    polygon: bool = False,
) -> list[tuple[np.ndarray, float]]:
    """Words in one probability map ``prob`` (H, W) — a leading batch or channel axis of size 1 is
    accepted — as ``(points (K, 2) float32, score)``, best score first.

    Components of ``prob > bin_thresh`` are taken from their outer contours (the largest
    ``max_candidates`` by contour area, the reference's cap); each is scored by the mean probability inside
    its quadrilateral (or its polygon with ``polygon=True``), skipped below ``min_score``, grown back by
    the unclip distance, and reported as the minimum-area rectangle of the grown kernel (ICDAR-style, four
    points from the top-left, clockwise) or as the grown polygon itself. A word whose grown short side is
    under ``min_size`` pixels of the map is dropped: the labels make words that small don't-care, so the
    model is never taught to report them. Points are multiplied by ``scale`` (x, y) to go back to the
    original image; they may lie slightly outside it where the unclip reaches past the border."""
    prob = np.asarray(prob, dtype=np.float32)
    while prob.ndim > 2 and prob.shape[0] == 1:
        prob = prob[0]
    if prob.ndim != 2:
        raise ValueError(f"prob must be one (H, W) map, got shape {prob.shape}")
    bitmap = (prob > bin_thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) > max_candidates:
        areas = np.array([cv2.contourArea(c) for c in contours])
        contours = [contours[i] for i in np.argsort(-areas, kind="stable")[:max_candidates]]
    sx, sy = float(scale[0]), float(scale[1])
    out: list[tuple[np.ndarray, float]] = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(np.float64)
        if polygon:
            approx = cv2.approxPolyDP(contour, _APPROX_EPSILON * cv2.arcLength(contour, True), True)
            kernel = approx.reshape(-1, 2).astype(np.float64)
            if len(kernel) < 4:  # too few corners for a polygon: fall back to the rectangle
                kernel = min_area_quad(points)[0].astype(np.float64)
        else:
            kernel = min_area_quad(points)[0].astype(np.float64)
        score = _mean_inside(prob, kernel)
        if score < min_score:
            continue
        grown = _largest(unclip(kernel, unclip_ratio))
        if grown is None:
            continue
        quad, short_side = min_area_quad(grown)
        if short_side < min_size:
            continue
        result = grown if polygon else quad
        result = np.asarray(result, dtype=np.float32) * np.array([sx, sy], dtype=np.float32)
        out.append((result.astype(np.float32), score))
    out.sort(key=lambda item: -item[1])
    return out
