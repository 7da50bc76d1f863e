"""Grad-CAM of one picture (``worker.cam.grad_cam``: preprocess, forward, backward to the target layer,
the map, drawn back over the picture) against one plain forward and backward pass of the same model on
the same input: what explaining a picture costs over the gradient it needs. Target (P12): at most 1.3x.

Both run alternately ``--repeat`` times of ``--images`` pictures each; the ratio uses each side's best
run (other load on the machine only ever adds time), medians beside it. Weights are random: the cost does
not depend on them, and nothing is downloaded.

    .venv/bin/python benchmarks/cam.py [--arch resnet18] [--size 224] [--images 20] [--repeat 5]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.cam import default_layer, grad_cam  # noqa: E402
from worker.models import LoadedModel, preprocess  # noqa: E402
from worker.zoo import build_model  # noqa: E402

NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _pictures(n: int, size: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    side = round(size * 1.3)  # bigger than the input: the crop and the drawing back both happen
    return [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(n)]


def _baseline(loaded: LoadedModel, pictures: list[Image.Image]) -> float:
    """One forward and backward per picture, the gradient taken at the input (as Grad-CAM takes it)."""
    inputs = [preprocess(p, loaded.input_size, loaded.normalize) for p in pictures]
    started = time.perf_counter()
    for x in inputs:
        x = x.requires_grad_(True)
        logits = loaded.model(x)
        logits[0, int(logits[0].argmax())].backward()
    return (time.perf_counter() - started) / len(pictures)


def _cam(loaded: LoadedModel, pictures: list[Image.Image]) -> float:
    started = time.perf_counter()
    for p in pictures:
        grad_cam(loaded, p)
    return (time.perf_counter() - started) / len(pictures)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.arch, 10).eval().requires_grad_(False)
    loaded = LoadedModel(
        model=model,
        architecture=args.arch,
        task="classification",
        class_names=[f"c{i}" for i in range(10)],
        input_size=args.size,
        normalize=NORMALIZE,
        options={},
        path=Path("model.pt"),
    )
    pictures = _pictures(args.images, args.size)
    _cam(loaded, pictures[:2])  # warm-up: imports, allocator, hooks
    _baseline(loaded, pictures[:2])
    cams, plain = [], []
    for _ in range(args.repeat):
        plain.append(_baseline(loaded, pictures))
        cams.append(_cam(loaded, pictures))
    ratio = min(cams) / min(plain)
    print(
        f"{args.arch} at {args.size} px, layer {default_layer(model, args.arch)}, {args.threads} threads, "
        f"{args.images} pictures x {args.repeat}"
    )
    for label, times in (("forward + backward", plain), ("Grad-CAM of a picture", cams)):
        best, median = 1000 * min(times), 1000 * statistics.median(times)
        print(f"  {label:22} best {best:7.1f} ms   median {median:7.1f} ms")
    print(f"  ratio {ratio:.2f}x (target <= 1.3x): {'met' if ratio <= 1.3 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
