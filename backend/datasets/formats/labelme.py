"""labelme projects: folders (nested allowed) of labelme JSON files beside their images, or JSON files
that carry the image themselves (``imageData``), with an optional ``labels.txt`` at the top.

Decisions: an image with no JSON is left out (as labelme2voc and labelme2coco leave it out; unlabelled is
not the same as "all background") with one warning; a JSON with no shapes is a labelled negative and kept.
The image comes from ``imageData`` when present (as labelme loads it), else from ``imagePath`` relative to
the JSON file."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from backend.datasets.canonical import (
    BACKGROUND,
    IGNORE_LABEL,
    CanonicalDataset,
    ImageRecord,
    ImportReport,
    ShapeType,
    Split,
)
from backend.datasets.formats.common import (
    Builder,
    check_label,
    encode_rle,
    label_ok,
    read_class_list,
    rel,
    split_from_name,
    summary,
    walk_files,
)
from backend.datasets.images import decode_png_mask, is_image_name

LABELS_FILE = "labels.txt"
DONT_CARE_TEXT = "###"  # ICDAR's don't-care word, as a labelme label
TEXT_LABEL = "text"  # shapes of this class outline words: the dataset can train text detection
SPECIAL_LABELS = (BACKGROUND, IGNORE_LABEL, DONT_CARE_TEXT)


class LabelmeShape(BaseModel):
    model_config = ConfigDict(extra="allow")

    label: str
    points: list[list[float]]
    group_id: int | None = None
    shape_type: str | None = "polygon"  # labelme 3 wrote no shape_type: polygons
    flags: dict[str, Any] | None = None
    description: str | None = None
    mask: str | None = None


class LabelmeDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str | None = None
    flags: dict[str, bool | None] | None = None
    shapes: list[LabelmeShape]
    imagePath: str | None = None  # labelme's field names
    imageData: str | None = None
    imageHeight: int | None = None
    imageWidth: int | None = None
    # Where each kept shape stands in the file, when bad shapes were left out (None: all of them, in order).
    _file_index: list[int] | None = PrivateAttr(default=None)

    def indexed_shapes(self) -> list[tuple[int, LabelmeShape]]:
        """Each shape with its index in the file, which the report names."""
        return list(zip(self._file_index or range(len(self.shapes)), self.shapes, strict=True))


@dataclass
class _Item:
    """One labelme file, parsed, with where its image comes from."""

    source: str
    doc: LabelmeDocument
    image: Path | bytes
    image_name: str
    split: Split | None
    tags: list[str] = field(default_factory=list)


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Read a labelme project under ``root``; images go to ``out_dir/images``."""
    files = walk_files(root)
    items: list[_Item] = []
    claimed: dict[Path, str] = {}
    real_root = root.resolve()
    for path in files:
        if path.suffix.lower() == ".json":
            item = _load_item(root, real_root, path, report, claimed)
            if item is not None:
                items.append(item)
    _warn_unlabelled(root, real_root, files, claimed, report)
    classes = _classes(root, items, report)
    known = set(classes)
    classification = _is_classification(items)
    splits = {item.split for item in items}
    use_splits = bool(items) and None not in splits
    builder = Builder(out_dir, report)
    for item in items:
        _check_tags(item, known if classification else None, report)
        image = builder.add_image(
            item.image,
            item.image_name,
            split=(item.split or "train") if use_splits else "train",
            tags=item.tags,
            also=(item.source,),
        )
        if image is None:
            continue
        if not _size_agrees(item, image, report):
            continue
        for index, shape in item.doc.indexed_shapes():
            _add_shape(builder, image, item.source, index, shape, classes, report)
    return builder.dataset(classes, split_source="source" if use_splits else "seeded")


