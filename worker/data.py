"""Classification data: a ``Dataset`` over a canonical dataset folder, the train / eval transforms
(torchvision transforms v2, from the config's ``AugmentStep`` list) and seeded ``DataLoader``s with
batch-level Mixup / CutMix.

Images are decoded by Pillow into uint8 tensors and every op runs on tensors (torchvision's uint8 kernels)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.transforms import v2

from backend.datasets.canonical import CanonicalDataset
from backend.tasks.classification import AugmentStep, DataSpec

# Eval resizes the short side to input_size / EVAL_CROP_RATIO, then centre-crops input_size (ImageNet habit).
EVAL_CROP_RATIO = 0.875


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    image_id: int = -1  # the canonical image's id (-1: not from a dataset)


def classification_samples(
    root: Path, canonical: CanonicalDataset, splits: Iterable[str] | None = None
) -> tuple[list[Sample], int]:
    """Images of ``splits`` (all when None) with exactly one tag that is a class, and how many were left out
    (no tag or several: not a single-label classification example)."""
    index = {name: i for i, name in enumerate(canonical.classes)}
    wanted = set(splits) if splits is not None else None
    samples: list[Sample] = []
    skipped = 0
    for image in canonical.images:
        if wanted is not None and image.split not in wanted:
            continue
        tags = [t for t in image.tags if t in index]
        if len(tags) != 1:
            skipped += 1
            continue
        samples.append(Sample(root / image.file_name, index[tags[0]], image.id))
    return samples, skipped


def read_image(path: Path) -> torch.Tensor:
    """An RGB uint8 ``(3, H, W)`` tensor (EXIF orientation applied, greyscale and alpha converted).

    Decoded with Pillow; the tensor keeps the decoded HWC layout (channels-last strides), the layout
    torchvision's fast uint8 resize works in, so no transpose copy happens before the first op."""
    with Image.open(path) as opened:
        img = ImageOps.exif_transpose(opened)
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        pixels = np.array(rgb)  # writable: torch tensors must not alias read-only memory
    return torch.from_numpy(pixels).permute(2, 0, 1)


