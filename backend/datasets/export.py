"""Exports of a canonical dataset: Pascal VOC (as labelme's ``labelme2voc.py`` lays it out) and COCO
instances, which any dataset takes, the helpers the layouts of one task (``TaskSpec.exports``: ImageNet
folders, ICDAR 2015 files) are written with, and cached zips of each for download.

Every layout reads only ``annotations.json`` and the images beside it; masks are drawn by
:mod:`backend.datasets.rasterize`, so they agree pixel for pixel with labelme's own converters. Image files
the export keeps as they are become hard links to the dataset's own (a copy where the filesystem cannot
link): :func:`build_export_zip` only reads the tree and removes it, and nothing in the studio writes an
image of a dataset once it is imported."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from backend.datasets.canonical import (
    BACKGROUND,
    IGNORE_INDEX,
    SPLITS,
    Annotation,
    CanonicalDataset,
    ImageRecord,
)
from backend.datasets.rasterize import annotation_mask, instance_keys, label_images, label_maps

JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_QUALITY = 95
UNSAFE_NAME = re.compile(r"[^\w.-]+")
MAX_STEM = 100
PNG_LEVEL = 1
# Label maps are long runs of one value: zlib's run-length strategy finds them as fast as level 1 finds
# anything, and the files come out smaller than at Pillow's default level 6.
PNG_STRATEGY = zlib.Z_RLE


def usable_cpus() -> int:
    """CPUs this process may run on: a container's or ``taskset``'s share, not the whole machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# A few threads per export: enough to use a small machine, few enough not to starve a shared worker.
EXPORT_THREADS = max(1, min(4, usable_cpus()))
T = TypeVar("T")
# Already-compressed files gain nothing from deflate; storing them keeps zipping I/O-bound.
STORED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


# --------------------------------------------------------------------------------------------- shared


def voc_colormap(n: int = 256) -> NDArray[np.uint8]:
    """The Pascal VOC palette (imgviz's ``label_colormap``): colour ``i`` from the bits of ``i``."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_PALETTE: list[int] = voc_colormap().flatten().tolist()


def export_stem(rec: ImageRecord) -> str:
    """The upload's own file stem (as labelme2voc names files), reduced to safe characters."""
    stem = UNSAFE_NAME.sub("_", PurePosixPath(rec.source.replace("\\", "/")).stem).strip("._")
    return stem[:MAX_STEM] or Path(rec.file_name).stem


def export_names(images: Iterable[ImageRecord]) -> dict[int, str]:
    """A unique file stem per image: the source stem, with ``_<id>`` appended where stems collide."""
    records = list(images)
    stems = {rec.id: export_stem(rec) for rec in records}
    counts = Counter(stems.values())
    return {i: stem if counts[stem] == 1 else f"{stem}_{i}" for i, stem in stems.items()}


def annotations_by_image(ds: CanonicalDataset) -> dict[int, list[Annotation]]:
    """Annotations grouped by image, in file order (later shapes paint over earlier ones)."""
    out: dict[int, list[Annotation]] = defaultdict(list)
    for ann in ds.annotations:
        out[ann.image_id].append(ann)
    return out


def split_images(ds: CanonicalDataset) -> dict[str, list[ImageRecord]]:
    """Images per split, only splits that have any, in canonical split order."""
    out: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    for rec in ds.images:
        out[rec.split].append(rec)
    return {s: recs for s, recs in out.items() if recs}


