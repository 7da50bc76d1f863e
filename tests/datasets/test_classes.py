"""Renaming, merging and dropping classes."""

from __future__ import annotations

import pytest

from backend.datasets.canonical import Annotation, CanonicalDataset, ImageRecord, ShapeType, Task
from backend.datasets.classes import remap_classes


def _ds() -> CanonicalDataset:
    images = [
        ImageRecord(id=1, file_name="images/000001.png", source="a.png", width=8, height=8, tags=["cat"])
    ]
    anns = [
        Annotation(
            id=i + 1,
            image_id=1,
            category_id=c,
            shape_type=ShapeType.rectangle,
            points=[[0, 0], [1, 1]],
            bbox=[0, 0, 2, 2],
            area=4,
            ignore=c == 0,
        )
        for i, c in enumerate([1, 2, 3, 0])
    ]
    return CanonicalDataset(
        classes=["cat", "dog", "fox"], tasks=[Task.object_detection], images=images, annotations=anns
    )


def test_merge_rename_drop() -> None:
    ds = _ds()
    remap_classes(ds, {"dog": "canid", "fox": "canid", "cat": None})
    assert ds.classes == ["canid"]
    assert [a.category_id for a in ds.annotations] == [1, 1, 0]  # cat's shape dropped, ignore kept
    assert ds.images[0].tags == []


def test_order_is_kept_and_unknown_names_refused() -> None:
    ds = _ds()
    remap_classes(ds, {"cat": "feline"})
    assert ds.classes == ["feline", "dog", "fox"] and ds.images[0].tags == ["feline"]
    with pytest.raises(ValueError, match="no class named 'wolf'"):
        remap_classes(ds, {"wolf": "x"})
    with pytest.raises(ValueError, match="at least one class"):
        remap_classes(ds, {"feline": None, "dog": None, "fox": None})
