"""COCO instances: images plus ``annotations/instances_*.json`` (or any JSON with ``images``,
``annotations`` and ``categories``). Polygons (several parts become shapes sharing a ``group_id``, labelme's
way of saying "one object"), RLE masks (``iscrowd``) and box-only annotations (as rectangles).

Categories are re-indexed 1..N in order of their COCO id; names are kept. A file named for a split
(``instances_val2017.json``, ``test.json``) puts its images in that split."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from pydantic import BaseModel, ConfigDict, ValidationError

from backend.datasets.canonical import CanonicalDataset, ImageRecord, ImportReport, ShapeType, Split
from backend.datasets.formats.common import (
    Builder,
    check_label,
    inside,
    rel,
    split_from_name,
    walk_files,
)
from backend.datasets.images import is_image_name


class CocoImage(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str
    file_name: str
    width: int | None = None
    height: int | None = None


class CocoAnnotation(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str | None = None
    image_id: int | str
    category_id: int
    segmentation: list[list[float]] | dict[str, Any] | None = None
    bbox: list[float] | None = None
    iscrowd: int = 0


class CocoCategory(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    name: str


class CocoDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    images: list[CocoImage]
    annotations: list[CocoAnnotation] = []
    categories: list[CocoCategory]


@dataclass
class _File:
    source: str
    path: Path
    doc: CocoDocument
    split: Split | None


def is_coco_json(raw: Any) -> bool:
    return isinstance(raw, dict) and "images" in raw and "categories" in raw


def candidate_files(root: Path) -> list[Path]:
    """COCO JSON files: those in ``annotations/`` if any, else every JSON file in the upload."""
    folder = root / "annotations"
    if folder.is_dir():
        found = sorted(p for p in folder.glob("*.json") if p.is_file() and not p.is_symlink())
        if found:
            return found
    return [p for p in walk_files(root) if p.suffix.lower() == ".json"]


def split_of_file(path: Path) -> Split | None:
    """``instances_train2017.json`` → train; ``val.json`` → val; ``instances.json`` → None."""
    stem = path.stem.lower().removeprefix("instances").strip("_-")
    return split_from_name(re.sub(r"\d+$", "", stem))


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Read COCO JSON files under ``root`` and the images they list."""
    files = _load_files(root, report)
    if not files:
        report.error(
            "coco_missing",
            "No COCO JSON file (with 'images', 'annotations' and 'categories') was "
            "found; looked in annotations/ and the whole upload.",
            file="annotations/",
        )
        return Builder(out_dir, report).dataset([], split_source="seeded")
    mapping = _categories(files, report)
    classes = [name for _, name in sorted(mapping.items())]
    category_index = {cid: i + 1 for i, cid in enumerate(sorted(mapping))}
    by_name = _image_index(root)
    builder = Builder(out_dir, report)
    claimed: dict[Path, str] = {}
    use_splits = all(f.split is not None for f in files)
    for f in files:
        images = _add_images(
            root, f, by_name, claimed, builder, "train" if not use_splits else f.split, report
        )
        _add_annotations(f, images, category_index, builder, report)
    return builder.dataset(classes, split_source="source" if use_splits else "seeded")


