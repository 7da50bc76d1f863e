"""Reference figure: the studio's DBNet against python-doctr's DBNet on the same synthetic words, the same
backbone (torchvision ResNet-18 from scratch), the same augmented batches and the same number of AdamW steps;
both probability maps go through the studio's ``polygons_from_prob`` and the same one-to-one IoU > 0.5 match,
so the figure compares the networks, labels and losses, not the post-processing.

doctr builds its targets inside ``forward(x, target)`` from relative quadrilaterals and has no don't-care
flag, so its don't-care words are simply left out of its targets (trained as background), as a doctr user
would have to. Runs only where doctr is importable (it is not a studio dependency):

    PYTHONPATH=. /tmp/doctr-venv/bin/python benchmarks/dbnet_doctr.py [--iterations 150] [--batch 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tests.worker.text_synth import draw_text_image, match_count
from worker.tasks.text_detection.loss import DBLoss
from worker.tasks.text_detection.model import build_dbnet
from worker.tasks.text_detection.postprocess import polygons_from_prob
from worker.tasks.text_detection.transforms import (
    TextEvalTransform,
    TextSample,
    TextTrainTransform,
    collate_text,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
STEPS = [
    {"name": "rotate", "p": 0.3, "degrees": 10.0},
    {"name": "random_crop", "p": 0.3, "min_side_ratio": 0.5},
    {"name": "color_jitter", "p": 0.5},
]


def doctr_resnet18() -> nn.Module:
    """doctr's DBNet (its FPN, heads and loss) on torchvision's ResNet-18, through doctr's own builder
    (doctr ships only ResNet-34/50 and MobileNetV3 entry points)."""
    from doctr.models.detection.differentiable_binarization.pytorch import _dbnet
    from torchvision.models import resnet18

    return _dbnet(
        "db_resnet34",
        False,
        resnet18,
        ["layer1", "layer2", "layer3", "layer4"],
        None,
        pretrained_backbone=False,
        head_chans=64,  # the studio model's neck width in the comparison
    )


def doctr_target(sample: TextSample, size: int) -> dict[str, np.ndarray]:
    """doctr's target: care words as relative (N, 4, 2) float32 quadrilaterals in [0, 1]."""
    import cv2

    quads = []
    for points, dont_care in zip(sample.polygons, sample.ignore, strict=True):
        if dont_care:
            continue
        quad = points if len(points) == 4 else cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
        quads.append(np.clip(np.asarray(quad, dtype=np.float32) / size, 0.0, 1.0))
    return {"words": np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)}


def run(
    name: str,
    model: nn.Module,
    step: Callable[[nn.Module, list[TextSample]], torch.Tensor],
    prob: Callable[[nn.Module, torch.Tensor], np.ndarray],
    args: argparse.Namespace,
) -> None:
    rng = np.random.default_rng(args.seed)
    data = [draw_text_image(rng, size=(2 * args.size, 2 * args.size), words=(2, 5)) for _ in range(64)]
    train, held_out = data[:48], data[48:]
    transform = TextTrainTransform(STEPS, args.size, MEAN, STD)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.iterations, pct_start=0.15
    )
    aug_rng = np.random.default_rng(args.seed + 1)
    started = time.monotonic()
    model.train()
    for _ in range(args.iterations):
        picks = aug_rng.choice(len(train), args.batch, replace=False)
        batch = [
            transform(train[i][0], [p for p, _ in train[i][1]], [d for _, d in train[i][1]], aug_rng)
            for i in picks
        ]
        loss = step(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    trained = time.monotonic() - started
    model.eval()
    evaluate = TextEvalTransform(args.size, MEAN, STD)
    matches = counted = words = 0
    for image, truth in held_out:
        sample = evaluate(image)
        with torch.no_grad():
            found = polygons_from_prob(
                prob(model, sample.image[None]),
                unclip_ratio=args.unclip_ratio,
                scale=(1 / sample.scale, 1 / sample.scale),
            )
        m, c, n = match_count([p for p, _ in found], truth)
        matches, counted, words = matches + m, counted + c, words + n
    print(
        f"{name:>8}: recall {matches / words:.3f} precision {matches / max(counted, 1):.3f} "
        f"({matches}/{words} words, {counted} detections), training {trained:.0f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--unclip-ratio", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if importlib.util.find_spec("doctr") is None:
        print("python-doctr is not importable here; run this with a venv that has it (see the docstring).")
        return
    torch.set_num_threads(args.threads)
    loss_fn = DBLoss()

    def studio_step(model: nn.Module, batch: list[TextSample]) -> torch.Tensor:
        images, targets = collate_text(batch)
        return loss_fn(model(images), targets)[0]

    def doctr_step(model: nn.Module, batch: list[TextSample]) -> torch.Tensor:
        images = torch.stack([s.image for s in batch])
        out: dict[str, torch.Tensor] = model(images, [doctr_target(s, args.size) for s in batch])
        return out["loss"]

    torch.manual_seed(args.seed)
    run(
        "studio",
        build_dbnet("resnet18", neck_channels=64),
        studio_step,
        lambda m, x: m(x)["prob"][0, 0].numpy(),
        args,
    )
    torch.manual_seed(args.seed)
    run(
        "doctr",
        doctr_resnet18(),
        doctr_step,
        lambda m, x: m(x, return_model_output=True)["out_map"][0, 0].numpy(),
        args,
    )


if __name__ == "__main__":
    main()
