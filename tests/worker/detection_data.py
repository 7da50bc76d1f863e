"""Synthetic detection data for the detection tests: rectangles and discs drawn with Pillow, labelled as
labelme rectangles and polygons (some discs as two halves sharing a ``group_id``), a few images with no
objects, imported the way an upload is."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.datasets.synth import Drawn, labelme_json
from tests.helpers import land_folder

CLASSES = ("box", "disc")
FILL = {"box": (200, 60, 40), "disc": (40, 90, 200)}


def _disc_polygon(
    cx: float, cy: float, r: float, start: float = 0.0, end: float = 2 * math.pi
) -> list[list[float]]:
    n = 24
    pts = [
        [cx + r * math.cos(start + (end - start) * i / n), cy + r * math.sin(start + (end - start) * i / n)]
        for i in range(n + 1)
    ]
    if end - start < 2 * math.pi:
        pts.append([cx, cy])
    return [[round(x, 2), round(y, 2)] for x, y in pts]


def draw_objects(
    rng: random.Random, size: int, n: int, sides: tuple[int, int]
) -> tuple[Image.Image, list[Drawn]]:
    """An image with ``n`` non-overlapping objects and their labelme shapes."""
    shade = rng.randint(215, 245)
    img = Image.new("RGB", (size, size), (shade, shade, shade - 8))
    draw = ImageDraw.Draw(img)
    shapes: list[Drawn] = []
    placed: list[tuple[float, float, float, float]] = []
    group = 0
    for _ in range(n):
        for _attempt in range(30):
            label = rng.choice(CLASSES)
            w = rng.randint(*sides)
            h = rng.randint(*sides) if label == "box" else w
            x, y = rng.randint(1, size - w - 2), rng.randint(1, size - h - 2)
            if all(x + w < a or a + c < x or y + h < b or b + d < y for a, b, c, d in placed):
                break
        else:
            continue
        placed.append((x, y, w, h))
        jitter = rng.randint(-30, 30)
        fill = tuple(max(0, min(255, c + jitter)) for c in FILL[label])
        if label == "box":
            draw.rectangle([x, y, x + w, y + h], fill=fill)
            shapes.append(Drawn("box", "rectangle", [[float(x), float(y)], [float(x + w), float(y + h)]]))
            continue
        r = w / 2
        cx, cy = x + r, y + r
        draw.ellipse([x, y, x + w, y + h], fill=fill)
        if rng.random() < 0.3:  # one disc as two halves: one object through labelme's group_id
            group += 1
            shapes.append(Drawn("disc", "polygon", _disc_polygon(cx, cy, r, 0, math.pi), group_id=group))
            shapes.append(
                Drawn("disc", "polygon", _disc_polygon(cx, cy, r, math.pi, 2 * math.pi), group_id=group)
            )
        else:
            shapes.append(Drawn("disc", "polygon", _disc_polygon(cx, cy, r)[:-1]))
    return img, shapes


def make_detection_project(
    root: Path,
    n_images: int,
    size: int = 128,
    seed: int = 0,
    sides: tuple[int, int] = (24, 48),
    negatives: int = 3,
) -> list[list[Drawn]]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    drawn = []
    for i in range(n_images):
        n = 0 if i < negatives else rng.randint(1, 3)
        img, shapes = draw_objects(rng, size, n, sides)
        name = f"img_{i:04d}"
        img.save(root / f"{name}.png")
        (root / f"{name}.json").write_text(json.dumps(labelme_json(f"{name}.png", size, size, shapes)))
        drawn.append(shapes)
    return drawn


def import_detection_dataset(owner_id: int, tmp: Path, n_images: int = 80, **kw: Any) -> int:
    src = tmp / "labelme-objects"
    make_detection_project(src, n_images, **kw)
    return land_folder(owner_id, src, "objects", "labelme", train=0.8, val=0.2)
