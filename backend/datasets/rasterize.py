"""Shapes to pixels, drawn exactly as labelme draws them (``labelme.utils.shape_to_mask``): the same
Pillow calls, the same line width and point radius, later shapes painting over earlier ones. VOC masks
made here therefore match ``labelme2voc.py`` up to nothing at all for the same points."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from backend.datasets.canonical import IGNORE_INDEX, Annotation, ShapeType

LINE_WIDTH = 10  # labelme's default for line and linestrip
POINT_SIZE = 5  # labelme's default radius for a point
CIRCLE_VERTICES = 32

Mask = NDArray[np.bool_]


def shape_mask(
    height: int,
    width: int,
    shape_type: ShapeType | str,
    points: Sequence[Sequence[float]],
    mask_rle: dict[str, object] | None = None,
) -> Mask:
    """The pixels a shape covers, as a boolean ``height x width`` array."""
    kind = ShapeType(shape_type)
    if kind == ShapeType.mask:
        if mask_rle is None:
            raise ValueError("a mask shape needs its mask")
        from pycocotools import mask as coco_mask

        return np.asarray(coco_mask.decode(mask_rle), dtype=bool)  # type: ignore[arg-type]
    return np.asarray(_draw(height, width, kind, points), dtype=bool)


def _draw(height: int, width: int, kind: ShapeType, points: Sequence[Sequence[float]]) -> Image.Image:
    """A 0/1 "L" canvas with the shape drawn by labelme's Pillow calls."""
    canvas = Image.new("L", (width, height), 0)
    _paint(ImageDraw.Draw(canvas), kind, points, 1)
    return canvas


def _paint(draw: ImageDraw.ImageDraw, kind: ShapeType, points: Sequence[Sequence[float]], value: int) -> None:
    """Draw one shape with labelme's Pillow calls, outline and fill both ``value``. Pillow draws the fill
    alone when outline and fill are equal, so the pixels set are the same whatever the value."""
    xy = [(float(p[0]), float(p[1])) for p in points]
    if kind == ShapeType.circle:
        (cx, cy), (px, py) = xy[0], xy[1]
        d = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=value, fill=value)
    elif kind == ShapeType.rectangle:
        (x1, y1), (x2, y2) = xy[0], xy[1]
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=value, fill=value)
    elif kind in (ShapeType.line, ShapeType.linestrip):
        draw.line(xy=xy, fill=value, width=LINE_WIDTH)
    elif kind == ShapeType.point:
        cx, cy = xy[0]
        draw.ellipse(
            [cx - POINT_SIZE, cy - POINT_SIZE, cx + POINT_SIZE, cy + POINT_SIZE], outline=value, fill=value
        )
    else:
        draw.polygon(xy=xy, outline=value, fill=value)


def annotation_mask(height: int, width: int, ann: Annotation) -> Mask:
    return shape_mask(height, width, ann.shape_type, ann.points, ann.mask_rle)


def instance_keys(annotations: Iterable[Annotation]) -> list[tuple[int, object] | None]:
    """Each annotation's instance key in labelme's sense, (class, group_id), with ungrouped shapes each
    their own; None for ignore regions, which belong to no instance."""
    return [
        None
        if ann.ignore
        else (ann.category_id, ann.group_id if ann.group_id is not None else ("solo", ann.id))
        for ann in annotations
    ]


def label_images(
    height: int,
    width: int,
    annotations: Sequence[Annotation],
    *,
    instance_mode: str = "I",
    ignore_instance: int = -1,
) -> tuple[Image.Image, Image.Image]:
    """The class ("L") and instance (``instance_mode``) maps of :func:`label_maps` as Pillow images.

    Each shape is painted straight onto the two maps with its value, later shapes over earlier ones:
    the pixels it sets are exactly those of its mask, and the work is that of the shape's own pixels."""
    cls = Image.new("L", (width, height), 0)
    ins = Image.new(instance_mode, (width, height), 0)
    draw_cls, draw_ins = ImageDraw.Draw(cls), ImageDraw.Draw(ins)
    numbers: dict[tuple[int, object], int] = {}
    for ann, key in zip(annotations, instance_keys(annotations), strict=True):
        if key is None:
            values = (IGNORE_INDEX, ignore_instance)
        else:
            values = (ann.category_id, numbers.setdefault(key, len(numbers) + 1))
        kind = ShapeType(ann.shape_type)
        if kind == ShapeType.mask:
            mask = Image.fromarray(shape_mask(height, width, kind, ann.points, ann.mask_rle))
            if mask.size != (width, height):
                raise ValueError(f"mask is {mask.width}x{mask.height}, the image {width}x{height}")
            cls.paste(values[0], None, mask)
            ins.paste(values[1], None, mask)
        else:
            _paint(draw_cls, kind, ann.points, values[0])
            _paint(draw_ins, kind, ann.points, values[1])
    return cls, ins


