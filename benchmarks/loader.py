"""The studio's training data pipeline against a plain torchvision one, on the same images in one run.

A synthetic image-folder project (circle / square / triangle JPEGs, ``tests/datasets/synth.py``) is
imported into the studio's canonical form (``backend.datasets.importer.import_folder``), then read by:

- studio: ``worker.data.build_classification_data`` (its train loader: canonical dataset, transforms v2
  from the config's augment steps, persistent seeded workers);
- plain: ``torchvision.datasets.ImageFolder`` over the same images with ``transforms.v2``
  (ToImage, RandomResizedCrop, RandomHorizontalFlip, ToDtype, Normalize: the same ops) and a
  ``DataLoader`` with the same batch size, worker count and shuffling.

Each loader runs ``--epochs`` epochs; the first is a warm-up (worker start, page cache) and is not
counted. Images per second over the rest are compared; the target is a ratio of at least 1.0.

    .venv/bin/python benchmarks/loader.py [--images 600] [--width 320 --height 240] [--size 128]
        [--batch 32] [--workers 2] [--epochs 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.datasets.importer import import_folder  # noqa: E402
from backend.datasets.splits import SplitRatios  # noqa: E402
from backend.tasks.classification import DataSpec, augment_step  # noqa: E402
from tests.datasets.synth import draw_scene  # noqa: E402
from worker.data import build_classification_data  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_project(root: Path, n: int, width: int, height: int) -> None:
    """``n`` JPEGs in one folder per class, each one drawn shape of its class."""
    rng = random.Random(0)
    labels = ("circle", "square", "triangle")
    for i in range(n):
        label = labels[i % 3]
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        img, _ = draw_scene(rng, width, height, 1, labels=(label,))
        img.save(folder / f"{label}_{i:05d}.jpg", quality=90)


def images_per_second(loader: DataLoader[Any], epochs: int) -> float:
    counted, seconds = 0, 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for images, _ in loader:
            n += len(images)
        if epoch > 0:  # the first epoch starts workers and warms the page cache
            counted += n
            seconds += time.perf_counter() - t0
    return counted / seconds


def plain_loader(src: Path, args: argparse.Namespace) -> DataLoader[Any]:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(args.size, scale=(0.6, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(MEAN), list(STD)),
        ]
    )
    return DataLoader(
        ImageFolder(str(src), transform=transform),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        generator=torch.Generator().manual_seed(0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the main process only collects batches; the workers do the work

    with tempfile.TemporaryDirectory() as tmp:
        src, final = Path(tmp) / "src", Path(tmp) / "dataset"
        make_project(src, args.images, args.width, args.height)
        # Every image in train, so both loaders read the same files.
        landed = import_folder(
            src, "folder", Path(tmp) / "staging", final, ratios=SplitRatios(train=1, val=0, test=0)
        )
        spec = DataSpec(
            dataset_id=0,
            input_size=args.size,
            batch_size=args.batch,
            workers=args.workers,
            augment=[
                augment_step("random_resized_crop", scale=(0.6, 1.0)),
                augment_step("horizontal_flip"),
            ],
            normalize_mean=MEAN,
            normalize_std=STD,
        )
        plain_rates: list[float] = []
        studio_rates: list[float] = []
        for _ in range(args.repeat):  # alternating, so that other load on the machine hits both alike
            plain_rates.append(images_per_second(plain_loader(src, args), args.epochs))
            studio = build_classification_data(final, landed.dataset, spec, seed=0).train_loader
            studio_rates.append(images_per_second(studio, args.epochs))
            del studio  # stops its persistent workers
    p, s = max(plain_rates), max(studio_rates)
    print(
        f"{args.images} JPEGs {args.width}x{args.height} -> {args.size}px, batch {args.batch}, "
        f"{args.workers} workers, {args.epochs - 1} timed epochs x {args.repeat}"
    )
    print(
        "runs (images/s), plain:",
        [round(r) for r in plain_rates],
        "studio:",
        [round(r) for r in studio_rates],
    )
    print(f"plain ImageFolder + v2: {p:8.0f} images/s best, {statistics.median(plain_rates):8.0f} median")
    print(f"studio pipeline:        {s:8.0f} images/s best, {statistics.median(studio_rates):8.0f} median")
    print(f"ratio studio/plain: {s / p:.3f} best  (target >= 1.0)")


if __name__ == "__main__":
    main()
