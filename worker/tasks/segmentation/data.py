"""Segmentation data: ``(image, mask)`` pairs of a canonical dataset, masks rasterised from its shapes by
``label_maps`` exactly as labelme2voc draws them (0 background, class i + 1, 255 ignore), each drawn once
per process and kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader, Dataset

from backend.datasets.canonical import Annotation, CanonicalDataset
from backend.datasets.rasterize import label_maps
from backend.tasks.segmentation import SegDataSpec
from worker.data import make_loader, read_image
from worker.tasks.segmentation.transforms import SegEvalTransform, SegTrainTransform

BACKGROUND = "_background_"
JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def output_classes(canonical: CanonicalDataset) -> list[str]:
    """The model's outputs: background, then the dataset's classes (mask value i is output i)."""
    return [BACKGROUND, *canonical.classes]


@dataclass(frozen=True)
class SegSample:
    image_id: int
    path: Path
    height: int
    width: int
    annotations: tuple[Annotation, ...]


def segmentation_samples(
    root: Path, canonical: CanonicalDataset, splits: Sequence[str] | None = None
) -> list[SegSample]:
    """Images of ``splits`` (all when None), with their shapes in drawing order."""
    by_image: dict[int, list[Annotation]] = {}
    for ann in canonical.annotations:
        by_image.setdefault(ann.image_id, []).append(ann)
    wanted = set(splits) if splits is not None else None
    return [
        SegSample(img.id, root / img.file_name, img.height, img.width, tuple(by_image.get(img.id, ())))
        for img in canonical.images
        if wanted is None or img.split in wanted
    ]


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(image, mask)`` through a joint transform; ``mask(i)`` is the untransformed class map."""

    def __init__(
        self,
        root: Path,
        canonical: CanonicalDataset,
        splits: Sequence[str] | None = None,
        transform: JointTransform | None = None,
    ) -> None:
        self.classes = output_classes(canonical)
        self.samples = segmentation_samples(Path(root), canonical, splits)
        self.transform = transform
        self._masks: dict[int, NDArray[np.uint8]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def image_ids(self) -> list[int]:
        return [s.image_id for s in self.samples]

    def mask(self, i: int) -> NDArray[np.uint8]:
        found = self._masks.get(i)
        if found is None:
            s = self.samples[i]
            found = label_maps(s.height, s.width, s.annotations)[0]
            self._masks[i] = found
        return found

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = read_image(self.samples[i].path)
        mask = torch.from_numpy(self.mask(i)).unsqueeze(0)
        if image.shape[-2:] != mask.shape[-2:]:
            raise ValueError(
                f"{self.samples[i].path.name}: image is {tuple(image.shape[-2:])}, "
                f"its annotation {tuple(mask.shape[-2:])}"
            )
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask.squeeze(0)


@dataclass
class SegmentationData:
    train: SegmentationDataset
    val: SegmentationDataset | None
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any] | None


def build_segmentation_data(
    root: Path, canonical: CanonicalDataset, spec: SegDataSpec, *, seed: int, pin_memory: bool = False
) -> SegmentationData:
    """Train loader (augmented crops, shuffled) over ``train``; val loader (batch 1, whole images at
    ``scale``, masks as drawn) over ``val``."""
    train = SegmentationDataset(root, canonical, ["train"], SegTrainTransform(spec))
    if len(train) == 0:
        raise ValueError("data.dataset_id: the dataset has no images in its train split")
    val = SegmentationDataset(
        root, canonical, ["val"], SegEvalTransform(spec.scale, spec.normalize_mean, spec.normalize_std)
    )
    drop_last = len(train) > spec.batch_size and len(train) % spec.batch_size == 1
    train_loader = make_loader(
        train,
        batch_size=spec.batch_size,
        shuffle=True,
        workers=spec.workers,
        seed=seed,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
    val_loader = (
        make_loader(val, batch_size=1, shuffle=False, workers=min(spec.workers, 1), seed=seed)
        if len(val)
        else None
    )
    return SegmentationData(train, val if len(val) else None, train_loader, val_loader)