def _load_files(root: Path, report: ImportReport) -> list[_File]:
    out: list[_File] = []
    for path in candidate_files(root):
        source = rel(root, path)
        try:
            raw = json.loads(path.read_bytes().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            report.error("encoding_invalid", f"{source} is not UTF-8 text (byte {exc.start}).", file=source)
            continue
        except json.JSONDecodeError as exc:
            report.error(
                "json_invalid",
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                file=source,
                field=f"line {exc.lineno}, column {exc.colno}",
            )
            continue
        if not is_coco_json(raw):
            continue  # another JSON file (a config, a labelme file): not ours to judge
        try:
            doc = CocoDocument.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            index = err["loc"][1] if len(err["loc"]) > 1 and err["loc"][0] == "annotations" else None
            where = f", annotation {index}" if isinstance(index, int) else ""
            report.error(
                "coco_invalid",
                f"{source}{where}: field '{loc}' {err['msg'].lower()}.",
                file=source,
                shape=index if isinstance(index, int) else None,
                field=loc,
            )
            continue
        out.append(_File(source, path, doc, split_of_file(path)))
    return out


def _categories(files: list[_File], report: ImportReport) -> dict[int, str]:
    """COCO category id → name over all files; one id with two names, or one name twice, is an error."""
    mapping: dict[int, str] = {}
    for f in files:
        for i, cat in enumerate(f.doc.categories):
            field = f"categories.{i}.name"
            if cat.id in mapping and mapping[cat.id] != cat.name:
                report.error(
                    "category_conflict",
                    f"{f.source}: category {cat.id} is named {cat.name!r} here "
                    f"and {mapping[cat.id]!r} elsewhere.",
                    file=f.source,
                    field=field,
                )
            elif cat.id not in mapping and cat.name in mapping.values():
                report.error(
                    "category_conflict",
                    f"{f.source}: category name {cat.name!r} is used by two category ids.",
                    file=f.source,
                    field=field,
                )
            elif cat.id not in mapping and check_label(report, cat.name, f.source, field=field):
                mapping[cat.id] = cat.name
    return mapping


def _image_index(root: Path) -> dict[str, list[Path]]:
    """Every image in the upload by file name, for lists whose paths point elsewhere."""
    index: dict[str, list[Path]] = {}
    for path in walk_files(root):
        if is_image_name(path):
            index.setdefault(path.name, []).append(path)
    return index


def _find_image(root: Path, f: _File, file_name: str, by_name: dict[str, list[Path]]) -> Path | None:
    name = file_name.replace("\\", "/")
    folder = f.path.parent
    stem = f.path.stem.removeprefix("instances_")
    bases = (
        root,
        root / "images",
        folder,
        folder.parent,
        folder.parent / "images",
        root / stem,
        root / "images" / stem,
    )
    if not PurePosixPath(name).is_absolute():
        for base in bases:
            candidate = base / name
            if inside(root, candidate) and candidate.is_file() and not candidate.is_symlink():
                return candidate
    # Exported files often keep the exporter's absolute paths: fall back to a unique file name.
    matches = by_name.get(PurePosixPath(name).name, [])
    return matches[0] if len(matches) == 1 else None


def _add_images(
    root: Path,
    f: _File,
    by_name: dict[str, list[Path]],
    claimed: dict[Path, str],
    builder: Builder,
    split: Split | None,
    report: ImportReport,
) -> dict[int | str, ImageRecord]:
    records: dict[int | str, ImageRecord] = {}
    seen_ids: set[int | str] = set()
    for i, img in enumerate(f.doc.images):
        field = f"images.{i}.file_name"
        if img.id in seen_ids:
            report.error(
                "duplicate_id",
                f"{f.source}: image id {img.id} is used twice.",
                file=f.source,
                field=f"images.{i}.id",
            )
            continue
        seen_ids.add(img.id)
        path = _find_image(root, f, img.file_name, by_name)
        if path is None:
            escapes = ".." in PurePosixPath(img.file_name.replace("\\", "/")).parts
            code, why = (
                ("image_path_outside", "points outside the upload")
                if escapes
                else ("image_missing", "is not in the upload")
            )
            report.error(code, f"{f.source}: image {img.file_name!r} {why}.", file=f.source, field=field)
            continue
        key = path.resolve()
        if key in claimed:
            report.error(
                "duplicate_file",
                f"{f.source}: image {img.file_name!r} is listed twice (also in {claimed[key]}).",
                file=f.source,
                field=field,
            )
            continue
        claimed[key] = f.source
        record = builder.add_image(path, rel(root, path), split=split or "train", also=(f.source,))
        if record is None:
            continue
        if (img.width is not None and img.width != record.width) or (
            img.height is not None and img.height != record.height
        ):
            report.error(
                "image_size_mismatch",
                f"{f.source}: image {img.file_name!r} is listed as "
                f"{img.width}x{img.height} but is {record.width}x{record.height}.",
                file=f.source,
                field=f"images.{i}",
            )
            continue
        records[img.id] = record
    return records


def _add_annotations(
    f: _File,
    images: dict[int | str, ImageRecord],
    category_index: dict[int, int],
    builder: Builder,
    report: ImportReport,
) -> None:
    image_ids = {img.id for img in f.doc.images}
    for i, ann in enumerate(f.doc.annotations):
        where = f"{f.source}, annotation {i}"
        if ann.image_id not in image_ids:
            report.error(
                "image_unknown",
                f"{where}: image_id {ann.image_id} is not in 'images'.",
                file=f.source,
                shape=i,
                field="image_id",
            )
            continue
        if ann.category_id not in category_index:
            report.error(
                "category_unknown",
                f"{where}: category_id {ann.category_id} is not in 'categories'.",
                file=f.source,
                shape=i,
                field="category_id",
            )
            continue
        image = images.get(ann.image_id)
        if image is None:
            continue  # the image itself was reported
        _add_one(f, i, ann, image, category_index[ann.category_id], builder, report)


def _add_one(
    f: _File,
    i: int,
    ann: CocoAnnotation,
    image: ImageRecord,
    category: int,
    builder: Builder,
    report: ImportReport,
) -> None:
    where = f"{f.source}, annotation {i}"
    common: dict[str, Any] = {
        "category_id": category,
        "file": f.source,
        "shape_index": i,
        "iscrowd": ann.iscrowd,
    }
    if isinstance(ann.segmentation, dict):
        mask = _rle_mask(ann.segmentation, image, where, f.source, i, report)
        if mask is not None:
            builder.add_mask(image, mask, **common)
        return
    if ann.segmentation:
        odd = [p for p in ann.segmentation if len(p) % 2]
        if odd:
            report.error(
                "shape_points_invalid",
                f"{where}: a polygon has an odd number of coordinates.",
                file=f.source,
                shape=i,
                field="segmentation",
            )
            return
        # Several parts are one object: labelme says so with a shared group_id.
        group = (ann.id if isinstance(ann.id, int) else 100000 + i) if len(ann.segmentation) > 1 else None
        for part in ann.segmentation:
            points = [[part[k], part[k + 1]] for k in range(0, len(part), 2)]
            builder.add_shape(image, shape_type=ShapeType.polygon, points=points, group_id=group, **common)
        return
    if ann.bbox is not None:
        if len(ann.bbox) != 4 or ann.bbox[2] <= 0 or ann.bbox[3] <= 0:
            report.warn(
                "bbox_invalid",
                f"{where}: bbox {ann.bbox} is not [x, y, width, height] with a positive "
                "size; the annotation was skipped.",
                file=f.source,
                shape=i,
                field="bbox",
            )
            return
        x, y, w, h = ann.bbox
        # COCO boxes run along pixel edges; labelme's corners sit on the first and last pixel.
        points = [[x, y], [x + w - 1, y + h - 1]]
        builder.add_shape(image, shape_type=ShapeType.rectangle, points=points, **common)
        return
    report.warn(
        "annotation_empty",
        f"{where}: has neither segmentation nor bbox; it was skipped.",
        file=f.source,
        shape=i,
        field="segmentation",
    )


def _rle_mask(
    seg: dict[str, Any], image: ImageRecord, where: str, source: str, i: int, report: ImportReport
) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    size = seg.get("size")
    if size != [image.height, image.width]:
        report.error(
            "mask_invalid",
            f"{where}: the RLE size {size} is not the image's [{image.height}, {image.width}].",
            file=source,
            shape=i,
            field="segmentation",
        )
        return None
    try:
        rle: Any = seg
        if isinstance(seg.get("counts"), list):
            rle = coco_mask.frPyObjects(rle, image.height, image.width)  # uncompressed RLE
        return np.asarray(coco_mask.decode(rle), dtype=bool)
    except Exception as exc:  # pycocotools raises bare exceptions on malformed counts
        report.error(
            "mask_invalid",
            f"{where}: the RLE mask cannot be decoded ({exc}).",
            file=source,
            shape=i,
            field="segmentation",
        )
        return None
