"""A segmenter's answers for pictures, picture by picture (each inferred at its own size, whole or by
sliding windows): the classes found by share of the picture, the mask as a palette PNG."""

from __future__ import annotations

from typing import Any

from worker.models import LoadedModel
from worker.serving.answer import Picture, png_base64, save_answer_image


def answer_pictures(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    from worker.tasks.segmentation.predict import predict_mask

    answers = []
    for picture in pictures:
        out = predict_mask(loaded, picture.image)
        found = sorted(out.classes, key=lambda c: -c["share"])[: picture.top_k]
        answer: dict[str, Any] = {
            "top_k": [{"index": c["index"], "name": c["name"], "score": c["share"]} for c in found],
            "classes": out.classes,
            "mask_png": png_base64(out.mask),
        }
        if picture.overlay:
            answer["overlay"] = save_answer_image(out.overlay)
        answers.append(answer)
    return answers
