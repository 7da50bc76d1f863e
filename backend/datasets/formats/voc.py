"""Pascal VOC: ``JPEGImages/``, ``SegmentationClass/`` (palette PNG: value = class index, 255 void),
``SegmentationObject/``, ``Annotations/*.xml`` (boxes), ``ImageSets/Segmentation|Main/{train,val,test}.txt``
and ``class_names.txt`` (labelme2voc) or ``labels.txt``.

Masks become one ``mask`` annotation per object (SegmentationObject) or per class region (SegmentationClass
alone, marked ``attributes["region"] = "class"``), void pixels one ignore region. Where an image has masks
they win over its XML boxes; otherwise the boxes are rectangles (VOC's 1-based inclusive corners). When
split lists exist they define the dataset: unlisted images are left out with one warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from numpy.typing import NDArray

from backend.datasets.canonical import (
    IGNORE_INDEX,
    CanonicalDataset,
    ImageRecord,
    ImportReport,
    ShapeType,
    Split,
)
from backend.datasets.formats.common import (
    Builder,
    check_label,
    read_class_list,
    read_text,
    rel,
    summary,
    visible_entries,
)
from backend.datasets.images import is_image_name, read_index_mask

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
CLASS_FILES = ("class_names.txt", "labels.txt", "classes.txt")
LIST_SPLITS: dict[str, Split] = {"train": "train", "val": "val", "test": "test"}


@dataclass
class _VocObject:
    name: str
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax as written (1-based, inclusive)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Layout:
    root: Path
    images: dict[str, Path]
    seg_class: Path
    seg_object: Path
    annotations: Path


def is_voc(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and any(
        (root / d).is_dir() for d in ("Annotations", "SegmentationClass", "SegmentationObject")
    )


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Read a VOC folder (``VOCdevkit/VOC2012`` or labelme2voc's output)."""
    layout = _Layout(
        root,
        _image_files(root, report),
        root / "SegmentationClass",
        root / "SegmentationObject",
        root / "Annotations",
    )
    has_masks = layout.seg_class.is_dir() or layout.seg_object.is_dir()
    classes = _classes(layout, has_masks, report)
    splits = _split_lists(layout, has_masks, report)
    if splits is not None:
        unlisted = sorted(set(layout.images) - set(splits))
        if unlisted:
            report.warn(
                "image_unlisted",
                f"{len(unlisted)} images of JPEGImages/ are in no ImageSets list and "
                f"were left out: {summary(unlisted)}.",
                file=rel(root, layout.images[unlisted[0]]),
            )
    builder = Builder(out_dir, report)
    ids = list(splits) if splits is not None else sorted(layout.images)
    for image_id in ids:
        path = layout.images[image_id]
        image = builder.add_image(path, rel(root, path), split=splits[image_id] if splits else "train")
        if image is not None:
            _annotate(layout, image_id, image, classes, builder, report)
    return builder.dataset(classes, split_source="source" if splits is not None else "seeded")


def _image_files(root: Path, report: ImportReport) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in visible_entries(root / "JPEGImages"):
        if not (path.is_file() and is_image_name(path)) or path.is_symlink():
            continue
        if path.stem in out:
            report.error(
                "duplicate_file",
                f"JPEGImages/ has two images named {path.stem}: {out[path.stem].name} and {path.name}.",
                file=rel(root, path),
            )
            continue
        out[path.stem] = path
    return out


def _classes(layout: _Layout, has_masks: bool, report: ImportReport) -> list[str]:
    for name in CLASS_FILES:
        if (layout.root / name).is_file():
            return read_class_list(layout.root / name, name, report)[0]
    if has_masks:
        report.warn(
            "voc_default_classes",
            "There is no class_names.txt, so mask values are read as the 20 Pascal VOC classes.",
            file="class_names.txt",
        )
        return list(VOC_CLASSES)
    names: set[str] = set()
    for xml in sorted(layout.annotations.glob("*.xml")):
        objects = _read_xml(layout, xml, report)
        names |= {o.name for o in objects or []}
    return sorted(n for n in names if check_label(report, n, "Annotations/", field="name"))


