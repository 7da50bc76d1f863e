"""Train / val / test splits: seeded and stratified by class, or taken from the source, or set per image."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping

from pydantic import BaseModel, Field, model_validator

from backend.datasets.canonical import SPLITS, CanonicalDataset, ImportReport, Split


class SplitRatios(BaseModel):
    train: float = Field(default=0.8, ge=0, le=1)
    val: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitRatios:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, not {total:g}")
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.train, self.val, self.test)


def _stratum(
    ds: CanonicalDataset, image_id: int, per_image: Mapping[int, Counter[int]], frequency: Counter[int]
) -> str:
    """The class an image is balanced by: its tag, else its rarest class, else 'none' (negatives)."""
    image = ds.images[image_id]
    if image.tags:
        return image.tags[0]
    counts = per_image.get(image.id)
    if not counts:
        return "<none>"
    rarest = min(counts, key=lambda c: (frequency[c], c))
    return f"class:{rarest}"


def _allocate(n: int, ratios: tuple[float, float, float]) -> list[int]:
    """Split ``n`` items by ``ratios`` (largest remainders); a stratum of 3+ gets a val image if asked."""
    exact = [n * r for r in ratios]
    counts = [int(x) for x in exact]
    for i in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3 and ratios[1] > 0 and counts[1] == 0 and counts[0] > 1:
        counts[0] -= 1
        counts[1] += 1
    return counts


def assign_splits(ds: CanonicalDataset, ratios: SplitRatios, seed: int = 0) -> None:
    """Seeded, stratified split of every image (in place)."""
    per_image: dict[int, Counter[int]] = defaultdict(Counter)
    frequency: Counter[int] = Counter()
    for ann in ds.annotations:
        if not ann.ignore:
            per_image[ann.image_id][ann.category_id] += 1
            frequency[ann.category_id] += 1
    strata: dict[str, list[int]] = defaultdict(list)
    for index in range(len(ds.images)):
        strata[_stratum(ds, index, per_image, frequency)].append(index)
    rng = random.Random(seed)  # noqa: S311 - reproducible shuffling, not secrecy
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda i: ds.images[i].file_name)
        rng.shuffle(members)
        n_train, n_val, _ = _allocate(len(members), ratios.as_tuple())
        for pos, index in enumerate(members):
            split: Split = "train" if pos < n_train else "val" if pos < n_train + n_val else "test"
            ds.images[index].split = split
    ds.split_source = "seeded"


def apply_overrides(ds: CanonicalDataset, assignments: Mapping[int, Split]) -> None:
    """Set the split of the given image ids (in place); unknown ids raise ``KeyError`` naming them."""
    by_id = {image.id: image for image in ds.images}
    unknown = sorted(set(assignments) - set(by_id))
    if unknown:
        raise KeyError(f"no image with id {', '.join(map(str, unknown[:10]))} in this dataset")
    for image_id, split in assignments.items():
        by_id[image_id].split = split
    ds.split_source = "manual"


def split_findings(ds: CanonicalDataset, report: ImportReport) -> None:
    """Warn about each class that has no image in a split that has images."""
    present: dict[str, set[str]] = {s: set() for s in SPLITS}
    used_splits = {image.split for image in ds.images}
    split_of = {image.id: image.split for image in ds.images}
    for image in ds.images:
        present[image.split].update(image.tags)
    for ann in ds.annotations:
        if not ann.ignore and 0 < ann.category_id <= len(ds.classes):
            present[split_of[ann.image_id]].add(ds.classes[ann.category_id - 1])
    for split in SPLITS:
        if split not in used_splits:
            continue
        for name in ds.classes:
            if name not in present[split]:
                report.warn(
                    "class_missing_in_split",
                    f"class {name!r} has no image in the {split} split",
                    field=f"splits.{split}",
                )
