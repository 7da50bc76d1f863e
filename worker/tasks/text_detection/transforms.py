"""Joint image + word-polygon transforms for DBNet training and evaluation.

Training applies the configured steps in their order — ``rotate`` (the canvas grows so nothing is cut),
``random_crop`` (edges only through rows and columns no word covers, mmocr's ``TextDetRandomCrop`` /
``RandomCropPolyInstances``), ``color_jitter`` and ``horizontal_flip`` (off by default: a mirrored word is
no longer a word) — then always resizes the long side to ``input_size`` and pads to a square, so a batch
stacks without cropping words. Polygons follow every geometric step with the same matrix and end up
clipped to the image and valid (shapely); words under ``min_side`` pixels become don't-care, as the labels
would make them. Evaluation only resizes and pads and reports the scale to map predictions back."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from worker.tasks.text_detection.labels import clip_polygon, db_targets, short_side

STEP_NAMES = ("rotate", "random_crop", "color_jitter", "horizontal_flip")
_STEP_DEFAULTS: dict[str, dict[str, float]] = {
    "rotate": {"p": 0.5, "degrees": 10.0},
    "random_crop": {"p": 0.5, "min_side_ratio": 0.3},
    "color_jitter": {"p": 0.8, "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.02},
    "horizontal_flip": {"p": 0.0},
}
_CROP_TRIES = 50


@dataclass
class TextSample:
    """One image ready for the network and its words in the network's pixels.

    ``scale`` is network pixels per original pixel (the resize), so an original coordinate is a
    network coordinate divided by it; ``dropped`` counts the words a random crop had to cut (they became
    don't-care areas)."""

    image: torch.Tensor
    polygons: list[np.ndarray]
    ignore: list[bool]
    dropped: int
    scale: float


Words = tuple[list[np.ndarray], list[bool]]


def _as_array(image: np.ndarray | Image.Image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.ascontiguousarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {arr.shape} {arr.dtype}")
    return arr


def _check_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    checked: list[dict[str, Any]] = []
    for step in steps:
        name = step.get("name")
        if name not in _STEP_DEFAULTS:
            raise ValueError(f"unknown text-detection augment step {name!r}; known: {', '.join(STEP_NAMES)}")
        unknown = set(step) - {"name", *_STEP_DEFAULTS[name]}
        if unknown:
            raise ValueError(f"augment step {name!r}: unknown fields {', '.join(sorted(unknown))}")
        checked.append({**_STEP_DEFAULTS[name], **step})
    return checked


# ----------------------------------------------------------------------------------------------- geometry


def rotate(image: np.ndarray, words: Words, angle: float) -> tuple[np.ndarray, Words]:
    """Rotate by ``angle`` degrees (counter-clockwise) around the centre on a canvas grown to hold the
    whole image; the new corners are filled with the image's mean colour."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float)
    moved = corners @ matrix.T
    low = moved.min(axis=0)
    matrix[:, 2] -= low
    new_w = math.ceil(moved[:, 0].max() - low[0]) + 1
    new_h = math.ceil(moved[:, 1].max() - low[1]) + 1
    fill = tuple(float(c) for c in image.reshape(-1, 3).mean(axis=0))
    out = cv2.warpAffine(
        image,
        matrix,
        (new_w, new_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    polygons = [np.asarray(p, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2] for p in words[0]]
    return out, (polygons, list(words[1]))


def _free_lines(extents: list[tuple[float, float]], size: int) -> np.ndarray:
    """Per row (or column) of ``size``, whether no polygon's extent covers it."""
    covered = np.zeros(size, dtype=bool)
    for low, high in extents:
        a, b = max(0, math.floor(low)), min(size - 1, math.ceil(high))
        if a <= b:
            covered[a : b + 1] = True
    return ~covered


def _sample_span(free: np.ndarray, min_len: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """Inclusive [a, b] with both ends on free lines (the image border always counts as free) and
    b - a + 1 >= ``min_len``; None when there is none."""
    size = len(free)
    edges = free.copy()
    edges[0] = edges[-1] = True
    positions = np.flatnonzero(edges)
    starts = positions[positions + min_len - 1 <= positions[-1]]
    if len(starts) == 0:
        return None
    a = int(rng.choice(starts))
    ends = positions[positions >= a + min_len - 1]
    b = int(rng.choice(ends))
    return a, min(b, size - 1)


def _extent_in_image(points: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    x = np.clip(points[:, 0], 0, width - 1)
    y = np.clip(points[:, 1], 0, height - 1)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def _cutting_window(
    width: int,
    height: int,
    min_w: int,
    min_h: int,
    holds_care: Callable[[int, int, int, int], bool],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """Any window of at least ``min_w`` x ``min_h``, preferring one that holds a care word whole."""
    window = (0, 0, width - 1, height - 1)
    for _ in range(_CROP_TRIES):
        w, h = int(rng.integers(min_w, width + 1)), int(rng.integers(min_h, height + 1))
        x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        window = (x0, y0, x0 + w - 1, y0 + h - 1)
        if holds_care(*window):
            break
    return window


def random_crop(
    image: np.ndarray, words: Words, min_side_ratio: float, rng: np.random.Generator
) -> tuple[np.ndarray, Words, int]:
    """A crop whose sides are at least ``min_side_ratio`` of the image's and whose edges run through rows
    and columns no word (care or don't-care) covers, holding at least one care word when the image has
    any — so every word is either wholly in or wholly out. When no such crop is found (text covers every
    line), a free crop is taken instead: the care words it cuts are dropped and counted, and their parts
    inside the crop become don't-care areas so the model is not punished for the pixels it sees."""
    height, width = image.shape[:2]
    polygons, ignore = words
    extents = [_extent_in_image(np.asarray(p, dtype=np.float64), width, height) for p in polygons]
    free_x = _free_lines([(e[0], e[2]) for e in extents], width)
    free_y = _free_lines([(e[1], e[3]) for e in extents], height)
    min_w = max(1, math.ceil(min_side_ratio * width))
    min_h = max(1, math.ceil(min_side_ratio * height))
    care = [i for i, dont_care in enumerate(ignore) if not dont_care]

    def holds_care(x0: int, y0: int, x1: int, y1: int) -> bool:
        return not care or any(
            extents[i][0] >= x0 and extents[i][2] <= x1 and extents[i][1] >= y0 and extents[i][3] <= y1
            for i in care
        )

    window: tuple[int, int, int, int] | None = None
    for _ in range(_CROP_TRIES):
        span_x, span_y = _sample_span(free_x, min_w, rng), _sample_span(free_y, min_h, rng)
        if span_x is None or span_y is None:
            break
        x0, x1 = span_x
        y0, y1 = span_y
        if (x1 - x0 + 1, y1 - y0 + 1) == (width, height):
            continue  # the whole image: try for a real crop
        if holds_care(x0, y0, x1, y1):
            window = (x0, y0, x1, y1)
            break
    if window is None:
        window = _cutting_window(width, height, min_w, min_h, holds_care, rng)
    x0, y0, x1, y1 = window
    out_polygons: list[np.ndarray] = []
    out_ignore: list[bool] = []
    dropped = 0
    shift = np.array([x0, y0], dtype=np.float64)
    for points, dont_care, (ex0, ey0, ex1, ey1) in zip(polygons, ignore, extents, strict=True):
        pts = np.asarray(points, dtype=np.float64)
        if ex0 >= x0 and ex1 <= x1 and ey0 >= y0 and ey1 <= y1:
            out_polygons.append(pts - shift)
            out_ignore.append(dont_care)
            continue
        if ex1 < x0 or ex0 > x1 or ey1 < y0 or ey0 > y1:
            continue  # wholly outside the crop
        pieces = clip_polygon(pts, x0, y0, x1, y1)
        if not pieces:
            continue
        if not dont_care:
            dropped += 1
        out_polygons.extend(piece - shift for piece in pieces)
        out_ignore.extend(True for _ in pieces)
    return np.ascontiguousarray(image[y0 : y1 + 1, x0 : x1 + 1]), (out_polygons, out_ignore), dropped


def horizontal_flip(image: np.ndarray, words: Words) -> tuple[np.ndarray, Words]:
    """Mirror left-right; each polygon's point order is reversed so it keeps its winding (clockwise from
    what is now the top-left corner's neighbour)."""
    width = image.shape[1]
    polygons = []
    for points in words[0]:
        pts = np.asarray(points, dtype=np.float64).copy()
        pts[:, 0] = (width - 1) - pts[:, 0]
        polygons.append(pts[::-1].copy())
    return np.ascontiguousarray(image[:, ::-1]), (polygons, list(words[1]))


def color_jitter(image: np.ndarray, step: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """torchvision's ColorJitter — brightness, contrast and saturation factors drawn from [1 - x, 1 + x], a
    hue shift from [-hue, hue] turns, applied in a random order, each a blend with black, the mean grey
    or the per-pixel grey as ``torchvision.transforms.v2.functional.adjust_*`` does — in float32 numpy
    and OpenCV (several times faster on a training image), with the randomness drawn from ``rng``."""
    out = image.astype(np.float32)
    for op in rng.permutation(4):
        if op == 0 and step["brightness"] > 0:
            out *= _factor(step["brightness"], rng)
        elif op == 1 and step["contrast"] > 0:
            mean = float(_grey(out).mean())
            out = _blend(out, mean, _factor(step["contrast"], rng))
        elif op == 2 and step["saturation"] > 0:
            out = _blend(out, _grey(out)[..., None], _factor(step["saturation"], rng))
        elif op == 3 and step["hue"] > 0:
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
            shift = round(float(rng.uniform(-step["hue"], step["hue"])) * 256)
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        np.clip(out, 0, 255, out=out)
    return np.round(out).astype(np.uint8)


def _factor(amount: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount))


def _grey(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the weights of torchvision's ``rgb_to_grayscale``."""
    return image[..., 0] * 0.2989 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def _blend(image: np.ndarray, other: np.ndarray | float, factor: float) -> np.ndarray:
    return image * factor + other * (1.0 - factor)


def resize_long_side(image: np.ndarray, words: Words, size: int) -> tuple[np.ndarray, Words, float]:
    """Resize so the long side is ``size`` (aspect kept); polygons scale per axis with the image. Returns
    the long-side scale."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    factors = np.array([new_w / width, new_h / height])
    return out, ([np.asarray(p, dtype=np.float64) * factors for p in words[0]], list(words[1])), scale


def sanitize(words: Words, width: int, height: int, min_side: float) -> Words:
    """Polygons clipped to the image [0, width - 1] x [0, height - 1] and made valid (shapely); those with
    nothing left inside disappear, care words thinner than ``min_side`` become don't-care."""
    polygons: list[np.ndarray] = []
    ignore: list[bool] = []
    for points, dont_care in zip(*words, strict=True):
        for piece in clip_polygon(np.asarray(points, dtype=np.float64), 0.0, 0.0, width - 1.0, height - 1.0):
            polygons.append(piece.astype(np.float32))
            ignore.append(bool(dont_care) or short_side(piece) < min_side)
    return polygons, ignore


def _to_input(image: np.ndarray, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Float, normalised and padded at the bottom and right to ``size`` x ``size`` with zeros (the
    normalised mean colour)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    tensor = (tensor - mean) / std
    out = torch.zeros(3, size, size, dtype=torch.float32)
    out[:, : tensor.shape[1], : tensor.shape[2]] = tensor
    return out


class _Base:
    def __init__(self, input_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        if input_size <= 0 or input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
        self.input_size = input_size
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(3, 1, 1)

    def _finish(self, image: np.ndarray, words: Words, dropped: int, min_side: float) -> TextSample:
        resized, words, scale = resize_long_side(image, words, self.input_size)
        height, width = resized.shape[:2]
        polygons, ignore = sanitize(words, width, height, min_side)
        tensor = _to_input(resized, self.input_size, self.mean, self.std)
        return TextSample(tensor, polygons, ignore, dropped, scale)


class TextTrainTransform(_Base):
    """The configured augment steps in order, then resize + pad to ``input_size``; see the module
    docstring. ``steps`` are plain mappings ``{"name": ..., fields}``; unknown names raise ValueError."""

    def __init__(
        self,
        steps: Sequence[Mapping[str, Any]],
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        min_side: float = 3.0,
    ) -> None:
        super().__init__(input_size, mean, std)
        self.steps = _check_steps(steps)
        self.min_side = min_side

    def __call__(
        self,
        image: np.ndarray | Image.Image,
        polygons: Sequence[np.ndarray],
        ignore: Sequence[bool],
        rng: np.random.Generator,
    ) -> TextSample:
        if len(polygons) != len(ignore):
            raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
        img = _as_array(image)
        words: Words = ([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons], list(ignore))
        dropped = 0
        for step in self.steps:
            if rng.random() >= step["p"]:
                continue
            name = step["name"]
            if name == "rotate":
                img, words = rotate(img, words, float(rng.uniform(-step["degrees"], step["degrees"])))
            elif name == "random_crop":
                img, words, cut = random_crop(img, words, step["min_side_ratio"], rng)
                dropped += cut
            elif name == "color_jitter":
                img = color_jitter(img, step, rng)
            elif name == "horizontal_flip":
                img, words = horizontal_flip(img, words)
        return self._finish(img, words, dropped, self.min_side)


class TextEvalTransform(_Base):
    """Resize + pad only (no randomness); ``scale`` maps predictions back: divide them by it."""

    def __call__(
        self,
        image: np.ndarray | Image.Image,
        polygons: Sequence[np.ndarray] = (),
        ignore: Sequence[bool] = (),
        rng: np.random.Generator | None = None,
    ) -> TextSample:
        if len(polygons) != len(ignore):
            raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
        words: Words = ([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons], list(ignore))
        return self._finish(_as_array(image), words, 0, 0.0)


def collate_text(
    batch: Sequence[TextSample], shrink_ratio: float = 0.4
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Stack a batch: images (B, 3, S, S) and the ``db_targets`` maps as (B, S, S) float tensors, with the
    samples' ``polygons`` and ``ignore`` lists alongside (for metrics)."""
    if not batch:
        raise ValueError("collate_text needs at least one sample")
    images = torch.stack([s.image for s in batch])
    size_h, size_w = images.shape[-2:]
    maps = [db_targets(s.polygons, s.ignore, size_h, size_w, shrink_ratio=shrink_ratio) for s in batch]
    targets: dict[str, Any] = {k: torch.from_numpy(np.stack([m[k] for m in maps])) for k in maps[0]}
    targets["polygons"] = [s.polygons for s in batch]
    targets["ignore"] = [s.ignore for s in batch]
    return images, targets