def escape(text: str) -> str:
    """XML text: ``&``, ``<`` and ``>`` escaped (what ``xml.sax.saxutils.escape`` does, without importing
    urllib on the way)."""
    return html_escape(text, quote=False)


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` with the bytes of ``src``: a hard link where the filesystem allows one (no bytes written),
    else a copy. An existing ``dst`` is replaced, never written through: it may itself be a link."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        dst.unlink()
    except OSError:
        pass  # another filesystem, or one without hard links
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)  # sendfile on Linux: no Python-side buffering


def copy_image(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    link_or_copy(src, dst)


def save_jpeg(src: Path, dst: Path) -> None:
    """JPEG files are kept byte for byte (no second lossy pass); anything else is encoded once."""
    if src.suffix.lower() in JPEG_SUFFIXES:
        link_or_copy(src, dst)
        return
    with Image.open(src) as img:
        rgb = flatten_alpha(img)
        rgb.save(dst, format="JPEG", quality=JPEG_QUALITY)


def flatten_alpha(img: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (JPEG has no alpha)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def number(v: float) -> str:
    """Coordinates as VOC tools read them: integers without a decimal point."""
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


def parallel(work: Callable[[T], object], items: Iterable[T]) -> None:
    """Run ``work`` over ``items`` on a few threads: Pillow and zlib release the GIL while they encode
    and draw, so images overlap. The first error is raised once all have finished."""
    with ThreadPoolExecutor(max_workers=EXPORT_THREADS) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------------------------------------ VOC


def save_palette_png(img: Image.Image, path: Path) -> None:
    """A mode "P" PNG with the VOC palette, as ``labelme.utils.lblsave`` writes it, from an "L" map."""
    img.putpalette(VOC_PALETTE)
    img.save(path, format="PNG", compress_level=PNG_LEVEL, compress_type=PNG_STRATEGY)


def instance_png(ins: NDArray[np.int32]) -> NDArray[np.uint8]:
    """Instance map for SegmentationObject: 0 background, 1..n objects, 255 ignore (VOC's void)."""
    if int(ins.max(initial=0)) >= IGNORE_INDEX:
        raise ValueError(f"VOC SegmentationObject holds at most {IGNORE_INDEX - 1} objects per image")
    out = ins.astype(np.uint8)
    out[ins < 0] = IGNORE_INDEX
    return out


def voc_label_images(rec: ImageRecord, anns: list[Annotation]) -> tuple[Image.Image, Image.Image]:
    """SegmentationClass and SegmentationObject maps ("L"), painted straight at their VOC values."""
    if len({k for k in instance_keys(anns) if k is not None}) < IGNORE_INDEX:
        return label_images(rec.height, rec.width, anns, instance_mode="L", ignore_instance=IGNORE_INDEX)
    # More objects than a byte holds: number them in full, and refuse only if one past 254 still shows.
    cls, ins = label_maps(rec.height, rec.width, anns)
    return Image.fromarray(cls), Image.fromarray(instance_png(ins))


def voc_object(name: str, bbox: list[float], difficult: bool) -> str:
    # Corners of the box's pixels, inclusive, 0-based: a rectangle's own points, as labelme writes them.
    x, y, w, h = bbox
    corners = "".join(
        f"<{k}>{number(v)}</{k}>"
        for k, v in (("xmin", x), ("ymin", y), ("xmax", x + w - 1), ("ymax", y + h - 1))
    )
    return (
        f"  <object>\n    <name>{escape(name)}</name>\n    <pose>Unspecified</pose>\n"
        f"    <truncated>0</truncated>\n    <difficult>{int(difficult)}</difficult>\n"
        f"    <bndbox>{corners}</bndbox>\n  </object>\n"
    )


def voc_xml(name: str, rec: ImageRecord, anns: list[Annotation], classes: list[str]) -> bytes:
    """Pascal VOC detection XML: one ``object`` per labelled shape, its box from the canonical bbox."""
    # Written as text: ElementTree costs more than the masks for images with few shapes.
    objects = "".join(
        voc_object(classes[a.category_id - 1], a.bbox, bool(a.iscrowd))
        for a in anns
        if not a.ignore and 0 < a.category_id <= len(classes)
    )
    return (
        f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{escape(name)}.jpg</filename>\n"
        f"  <size>\n    <width>{rec.width}</width>\n    <height>{rec.height}</height>\n"
        f"    <depth>3</depth>\n  </size>\n"
        # Every exported image has its SegmentationClass PNG.
        f"  <segmented>1</segmented>\n{objects}</annotation>\n"
    ).encode()


def voc_image(
    rec: ImageRecord, anns: list[Annotation], name: str, ds: CanonicalDataset, ds_dir: Path, out_dir: Path
) -> None:
    """All of one image's VOC files."""
    save_jpeg(ds_dir / rec.file_name, out_dir / "JPEGImages" / f"{name}.jpg")
    cls, ins = voc_label_images(rec, anns)
    save_palette_png(cls, out_dir / "SegmentationClass" / f"{name}.png")
    save_palette_png(ins, out_dir / "SegmentationObject" / f"{name}.png")
    (out_dir / "Annotations" / f"{name}.xml").write_bytes(voc_xml(name, rec, anns, ds.classes))


def export_voc(ds: CanonicalDataset, ds_dir: Path, out_dir: Path) -> None:
    """Pascal VOC: JPEGImages, SegmentationClass/Object (palette PNGs), Annotations, ImageSets."""
    if len(ds.classes) >= IGNORE_INDEX:
        raise ValueError(
            f"VOC masks hold at most {IGNORE_INDEX - 1} classes; this dataset has {len(ds.classes)}"
        )
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    # labelme writes the names without a final newline; readers split on lines either way.
    (out_dir / "class_names.txt").write_text("\n".join([BACKGROUND, *ds.classes]))
    names = export_names(ds.images)
    by_image = annotations_by_image(ds)
    parallel(
        lambda rec: voc_image(rec, by_image.get(rec.id, []), names[rec.id], ds, ds_dir, out_dir), ds.images
    )
    write_image_sets(out_dir / "ImageSets", ds, names)


def write_image_sets(folder: Path, ds: CanonicalDataset, names: dict[int, str]) -> None:
    """``{split}.txt`` (and ``trainval.txt``) under both ImageSets/Segmentation and ImageSets/Main."""
    per_split = {s: [names[r.id] for r in recs] for s, recs in split_images(ds).items()}
    if "train" in per_split or "val" in per_split:
        per_split["trainval"] = per_split.get("train", []) + per_split.get("val", [])
    for sub in ("Segmentation", "Main"):
        for split, stems in per_split.items():
            write_lines(folder / sub / f"{split}.txt", stems)


# ----------------------------------------------------------------------------------------------- COCO


def rle_json(mask: NDArray[np.bool_]) -> dict[str, Any]:
    """Compressed COCO RLE with ``counts`` as text, ready for JSON."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


def instance_groups(anns: list[Annotation]) -> list[list[Annotation]]:
    """Shapes of one object: labelme's instance key (label, group_id); ungrouped shapes stand alone."""
    groups: dict[tuple[int, object], list[Annotation]] = {}
    for ann in anns:
        if ann.ignore or ann.category_id < 1:
            continue  # COCO has no ignore regions; trainers would learn them as objects
        key: tuple[int, object] = (
            ann.category_id,
            ann.group_id if ann.group_id is not None else ("solo", ann.id),
        )
        groups.setdefault(key, []).append(ann)
    return list(groups.values())


def coco_annotation(group: list[Annotation], rec: ImageRecord, ann_id: int) -> dict[str, Any]:
    """One COCO annotation for one object: polygons where every shape has an outline, else RLE."""
    first = group[0]
    polygonal = all(a.segmentation and a.mask_rle is None and not a.iscrowd for a in group)
    if len(group) == 1:
        area, bbox = first.area, list(first.bbox)
        segmentation: Any = (
            [list(p) for p in first.segmentation]
            if polygonal
            else (
                first.mask_rle
                if first.mask_rle is not None
                else rle_json(annotation_mask(rec.height, rec.width, first))
            )
        )
    else:
        union = np.zeros((rec.height, rec.width), dtype=bool)
        for a in group:
            union |= annotation_mask(rec.height, rec.width, a)
        area = float(union.sum())
        x0 = min(a.bbox[0] for a in group)
        y0 = min(a.bbox[1] for a in group)
        x1 = max(a.bbox[0] + a.bbox[2] for a in group)
        y1 = max(a.bbox[1] + a.bbox[3] for a in group)
        bbox = [x0, y0, x1 - x0, y1 - y0]
        segmentation = [list(p) for a in group for p in a.segmentation] if polygonal else rle_json(union)
    out: dict[str, Any] = {
        "id": ann_id,
        "image_id": rec.id,
        "category_id": first.category_id,
        "segmentation": segmentation,
        "area": float(area),
        "bbox": [float(v) for v in bbox],
        "iscrowd": int(any(a.iscrowd for a in group)),
    }
    texts = [a.text for a in group if a.text is not None]
    if texts:
        out["text"] = " ".join(texts)
    return out


def coco_file_name(rec: ImageRecord, names: dict[int, str]) -> str:
    return names[rec.id] + Path(rec.file_name).suffix.lower()


def coco_split(
    ds: CanonicalDataset,
    recs: list[ImageRecord],
    names: dict[int, str],
    by_image: dict[int, list[Annotation]],
) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for rec in recs:
        image: dict[str, Any] = {
            "id": rec.id,
            "file_name": coco_file_name(rec, names),
            "width": rec.width,
            "height": rec.height,
        }
        if rec.tags:
            image["tags"] = list(rec.tags)  # not COCO, but keeps image-level labels in the export
        images.append(image)
        for group in instance_groups(by_image.get(rec.id, [])):
            annotations.append(coco_annotation(group, rec, len(annotations) + 1))
    return {
        "info": {"description": "Exported by the studio", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": ""} for c in ds.categories()],
    }


def copy_images(recs: list[ImageRecord], ds_dir: Path, folder: Path, names: dict[int, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    parallel(lambda rec: link_or_copy(ds_dir / rec.file_name, folder / coco_file_name(rec, names)), recs)


def export_coco(ds: CanonicalDataset, ds_dir: Path, out_dir: Path) -> None:
    """COCO instances: ``annotations/instances_{split}.json`` and ``images/{split}/`` per split present."""
    names = export_names(ds.images)
    by_image = annotations_by_image(ds)
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    for split, recs in split_images(ds).items():
        copy_images(recs, ds_dir, out_dir / "images" / split, names)
        doc = coco_split(ds, recs, names, by_image)
        (out_dir / "annotations" / f"instances_{split}.json").write_text(
            json.dumps(doc, separators=(",", ":"))
        )


# ------------------------------------------------------------------------------------------------ zip

Writer = Callable[[CanonicalDataset, Path, Path], None]


@dataclass(frozen=True)
class ExportFormat:
    """One layout a dataset version can be downloaded in. VOC and COCO (below) take any dataset; a task
    declares the layouts only its datasets can take in its ``TaskSpec.exports`` (``backend/tasks/``), and
    ``backend.tasks.EXPORTS`` lists them all."""

    name: str  # the ``?format=`` value and the zip's suffix, e.g. "voc"
    title: str  # in words: "Pascal VOC"
    layout: str  # what the zip holds, in words
    write: Writer  # (dataset, its folder, the folder to write) -> None; ValueError says why it cannot
    task: str | None = None  # the task a dataset must serve (``Dataset.tasks``); None: any dataset
    needs: str = ""  # what such a dataset has, in words, shown where one that lacks it is refused

    def refusal(self, tasks: Iterable[str]) -> str | None:
        """Why a dataset serving ``tasks`` cannot take this format, or None when it can."""
        if self.task is None or self.task in tasks:
            return None
        return f"{self.title} needs {self.needs}"


VOC = ExportFormat(
    "voc",
    "Pascal VOC",
    "JPEGImages, SegmentationClass/Object, Annotations XML, class_names.txt",
    export_voc,
)
COCO = ExportFormat("coco", "COCO", "images/ and annotations/instances_{split}.json", export_coco)
GENERIC_EXPORTS = (VOC, COCO)


def zip_tree(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                kind = zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(folder).as_posix(), compress_type=kind)


def export_cache_dir(ds_dir: Path) -> Path:
    """Where a dataset version keeps its built export zips."""
    return ds_dir / ".cache" / "exports"


def built_export(ds_dir: Path, fmt: str) -> Path | None:
    """The built zip of ``fmt``, if there is one."""
    path = export_cache_dir(ds_dir) / f"{fmt}.zip"
    return path if path.is_file() else None


def build_export_zip(fmt: ExportFormat, ds: CanonicalDataset, ds_dir: Path, cache_dir: Path) -> Path:
    """``cache_dir/{name}.zip``, built once: a dataset version never changes, so neither does its export."""
    target = cache_dir / f"{fmt.name}.zip"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target so the final rename is atomic; concurrent builders each rename a whole zip.
    with tempfile.TemporaryDirectory(prefix=f".{fmt.name}-", dir=cache_dir) as tmp:
        work = Path(tmp)
        fmt.write(ds, ds_dir, work / "export")
        zip_tree(work / "export", work / "export.zip")
        os.replace(work / "export.zip", target)
    return target
