"""Import formats: tell which one an upload is, and parse it into the canonical dataset.

``parse_upload`` is the one entry point: the upload folder (already safely extracted), the format, and the
staging dataset folder whose ``images/`` receives the normalised images. Errors in the report stop the
import (``ImportFailed``); warnings let it land."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from backend.datasets.canonical import (
    CanonicalDataset,
    ImportFailed,
    ImportReport,
    ShapeType,
    Task,
)
from backend.datasets.formats import coco, filelist, icdar, image_folder, labelme, voc
from backend.datasets.formats.common import unwrap, visible_entries, walk_files
from backend.datasets.images import is_image_name

FORMATS = ("labelme", "folder", "filelist", "coco", "voc", "icdar")
Parser = Callable[[Path, Path, ImportReport], CanonicalDataset]
PARSERS: dict[str, Parser] = {
    "labelme": labelme.parse,
    "folder": image_folder.parse,
    "filelist": filelist.parse,
    "coco": coco.parse,
    "voc": voc.parse,
    "icdar": icdar.parse,
}
AREA_SHAPES = frozenset({ShapeType.polygon, ShapeType.circle, ShapeType.mask, ShapeType.rectangle})
BOX_SHAPES = frozenset({ShapeType.rectangle, ShapeType.polygon, ShapeType.circle, ShapeType.mask})
LOOKED_FOR = (
    "labelme JSON files with 'shapes'; COCO JSON with 'images' and 'categories' "
    "(annotations/instances_*.json); "
    "Pascal VOC JPEGImages/ with Annotations/ or SegmentationClass/; ICDAR gt_img_N.txt files; "
    "train.txt/val.txt/test.txt lists of 'path label'; one folder of images per class"
)

__all__ = ["FORMATS", "detect_format", "infer_tasks", "parse_upload"]


def detect_format(root: Path) -> str:
    """The format an extracted upload is in; raises ``ImportFailed`` when none fits."""
    root = unwrap(root)
    files = walk_files(root)
    if not files:
        report = ImportReport()
        report.error("dataset_empty", "The upload holds no files.", file=root.name)
        raise ImportFailed(report)
    if voc.is_voc(root):
        return "voc"
    if icdar.is_icdar(root):
        return "icdar"
    if _has_coco(root):
        return "coco"
    if any(p.suffix.lower() == ".json" for p in files):
        return "labelme"
    if filelist.list_files(root):
        return "filelist"
    if _looks_like_folders(root):
        return "folder"
    report = ImportReport()
    report.error(
        "format_unknown",
        f"Could not tell the format of the upload. Looked for: {LOOKED_FOR}.",
        file=root.name,
    )
    raise ImportFailed(report)


def _has_coco(root: Path) -> bool:
    candidates = (
        [p for p in (root / "annotations").glob("*.json") if p.is_file()]
        if (root / "annotations").is_dir()
        else []
    )
    candidates += [p for p in root.glob("*.json") if p.is_file()]
    for path in candidates:
        try:
            if coco.is_coco_json(json.loads(path.read_bytes().decode("utf-8-sig"))):
                return True
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    return False


def _looks_like_folders(root: Path) -> bool:
    """Sub-folders (or split folders of sub-folders) holding images."""
    for folder in (p for p in visible_entries(root) if p.is_dir()):
        if any(is_image_name(f) for f in walk_files(folder)):
            return True
    return False


def parse_upload(root: Path, fmt: str, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Parse an extracted upload of format ``fmt``; images land in ``out_dir/images``.

    Raises ``ImportFailed`` when the report holds errors (the caller deletes ``out_dir``)."""
    parser = PARSERS.get(fmt)
    if parser is None:
        report.error(
            "format_unknown", f"Unknown format {fmt!r}; known formats: {', '.join(FORMATS)}.", field="format"
        )
        raise ImportFailed(report)
    root = unwrap(root)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    dataset = parser(root, out_dir, report)
    if not dataset.images and not report.errors:
        report.error(
            "dataset_empty", f"The upload holds no usable images for the {fmt} format.", file=root.name
        )
    dataset.tasks = infer_tasks(dataset)
    if dataset.images and not dataset.tasks and not report.errors:
        report.warn(
            "tasks_none",
            "No annotation can train a model yet (no classes, areas or boxes); the images "
            "were imported for labelling.",
        )
    if report.errors:
        raise ImportFailed(report)
    return dataset


def infer_tasks(ds: CanonicalDataset) -> list[Task]:
    """What the annotations can train, in a fixed order."""
    tasks: list[Task] = []
    if ds.images and ds.classes and all(len(i.tags) == 1 and i.tags[0] in ds.classes for i in ds.images):
        tasks.append(Task.classification)
    real = [a for a in ds.annotations if not a.ignore and a.category_id > 0]
    if real and all(a.text is not None for a in real):
        return [*tasks, Task.text_detection]
    areas = [a for a in real if a.shape_type in AREA_SHAPES]
    if areas:
        tasks.append(Task.semantic_segmentation)
    # A region painted per class (VOC SegmentationClass alone) is not an object: no instances, no boxes.
    objects = [a for a in real if a.attributes.get("region") != "class"]
    if any(a.shape_type in AREA_SHAPES for a in objects):
        tasks.append(Task.instance_segmentation)
    if any(a.shape_type in BOX_SHAPES for a in objects):
        tasks.append(Task.object_detection)
    return tasks
