"""Summary figures of a canonical dataset for the dataset page: per class, per split, image sizes and
negatives. Everything returned is plain JSON (ints, floats, strings, lists, dicts)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from backend.datasets.canonical import SPLITS, Annotation, CanonicalDataset

# Bin edges in pixels; the last bin is open-ended.
SIZE_BINS = (0, 64, 128, 256, 512, 768, 1024, 1536, 2048, 4096)


def size_histogram(values: Iterable[int]) -> list[dict[str, int | None]]:
    """Counts per bin ``[min, max)``; ``max`` is None for the last, open bin."""
    counts = [0] * len(SIZE_BINS)
    for v in values:
        counts[bisect_right(SIZE_BINS, v) - 1] += 1
    uppers: list[int | None] = [*SIZE_BINS[1:], None]
    return [{"min": lo, "max": hi, "count": c} for lo, hi, c in zip(SIZE_BINS, uppers, counts, strict=True)]


def instance_key(ann: Annotation) -> tuple[int, int, object]:
    """labelme's notion of one object: shapes sharing (image, class, group_id) are one instance."""
    return (ann.image_id, ann.category_id, ann.group_id if ann.group_id is not None else ("solo", ann.id))


def class_stats(ds: CanonicalDataset) -> list[dict[str, Any]]:
    """Per class: images showing it (by shape or tag), instances, shapes and total pixel area."""
    n = len(ds.classes)
    images: list[set[int]] = [set() for _ in range(n)]
    tagged = [0] * n
    instances: list[set[tuple[int, int, object]]] = [set() for _ in range(n)]
    shapes = [0] * n
    area = [0.0] * n
    index = {name: i for i, name in enumerate(ds.classes)}
    for ann in ds.annotations:
        if ann.ignore or not 0 < ann.category_id <= n:
            continue
        i = ann.category_id - 1
        images[i].add(ann.image_id)
        instances[i].add(instance_key(ann))
        shapes[i] += 1
        area[i] += ann.area
    for rec in ds.images:
        for tag in set(rec.tags):
            if tag in index:
                images[index[tag]].add(rec.id)
                tagged[index[tag]] += 1
    return [
        {
            "id": i + 1,
            "name": name,
            "images": len(images[i]),
            "tagged_images": tagged[i],
            "instances": len(instances[i]),
            "shapes": shapes[i],
            "area": area[i],
        }
        for i, name in enumerate(ds.classes)
    ]


def dataset_stats(ds: CanonicalDataset) -> dict[str, Any]:
    """Counts per class and split, image-size histograms, negatives and ignore regions."""
    labelled: set[int] = {a.image_id for a in ds.annotations if not a.ignore}
    split_of = {rec.id: rec.split for rec in ds.images}
    splits: dict[str, dict[str, int]] = {s: {"images": 0, "annotations": 0, "negatives": 0} for s in SPLITS}
    for rec in ds.images:
        splits[rec.split]["images"] += 1
        splits[rec.split]["negatives"] += rec.id not in labelled
    for ann in ds.annotations:
        if not ann.ignore and ann.image_id in split_of:
            splits[split_of[ann.image_id]]["annotations"] += 1
    return {
        "images": len(ds.images),
        "annotations": sum(1 for a in ds.annotations if not a.ignore),
        "ignore_regions": sum(1 for a in ds.annotations if a.ignore),
        # Negatives: no object annotated (ignore regions do not count); unlabelled: no tag either.
        "negatives": len(ds.images) - len(labelled & split_of.keys()),
        "unlabelled": sum(1 for r in ds.images if r.id not in labelled and not r.tags),
        "classes": class_stats(ds),
        "splits": splits,
        "image_sizes": {
            "width": size_histogram(r.width for r in ds.images),
            "height": size_histogram(r.height for r in ds.images),
        },
    }
