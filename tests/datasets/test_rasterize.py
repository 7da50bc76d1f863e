"""Drawing a shape only in its window gives exactly the pixels of drawing it on the whole image."""

from __future__ import annotations

import random

import numpy as np
import pytest

from backend.datasets.canonical import Annotation, ShapeType
from backend.datasets.rasterize import label_maps, mask_bbox, shape_area_bbox, shape_mask


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


def _reference_maps(h: int, w: int, anns: list[Annotation]) -> tuple[np.ndarray, np.ndarray]:
    """labelme's ``shapes_to_label``: one whole-image mask per shape, assigned in order."""
    cls = np.zeros((h, w), np.uint8)
    ins = np.zeros((h, w), np.int32)
    numbers: dict[object, int] = {}
    for ann in anns:
        mask = shape_mask(h, w, ann.shape_type, ann.points)
        if ann.ignore:
            cls[mask], ins[mask] = 255, -1
            continue
        key = (ann.category_id, ann.group_id if ann.group_id is not None else ("solo", ann.id))
        cls[mask], ins[mask] = ann.category_id, numbers.setdefault(key, len(numbers) + 1)
    return cls, ins


def test_label_maps_paint_what_per_shape_masks_assign() -> None:
    """Shapes painted straight onto the maps give the maps of assigning each shape's mask in turn:
    overlaps, groups, ignore regions and every shape type."""
    rng = random.Random(11)
    kinds = [k for k in ShapeType if k != ShapeType.mask]
    for scene in range(120):
        w, h = rng.randint(5, 80), rng.randint(5, 60)
        anns = []
        for i in range(rng.randint(1, 7)):
            kind = rng.choice(kinds)
            anns.append(
                Annotation(
                    id=i + 1,
                    image_id=1,
                    category_id=rng.randint(1, 3),
                    shape_type=kind,
                    points=_random_points(rng, kind, w, h),
                    bbox=[0, 0, 1, 1],
                    area=0,
                    group_id=rng.choice([None, None, 1, 2]),
                    ignore=rng.random() < 0.15,
                )
            )
        cls, ins = label_maps(h, w, anns)
        want_cls, want_ins = _reference_maps(h, w, anns)
        assert np.array_equal(cls, want_cls), scene
        assert np.array_equal(ins, want_ins), scene
