"""DBNet training targets from word polygons: the shrunk text kernels, the don't-care mask, the threshold
map and its mask — the reference repo's MakeShrinkMap and MakeBorderMap, mmocr's ``DBNetTargets``.

- ``gt``: each word shrunk by D = A (1 - r^2) / L (pyclipper offset, r = ``shrink_ratio``) and filled with 1.
- ``mask``: 0 over don't-care words (ICDAR's ``###``), words whose short side is under ``min_side`` pixels and
  words the shrink makes vanish — the probability and binary losses skip those pixels — else 1.
- ``thresh_map``: inside each word grown by D, 1 - distance-to-the-word's-border / D (clipped to [0, 1]),
  the maximum over words, scaled to [``thresh_min``, ``thresh_max``]; the threshold the model learns is high
  on word borders, which is what separates adjacent words after binarisation.
- ``thresh_mask``: 1 inside the grown words, where the L1 threshold loss is taken.

Polygons partly outside the image are clipped to it geometrically (shapely intersection with the image
rectangle) before shrinking, rather than clamping each vertex as the reference does, which bends rotated
words: the kernel of a cut word then ends half a shrink distance inside the border, as the kernel of a
word that ends there would."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from worker.tasks.text_detection.postprocess import offset_polygon, shrink_distance

# cv2.fillPoly takes fixed-point vertices: coordinates times 2**_FILL_SHIFT keep sub-pixel precision.
_FILL_SHIFT = 4


def fill_polygon(canvas: np.ndarray, points: np.ndarray, value: float) -> None:
    """Fill ``points`` (pixel coordinates, pixel centres at integers) on ``canvas`` in place, sub-pixel
    exact; cv2 clips to the canvas."""
    pts = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2) * (1 << _FILL_SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], value, lineType=cv2.LINE_8, shift=_FILL_SHIFT)


def short_side(points: np.ndarray) -> float:
    """The short side of the polygon's minimum-area rectangle (its thickness, also for rotated words)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)
    if len(pts) < 3:
        return 0.0
    return float(min(cv2.minAreaRect(pts)[1]))


def _polygon_parts(geometry: BaseGeometry) -> list[np.ndarray]:
    parts: list[np.ndarray] = []
    for part in getattr(geometry, "geoms", [geometry]):
        if isinstance(part, Polygon):
            if part.is_empty or part.area <= 0:
                continue
            parts.append(np.asarray(part.exterior.coords, dtype=np.float64)[:-1])
        elif hasattr(part, "geoms"):
            parts.extend(_polygon_parts(part))
    return parts


def valid_polygon(points: np.ndarray) -> BaseGeometry:
    """The polygon as a valid shapely geometry. A self-intersecting quadrilateral is almost always a word
    whose corners were listed out of order, so its convex hull is the word; other invalid polygons are
    repaired by ``shapely.make_valid``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return Polygon()
    poly = Polygon(pts)
    if poly.is_valid:
        return poly
    if len(pts) == 4:
        return shapely.convex_hull(shapely.MultiPoint(pts))
    return shapely.make_valid(poly)


def clip_polygon(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> list[np.ndarray]:
    """The parts of the polygon inside the rectangle [x0, x1] x [y0, y1] (shapely intersection; a concave
    word can fall apart into several). A valid polygon already inside comes back unchanged."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return []
    inside = (
        pts[:, 0].min() >= x0 and pts[:, 0].max() <= x1 and pts[:, 1].min() >= y0 and pts[:, 1].max() <= y1
    )
    if inside:
        poly = Polygon(pts)
        if poly.is_valid and poly.area > 0:
            return [pts]
    return _polygon_parts(valid_polygon(pts).intersection(box(x0, y0, x1, y1)))


def _segment_distances(xs: np.ndarray, ys: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of every grid point to the polygon's border: point-to-segment distances (mmocr's fix of
    the reference's law-of-cosines formula), vectorised over the grid, the running minimum over edges."""
    best = np.full(xs.shape, np.inf, dtype=np.float64)
    ends = np.roll(polygon, -1, axis=0)
    for (ax, ay), (bx, by) in zip(polygon, ends, strict=True):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        if length2 <= 0:
            t = np.zeros_like(xs)
        else:
            t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
        best = np.minimum(best, np.hypot(xs - (ax + t * dx), ys - (ay + t * dy)))
    return best


def _draw_border(polygon: np.ndarray, distance: float, canvas: np.ndarray, mask: np.ndarray) -> None:
    """MakeBorderMap for one word: fill ``mask`` inside the word grown by ``distance`` and raise ``canvas``
    to 1 - border distance / ``distance`` there (computed on the grown word's bounding box only)."""
    grown = offset_polygon(polygon, distance)
    if not grown:
        return
    for piece in grown:
        fill_polygon(mask, piece, 1.0)
    every = np.concatenate(grown)
    height, width = canvas.shape
    x0 = max(0, math.floor(every[:, 0].min()))
    x1 = min(width - 1, math.ceil(every[:, 0].max()))
    y0 = max(0, math.floor(every[:, 1].min()))
    y1 = min(height - 1, math.ceil(every[:, 1].max()))
    if x1 < x0 or y1 < y0:
        return
    xs, ys = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.float64), np.arange(y0, y1 + 1, dtype=np.float64))
    closeness = 1.0 - np.clip(_segment_distances(xs, ys, polygon) / distance, 0.0, 1.0)
    window = canvas[y0 : y1 + 1, x0 : x1 + 1]
    np.maximum(window, closeness.astype(np.float32), out=window)


def db_targets(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    *,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
    min_side: float = 3.0,
) -> dict[str, np.ndarray]:
    """The four DBNet targets (float32 (height, width)) for words ``polygons`` ((N, 2) pixel coordinates)
    with ``ignore`` (don't-care) flags; see the module docstring for what each holds."""
    if len(polygons) != len(ignore):
        raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
    gt = np.zeros((height, width), dtype=np.float32)
    mask = np.ones((height, width), dtype=np.float32)
    canvas = np.zeros((height, width), dtype=np.float32)
    thresh_mask = np.zeros((height, width), dtype=np.float32)
    for points, dont_care in zip(polygons, ignore, strict=True):
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        if dont_care:
            fill_polygon(mask, pts, 0.0)  # cv2 clips to the image; no geometry needed
            continue
        for piece in clip_polygon(pts, 0.0, 0.0, width - 1.0, height - 1.0):
            distance = shrink_distance(piece, shrink_ratio)
            kernels = offset_polygon(piece, -distance) if distance > 0 else []
            if short_side(piece) < min_side or not kernels:
                fill_polygon(mask, piece, 0.0)
                continue
            for kernel in kernels:
                fill_polygon(gt, kernel, 1.0)
            _draw_border(piece, distance, canvas, thresh_mask)
    thresh_map = canvas * (thresh_max - thresh_min) + thresh_min
    return {"gt": gt, "mask": mask, "thresh_map": thresh_map.astype(np.float32), "thresh_mask": thresh_mask}
