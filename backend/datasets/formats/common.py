"""What every format parser shares: walking an upload safely, reading class lists and text files, and a
builder that turns source shapes into canonical annotations with labelme-exact areas and boxes."""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pycocotools import mask as coco_mask

from backend.datasets.canonical import (
    BACKGROUND,
    IGNORE_LABEL,
    LABEL_PATTERN,
    MAX_LABEL_LENGTH,
    Annotation,
    CanonicalDataset,
    ImageRecord,
    ImportReport,
    ShapeType,
    Split,
)
from backend.datasets.images import is_image_name, normalise_image
from backend.datasets.rasterize import clip_polygon, mask_bbox, shape_area_bbox, shape_polygon

# Archive and desktop litter that is never part of a dataset.
JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
SPLIT_NAMES: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
# How many points each shape type takes in labelme (None: at least the number in the minimum).
POINT_COUNTS: dict[ShapeType, tuple[int, int | None]] = {
    ShapeType.polygon: (3, None),
    ShapeType.rectangle: (2, 2),
    ShapeType.circle: (2, 2),
    ShapeType.line: (2, 2),
    ShapeType.linestrip: (2, None),
    ShapeType.point: (1, 1),
    ShapeType.mask: (2, 2),
}
MAX_LISTED = 5  # names shown in a summary finding before "and N more"


def is_junk(name: str) -> bool:
    return name in JUNK_NAMES or name.startswith(".")


