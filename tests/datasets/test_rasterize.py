"""Drawing a shape only in its window gives exactly the pixels of drawing it on the whole image."""

from __future__ import annotations

import random

import pytest

from backend.datasets.canonical import ShapeType
from backend.datasets.rasterize import mask_bbox, shape_area_bbox, shape_mask


def _random_points(rng: random.Random, kind: ShapeType, w: int, h: int) -> list[list[float]]:
    def pt() -> list[float]:  # some points fall outside the image, some on fractional positions
        return [rng.uniform(-15, w + 15), rng.uniform(-15, h + 15)]

    n = {ShapeType.point: 1, ShapeType.circle: 2, ShapeType.rectangle: 2, ShapeType.line: 2}.get(kind, 5)
    return [pt() for _ in range(n)]


@pytest.mark.parametrize("kind", [k for k in ShapeType if k != ShapeType.mask])
def test_windowed_area_and_box_equal_whole_image_drawing(kind: ShapeType) -> None:
    rng = random.Random(str(kind))
    for _ in range(60):
        w, h = rng.randint(5, 90), rng.randint(5, 70)
        points = _random_points(rng, kind, w, h)
        full = shape_mask(h, w, kind, points)
        assert shape_area_bbox(h, w, kind, points) == (int(full.sum()), mask_bbox(full))


def test_labelme_rectangle_area() -> None:
    assert shape_area_bbox(40, 40, "rectangle", [[10, 10], [29, 19]]) == (200, [10.0, 10.0, 20.0, 10.0])
