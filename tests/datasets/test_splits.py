"""Seeded, stratified splits, per-image overrides, and the class-missing-in-split warning."""

from __future__ import annotations

from collections import Counter

import pytest

from backend.datasets.canonical import (
    Annotation,
    CanonicalDataset,
    ImageRecord,
    ImportReport,
    ShapeType,
    Task,
)
from backend.datasets.splits import SplitRatios, apply_overrides, assign_splits, split_findings


def _dataset(per_class: dict[str, int]) -> CanonicalDataset:
    images, anns = [], []
    classes = sorted(per_class)
    for name, n in per_class.items():
        for _ in range(n):
            image_id = len(images) + 1
            images.append(
                ImageRecord(
                    id=image_id,
                    file_name=f"images/{image_id:06d}.png",
                    source=f"{image_id}.png",
                    width=8,
                    height=8,
                )
            )
            anns.append(
                Annotation(
                    id=len(anns) + 1,
                    image_id=image_id,
                    category_id=classes.index(name) + 1,
                    shape_type=ShapeType.rectangle,
                    points=[[0, 0], [3, 3]],
                    bbox=[0, 0, 4, 4],
                    area=16,
                )
            )
    return CanonicalDataset(classes=classes, tasks=[Task.object_detection], images=images, annotations=anns)


def _by_class(ds: CanonicalDataset) -> dict[str, Counter[str]]:
    split_of = {i.id: i.split for i in ds.images}
    out: dict[str, Counter[str]] = {}
    for ann in ds.annotations:
        out.setdefault(ds.classes[ann.category_id - 1], Counter())[split_of[ann.image_id]] += 1
    return out


def test_every_class_is_split_in_proportion() -> None:
    ds = _dataset({"common": 50, "rare": 10, "tiny": 3})
    assign_splits(ds, SplitRatios(train=0.8, val=0.1, test=0.1), seed=0)
    counts = _by_class(ds)
    assert counts["common"] == Counter(train=40, val=5, test=5)
    assert counts["rare"] == Counter(train=8, val=1, test=1)
    assert counts["tiny"]["val"] == 1 and counts["tiny"]["train"] >= 1  # even 3 images reach val
    report = ImportReport()
    split_findings(ds, report)
    assert [f.message for f in report.warnings] == ["class 'tiny' has no image in the test split"]


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = (_dataset({"x": 30, "y": 30}) for _ in range(3))
    assign_splits(a, SplitRatios(), seed=7)
    assign_splits(b, SplitRatios(), seed=7)
    assign_splits(c, SplitRatios(), seed=8)
    assert [i.split for i in a.images] == [i.split for i in b.images]
    assert [i.split for i in a.images] != [i.split for i in c.images]


def test_ratios_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="must be 1"):
        SplitRatios(train=0.7, val=0.2, test=0.2)


def test_overrides_move_named_images_and_refuse_unknown_ones() -> None:
    ds = _dataset({"x": 4})
    apply_overrides(ds, {1: "test", 2: "val"})
    assert [i.split for i in ds.images][:2] == ["test", "val"] and ds.split_source == "manual"
    with pytest.raises(KeyError, match="no image with id 99"):
        apply_overrides(ds, {99: "train"})
