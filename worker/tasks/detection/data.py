"""Detection data: the objects of a canonical dataset as ``(image, target)`` pairs, where ``target`` holds
``boxes`` (xyxy pixels), ``labels`` (1-based category ids), ``masks`` (one per object, for instance
segmentation), ``iscrowd`` (evaluation only) and ``image_id``.

Objects follow labelme: shapes of one class that share a ``group_id`` in an image are one object (its box
covers them all, its mask is their union); every other shape is an object of its own. Shapes marked
ignore are left out of training and count as crowd regions (matched, never missed) in evaluation. Images
with no objects stay in as negatives."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import tv_tensors

from backend.datasets.canonical import Annotation, CanonicalDataset
from backend.datasets.rasterize import annotation_mask
from worker.data import _seed_worker, loader_workers, read_image

Target = dict[str, Any]
JointTransform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


@dataclass(frozen=True)
class DetObject:
    category_id: int
    box: tuple[float, float, float, float]  # xyxy
    shapes: tuple[Annotation, ...]
    crowd: bool


@dataclass(frozen=True)
class DetSample:
    image_id: int
    path: Path
    height: int
    width: int
    objects: tuple[DetObject, ...]

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height


def _objects(annotations: Sequence[Annotation]) -> tuple[DetObject, ...]:
    groups: dict[tuple[Any, ...], list[Annotation]] = {}
    for ann in annotations:
        if ann.category_id <= 0:  # an ignore region with no class
            continue
        key = ("group", ann.category_id, ann.group_id) if ann.group_id is not None else ("shape", ann.id)
        groups.setdefault(key, []).append(ann)
    out = []
    for shapes in groups.values():
        x1 = min(a.bbox[0] for a in shapes)
        y1 = min(a.bbox[1] for a in shapes)
        x2 = max(a.bbox[0] + a.bbox[2] for a in shapes)
        y2 = max(a.bbox[1] + a.bbox[3] for a in shapes)
        out.append(
            DetObject(shapes[0].category_id, (x1, y1, x2, y2), tuple(shapes), any(a.ignore for a in shapes))
        )
    return tuple(out)


def detection_samples(
    root: Path, canonical: CanonicalDataset, splits: Sequence[str] | None = None
) -> list[DetSample]:
    """Images of ``splits`` (all when None) with their objects."""
    by_image: dict[int, list[Annotation]] = {}
    for ann in canonical.annotations:
        by_image.setdefault(ann.image_id, []).append(ann)
    wanted = set(splits) if splits is not None else None
    return [
        DetSample(img.id, root / img.file_name, img.height, img.width, _objects(by_image.get(img.id, ())))
        for img in canonical.images
        if wanted is None or img.split in wanted
    ]


def object_mask(height: int, width: int, obj: DetObject) -> np.ndarray:
    """The object's pixels (the union of its shapes, drawn as labelme draws them) as uint8 0/1."""
    mask = np.zeros((height, width), dtype=bool)
    for shape in obj.shapes:
        mask |= annotation_mask(height, width, shape)
    return mask.astype(np.uint8)


class DetectionDataset(Dataset[tuple[torch.Tensor, Target]]):
    """``(image, target)`` through a joint transform. ``training``: crowd objects left out; otherwise they
    are in, flagged by ``iscrowd``. ``target["dropped"]`` counts the boxes the transform dropped."""

    def __init__(
        self,
        root: Path,
        canonical: CanonicalDataset,
        splits: Sequence[str] | None,
        transform: JointTransform,
        *,
        masks: bool,
        training: bool,
    ) -> None:
        self.samples = detection_samples(Path(root), canonical, splits)
        self.transform = transform
        self.masks = masks
        self.training = training
        self.negatives = sum(1 for s in self.samples if not any(not o.crowd for o in s.objects))

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def image_ids(self) -> list[int]:
        return [s.image_id for s in self.samples]

    def target(self, i: int) -> Target:
        """The untransformed target of sample ``i``."""
        s = self.samples[i]
        objects = [o for o in s.objects if not (self.training and o.crowd)]
        boxes = torch.tensor([o.box for o in objects], dtype=torch.float32).reshape(-1, 4)
        target: Target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(s.height, s.width)),
            "labels": torch.tensor([o.category_id for o in objects], dtype=torch.int64),
            "image_id": s.image_id,
        }
        if not self.training:
            target["iscrowd"] = torch.tensor([o.crowd for o in objects], dtype=torch.bool)
            target["height"], target["width"] = s.height, s.width
        if self.masks:
            stack = np.stack([object_mask(s.height, s.width, o) for o in objects]) if objects else None
            data = (
                torch.from_numpy(stack)
                if stack is not None
                else torch.zeros(0, s.height, s.width, dtype=torch.uint8)
            )
            target["masks"] = tv_tensors.Mask(data)
        return target

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        s = self.samples[i]
        image = read_image(s.path)
        if tuple(image.shape[-2:]) != (s.height, s.width):
            raise ValueError(
                f"{s.path.name}: the image is {tuple(image.shape[-2:])} (h, w); its record says "
                f"{(s.height, s.width)}"
            )
        target = self.target(i)
        before = len(target["boxes"])
        image, target = self.transform(image, target)
        out: Target = {
            k: (v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v) for k, v in target.items()
        }
        out["dropped"] = before - len(out["boxes"])
        return image, out


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """A list of images (their sizes differ) and a list of targets."""
    return [b[0] for b in batch], [b[1] for b in batch]


# Bins of width / height: portrait, square-ish and landscape pictures go to different batches.
RATIO_BINS = (0.5, 0.75, 1.0 / 1.1, 1.1, 4.0 / 3.0, 2.0)


class AspectRatioBatchSampler(Sampler[list[int]]):
    """Batches of images whose aspect ratios fall in the same bin (less padding per batch); a new order
    each epoch from ``generator``. Every image is used once per epoch: the last batch of a bin may be
    short."""

    def __init__(
        self, ratios: Sequence[float], batch_size: int, generator: torch.Generator, group: bool = True
    ) -> None:
        self.batch_size = batch_size
        self.generator = generator
        self.bins = [int(np.searchsorted(RATIO_BINS, r)) if group else 0 for r in ratios]
        self.n = len(ratios)

    def __len__(self) -> int:
        counts: dict[int, int] = {}
        for b in self.bins:
            counts[b] = counts.get(b, 0) + 1
        return sum(math.ceil(c / self.batch_size) for c in counts.values())

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        by_bin: dict[int, list[int]] = {}
        for i in order:
            by_bin.setdefault(self.bins[i], []).append(i)
        batches = [
            members[k : k + self.batch_size]
            for members in by_bin.values()
            for k in range(0, len(members), self.batch_size)
        ]
        for j in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[j]


@dataclass
class DetectionData:
    train: DetectionDataset
    val: DetectionDataset | None
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any] | None


def train_loader(
    dataset: DetectionDataset, batch_size: int, workers: int, seed: int, group: bool, pin_memory: bool = False
) -> DataLoader[Any]:
    generator = torch.Generator()
    generator.manual_seed(seed)
    workers = loader_workers(workers)
    sampler = AspectRatioBatchSampler([s.aspect_ratio for s in dataset.samples], batch_size, generator, group)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=collate,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=generator,
        pin_memory=pin_memory,
    )


def eval_loader(dataset: DetectionDataset, batch_size: int, workers: int = 0) -> DataLoader[Any]:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