def _load_item(
    root: Path, real_root: Path, path: Path, report: ImportReport, claimed: dict[Path, str]
) -> _Item | None:
    source = rel(root, path)
    doc = _load_document(path, source, report)
    if doc is None:
        return None
    found = _find_image(root, real_root, path, source, doc, report)
    if found is None:
        return None
    image, image_name, key = found
    if key is not None:  # an image file, resolved
        if key in claimed:
            report.error(
                "duplicate_file",
                f"{source} and {claimed[key]} both label the image {image_name}; keep one of them.",
                file=source,
                field="imagePath",
            )
            return None
        claimed[key] = source
    elif doc.imagePath:
        # The embedded image is the one used, but the file beside it is labelled all the same.
        beside = path.parent / doc.imagePath.replace("\\", "/")
        real = _resolved_inside(real_root, beside)
        if real is not None and beside.is_file():
            claimed.setdefault(real, source)
    first = PurePosixPath(source).parts[0] if len(PurePosixPath(source).parts) > 1 else ""
    tags = [name for name, on in (doc.flags or {}).items() if on]
    return _Item(source, doc, image, image_name, split_from_name(first) if first else None, tags)


def _load_document(path: Path, source: str, report: ImportReport) -> LabelmeDocument | None:
    """The file as a labelme document, or None with the finding that says why not."""
    data = path.read_bytes()
    try:
        # The common case in one pass: pydantic parses and checks the bytes itself.
        return LabelmeDocument.model_validate_json(data)
    except ValidationError:
        pass  # anything else (a byte-order mark, NaN, bad JSON, a wrong field) takes the long way
    raw = _read_json(data, source, report)
    if raw is None:
        return None
    if not isinstance(raw, dict) or "shapes" not in raw:
        report.warn(
            "not_labelme",
            f"{source} is not a labelme file (it has no 'shapes' list); it was left out.",
            file=source,
        )
        return None
    try:
        return LabelmeDocument.model_validate(raw)
    except ValidationError as exc:
        kept = _without_bad_shapes(source, raw, report) if report.skips_bad_shapes else None
        if kept is None:
            _report_invalid(source, exc, report)
        return kept


def _without_bad_shapes(source: str, raw: dict[str, Any], report: ImportReport) -> LabelmeDocument | None:
    """The document with each shape that does not validate left out (and reported, as skipped), or None
    when what is wrong is not a shape."""
    shapes = raw.get("shapes")
    if not isinstance(shapes, list):
        return None
    try:
        doc = LabelmeDocument.model_validate({**raw, "shapes": []})
    except ValidationError:
        return None
    kept: list[tuple[int, LabelmeShape]] = []
    for index, shape in enumerate(shapes):
        try:
            kept.append((index, LabelmeShape.model_validate(shape)))
        except ValidationError as exc:
            _report_invalid(source, exc, report, shape=index)
    doc.shapes = [shape for _, shape in kept]
    doc._file_index = [index for index, _ in kept]
    return doc


def _read_json(data: bytes, source: str, report: ImportReport) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        report.error("encoding_invalid", f"{source} is not UTF-8 text (byte {exc.start}).", file=source)
    except json.JSONDecodeError as exc:
        report.error(
            "json_invalid",
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            file=source,
            field=f"line {exc.lineno}, column {exc.colno}",
        )
    return None


def _report_invalid(
    source: str, exc: ValidationError, report: ImportReport, shape: int | None = None
) -> None:
    """Name the first wrong field the way a user reads it: ``shapes[2].points`` (``exc`` is of one shape,
    the ``shape``-th, when it is given)."""
    err = exc.errors()[0]
    loc = ([] if shape is None else ["shapes", str(shape)]) + [str(p) for p in err["loc"]]
    shape = int(loc[1]) if len(loc) > 1 and loc[0] == "shapes" and loc[1].isdigit() else None
    field_name = ".".join(loc[2:]) if shape is not None else ".".join(loc)
    where = f", shape {shape}" if shape is not None else ""
    report.error(
        "labelme_invalid",
        f"{source}{where}: field '{field_name or loc[0]}' {err['msg'].lower()}.",
        file=source,
        shape=shape,
        field=field_name or None,
    )


