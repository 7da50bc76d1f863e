"""Synthetic scene-text data for the text-detection tests: random words in Pillow's default (FreeType) font
on noisy gradient backgrounds with a little clutter, some rotated, none overlapping, some marked don't-care;
written as an ICDAR 2015 project (``img_N.png`` + ``gt_img_N.txt``) for the studio's importer."""

from __future__ import annotations

import math
import string
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import Polygon

DONT_CARE = "###"
Word = tuple[np.ndarray, bool]


def _background(rng: np.random.Generator, width: int, height: int, light: bool) -> Image.Image:
    """A two-colour linear gradient in a random direction with Gaussian noise and a few thin lines and
    rings (clutter that is not text)."""
    low, high = (150, 256) if light else (0, 100)
    a = rng.integers(low, high, 3).astype(np.float32)
    b = rng.integers(low, high, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs * math.cos(angle) + ys * math.sin(angle)) / max(width, height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = a + (b - a) * t[..., None] + rng.normal(0, 8, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 3))):
        shade = tuple(int(c) for c in rng.integers(low, high, 3))
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:
            draw.line([x0, y0, rng.uniform(0, width), rng.uniform(0, height)], fill=shade, width=1)
        else:
            r = rng.uniform(4, max(width, height) / 8)
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], outline=shade, width=1)
    return image


def _random_word(rng: np.random.Generator) -> str:
    letters = string.ascii_letters
    return "".join(letters[i] for i in rng.integers(0, len(letters), int(rng.integers(3, 9))))


def _render(
    word: str, font: ImageFont.FreeTypeFont, colour: tuple[int, int, int], angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """The word on a transparent RGBA layer (H, W, 4), rotated by ``angle`` degrees on a grown canvas, and
    its tight ink box (4, 2) — corners at the centres of the outermost ink pixels, top-left first,
    clockwise in the word's own frame — moved by the same matrix."""
    left, top, right, bottom = font.getbbox(word)
    pad = 4
    layer = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((pad - left, pad - top), word, font=font, fill=(*colour, 255))
    ink = layer.getchannel("A").getbbox()
    if ink is None:
        raise ValueError(f"{word!r} rendered no ink")
    x0, y0, x1, y1 = ink[0], ink[1], ink[2] - 1, ink[3] - 1
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    pixels = np.asarray(layer)
    if angle == 0:
        return pixels, quad
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float)
    moved = corners @ matrix.T
    matrix[:, 2] -= moved.min(axis=0)
    size = (math.ceil(np.ptp(moved[:, 0])) + 1, math.ceil(np.ptp(moved[:, 1])) + 1)
    rotated = cv2.warpAffine(pixels, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    return rotated, quad @ matrix[:, :2].T + matrix[:, 2]


def draw_words(
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    words: tuple[int, int] = (3, 7),
    rotated_share: float = 0.3,
    dont_care_share: float = 0.1,
    font_share: tuple[float, float] = (0.08, 0.15),
    max_angle: float = 30.0,
) -> tuple[Image.Image, list[tuple[np.ndarray, bool, str]]]:
    """Like ``draw_text_image`` but each word also carries its transcription."""
    width, height = size
    light = rng.random() < 0.7
    image = _background(rng, width, height, light).convert("RGBA")
    placed: list[Polygon] = []
    out: list[tuple[np.ndarray, bool, str]] = []
    for _ in range(int(rng.integers(words[0], words[1] + 1))):
        font_size = max(8, round(rng.uniform(*font_share) * min(width, height)))
        font = ImageFont.load_default(size=font_size)
        word = _random_word(rng)
        base = 40 if light else 215
        colour = tuple(int(np.clip(base + d, 0, 255)) for d in rng.integers(-40, 41, 3))
        angle = float(rng.uniform(-max_angle, max_angle)) if rng.random() < rotated_share else 0.0
        pixels, quad = _render(word, font, colour, angle)  # type: ignore[arg-type]
        lh, lw = pixels.shape[:2]
        if lw >= width - 4 or lh >= height - 4:
            continue
        gap = 0.3 * font_size
        for _attempt in range(40):
            ox, oy = int(rng.integers(2, width - lw - 1)), int(rng.integers(2, height - lh - 1))
            polygon = quad + np.array([ox, oy], dtype=np.float64)
            shape = Polygon(polygon)
            if all(shape.distance(other) > gap for other in placed):
                break
        else:
            continue
        image.alpha_composite(Image.fromarray(pixels, "RGBA"), (ox, oy))
        placed.append(shape)
        out.append((polygon.astype(np.float32), bool(rng.random() < dont_care_share), word))
    return image.convert("RGB"), out


def draw_text_image(
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    words: tuple[int, int] = (3, 7),
    rotated_share: float = 0.3,
    dont_care_share: float = 0.1,
    font_share: tuple[float, float] = (0.08, 0.15),
) -> tuple[Image.Image, list[Word]]:
    """An RGB image of ``size`` (W, H) with ``words[0]..words[1]`` random words (fewer when they do not
    fit), their font size a ``font_share`` of the short side, and, per word, its tight polygon (4, 2) —
    rotated with the word for the ``rotated_share`` that is rotated — and whether it is don't-care."""
    image, drawn = draw_words(rng, size, words, rotated_share, dont_care_share, font_share)
    return image, [(polygon, dont_care) for polygon, dont_care, _ in drawn]


def write_icdar_project(
    folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (256, 256)
) -> list[list[Word]]:
    """``n`` images as an ICDAR 2015 upload in ``folder``: ``img_N.png`` and ``gt_img_N.txt`` with one
    ``x1,y1,...,x4,y4,transcription`` line per word (integer corners, ``###`` for don't-care, UTF-8).
    Returns each image's words as written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written: list[list[Word]] = []
    for i in range(1, n + 1):
        image, drawn = draw_words(rng, size)
        image.save(folder / f"img_{i}.png")
        lines: list[str] = []
        words: list[Word] = []
        for polygon, dont_care, text in drawn:
            corners = np.round(polygon).astype(np.int64)
            coords = ",".join(str(int(v)) for v in corners.reshape(-1))
            lines.append(f"{coords},{DONT_CARE if dont_care else text}")
            words.append((corners.astype(np.float32), dont_care))
        (folder / f"gt_img_{i}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(words)
    return written


def match_count(
    preds: list[np.ndarray], words: list[tuple[np.ndarray, bool]], iou: float = 0.5
) -> tuple[int, int, int]:
    """(matches, predictions counted, care words): each prediction, best score first, takes the unmatched
    care word it overlaps best if IoU > ``iou``; a prediction lying mostly on a don't-care word is not
    counted (the ICDAR 2015 protocol's rule), every other one is a false positive."""
    care = [Polygon(p) for p, dont_care in words if not dont_care]
    dont = [Polygon(p) for p, dont_care in words if dont_care]
    taken: set[int] = set()
    matches = counted = 0
    for points in preds:
        pred = Polygon(points)
        if not pred.is_valid or pred.area <= 0:
            counted += 1
            continue
        best, best_i = 0.0, -1
        for i, word in enumerate(care):
            if i not in taken:
                overlap = pred.intersection(word).area / pred.union(word).area
                if overlap > best:
                    best, best_i = overlap, i
        if best > iou:
            taken.add(best_i)
            matches += 1
            counted += 1
        elif not any(pred.intersection(d).area > 0.5 * pred.area for d in dont):
            counted += 1
    return matches, counted, len(care)