def _split_lists(layout: _Layout, has_masks: bool, report: ImportReport) -> dict[str, Split] | None:
    """Image id → split from ImageSets, or None when there are no lists."""
    kinds = ("Segmentation", "Main") if has_masks else ("Main", "Segmentation")
    folder = next(
        (
            layout.root / "ImageSets" / k
            for k in kinds
            if any((layout.root / "ImageSets" / k / f"{s}.txt").is_file() for s in (*LIST_SPLITS, "trainval"))
        ),
        None,
    )
    if folder is None:
        return None
    files = [
        (folder / f"{s}.txt", split) for s, split in LIST_SPLITS.items() if (folder / f"{s}.txt").is_file()
    ]
    if not any(split in ("train", "val") for _, split in files) and (folder / "trainval.txt").is_file():
        files.append((folder / "trainval.txt", "train"))
    out: dict[str, Split] = {}
    for path, split in files:
        source = rel(layout.root, path)
        text = read_text(path, source, report)
        for lineno, line in enumerate((text or "").splitlines(), start=1):
            image_id = line.strip().split(" ")[0] if line.strip() else ""
            if not image_id:
                continue
            if image_id not in layout.images:
                report.error(
                    "image_missing",
                    f"{source} line {lineno}: {image_id!r} is not in JPEGImages/.",
                    file=source,
                    field=f"line {lineno}",
                )
            elif image_id in out and out[image_id] != split:
                report.error(
                    "duplicate_file",
                    f"{source} line {lineno}: {image_id!r} is also in the "
                    f"{out[image_id]} list; an image must be in one split only.",
                    file=source,
                    field=f"line {lineno}",
                )
            else:
                out[image_id] = split
    return out


def _annotate(
    layout: _Layout,
    image_id: str,
    image: ImageRecord,
    classes: list[str],
    builder: Builder,
    report: ImportReport,
) -> None:
    cls_path = layout.seg_class / f"{image_id}.png"
    obj_path = layout.seg_object / f"{image_id}.png"
    xml_path = layout.annotations / f"{image_id}.xml"
    objects = _read_xml(layout, xml_path, report, image) if xml_path.is_file() else None
    cls = _read_mask(layout, cls_path, image, report) if cls_path.is_file() else None
    obj = _read_mask(layout, obj_path, image, report) if obj_path.is_file() else None
    if cls is not None and not _values_known(layout, cls_path, cls, len(classes), report):
        return
    if obj is not None:
        _add_objects(layout, obj_path, obj, cls, objects, image, classes, builder, report)
    elif cls is not None:
        _add_class_regions(layout, cls_path, cls, image, builder)
    elif objects is not None:
        _add_boxes(layout, xml_path, objects, image, classes, builder, report)
    void = cls if cls is not None else obj
    if void is not None and (void == IGNORE_INDEX).any():
        builder.add_mask(
            image,
            void == IGNORE_INDEX,
            category_id=0,
            ignore=True,
            file=rel(layout.root, cls_path if cls is not None else obj_path),
            shape_index=None,
            attributes={"region": "void"},
        )


def _read_mask(
    layout: _Layout, path: Path, image: ImageRecord, report: ImportReport
) -> NDArray[np.uint8] | None:
    source = rel(layout.root, path)
    try:
        mask = read_index_mask(path.read_bytes())
    except ValueError as exc:
        report.error("mask_not_indexed", f"{source} {exc}.", file=source)
        return None
    if mask.shape != (image.height, image.width):
        report.error(
            "mask_size_mismatch",
            f"{source} is {mask.shape[1]}x{mask.shape[0]} but its image is {image.width}x{image.height}.",
            file=source,
        )
        return None
    return mask


def _values_known(
    layout: _Layout, path: Path, cls: NDArray[np.uint8], n_classes: int, report: ImportReport
) -> bool:
    values = sorted(int(v) for v in np.unique(cls) if v != IGNORE_INDEX and v > n_classes)
    if values:
        source = rel(layout.root, path)
        report.error(
            "mask_value_unknown",
            f"{source} holds class values {values} but there are only {n_classes} classes.",
            file=source,
        )
        return False
    return True


def _add_class_regions(
    layout: _Layout, path: Path, cls: NDArray[np.uint8], image: ImageRecord, builder: Builder
) -> None:
    for value in (int(v) for v in np.unique(cls)):
        if value not in (0, IGNORE_INDEX):
            builder.add_mask(
                image,
                cls == value,
                category_id=value,
                file=rel(layout.root, path),
                shape_index=None,
                attributes={"region": "class"},
            )