def _resolved_inside(real_root: Path, path: Path) -> Path | None:
    """``path`` with ``..`` and links resolved, when it stays within the upload (``real_root`` is the upload
    folder, resolved); else None. ``inside`` for a root resolved once."""
    try:
        real = path.resolve()
        real.relative_to(real_root)
    except (ValueError, OSError):
        return None
    return real


def _find_image(
    root: Path, real_root: Path, path: Path, source: str, doc: LabelmeDocument, report: ImportReport
) -> tuple[Path | bytes, str, Path | None] | None:
    """The image bytes (embedded) or file for one labelme file, as labelme itself would find it, and for a
    file its resolved path."""
    if doc.imageData:
        try:
            return base64.b64decode(doc.imageData, validate=True), source + "#imageData", None
        except (binascii.Error, ValueError):
            report.error(
                "image_data_invalid",
                f"{source}: field 'imageData' is not valid base64.",
                file=source,
                field="imageData",
            )
            return None
    if not doc.imagePath:
        report.error(
            "image_missing",
            f"{source} names no image (no imagePath and no imageData).",
            file=source,
            field="imagePath",
        )
        return None
    # labelme on Windows writes backslashes; they are separators, not part of a name.
    candidate = path.parent / doc.imagePath.replace("\\", "/")
    real = _resolved_inside(real_root, candidate)
    if real is None:
        report.error(
            "image_path_outside",
            f"{source}: imagePath {doc.imagePath!r} points outside the upload.",
            file=source,
            field="imagePath",
        )
        return None
    if not candidate.is_file() or candidate.is_symlink():
        report.error(
            "image_missing",
            f"{source}: imagePath {doc.imagePath!r} names a file that is not in the upload.",
            file=source,
            field="imagePath",
        )
        return None
    return candidate, rel(root, candidate), real


def _warn_unlabelled(
    root: Path, real_root: Path, files: list[Path], claimed: dict[Path, str], report: ImportReport
) -> None:
    # walk_files reaches files through real folders only, so a file's resolved path is the resolved root
    # and its place under it: no system call per file.
    lonely = [
        rel(root, p) for p in files if is_image_name(p) and real_root / p.relative_to(root) not in claimed
    ]
    if lonely:
        report.warn(
            "image_unlabelled",
            f"{len(lonely)} images have no labelme file and were left out: {summary(lonely)}.",
            file=lonely[0],
        )


def _is_classification(items: list[_Item]) -> bool:
    """No shapes anywhere and exactly one true flag on every image: flags are the classes."""
    return bool(items) and all(not i.doc.shapes and len(i.tags) == 1 for i in items)


def _classes(root: Path, items: list[_Item], report: ImportReport) -> list[str]:
    labels = root / "labels.txt"
    if labels.is_file():
        return read_class_list(labels, LABELS_FILE, report)[0]
    if _is_classification(items):
        # labelme writes every flag of its --flags file in that file's order: keep that order.
        order: dict[str, None] = {}
        for item in items:
            order.update(dict.fromkeys((item.doc.flags or {}).keys()))
        names = list(order)
    else:
        names = sorted({s.label for i in items for s in i.doc.shapes if s.label not in SPECIAL_LABELS})
    # Bad names are reported where they are used (shape or flag), with the shape's index.
    return [n for n in names if label_ok(n)]


def _check_tags(item: _Item, known: set[str] | None, report: ImportReport) -> None:
    kept: list[str] = []
    for tag in item.tags:
        if not check_label(report, tag, item.source, field=f"flags.{tag}"):
            continue
        if known is not None and tag not in known:
            report.error(
                "label_unknown",
                f"{item.source}: flag {tag!r} is not in {LABELS_FILE}.",
                file=item.source,
                field=f"flags.{tag}",
            )
            continue
        kept.append(tag)
    item.tags = kept


def _size_agrees(item: _Item, image: ImageRecord, report: ImportReport) -> bool:
    h, w = item.doc.imageHeight, item.doc.imageWidth
    if (h is not None and h != image.height) or (w is not None and w != image.width):
        report.error(
            "image_size_mismatch",
            f"{item.source} says the image is {w}x{h} but {item.image_name} "
            f"is {image.width}x{image.height} (after EXIF orientation); the shapes would not fit it.",
            file=item.source,
            field="imageWidth" if w != image.width else "imageHeight",
        )
        return False
    return True


