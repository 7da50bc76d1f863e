"""Class probabilities for pictures, and the prediction drawn onto a picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont

from worker.models import LoadedModel, preprocess


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    score: float  # softmax probability


def probabilities(loaded: LoadedModel, batch: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes for a ``(B, 3, S, S)`` batch, as float32 on the CPU."""
    with loaded.lock, torch.inference_mode():
        logits = loaded.model(batch)
    return torch.softmax(logits.float(), dim=1).cpu()


def top_k(loaded: LoadedModel, probs: torch.Tensor, k: int) -> list[Prediction]:
    """The ``k`` most probable classes of one row of probabilities, best first."""
    scores, indices = probs.topk(min(k, probs.shape[-1]))
    return [
        Prediction(int(i), loaded.class_names[int(i)], float(s))
        for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
    ]


def predict_image(loaded: LoadedModel, image: Image.Image, k: int = 5) -> list[Prediction]:
    """The top ``k`` classes of one picture, best first."""
    x = preprocess(image, loaded.input_size, loaded.normalize)
    return top_k(loaded, probabilities(loaded, x)[0], k)


def draw_label(image: Image.Image, lines: Sequence[str]) -> Image.Image:
    """A copy of ``image`` with ``lines`` written top-left on a dark band, sized to the picture."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    size = max(12, min(out.size) // 16)
    font = ImageFont.load_default(size=size)
    pad = max(2, size // 4)
    y: float = pad
    for line in lines:
        left, top, right, bottom = draw.textbbox((pad, y), line, font=font)
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(0, 0, 0))
        draw.text((pad, y), line, fill=(255, 255, 255), font=font)
        y = bottom + 2 * pad
    return out


def prediction_overlay(image: Image.Image, predictions: Sequence[Prediction]) -> Image.Image:
    """The picture with its top class and probability written on it."""
    best = predictions[0]
    return draw_label(image, [f"{best.name} {best.score:.1%}"])