def walk_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` in a stable order (a folder's files by name, then its folders by
    name), skipping litter and never following links. File types come from the directory listing itself,
    so there is no system call per file."""
    out: list[Path] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not is_junk(e.name)), key=lambda e: e.name)
        except OSError:
            continue  # unreadable folders are skipped, as os.walk skips them
        dirs: list[str] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    out.append(Path(entry.path))
            except OSError:
                continue
        stack.extend(reversed(dirs))
    return out


def rel(root: Path, path: Path) -> str:
    """The path as shown to the user: relative to the upload, with forward slashes."""
    try:
        return posixpath.normpath(path.relative_to(root).as_posix())  # "a/../b.jpg" is shown as "b.jpg"
    except ValueError:
        return path.name


def visible_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_junk(p.name))


def unwrap(root: Path) -> Path:
    """Step into a single folder that wraps the whole upload (as zipping a folder makes), unless its
    name says something (``train``) or it holds only images (a class folder)."""
    for _ in range(3):
        entries = visible_entries(root)
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            break
        if entries[0].name.lower() in SPLIT_NAMES:
            break
        inner = visible_entries(entries[0])
        if inner and all(p.is_file() and is_image_name(p) for p in inner):
            break  # a folder of nothing but images is a class folder, not a wrapper
        root = entries[0]
    return root


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (after resolving ``..`` and links) stays within ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def split_from_name(name: str) -> Split | None:
    return SPLIT_NAMES.get(name.lower())


def summary(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def label_ok(label: str) -> bool:
    """Whether a class name is acceptable (see ``check_label`` for the finding)."""
    return len(label) <= MAX_LABEL_LENGTH and bool(LABEL_PATTERN.match(label))


def check_label(
    report: ImportReport, label: str, file: str, shape: int | None = None, field: str = "label"
) -> bool:
    """A class name must be short and made of letters, digits and a few separators."""
    where = f", shape {shape}" if shape is not None else ""
    if len(label) > MAX_LABEL_LENGTH:
        report.error(
            "label_invalid",
            f"{file}{where}: label is longer than {MAX_LABEL_LENGTH} characters.",
            file=file,
            shape=shape,
            field=field,
        )
        return False
    if not LABEL_PATTERN.match(label):
        report.error(
            "label_invalid",
            f"{file}{where}: label {label!r} has characters that are not allowed "
            "(use letters, digits, spaces and . , : ; + - / ( ) # & ' @).",
            file=file,
            shape=shape,
            field=field,
        )
        return False
    return True


def read_text(path: Path, source: str, report: ImportReport) -> str | None:
    """A text file as UTF-8, with or without a byte-order mark."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.error("encoding_invalid", f"{source} is not UTF-8 text (byte {exc.start}).", file=source)
        return None


def read_class_list(path: Path, source: str, report: ImportReport) -> tuple[list[str], bool]:
    """Classes from a labels.txt-style file: one name a line, ``_background_`` and ``__ignore__`` left out.

    Returns the classes and whether ``_background_`` was the first line (labelme2voc's class_names.txt)."""
    text = read_text(path, source, report)
    if text is None:
        return [], False
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n]
    background_first = bool(names) and names[0] == BACKGROUND
    classes: list[str] = []
    for lineno, name in enumerate(text.splitlines(), start=1):
        name = name.strip()
        if not name or name in (BACKGROUND, IGNORE_LABEL):
            continue
        if name in classes:
            report.warn(
                "label_duplicate",
                f"{source} line {lineno}: {name!r} is listed twice; the first is kept.",
                file=source,
                field=f"line {lineno}",
            )
            continue
        if check_label(report, name, source, field=f"line {lineno}"):
            classes.append(name)
    return classes, background_first


def point_problem(shape_type: ShapeType, points: Sequence[Sequence[float]]) -> tuple[str, str] | None:
    """Why these points cannot make this shape, as (finding code, reason), or None when they can."""
    if any(len(p) != 2 for p in points):
        return "shape_points_invalid", "every point must be [x, y]"
    if not all(math.isfinite(c) for p in points for c in p):
        return "coordinates_not_finite", "has coordinates that are not finite numbers"
    low, high = POINT_COUNTS[shape_type]
    n = len(points)
    if shape_type == ShapeType.polygon and n < low:
        return "polygon_too_few_points", f"polygon has {n} points, needs at least 3"
    if n < low or (high is not None and n > high):
        wanted = f"{low}" if high == low else f"at least {low}"
        return "shape_points_invalid", f"{shape_type.value} has {n} points, needs {wanted}"
    return None


def word_outline(
    points: Sequence[Sequence[float]],
) -> tuple[Literal["ok", "crossed", "empty"], list[list[float]]]:
    """A word's outline as text detection can take it: unchanged ("ok"); its convex hull when its edges
    cross (corners clicked out of order: a bow tie), "crossed"; "empty" when it encloses no area (its
    points on one line). Text detection shrinks and grows outlines, which neither of the last two can
    take. Unchanged where shapely (a worker dependency) is not installed: imports run in a worker."""
    pts = [[float(x), float(y)] for x, y in points]
    try:
        from shapely.geometry import Polygon
    except ImportError:
        return "ok", pts
    poly = Polygon(pts)
    hull = poly.convex_hull
    if hull.geom_type != "Polygon" or hull.area == 0:
        return "empty", pts
    if poly.is_valid:
        return "ok", pts
    return "crossed", [[float(x), float(y)] for x, y in list(hull.exterior.coords)[:-1]]


def extent(shape_type: ShapeType, points: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """Geometric extent (x0, y0, x1, y1) of the shape as drawn, before clipping."""
    if shape_type == ShapeType.circle:
        (cx, cy), (px, py) = points[0], points[1]
        r = math.hypot(cx - px, cy - py)
        return cx - r, cy - r, cx + r, cy + r
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def encode_rle(mask: NDArray[np.bool_]) -> dict[str, Any]:
    """COCO RLE of a boolean mask, with ``counts`` as str so it is JSON."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {
        "size": [int(s) for s in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


class Builder:
    """Collects images and annotations, numbering them and writing images under ``out_dir``."""

    def __init__(self, out_dir: Path, report: ImportReport) -> None:
        self.out_dir = out_dir
        self.report = report
        self.images: list[ImageRecord] = []
        self.annotations: list[Annotation] = []
        self._names: dict[int, set[str]] = {}  # image id -> upload files whose findings concern it

    def add_image(
        self,
        src: Path | bytes,
        source: str,
        *,
        split: Split = "train",
        tags: Iterable[str] = (),
        also: Iterable[str] = (),
    ) -> ImageRecord | None:
        """Normalise and store one image; None when it is unusable (the finding is in the report)."""
        image_id = len(self.images) + 1
        done = normalise_image(src, source, self.out_dir, f"{image_id:06d}", self.report)
        if done is None:
            return None
        file_name, width, height = done
        record = ImageRecord(
            id=image_id,
            file_name=file_name,
            source=source,
            width=width,
            height=height,
            split=split,
            tags=list(tags),
        )
        self._names[image_id] = {source, *also}
        self.images.append(record)
        return record

    def add_shape(
        self,
        image: ImageRecord,
        *,
        category_id: int,
        shape_type: ShapeType,
        points: list[list[float]],
        file: str,
        shape_index: int | None,
        group_id: int | None = None,
        ignore: bool = False,
        text: str | None = None,
        mask_rle: dict[str, Any] | None = None,
        iscrowd: int = 0,
        attributes: dict[str, Any] | None = None,
    ) -> Annotation | None:
        """Check the points, rasterise labelme's way for area and box, clip; None when skipped or wrong."""
        where = f"{file}, shape {shape_index}" if shape_index is not None else file
        problem = point_problem(shape_type, points)
        if problem is not None:
            self.report.error(
                problem[0], f"{where}: {problem[1]}.", file=file, shape=shape_index, field="points"
            )
            return None
        w, h = image.width, image.height
        if text is not None and shape_type == ShapeType.polygon:
            state, outline = word_outline(points)
            if state == "empty":
                self.report.warn(
                    "word_outline_empty",
                    f"{where}: the word's outline encloses no area (its points lie on one line) and was "
                    "skipped.",
                    file=file,
                    shape=shape_index,
                    field="points",
                )
                return None
            if state == "crossed":
                self.report.warn(
                    "word_outline_crossed",
                    f"{where}: the word's outline crosses itself (its points are out of order); its convex "
                    f"hull ({len(outline)} points) was used instead.",
                    file=file,
                    shape=shape_index,
                    field="points",
                )
                points = outline
        area, bbox = shape_area_bbox(h, w, shape_type, points, mask_rle)
        if area == 0:
            x0, y0, x1, y1 = extent(shape_type, points)
            inside = x1 >= -0.5 and y1 >= -0.5 and x0 <= w - 0.5 and y0 <= h - 0.5
            self.report.warn(
                "shape_empty" if inside else "shape_outside",
                f"{where}: the {shape_type.value} "
                + (
                    "encloses no pixel (its points lie on one line, or closer than a pixel)"
                    if inside
                    else f"lies wholly outside the {w}x{h} image"
                )
                + " and was skipped.",
                file=file,
                shape=shape_index,
                field="points",
            )
            return None
        x0, y0, x1, y1 = extent(shape_type, points)
        # The image spans [-0.5, w - 0.5] taking pixels by their centres and [0, w] taking them by their
        # corners (labelme's canvas ends at w): a shape that reaches w (a circle whose edge is the image's
        # last column) cuts off nothing in either, so only what is beyond both is warned of.
        if shape_type != ShapeType.mask and (x0 < -0.5 or y0 < -0.5 or x1 > w or y1 > h):
            self.report.warn(
                "shape_clipped",
                f"{where}: the {shape_type.value} reaches outside the {w}x{h} "
                "image; its box and outline were clipped to the image.",
                file=file,
                shape=shape_index,
                field="points",
            )
        polygon = shape_polygon(shape_type, points)
        ann = Annotation(
            id=len(self.annotations) + 1,
            image_id=image.id,
            category_id=0 if ignore else category_id,
            shape_type=shape_type,
            points=[[float(x), float(y)] for x, y in points],
            segmentation=[clip_polygon(polygon, w, h)] if polygon else [],
            mask_rle=mask_rle,
            bbox=bbox,
            area=float(area),
            group_id=group_id,
            iscrowd=iscrowd,
            ignore=ignore,
            text=text,
            attributes=attributes or {},
        )
        self.annotations.append(ann)
        return ann

    def add_mask(
        self,
        image: ImageRecord,
        mask: NDArray[np.bool_],
        *,
        category_id: int,
        file: str,
        shape_index: int | None,
        group_id: int | None = None,
        ignore: bool = False,
        iscrowd: int = 0,
        attributes: dict[str, Any] | None = None,
    ) -> Annotation | None:
        """A full-image boolean mask as a ``mask`` shape; its points are the corners of its box."""
        x, y, bw, bh = mask_bbox(mask)
        points = [[x, y], [x + bw - 1, y + bh - 1]]
        return self.add_shape(
            image,
            category_id=category_id,
            shape_type=ShapeType.mask,
            points=points,
            file=file,
            shape_index=shape_index,
            group_id=group_id,
            ignore=ignore,
            mask_rle=encode_rle(mask),
            iscrowd=iscrowd,
            attributes=attributes,
        )

    def dataset(self, classes: list[str], *, split_source: Literal["source", "seeded"]) -> CanonicalDataset:
        """The collected dataset; each image lists the codes of the findings about its files."""
        for image in self.images:
            names = self._names.get(image.id, {image.source})
            image.problems = sorted({f.code for f in self.report.findings if f.file in names})
        return CanonicalDataset(
            classes=classes,
            tasks=[],
            images=self.images,
            annotations=self.annotations,
            split_source=split_source,
        )