def label_maps(
    height: int, width: int, annotations: Iterable[Annotation]
) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
    """Class and instance maps as ``labelme.utils.shapes_to_label`` makes them.

    Class values: 0 background, ``category_id`` for classes, 255 for ignore regions. Instances are
    numbered from 1 in order of first appearance of (class, group_id); shapes without a group are each
    their own instance; ignore regions get instance -1 (labelme2voc's value there, VOC's 255)."""
    cls, ins = label_images(height, width, list(annotations))
    return np.array(cls, dtype=np.uint8), np.array(ins, dtype=np.int32)


def circle_polygon(points: Sequence[Sequence[float]], vertices: int = CIRCLE_VERTICES) -> list[float]:
    (cx, cy), (px, py) = points[0], points[1]
    r = math.hypot(cx - px, cy - py)
    flat: list[float] = []
    for k in range(vertices):
        a = 2 * math.pi * k / vertices
        flat += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return flat


def shape_polygon(shape_type: ShapeType | str, points: Sequence[Sequence[float]]) -> list[float]:
    """The shape's outline as a flat COCO polygon (rectangles as 4 corners, circles as 32 vertices);
    empty for shapes without an area outline (points, lines)."""
    kind = ShapeType(shape_type)
    if kind == ShapeType.circle:
        return circle_polygon(points)
    if kind == ShapeType.rectangle:
        (x1, y1), (x2, y2) = points[0], points[1]
        x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
        return [x1, y1, x2, y1, x2, y2, x1, y2]
    if kind == ShapeType.polygon:
        return [float(c) for p in points for c in p[:2]]
    return []


def clip_polygon(flat: Sequence[float], width: int, height: int) -> list[float]:
    """Vertices clamped into the image (what COCO's ``segmentation`` stores)."""
    out: list[float] = []
    for i in range(0, len(flat), 2):
        out += [min(max(float(flat[i]), 0.0), float(width)), min(max(float(flat[i + 1]), 0.0), float(height))]
    return out


def mask_bbox(mask: Mask, offset: tuple[int, int] = (0, 0)) -> list[float]:
    """``[x, y, w, h]`` of a mask's pixels (zeros for an empty mask), shifted by ``offset`` (x, y)."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = float(cols[0] + offset[0]), float(rows[0] + offset[1])
    return [x0, y0, float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _window(
    height: int, width: int, shape_type: ShapeType, points: Sequence[Sequence[float]]
) -> tuple[int, ...]:
    """The part of the image a shape can touch: its extent plus the pen's reach, clipped to the image."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    if shape_type == ShapeType.circle:
        r = math.hypot(xs[0] - xs[1], ys[0] - ys[1])
        xs, ys = [xs[0] - r, xs[0] + r], [ys[0] - r, ys[0] + r]
    pad = {ShapeType.line: LINE_WIDTH, ShapeType.linestrip: LINE_WIDTH, ShapeType.point: POINT_SIZE}.get(
        shape_type, 0
    )
    x0 = max(0, math.floor(min(xs)) - pad - 2)
    y0 = max(0, math.floor(min(ys)) - pad - 2)
    x1 = min(width, math.ceil(max(xs)) + pad + 3)
    y1 = min(height, math.ceil(max(ys)) + pad + 3)
    return x0, y0, max(x0, x1), max(y0, y1)


def shape_area_bbox(
    height: int,
    width: int,
    shape_type: ShapeType | str,
    points: Sequence[Sequence[float]],
    mask_rle: dict[str, object] | None = None,
) -> tuple[int, list[float]]:
    """Pixel area and ``[x, y, w, h]`` of a shape as :func:`shape_mask` draws it, drawn only in the window
    it can reach: the same pixels (an integer shift changes nothing in Pillow's rasteriser), far less work."""
    kind = ShapeType(shape_type)
    if kind == ShapeType.mask:
        mask = shape_mask(height, width, kind, points, mask_rle)
        return int(mask.sum()), mask_bbox(mask)
    x0, y0, x1, y1 = _window(height, width, kind, points)
    if x1 <= x0 or y1 <= y0:
        return 0, [0.0, 0.0, 0.0, 0.0]
    shifted = [[float(p[0]) - x0, float(p[1]) - y0] for p in points]
    crop = _draw(y1 - y0, x1 - x0, kind, shifted)
    box = crop.getbbox()  # Pillow counts in C: no array conversion for the common case
    if box is None:
        return 0, [0.0, 0.0, 0.0, 0.0]
    left, top, right, bottom = box
    area = int(np.count_nonzero(np.asarray(crop)))  # the canvas is 0/1; numpy counts faster than histogram
    return area, [float(left + x0), float(top + y0), float(right - left), float(bottom - top)]
