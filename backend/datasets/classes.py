"""Renaming, merging and dropping classes (each change makes a new dataset version)."""

from __future__ import annotations

from collections.abc import Mapping

from backend.datasets.canonical import LABEL_PATTERN, MAX_LABEL_LENGTH, CanonicalDataset


def remap_classes(ds: CanonicalDataset, mapping: Mapping[str, str | None]) -> None:
    """Apply ``old name → new name`` (two olds to one new merge them; ``None`` drops the class and its
    shapes) in place. Class order is kept: a class takes the place of its first old name."""
    unknown = sorted(set(mapping) - set(ds.classes))
    if unknown:
        raise ValueError(f"no class named {', '.join(map(repr, unknown))} in this dataset")
    for new in mapping.values():
        if new is not None and (len(new) > MAX_LABEL_LENGTH or not LABEL_PATTERN.match(new)):
            raise ValueError(f"{new!r} is not a valid class name (letters, digits, space and .,:;+-/()#&'@)")
    renamed = [mapping.get(name, name) for name in ds.classes]
    new_classes: list[str] = []
    for name in renamed:
        if name is not None and name not in new_classes:
            new_classes.append(name)
    if not new_classes:
        raise ValueError("a dataset needs at least one class")
    new_id = {i + 1: (new_classes.index(n) + 1 if n is not None else None) for i, n in enumerate(renamed)}
    kept = []
    for ann in ds.annotations:
        if ann.category_id == 0:  # ignore regions and background shapes belong to no class
            kept.append(ann)
            continue
        target = new_id.get(ann.category_id)
        if target is not None:
            ann.category_id = target
            kept.append(ann)
    ds.annotations = kept
    for image in ds.images:
        tags = [mapping.get(t, t) for t in image.tags]
        image.tags = list(dict.fromkeys(t for t in tags if t is not None))
    ds.classes = new_classes
