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


def draw_scene(rng: random.Random, width: int = 96, height: int = 72, n: int = 2,
               labels: tuple[str, ...] = ("circle", "square", "triangle")) -> tuple[Image.Image, list[Drawn]]:
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


def labelme_json(image_path: str, width: int, height: int, shapes: list[Drawn], flags: dict[str, bool] | None = None,
                 image_data: bytes | None = None) -> dict[str, Any]:
    return {
        "version": "5.5.0",
        "flags": flags or {},
        "shapes": [{"label": s.label, "points": s.points, "group_id": s.group_id, "description": "",
                    "shape_type": s.shape_type, "flags": {}, "mask": None} for s in shapes],
        "imagePath": image_path,
        "imageData": base64.b64encode(image_data).decode() if image_data is not None else None,
        "imageHeight": height,
        "imageWidth": width,
    }


def make_labelme_project(root: Path, n_images: int = 6, seed: int = 0, labels_txt: list[str] | None = None,
                         nested: bool = False, embed: bool = False, width: int = 96, height: int = 72,
                         shapes_per_image: int = 2, image_format: str = "JPEG") -> list[LabelmeImage]:
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
        img.save(buf, format=image_format, quality=95) if image_format == "JPEG" else img.save(buf, format=image_format)
        if not embed:
            (folder / f"{name}{ext}").write_bytes(buf.getvalue())
        doc = labelme_json(f"{name}{ext}", width, height, shapes, image_data=buf.getvalue() if embed else None)
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


def make_image_folder(root: Path, per_class: int = 4, seed: int = 0, splits: bool = False,
                      size: tuple[int, int] = (48, 48)) -> dict[str, int]:
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