def _add_shape(
    builder: Builder,
    image: ImageRecord,
    source: str,
    index: int,
    shape: LabelmeShape,
    classes: list[str],
    report: ImportReport,
) -> None:
    try:
        kind = ShapeType(shape.shape_type or "polygon")
    except ValueError:
        report.warn(
            "shape_type_unknown",
            f"{source}, shape {index}: shape type {shape.shape_type!r} is not "
            "one the studio knows; the shape was skipped.",
            file=source,
            shape=index,
            field="shape_type",
        )
        return
    label = shape.label
    ignore = label in (IGNORE_LABEL, DONT_CARE_TEXT)
    if label == BACKGROUND or ignore:
        category = 0  # labelme2voc paints _background_ as 0 and __ignore__ as void
    elif not check_label(report, label, source, index):
        return
    elif label not in classes:
        report.error(
            "label_unknown",
            f"{source}, shape {index}: label {label!r} is not in {LABELS_FILE}.",
            file=source,
            shape=index,
            field="label",
        )
        return
    else:
        category = classes.index(label) + 1
    mask_rle = None
    if kind == ShapeType.mask:
        mask_rle = _labelme_mask(image, source, index, shape, report)
        if mask_rle is None:
            return
    attributes: dict[str, Any] = {}
    if shape.flags:
        attributes["flags"] = shape.flags
    if shape.description:
        attributes["description"] = shape.description
    builder.add_shape(
        image,
        category_id=category,
        shape_type=kind,
        points=shape.points,
        file=source,
        shape_index=index,
        group_id=shape.group_id,
        ignore=ignore,
        mask_rle=mask_rle,
        attributes=attributes,
        # A word (class "text", or ICDAR's ### don't-care): its transcription, if the description holds one
        text=(shape.description or "") if label.lower() == TEXT_LABEL or label == DONT_CARE_TEXT else None,
    )


def _labelme_mask(
    image: ImageRecord, source: str, index: int, shape: LabelmeShape, report: ImportReport
) -> dict[str, Any] | None:
    """labelme 5's mask: a PNG of the box from points[0] to points[1], placed as labelme places it."""
    where = f"{source}, shape {index}"
    if not shape.mask or len(shape.points) != 2 or any(len(p) != 2 for p in shape.points):
        report.error(
            "mask_invalid",
            f"{where}: a mask shape needs two corner points and a 'mask' PNG.",
            file=source,
            shape=index,
            field="mask",
        )
        return None
    try:
        region = decode_png_mask(base64.b64decode(shape.mask, validate=True))
        (x1, y1), (x2, y2) = (int(c) for c in shape.points[0]), (int(c) for c in shape.points[1])
    except (binascii.Error, ValueError, OverflowError) as exc:
        report.error(
            "mask_invalid",
            f"{where}: field 'mask' is not a base64 PNG ({exc}).",
            file=source,
            shape=index,
            field="mask",
        )
        return None
    if region.shape != (y2 - y1 + 1, x2 - x1 + 1):
        report.error(
            "mask_invalid",
            f"{where}: the mask is {region.shape[1]}x{region.shape[0]} but its points "
            f"span {x2 - x1 + 1}x{y2 - y1 + 1}.",
            file=source,
            shape=index,
            field="mask",
        )
        return None
    # Paint on a canvas large enough for the box, then cut the image out of it: clips without wrapping.
    canvas = np.zeros((max(image.height, y2 + 1) - min(0, y1), max(image.width, x2 + 1) - min(0, x1)), bool)
    oy, ox = -min(0, y1), -min(0, x1)
    canvas[y1 + oy : y2 + 1 + oy, x1 + ox : x2 + 1 + ox] = region
    full = canvas[oy : oy + image.height, ox : ox + image.width]
    return encode_rle(np.ascontiguousarray(full))
