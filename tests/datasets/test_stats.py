"""Dataset statistics: class, split, size and negative counts on a hand-made dataset."""

from __future__ import annotations

import json

from backend.datasets.canonical import Annotation, CanonicalDataset, ImageRecord, ShapeType, Task
from backend.datasets.stats import dataset_stats


def ann(
    ann_id: int, image_id: int, cat: int, area: float, group_id: int | None = None, ignore: bool = False
) -> Annotation:
    return Annotation(
        id=ann_id,
        image_id=image_id,
        category_id=cat,
        shape_type=ShapeType.polygon,
        points=[[0, 0], [1, 0], [1, 1]],
        bbox=[0, 0, 2, 2],
        area=area,
        group_id=group_id,
        ignore=ignore,
    )


def dataset() -> CanonicalDataset:
    images = [
        ImageRecord(id=1, file_name="images/1.jpg", source="1.jpg", width=640, height=480),
        ImageRecord(id=2, file_name="images/2.jpg", source="2.jpg", width=100, height=60, split="val"),
        ImageRecord(id=3, file_name="images/3.jpg", source="3.jpg", width=5000, height=3000, split="test"),
        ImageRecord(id=4, file_name="images/4.jpg", source="4.jpg", width=640, height=480, tags=["dog"]),
        ImageRecord(id=5, file_name="images/5.jpg", source="5.jpg", width=640, height=480),
    ]
    anns = [
        ann(1, 1, 1, 100.0),
        ann(2, 1, 1, 50.0, group_id=3),
        ann(3, 1, 1, 25.0, group_id=3),  # same object as annotation 2
        ann(4, 1, 2, 10.0),
        ann(5, 2, 2, 7.5),
        ann(6, 3, 0, 40.0, ignore=True),  # only an ignore region: still a negative
    ]
    return CanonicalDataset(
        classes=["cat", "dog"], tasks=[Task.instance_segmentation], images=images, annotations=anns
    )


def test_counts_per_class_split_and_negatives() -> None:
    stats = dataset_stats(dataset())
    assert json.loads(json.dumps(stats)) == stats  # JSON-able as it is
    assert stats["images"] == 5 and stats["annotations"] == 5 and stats["ignore_regions"] == 1
    cat, dog = stats["classes"]
    assert cat == {
        "id": 1,
        "name": "cat",
        "images": 1,
        "tagged_images": 0,
        "instances": 2,
        "shapes": 3,
        "area": 175.0,
    }
    assert dog == {
        "id": 2,
        "name": "dog",
        "images": 3,
        "tagged_images": 1,
        "instances": 2,
        "shapes": 2,
        "area": 17.5,
    }
    assert stats["splits"] == {
        "train": {"images": 3, "annotations": 4, "negatives": 2},
        "val": {"images": 1, "annotations": 1, "negatives": 0},
        "test": {"images": 1, "annotations": 0, "negatives": 1},
    }
    assert stats["negatives"] == 3  # images 3 (ignore only), 4 (tag only) and 5
    assert stats["unlabelled"] == 2  # images 3 and 5 have neither shapes nor tags


def test_size_histograms() -> None:
    stats = dataset_stats(dataset())
    widths = {(b["min"], b["max"]): b["count"] for b in stats["image_sizes"]["width"]}
    heights = {(b["min"], b["max"]): b["count"] for b in stats["image_sizes"]["height"]}
    assert widths[(512, 768)] == 3 and widths[(64, 128)] == 1 and widths[(4096, None)] == 1
    assert heights[(256, 512)] == 3 and heights[(0, 64)] == 1 and heights[(2048, 4096)] == 1
    assert sum(widths.values()) == sum(heights.values()) == 5


def test_empty_dataset() -> None:
    stats = dataset_stats(CanonicalDataset(classes=[], tasks=[], images=[], annotations=[]))
    assert stats["images"] == 0 and stats["negatives"] == 0 and stats["classes"] == []
    assert all(b["count"] == 0 for b in stats["image_sizes"]["width"])