def _add_objects(
    layout: _Layout,
    path: Path,
    obj: NDArray[np.uint8],
    cls: NDArray[np.uint8] | None,
    objects: list[_VocObject] | None,
    image: ImageRecord,
    classes: list[str],
    builder: Builder,
    report: ImportReport,
) -> None:
    """One mask per instance; its class is the class mask's value there, else VOC's n-th XML object."""
    source = rel(layout.root, path)
    for value in (int(v) for v in np.unique(obj)):
        if value in (0, IGNORE_INDEX):
            continue
        region = obj == value
        category = _instance_class(region, cls, objects, value, classes)
        if category is None:
            report.error(
                "mask_class_unknown",
                f"{source}: object {value} has no class (no SegmentationClass "
                "mask and no matching object in Annotations/).",
                file=source,
                shape=value,
            )
            continue
        builder.add_mask(image, region, category_id=category, file=source, shape_index=value)


def _instance_class(
    region: NDArray[np.bool_],
    cls: NDArray[np.uint8] | None,
    objects: list[_VocObject] | None,
    value: int,
    classes: list[str],
) -> int | None:
    if cls is not None:
        counts = np.bincount(cls[region], minlength=256)
        counts[[0, IGNORE_INDEX]] = 0
        return int(counts.argmax()) if counts.any() else None
    if objects is not None and value <= len(objects) and objects[value - 1].name in classes:
        return classes.index(objects[value - 1].name) + 1
    return None


def _add_boxes(
    layout: _Layout,
    path: Path,
    objects: list[_VocObject],
    image: ImageRecord,
    classes: list[str],
    builder: Builder,
    report: ImportReport,
) -> None:
    source = rel(layout.root, path)
    for index, o in enumerate(objects):
        if o.name not in classes:
            report.error(
                "label_unknown",
                f"{source}, object {index}: class {o.name!r} is not in the class list.",
                file=source,
                shape=index,
                field="name",
            )
            continue
        xmin, ymin, xmax, ymax = o.box
        builder.add_shape(
            image,
            category_id=classes.index(o.name) + 1,
            shape_type=ShapeType.rectangle,
            points=[[xmin - 1, ymin - 1], [xmax - 1, ymax - 1]],
            file=source,
            shape_index=index,
            attributes=o.attributes,
        )


def _read_xml(
    layout: _Layout, path: Path, report: ImportReport, image: ImageRecord | None = None
) -> list[_VocObject] | None:
    """Objects of one annotation file, parsed without entity expansion; None (reported) when broken."""
    source = rel(layout.root, path)
    try:
        tree = SafeET.parse(path)
    except ParseError as exc:
        line, col = exc.position
        report.error(
            "xml_invalid",
            f"{source} is not valid XML: line {line}, column {col}.",
            file=source,
            field=f"line {line}, column {col}",
        )
        return None
    except DefusedXmlException as exc:
        report.error(
            "xml_invalid",
            f"{source} uses XML entities or DTDs, which are refused ({type(exc).__name__}).",
            file=source,
        )
        return None
    root = tree.getroot()
    if root is None:
        report.error("xml_invalid", f"{source} has no root element.", file=source)
        return None
    if image is not None and not _size_agrees(root, image, source, report):
        return None
    out: list[_VocObject] = []
    for index, node in enumerate(root.findall("object")):
        parsed = _read_object(node, index, source, report)
        if parsed is not None:
            out.append(parsed)
    return out


def _size_agrees(root: Element, image: ImageRecord, source: str, report: ImportReport) -> bool:
    w, h = root.findtext("size/width"), root.findtext("size/height")
    try:
        size = (int(float(w)), int(float(h))) if w and h else None
    except ValueError:
        size = None
    if size is not None and size != (image.width, image.height):
        report.error(
            "image_size_mismatch",
            f"{source} gives the size {size[0]}x{size[1]} but the image is {image.width}x{image.height}.",
            file=source,
            field="size",
        )
        return False
    return True


def _read_object(node: Element, index: int, source: str, report: ImportReport) -> _VocObject | None:
    name = (node.findtext("name") or "").strip()
    coords = [node.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
    try:
        box = tuple(float(c) for c in coords if c is not None)
    except ValueError:
        box = ()
    if not name or len(box) != 4:
        what = "name" if not name else "bndbox"
        report.error(
            "xml_invalid",
            f"{source}, object {index}: '{what}' is missing or not a number.",
            file=source,
            shape=index,
            field=what,
        )
        return None
    attributes: dict[str, Any] = {}
    for key in ("pose", "truncated", "difficult"):
        value = node.findtext(key)
        if value is not None:
            attributes[key] = value.strip()
    return _VocObject(name, (box[0], box[1], box[2], box[3]), attributes)
