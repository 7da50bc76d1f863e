"""A classifier's answers for pictures: the batch as one forward, the top-k classes per picture."""

from __future__ import annotations

from typing import Any

import torch

from worker.models import LoadedModel, preprocess
from worker.predict import prediction_overlay, probabilities, top_k
from worker.serving.answer import Picture, save_answer_image


def answer_pictures(loaded: LoadedModel, pictures: list[Picture]) -> list[dict[str, Any]]:
    batch = torch.cat([preprocess(p.image, loaded.input_size, loaded.normalize) for p in pictures])
    probs = probabilities(loaded, batch)
    answers = []
    for picture, row in zip(pictures, probs, strict=True):
        preds = top_k(loaded, row, picture.top_k)
        answer: dict[str, Any] = {
            "top_k": [{"index": p.index, "name": p.name, "score": p.score} for p in preds]
        }
        if picture.overlay:
            answer["overlay"] = save_answer_image(prediction_overlay(picture.image, preds))
        answers.append(answer)
    return answers
