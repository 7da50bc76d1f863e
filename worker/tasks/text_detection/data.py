"""Words of a dataset version as DBNet's training and evaluation data: each image with the polygons of its
words (``###`` and ``__ignore__`` ones flagged don't-care), through the joint transforms, batched with the
DB label maps (``collate``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from backend.datasets.canonical import CanonicalDataset, ImageRecord
from worker.data import make_loader
from worker.tasks.text_detection.transforms import (
    TextEvalTransform,
    TextSample,
    TextTrainTransform,
    collate_text,
)


@dataclass(frozen=True)
class TextImage:
    """One image of a split and its words, in the image's pixels."""

    record: ImageRecord
    path: Path
    polygons: list[np.ndarray]
    ignore: list[bool]


def text_images(root: Path, canonical: CanonicalDataset, splits: list[str]) -> list[TextImage]:
    """The images of ``splits`` with their words, in id order; an image without words is kept (a negative:
    the model learns that not everything is text)."""
    words: dict[int, list[tuple[np.ndarray, bool]]] = {}
    for ann in canonical.annotations:
        outline = ann.segmentation[0] if ann.segmentation else [v for p in ann.points for v in p]
        points = np.asarray(outline, dtype=np.float64).reshape(-1, 2)
        if len(points) == 2:  # a rectangle given by two corners
            (x0, y0), (x1, y1) = points
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        if len(points) < 3:
            continue
        words.setdefault(ann.image_id, []).append((points, bool(ann.ignore or ann.category_id <= 0)))
    out = []
    for record in sorted(canonical.images, key=lambda r: r.id):
        if record.split not in splits:
            continue
        found = words.get(record.id, [])
        out.append(TextImage(record, root / record.file_name, [p for p, _ in found], [i for _, i in found]))
    return out


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


class TextDataset(Dataset[tuple[TextSample, int]]):
    """Transformed samples and their image ids. Training draws each sample's randomness from torch's
    generator, so the loader's seed makes an epoch repeatable and each epoch differs."""

    def __init__(self, images: list[TextImage], transform: TextTrainTransform | TextEvalTransform) -> None:
        self.images, self.transform = images, transform
        self.training = isinstance(transform, TextTrainTransform)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_ids(self) -> list[int]:
        return [im.record.id for im in self.images]

    @property
    def words(self) -> int:
        return sum(len(im.polygons) - sum(im.ignore) for im in self.images)

    def __getitem__(self, i: int) -> tuple[TextSample, int]:
        item = self.images[i]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item())) if self.training else None
        sample = self.transform(open_rgb(item.path), item.polygons, item.ignore, rng)
        return sample, item.record.id


class Collate:
    """``collate_text`` plus the batch's image ids, scales and the words the crops dropped. Without a
    ``shrink_ratio`` (evaluation: no loss is taken) the DB label maps are not drawn, only the outlines
    are kept."""

    def __init__(self, shrink_ratio: float | None) -> None:
        self.shrink_ratio = shrink_ratio

    def __call__(self, batch: list[tuple[TextSample, int]]) -> tuple[torch.Tensor, dict[str, Any]]:
        samples = [s for s, _ in batch]
        if self.shrink_ratio is None:
            images = torch.stack([s.image for s in samples])
            targets: dict[str, Any] = {"polygons": [s.polygons for s in samples]}
            targets["ignore"] = [s.ignore for s in samples]
        else:
            images, targets = collate_text(samples, shrink_ratio=self.shrink_ratio)
        targets["image_ids"] = [image_id for _, image_id in batch]
        targets["scales"] = [s.scale for s in samples]
        targets["dropped"] = sum(s.dropped for s in samples)
        return images, targets


@dataclass
class TextData:
    train: TextDataset
    val: TextDataset | None
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any] | None


def build_text_data(
    root: Path, canonical: CanonicalDataset, spec: Any, *, seed: int, pin_memory: bool = False
) -> TextData:
    """Train loader over ``train`` (augmented, shuffled), val loader over ``val`` (resize and pad only)."""
    mean, std = spec.normalize_mean, spec.normalize_std
    steps = [step.model_dump() for step in spec.augment]
    train_images = text_images(root, canonical, ["train"])
    if not train_images:
        raise ValueError("data.dataset_id: the dataset has no images in its train split")
    train = TextDataset(
        train_images, TextTrainTransform(steps, spec.input_size, mean, std, min_side=spec.min_word_side)
    )
    drop_last = len(train) > spec.batch_size and len(train) % spec.batch_size == 1  # BatchNorm: no batch of 1
    train_loader = make_loader(
        train,
        batch_size=spec.batch_size,
        shuffle=True,
        workers=spec.workers,
        seed=seed,
        collate=Collate(spec.shrink_ratio),
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
    val_images = text_images(root, canonical, ["val"])
    if not val_images:
        return TextData(train, None, train_loader, None)
    val = TextDataset(val_images, TextEvalTransform(spec.input_size, mean, std))
    val_loader = make_loader(
        val,
        batch_size=spec.batch_size,
        shuffle=False,
        workers=min(spec.workers, 1),
        seed=seed,
        collate=Collate(None),
    )
    return TextData(train, val, train_loader, val_loader)


def eval_loader(images: list[TextImage], input_size: int, normalize: dict[str, Any], batch_size: int) -> Any:
    """A loader over ``images`` as a trained model sees them (resize and pad), for evaluate and predict."""
    dataset = TextDataset(images, TextEvalTransform(input_size, normalize["mean"], normalize["std"]))
    return make_loader(
        dataset, batch_size=batch_size, shuffle=False, workers=0, seed=0, collate=Collate(None)
    )
