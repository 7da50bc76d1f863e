"""Tiny synthetic labelled data, drawn with Pillow, for tests and benchmarks.

``make_labelme_project`` writes a labelme project (images + JSON files, optionally labels.txt) whose
shapes are exactly what was drawn, so tests can check masks, boxes and areas against known geometry."""

from __future__ import annotations

import base64
import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

COLOURS = {"circle": (220, 40, 40), "square": (40, 160, 40), "triangle": (40, 80, 220)}


@dataclass
class Drawn:
    label: str
    shape_type: str
    points: list[list[float]]
    group_id: int | None = None


@dataclass
class LabelmeImage:
    name: str
    width: int
    height: int
    shapes: list[Drawn] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)


def draw_scene(
    rng: random.Random,
    width: int = 96,
    height: int = 72,
    n: int = 2,
    labels: tuple[str, ...] = ("circle", "square", "triangle"),
) -> tuple[Image.Image, list[Drawn]]:
    """An image with ``n`` filled shapes and the labelme shapes that outline them."""
    img = Image.new("RGB", (width, height), (235, 235, 228))
    draw = ImageDraw.Draw(img)
    shapes: list[Drawn] = []
    for _ in range(n):
        label = rng.choice(labels)
        size = rng.randint(min(width, height) // 6, min(width, height) // 3)
        cx, cy = rng.randint(size, width - size), rng.randint(size, height - size)
        colour = COLOURS.get(label, (120, 120, 120))
        if label == "circle":
            draw.ellipse([cx - size, cy - size, cx + size, cy + size], fill=colour)
            shapes.append(Drawn(label, "circle", [[cx, cy], [cx + size, cy]]))
        elif label == "square":
            draw.rectangle([cx - size, cy - size, cx + size, cy + size], fill=colour)
            shapes.append(Drawn(label, "rectangle", [[cx - size, cy - size], [cx + size, cy + size]]))
        else:
            pts = [[cx, cy - size], [cx + size, cy + size], [cx - size, cy + size]]
            draw.polygon([tuple(p) for p in pts], fill=colour)
            shapes.append(Drawn(label, "polygon", [[float(x), float(y)] for x, y in pts]))
    return img, shapes


def labelme_json(
    image_path: str,
    width: int,
    height: int,
    shapes: list[Drawn],
    flags: dict[str, bool] | None = None,
    image_data: bytes | None = None,
) -> dict[str, Any]:
    return {
        "version": "5.5.0",
        "flags": flags or {},
        "shapes": [
            {
                "label": s.label,
                "points": s.points,
                "group_id": s.group_id,
                "description": "",
                "shape_type": s.shape_type,
                "flags": {},
                "mask": None,
            }
            for s in shapes
        ],
        "imagePath": image_path,
        "imageData": base64.b64encode(image_data).decode() if image_data is not None else None,
        "imageHeight": height,
        "imageWidth": width,
    }


def make_labelme_project(
    root: Path,
    n_images: int = 6,
    seed: int = 0,
    labels_txt: list[str] | None = None,
    nested: bool = False,
    embed: bool = False,
    width: int = 96,
    height: int = 72,
    shapes_per_image: int = 2,
    image_format: str = "JPEG",
) -> list[LabelmeImage]:
    """Write a labelme project under ``root``; returns what was drawn, image by image."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    if labels_txt is not None:
        (root / "labels.txt").write_text("\n".join(labels_txt) + "\n")
    out: list[LabelmeImage] = []
    ext = ".jpg" if image_format == "JPEG" else ".png"
    for i in range(n_images):
        folder = root / (f"batch{i % 2}" if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        img, shapes = draw_scene(rng, width, height, shapes_per_image)
        name = f"img_{i:04d}"
        buf = io.BytesIO()
        img.save(buf, format=image_format, quality=95) if image_format == "JPEG" else img.save(
            buf, format=image_format
        )
        if not embed:
            (folder / f"{name}{ext}").write_bytes(buf.getvalue())
        doc = labelme_json(
            f"{name}{ext}", width, height, shapes, image_data=buf.getvalue() if embed else None
        )
        (folder / f"{name}.json").write_text(json.dumps(doc))
        out.append(LabelmeImage(str((folder / name).relative_to(root)), width, height, shapes))
    return out


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """Zip ``folder`` (as a user would: optionally under a top-level folder name)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{prefix}{path.relative_to(folder)}")
    return target


def make_image_folder(
    root: Path, per_class: int = 4, seed: int = 0, splits: bool = False, size: tuple[int, int] = (48, 48)
) -> dict[str, int]:
    """One folder per class (optionally under train/ val/), each image one drawn shape of its class."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for label in COLOURS:
        for i in range(per_class):
            split = ("train" if i < per_class - 1 else "val") if splits else ""
            folder = root / split / label if split else root / label
            folder.mkdir(parents=True, exist_ok=True)
            img, _ = draw_scene(rng, size[0], size[1], 1, labels=(label,))
            img.save(folder / f"{label}_{i}.png")
            counts[label] = counts.get(label, 0) + 1
    return counts


# --- Builders for the other import formats (COCO, VOC, ICDAR, OpenMMLab file lists) ---------------------


def save_image(
    path: Path,
    width: int = 32,
    height: int = 24,
    colour: tuple[int, int, int] = (200, 80, 40),
    fmt: str | None = None,
) -> Path:
    """A small plain RGB image (JPEG or PNG by extension unless ``fmt`` says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(img).rectangle([2, 2, width // 2, height // 2], fill=(20, 20, 20))
    img.save(path, format=fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"))
    return path


def make_coco_project(
    root: Path, splits: tuple[str, ...] = ("train", "val"), width: int = 40, height: int = 30
) -> dict[str, Any]:
    """``images/`` plus ``annotations/instances_{split}.json`` with a polygon, an RLE crowd mask and a
    box-only annotation; categories have ids 7 ("dog") and 3 ("cat") listed out of order."""
    import numpy as np
    from pycocotools import mask as coco_mask

    docs: dict[str, Any] = {}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for s_index, split in enumerate(splits):
        name = f"{split}_0001.jpg"
        save_image(root / "images" / name, width, height)
        crowd = np.zeros((height, width), dtype=np.uint8)
        crowd[20:25, 30:38] = 1  # 5 x 8 = 40 pixels
        rle = coco_mask.encode(np.asfortranarray(crowd))
        rle["counts"] = rle["counts"].decode("ascii")
        doc = {
            "images": [{"id": 10 + s_index, "file_name": name, "width": width, "height": height}],
            "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
            "annotations": [
                {
                    "id": 1,
                    "image_id": 10 + s_index,
                    "category_id": 7,
                    "iscrowd": 0,
                    "bbox": [5, 5, 10, 10],
                    "segmentation": [[5, 5, 14, 5, 14, 14, 5, 14]],
                },
                {
                    "id": 2,
                    "image_id": 10 + s_index,
                    "category_id": 3,
                    "iscrowd": 1,
                    "segmentation": rle,
                    "bbox": [30, 20, 8, 5],
                },
                {
                    "id": 3,
                    "image_id": 10 + s_index,
                    "category_id": 3,
                    "iscrowd": 0,
                    "bbox": [20, 2, 6, 4],
                    "segmentation": [],
                },
            ],
        }
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
        docs[split] = doc
    return docs


def make_voc_project(root: Path, width: int = 40, height: int = 30, xml: bool = False) -> None:
    """labelme2voc-style VOC: class_names.txt, JPEGImages, SegmentationClass/Object palette PNGs with a
    void border, ImageSets/Segmentation train/val lists; with ``xml`` also Annotations/ boxes."""
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    (root / "class_names.txt").write_text("_background_\ncat\ndog\n")
    for i, split in enumerate(("train", "val")):
        image_id = f"2024_{i:04d}"
        save_image(root / "JPEGImages" / f"{image_id}.jpg", width, height)
        cls = np.zeros((height, width), dtype=np.uint8)
        obj = np.zeros((height, width), dtype=np.uint8)
        cls[2:12, 3:13] = 1  # cat, 10 x 10
        obj[2:12, 3:13] = 1
        cls[15:20, 20:30] = 2  # dog, 5 x 10
        obj[15:20, 20:30] = 2
        cls[22:24, 0:40] = 255  # void: 2 x 40
        obj[22:24, 0:40] = 255
        for folder, arr in (("SegmentationClass", cls), ("SegmentationObject", obj)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            png = Image.fromarray(arr, mode="P")
            png.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 253)
            png.save(root / folder / f"{image_id}.png")
        lists = root / "ImageSets" / "Segmentation"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"{split}.txt").write_text(image_id + "\n")
        if xml:
            write_voc_xml(
                root / "Annotations" / f"{image_id}.xml", image_id, width, height, [("cat", (4, 3, 13, 12))]
            )


def write_voc_xml(
    path: Path, image_id: str, width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int]]]
) -> Path:
    """A VOC annotation XML with 1-based inclusive boxes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    path.write_text(
        f"<annotation><filename>{image_id}.jpg</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size>{objs}</annotation>"
    )
    return path


def make_icdar_project(root: Path, bom: bool = True) -> None:
    """ICDAR 2015: ch4_training_images/img_N.jpg and ch4_training_localization_transcription_gt/gt_img_N.txt,
    with a BOM, a transcription holding commas, and a ### do-not-care box."""
    save_image(root / "ch4_training_images" / "img_1.jpg", 48, 32)
    save_image(root / "ch4_test_images" / "img_2.jpg", 48, 32)
    gt = "10,2,30,2,30,12,10,12,Hello, world\n1,20,20,20,20,30,1,30,###\n"
    for folder, n in (("ch4_training_localization_transcription_gt", 1), ("ch4_test_gt", 2)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"gt_img_{n}.txt").write_bytes(("\ufeff" if bom else "").encode() + gt.encode())


def make_filelist_project(root: Path) -> None:
    """OpenMMLab classification custom dataset: classes.txt, train.txt / val.txt with int or name labels."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("cat\ndog\n")
    for i, (split, label) in enumerate((("train", "0"), ("train", "dog"), ("val", "1"), ("val", "cat"))):
        save_image(root / "data" / f"{split}_{i}.png", 16, 16)
        with (root / f"{split}.txt").open("a") as fh:
            fh.write(f"data/{split}_{i}.png {label}\n")
