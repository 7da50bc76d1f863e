"""ICDAR 2015 text localisation: ``img_N.jpg`` with ``gt_img_N.txt`` anywhere in the upload (same folder or
separate ones). Each line is ``x1,y1,x2,y2,x3,y3,x4,y4,transcription``; the transcription may hold commas;
``###`` means "do not care" (an ignore region). UTF-8 with or without a byte-order mark. One class: text.

A folder name such as ``ch4_training_images`` or ``test`` gives the image its split. Images without a
ground-truth file are left out with one warning."""

from __future__ import annotations

import math
import re
from pathlib import Path

from backend.datasets.canonical import CanonicalDataset, ImportReport, ShapeType, Split
from backend.datasets.formats.common import Builder, read_text, rel, split_from_name, summary, walk_files
from backend.datasets.images import is_image_name

TEXT_CLASS = "text"
DONT_CARE = "###"
GT_NAME = re.compile(r"^gt_(.+)\.txt$", re.IGNORECASE)


def is_icdar(root: Path) -> bool:
    """A ``gt_X.txt`` file with an image ``X.*`` somewhere in the upload."""
    files = walk_files(root)
    stems = {p.stem for p in files if is_image_name(p)}
    return any((m := GT_NAME.match(p.name)) is not None and m.group(1) in stems for p in files)


def split_of_path(rel_path: str) -> Split | None:
    """The split a folder name announces: ``train``, ``ch4_training_images``, ``Test``..."""
    for part in Path(rel_path).parts[:-1]:
        for token in re.split(r"[_\-. ]", part):
            split = split_from_name(token)
            if split is not None:
                return split
    return None


def parse(root: Path, out_dir: Path, report: ImportReport) -> CanonicalDataset:
    """Pair images with their ground-truth files and read the quadrilaterals."""
    files = walk_files(root)
    images: dict[str, Path] = {}
    for path in files:
        if is_image_name(path):
            if path.stem in images:
                report.error(
                    "duplicate_file",
                    f"Two images are named {path.stem}: {rel(root, images[path.stem])} "
                    f"and {rel(root, path)}.",
                    file=rel(root, path),
                )
                continue
            images[path.stem] = path
    pairs: list[tuple[Path, Path]] = []
    for path in files:
        match = GT_NAME.match(path.name)
        if match is None:
            continue
        image = images.pop(match.group(1), None)
        if image is None:
            source = rel(root, path)
            report.error("image_missing", f"{source} has no image named {match.group(1)}.*.", file=source)
            continue
        pairs.append((image, path))
    if images:
        lonely = sorted(rel(root, p) for p in images.values())
        report.warn(
            "image_unlabelled",
            f"{len(lonely)} images have no gt_*.txt file and were left out: {summary(lonely)}.",
            file=lonely[0],
        )
    splits = [split_of_path(rel(root, image)) for image, _ in pairs]
    use_splits = bool(pairs) and None not in splits
    builder = Builder(out_dir, report)
    for (image_path, gt_path), split in zip(pairs, splits, strict=True):
        gt_source = rel(root, gt_path)
        lines = _read_gt(gt_path, gt_source, report)
        record = builder.add_image(
            image_path,
            rel(root, image_path),
            split=split if use_splits and split else "train",
            also=(gt_source,),
        )
        if record is None or lines is None:
            continue
        for lineno, points, text in lines:
            builder.add_shape(
                record,
                category_id=1,
                shape_type=ShapeType.polygon,
                points=points,
                file=gt_source,
                shape_index=lineno,
                ignore=text == DONT_CARE,
                text=text,
            )
    return builder.dataset([TEXT_CLASS], split_source="source" if use_splits else "seeded")


def _read_gt(
    path: Path, source: str, report: ImportReport
) -> list[tuple[int, list[list[float]], str]] | None:
    """(line number, four points, transcription) per line; None when the file is unreadable."""
    text = read_text(path, source, report)
    if text is None:
        return None
    out: list[tuple[int, list[list[float]], str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",", 8)  # the ninth field, the transcription, keeps its own commas
        try:
            coords = [float(c) for c in parts[:8]]
        except ValueError:
            coords = []
        if len(coords) != 8 or len(parts) < 8:
            report.error(
                "line_invalid",
                f"{source} line {lineno}: expected x1,y1,...,x4,y4,transcription, got {line[:80]!r}.",
                file=source,
                shape=lineno,
                field=f"line {lineno}",
            )
            continue
        if not all(math.isfinite(c) for c in coords):
            report.error(
                "coordinates_not_finite",
                f"{source} line {lineno}: coordinates are not finite numbers.",
                file=source,
                shape=lineno,
                field=f"line {lineno}",
            )
            continue
        transcription = parts[8] if len(parts) > 8 else ""
        out.append((lineno, [[coords[k], coords[k + 1]] for k in range(0, 8, 2)], transcription))
    return out