class ClassificationDataset(Dataset[tuple[torch.Tensor, int]]):
    """``(image, label)`` pairs of a canonical dataset folder; label = index of the image's tag in classes."""

    def __init__(
        self,
        root: Path,
        canonical: CanonicalDataset,
        splits: Sequence[str] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        self.classes = list(canonical.classes)
        self.samples, self.skipped = classification_samples(self.root, canonical, splits)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[i]
        image = read_image(sample.path)
        if self.transform is not None:
            image = self.transform(image)
        return image, sample.label

    def class_counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for s in self.samples:
            counts[s.label] += 1
        return counts


# ---------------------------------------------------------------- transforms


def _step(step: AugmentStep, size: int) -> v2.Transform:
    name = step.name
    if name == "random_resized_crop":
        return v2.RandomResizedCrop(size, scale=step.scale, antialias=True)
    if name == "resize":
        return v2.Resize(size, antialias=True)
    if name == "center_crop":
        return v2.CenterCrop(size)
    if name == "horizontal_flip":
        return v2.RandomHorizontalFlip(step.p)
    if name == "vertical_flip":
        return v2.RandomVerticalFlip(step.p)
    if name == "rotation":
        return v2.RandomRotation(step.degrees)
    if name == "color_jitter":
        return v2.ColorJitter(step.brightness, step.contrast, step.saturation, step.hue)
    if name == "grayscale":
        return v2.RandomGrayscale(step.p)
    if name == "gaussian_blur":
        kernel = max(3, (size // 10) | 1)  # odd, about a tenth of the image
        return v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=step.p)
    if name == "rand_augment":
        return v2.RandAugment(magnitude=step.magnitude)
    if name == "trivial_augment":
        return v2.TrivialAugmentWide()
    if name == "auto_augment":
        return v2.AutoAugment()
    raise ValueError(f"data.augment: unknown step {name!r}")


def train_transform(
    augment: Sequence[AugmentStep], size: int, mean: Sequence[float], std: Sequence[float]
) -> v2.Compose:
    """The config's steps in order, then what makes the output ``size`` x ``size``, then float + normalise.

    Takes a uint8 ``(3, H, W)`` tensor or a PIL image. ``random_erasing`` works on the normalised tensor,
    so it runs last wherever it was listed."""
    ops: list[v2.Transform] = [v2.ToImage()]
    erasing: list[v2.Transform] = []
    sized = False
    for step in augment:
        if step.name == "random_erasing":
            erasing.append(v2.RandomErasing(p=step.p))
            continue
        ops.append(_step(step, size))
        if step.name in ("random_resized_crop", "center_crop"):
            sized = True
        elif step.name == "resize":
            sized = False
    if not sized:
        ops += [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose(
        [
            *ops,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
            *erasing,
            v2.ToPureTensor(),  # plain tensors: no tv_tensor dispatch overhead downstream
        ]
    )


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Resize the short side to ``size / 0.875``, centre-crop ``size``, float, normalise.

    Takes a uint8 ``(3, H, W)`` tensor or a PIL image; returns a plain float tensor."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(round(size / EVAL_CROP_RATIO), antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
            v2.ToPureTensor(),
        ]
    )


# ---------------------------------------------------------------- loaders


class MixCollate:
    """Collate, then Mixup or CutMix the batch (one of them at random when both are on): targets become
    class probabilities. A class, not a closure, so loader workers can pickle it under any start method."""

    def __init__(self, num_classes: int, mixup_alpha: float, cutmix_alpha: float) -> None:
        mixes: list[v2.Transform] = []
        if mixup_alpha > 0:
            mixes.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if cutmix_alpha > 0:
            mixes.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        self.mix: v2.Transform | None = (
            None if not mixes else mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
        )

    def __call__(self, batch: list[Any]) -> Any:
        images, labels = default_collate(batch)
        if self.mix is None:
            return images, labels
        return self.mix(images, labels)


def _seed_worker(worker_id: int) -> None:
    """Give Python's and NumPy's generators the seed torch chose for this worker (torch's own is set)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def loader_workers(requested: int) -> int:
    """Data loader processes for a run: as asked on a GPU; on a CPU-only worker at most
    ``STUDIO_TRAINING_LOADER_WORKERS`` (default one less than the cores), since each loader process
    takes a core from the model's own threads and from the studio's interactive lanes."""
    if requested <= 0 or torch.cuda.is_available():
        return max(0, requested)
    from backend.settings import get_settings

    cap = get_settings().training_loader_workers
    if cap < 0:
        try:
            cap = max(0, len(os.sched_getaffinity(0)) - 1)
        except AttributeError:
            cap = max(0, (os.cpu_count() or 1) - 1)
    return min(requested, cap)


def make_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    collate: Callable[[list[Any]], Any] | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader[Any]:
    """A seeded loader; re-seeding ``loader.generator`` before an epoch makes its order repeatable."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    workers = loader_workers(workers)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        pin_memory=pin_memory,
        drop_last=drop_last,
        collate_fn=collate or default_collate,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=generator,
    )


@dataclass
class ClassificationData:
    train: ClassificationDataset
    val: ClassificationDataset | None
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any] | None


def build_classification_data(
    root: Path, canonical: CanonicalDataset, spec: DataSpec, *, seed: int, pin_memory: bool = False
) -> ClassificationData:
    """Train loader over the ``train`` split (augmented, shuffled, Mixup/CutMix), val loader over ``val``."""
    size, mean, std = spec.input_size, spec.normalize_mean, spec.normalize_std
    train = ClassificationDataset(root, canonical, ["train"], train_transform(spec.augment, size, mean, std))
    if len(train) == 0:
        raise ValueError("the dataset has no single-label images in its train split")
    val = ClassificationDataset(root, canonical, ["val"], eval_transform(size, mean, std))
    n_classes = len(canonical.classes)
    # A last batch of one breaks BatchNorm in training; drop a short tail when there is more than one batch.
    drop_last = len(train) > spec.batch_size and len(train) % spec.batch_size == 1
    train_loader = make_loader(
        train,
        batch_size=spec.batch_size,
        shuffle=True,
        workers=spec.workers,
        seed=seed,
        collate=MixCollate(n_classes, spec.mixup_alpha, spec.cutmix_alpha),
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
    val_loader = (
        make_loader(
            val,
            batch_size=spec.batch_size,
            shuffle=False,
            workers=min(spec.workers, 1),
            seed=seed,
            pin_memory=pin_memory,
        )
        if len(val)
        else None
    )
    return ClassificationData(train, val if len(val) else None, train_loader, val_loader)
